//! `interop-server --port=N [--use_tls=false]`: `grpc.testing.TestService` as the interop test
//! descriptions define it. Stops on SIGTERM or Ctrl-C. Beyond the official flags, as grpc's xDS
//! test servers have them: `--server_id=ID` (sent back when a request sets `fill_server_id`,
//! default `rgrpc`) and our `--host=ADDR` (listen on one address instead of every one), so that
//! tests can run several servers behind one name.

use std::time::Duration;

use rgrpc::{Code, Outgoing, Request, Response, ResponseStream, Server, Status, Streaming};
use rgrpc_interop::pb::{
    self, Empty, SimpleRequest, SimpleResponse, StreamingInputCallRequest,
    StreamingInputCallResponse, StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use rgrpc_interop::{Flags, payload};

const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

struct TestService {
    server_id: String,
}

/// The echo metadata a request carries, to copy into the response.
struct Echo {
    initial: Option<String>,
    trailing: Option<Vec<u8>>,
}

impl Echo {
    fn from(metadata: &rgrpc::MetadataMap) -> Echo {
        Echo {
            initial: metadata.get(ECHO_INITIAL).map(str::to_owned),
            trailing: metadata.get_bin(ECHO_TRAILING).and_then(Result::ok),
        }
    }

    fn apply<T>(&self, response: &mut Response<T>) {
        if let Some(v) = &self.initial {
            let _ = response.metadata_mut().insert(ECHO_INITIAL, v);
        }
        if let Some(v) = &self.trailing {
            let _ = response.trailers_mut().insert_bin(ECHO_TRAILING, v);
        }
    }

    /// The status to end with, carrying the trailing echo too.
    fn status(&self, status: Status) -> Status {
        let mut status = status;
        if let Some(v) = &self.trailing {
            let _ = status.metadata_mut().insert_bin(ECHO_TRAILING, v);
        }
        status
    }
}

fn requested_status(s: &Option<pb::EchoStatus>) -> Option<Status> {
    s.as_ref()
        .filter(|s| s.code != 0)
        .map(|s| Status::new(Code::from_i32(s.code), s.message.clone()))
}

/// The interop spec refuses only a message that asks for compression and arrived without it; one
/// that arrived compressed without asking is fine (grpcio and grpc-js compress every message of a
/// compressed call).
fn check_compression(
    expect: &Option<pb::BoolValue>,
    arrived_compressed: bool,
) -> Result<(), Status> {
    match expect {
        Some(e) if e.value && !arrived_compressed => Err(Status::invalid_argument(
            "expected a compressed request, but it arrived uncompressed",
        )),
        _ => Ok(()),
    }
}

fn size(n: i32) -> Result<usize, Status> {
    usize::try_from(n).map_err(|_| Status::invalid_argument(format!("negative size {n}")))
}

async fn unary(
    request: Request<SimpleRequest>,
    server_id: &str,
) -> Result<Response<SimpleResponse>, Status> {
    let echo = Echo::from(request.metadata());
    check_compression(
        &request.get_ref().expect_compressed,
        request.message_compressed(),
    )?;
    let req = request.into_inner();
    if let Some(status) = requested_status(&req.response_status) {
        return Err(echo.status(status));
    }
    let mut response = Response::new(SimpleResponse {
        payload: Some(payload(size(req.response_size)?)),
        server_id: if req.fill_server_id {
            server_id.to_owned()
        } else {
            String::new()
        },
        ..Default::default()
    });
    if let Some(c) = &req.response_compressed {
        response.set_compressed(c.value);
    }
    echo.apply(&mut response);
    Ok(response)
}

/// Sends the responses one request asks for, honouring intervals and per-message compression.
async fn respond(
    req: &StreamingOutputCallRequest,
    tx: &rgrpc::StreamSender<StreamingOutputCallResponse>,
) -> Result<(), Status> {
    for p in &req.response_parameters {
        if p.interval_us > 0 {
            tokio::time::sleep(Duration::from_micros(p.interval_us as u64)).await;
        }
        let mut message = Outgoing::new(StreamingOutputCallResponse {
            payload: Some(payload(size(p.size)?)),
        });
        if let Some(c) = &p.compressed {
            message = message.compressed(c.value);
        }
        tx.send(message).await?;
    }
    Ok(())
}

impl pb::TestService for TestService {
    async fn empty_call(&self, request: Request<Empty>) -> Result<Response<Empty>, Status> {
        let echo = Echo::from(request.metadata());
        let mut response = Response::new(Empty {});
        echo.apply(&mut response);
        Ok(response)
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        unary(request, &self.server_id).await
    }

    async fn cacheable_unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        unary(request, &self.server_id).await
    }

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<ResponseStream<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::from(request.metadata());
        let trailing = Echo {
            initial: None,
            trailing: echo.trailing.clone(),
        };
        let req = request.into_inner();
        let (tx, stream) = ResponseStream::channel(1);
        tokio::spawn(async move {
            if respond(&req, &tx).await.is_err() {
                return;
            }
            if let Some(status) = requested_status(&req.response_status) {
                tx.fail(trailing.status(status)).await;
            }
        });
        let mut response = Response::new(stream);
        echo.apply(&mut response);
        Ok(response)
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let echo = Echo::from(request.metadata());
        let mut requests = request.into_inner();
        let mut total = 0usize;
        while let Some(req) = requests.message().await? {
            check_compression(&req.expect_compressed, requests.last_message_compressed())?;
            total += req.payload.map(|p| p.body.len()).unwrap_or(0);
        }
        let mut response = Response::new(StreamingInputCallResponse {
            aggregated_payload_size: i32::try_from(total).unwrap_or(i32::MAX),
        });
        echo.apply(&mut response);
        Ok(response)
    }

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<ResponseStream<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::from(request.metadata());
        let mut requests = request.into_inner();
        let (tx, stream) = ResponseStream::channel(1);
        let trailing = Echo {
            initial: None,
            trailing: echo.trailing.clone(),
        };
        tokio::spawn(async move {
            loop {
                match requests.message().await {
                    Ok(Some(req)) => {
                        if let Some(status) = requested_status(&req.response_status) {
                            return tx.fail(trailing.status(status)).await;
                        }
                        if respond(&req, &tx).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(status) => return tx.fail(status).await,
                }
            }
        });
        let mut response = Response::new(stream);
        echo.apply(&mut response);
        Ok(response)
    }

    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<ResponseStream<StreamingOutputCallResponse>>, Status> {
        let echo = Echo::from(request.metadata());
        let mut requests = request.into_inner();
        let mut all = Vec::new();
        while let Some(req) = requests.message().await? {
            all.push(req);
        }
        let (tx, stream) = ResponseStream::channel(1);
        tokio::spawn(async move {
            for req in &all {
                if let Some(status) = requested_status(&req.response_status) {
                    return tx.fail(status).await;
                }
                if respond(req, &tx).await.is_err() {
                    return;
                }
            }
        });
        let mut response = Response::new(stream);
        echo.apply(&mut response);
        Ok(response)
    }

    async fn unimplemented_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "UnimplementedCall is not implemented, on purpose",
        ))
    }
}

