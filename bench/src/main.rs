//! One of the servers under benchmark, on `127.0.0.1:PORT`, until SIGTERM:
//!
//! `rgrpc-bench rgrpc|tonic|h2|h2-echo PORT [current|multi]`
//!
//! - `rgrpc`: the helloworld Greeter on rgrpc;
//! - `tonic`: the same service on tonic;
//! - `h2`: a bare `h2` server answering every request with a fixed, pre-encoded gRPC reply: the
//!   ceiling of the HTTP/2 engine itself, with no gRPC layer at all;
//! - `h2-echo`: the same, answering with a reply as large as the request (the ceiling for large
//!   messages, where the Greeter's reply is as large as its request);
//! - `h2-stream`: answers every request with 16,384 pre-encoded messages of 64 KiB (1 GiB), as
//!   flow control allows: the ceiling of the streaming benchmark's 1 GiB download.
//!
//! `current` runs a current-thread tokio runtime, `multi` the multi-thread one.

use std::time::Duration;

mod ours {
    include!(concat!(env!("OUT_DIR"), "/rgrpc/helloworld.rs"));
}
mod theirs {
    include!(concat!(env!("OUT_DIR"), "/tonic/helloworld.rs"));
}

struct Ours;
impl ours::Greeter for Ours {
    async fn say_hello(
        &self,
        request: rgrpc::Request<ours::HelloRequest>,
    ) -> Result<rgrpc::Response<ours::HelloReply>, rgrpc::Status> {
        Ok(rgrpc::Response::new(ours::HelloReply {
            message: format!("Hello {}", request.into_inner().name),
        }))
    }
}

struct Theirs;
#[tonic::async_trait]
impl theirs::greeter_server::Greeter for Theirs {
    async fn say_hello(
        &self,
        request: tonic::Request<theirs::HelloRequest>,
    ) -> Result<tonic::Response<theirs::HelloReply>, tonic::Status> {
        Ok(tonic::Response::new(theirs::HelloReply {
            message: format!("Hello {}", request.into_inner().name),
        }))
    }
}

async fn stop() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    term.recv().await;
}

async fn serve(kind: &str, port: u16) {
    let addr = format!("127.0.0.1:{port}");
    match kind {
        "rgrpc" => {
            let mut builder = rgrpc::Server::builder();
            // For experiments: RGRPC_WORKERS=0 serves on the caller's runtime.
            if let Some(n) = std::env::var("RGRPC_WORKERS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                builder = builder.worker_threads(n);
            }
            // RGRPC_PING_POLICY=off: no observer of clients' PINGs, to measure what it costs.
            if std::env::var("RGRPC_PING_POLICY").as_deref() == Ok("off") {
                builder = builder.keepalive_enforcement(std::time::Duration::ZERO, true);
            }
            builder
                .add_service(ours::GreeterServer::new(Ours))
                .serve_with_shutdown(&addr, stop())
                .await
                .expect("rgrpc server")
        }
        "tonic" => tonic::transport::Server::builder()
            .add_service(theirs::greeter_server::GreeterServer::new(Theirs))
            .serve_with_shutdown(addr.parse().unwrap(), stop())
            .await
            .expect("tonic server"),
        "h2" => bare_h2(&addr, false).await,
        "h2-echo" => bare_h2(&addr, true).await,
        "h2-stream" => bare_h2_stream(&addr).await,
        other => panic!("unknown server {other}"),
    }
}