#[tokio::main]
async fn main() {
    let flags = match Flags::parse(
        std::env::args().skip(1),
        &[
            "port",
            "use_tls",
            "tls_cert_file",
            "tls_key_file",
            "server_id",
            "host",
            "max_receive_message_size",
        ],
    ) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("interop-server: {e}");
            std::process::exit(2);
        }
    };
    let port: u16 = flags.number("port", 10000).unwrap_or_else(|e| {
        eprintln!("interop-server: {e}");
        std::process::exit(2);
    });
    let service = TestService {
        server_id: flags.get("server_id").unwrap_or("rgrpc").to_owned(),
    };
    // grpc-java's very_large_request sends 10 MiB, and its own server takes 16 MiB for it.
    let limit: usize = flags
        .number("max_receive_message_size", 4 * 1024 * 1024)
        .unwrap_or_else(|e| {
            eprintln!("interop-server: {e}");
            std::process::exit(2);
        });
    let mut server = Server::builder()
        .max_recv_message_size(limit)
        .add_service(pb::TestServiceServer::new(service));
    if flags.bool("use_tls", false).unwrap_or(true) {
        let (Some(cert), Some(key)) = (flags.get("tls_cert_file"), flags.get("tls_key_file"))
        else {
            eprintln!("interop-server: --use_tls=true needs --tls_cert_file and --tls_key_file");
            std::process::exit(2);
        };
        let read = |path: &str| {
            std::fs::read(path).unwrap_or_else(|e| {
                eprintln!("interop-server: cannot read {path}: {e}");
                std::process::exit(2);
            })
        };
        let identity = rgrpc::Identity::from_pem(read(cert), read(key)).unwrap_or_else(|e| {
            eprintln!("interop-server: {e}");
            std::process::exit(2);
        });
        server = server.tls_config(rgrpc::ServerTlsConfig::new(identity));
    }
    let addr = match flags.get("host") {
        Some(host) if host.contains(':') && !host.starts_with('[') => format!("[{host}]:{port}"),
        Some(host) => format!("{host}:{port}"),
        None => format!("[::]:{port}"),
    };
    eprintln!("interop-server listening on {addr}");
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    if let Err(e) = server.serve_with_shutdown(&addr, stop).await {
        eprintln!("interop-server: {e}");
        std::process::exit(1);
    }
}