/// The ceiling: accept, read the request body, answer a fixed reply (or, with `echo`, the
/// request's bytes as the reply). No routing, no decoding.
async fn bare_h2(addr: &str, echo: bool) {
    use prost::Message;
    let reply = ours::HelloReply {
        message: "Hello world".into(),
    }
    .encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(reply.len() as u32).to_be_bytes());
    framed.extend_from_slice(&reply);
    let framed = bytes::Bytes::from(framed);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let accept = async {
        loop {
            let (io, _) = listener.accept().await.unwrap();
            io.set_nodelay(true).unwrap();
            let framed = framed.clone();
            tokio::spawn(async move {
                // The HTTP/2 settings rgrpc's server uses by default, so that the ceiling is the
                // engine's with the same flow-control windows, not h2's 64 KiB default windows.
                let handshake = h2::server::Builder::new()
                    .initial_window_size(1024 * 1024)
                    .initial_connection_window_size(2 * 1024 * 1024)
                    .max_concurrent_streams(256)
                    .handshake(io);
                let Ok(mut conn) = handshake.await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = conn.accept().await {
                    let framed = framed.clone();
                    tokio::spawn(async move {
                        let mut body = request.into_body();
                        let mut received = bytes::BytesMut::new();
                        while let Some(Ok(chunk)) = body.data().await {
                            let _ = body.flow_control().release_capacity(chunk.len());
                            if echo {
                                received.extend_from_slice(&chunk);
                            }
                        }
                        let framed = if echo { received.freeze() } else { framed };
                        let mut head = http::Response::new(());
                        head.headers_mut().insert(
                            "content-type",
                            http::HeaderValue::from_static("application/grpc"),
                        );
                        let Ok(mut send) = respond.send_response(head, false) else {
                            return;
                        };
                        let _ = send.send_data(framed, false);
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        let _ = send.send_trailers(trailers);
                    });
                }
            });
        }
    };
    tokio::select! {
        () = accept => {}
        () = stop() => {}
    }
}

/// One GiB per request: 16,384 gRPC frames of a 64 KiB `bench.stream.Chunk`, each sent as the
/// peer's flow-control window allows.
async fn bare_h2_stream(addr: &str) {
    let mut message = vec![0x0a, 0x80, 0x80, 0x04];
    message.resize(4 + 64 * 1024, 7);
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    let framed = bytes::Bytes::from(framed);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let accept = async {
        loop {
            let (io, _) = listener.accept().await.unwrap();
            io.set_nodelay(true).unwrap();
            let framed = framed.clone();
            tokio::spawn(async move {
                let handshake = h2::server::Builder::new()
                    .initial_window_size(1024 * 1024)
                    .initial_connection_window_size(2 * 1024 * 1024)
                    .handshake(io);
                let Ok(mut conn) = handshake.await else {
                    return;
                };
                while let Some(Ok((_request, mut respond))) = conn.accept().await {
                    let framed = framed.clone();
                    tokio::spawn(async move {
                        let mut head = http::Response::new(());
                        head.headers_mut().insert(
                            "content-type",
                            http::HeaderValue::from_static("application/grpc"),
                        );
                        let Ok(mut send) = respond.send_response(head, false) else {
                            return;
                        };
                        for _ in 0..16 * 1024 {
                            let mut rest = framed.clone();
                            while !rest.is_empty() {
                                send.reserve_capacity(rest.len());
                                match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
                                    Some(Ok(n)) if n > 0 => {
                                        let piece = rest.split_to(n.min(rest.len()));
                                        if send.send_data(piece, false).is_err() {
                                            return;
                                        }
                                    }
                                    Some(Ok(_)) => {}
                                    _ => return,
                                }
                            }
                        }
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        let _ = send.send_trailers(trailers);
                    });
                }
            });
        }
    };
    tokio::select! {
        () = accept => {}
        () = stop() => {}
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: rgrpc-bench rgrpc|tonic|h2 PORT [current|multi]");
        std::process::exit(2);
    }
    let kind = args[1].clone();
    let port: u16 = args[2].parse().expect("PORT");
    let runtime = match args.get(3).map(String::as_str).unwrap_or("current") {
        "current" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        other => panic!("unknown runtime {other}"),
    }
    .unwrap();
    runtime.block_on(serve(&kind, port));
    // Let the socket close before the process ends.
    std::thread::sleep(Duration::from_millis(10));
}
