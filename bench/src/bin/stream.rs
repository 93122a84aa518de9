//! Streaming benchmark programs (bench/run.sh pins the server to core 0 and the client to
//! core 1, and runs every pairing of our server and client with tonic's):
//!
//! - `stream serve rgrpc|tonic PORT`: the Streamer service until SIGTERM, under tokio's
//!   multi-thread runtime as a user runs it;
//! - `stream drive rgrpc|tonic ADDR download|echo SIZE SECONDS`: one call for SECONDS, counting
//!   the messages of SIZE bytes that arrive: a server stream (`download`), or a bidi stream whose
//!   every message the server echoes (`echo`; the client keeps sending as fast as flow control
//!   lets it). Prints `MESSAGES_PER_SECOND MIB_PER_SECOND USER_SECONDS SYSTEM_SECONDS` (the last
//!   two: the client's CPU time, from which bench/run.sh reads the kernel's share);
//! - `stream gib ADDR`: our client reads one server stream of 16,384 messages of 64 KiB (1 GiB)
//!   and prints `SECONDS MIB_PER_SECOND`; the bare h2 server (`rgrpc-bench h2-stream`) sends the
//!   same bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod ours {
    include!(concat!(env!("OUT_DIR"), "/rgrpc/bench.stream.rs"));
}
mod theirs {
    include!(concat!(env!("OUT_DIR"), "/tonic/bench.stream.rs"));
}

struct Ours;
impl ours::Streamer for Ours {
    async fn download(
        &self,
        request: rgrpc::Request<ours::Want>,
    ) -> Result<rgrpc::Response<rgrpc::ResponseStream<ours::Chunk>>, rgrpc::Status> {
        let want = request.into_inner();
        let chunk = ours::Chunk {
            data: vec![7; want.size as usize],
        };
        let chunks = std::iter::repeat_n(chunk, want.count as usize);
        Ok(rgrpc::Response::new(rgrpc::ResponseStream::iter(chunks)))
    }

    async fn echo(
        &self,
        request: rgrpc::Request<rgrpc::Streaming<ours::Chunk>>,
    ) -> Result<rgrpc::Response<rgrpc::ResponseStream<ours::Chunk>>, rgrpc::Status> {
        Ok(rgrpc::Response::new(rgrpc::ResponseStream::new(
            request.into_inner(),
        )))
    }
}

type TonicStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<theirs::Chunk, tonic::Status>> + Send>,
>;

struct Theirs;
#[tonic::async_trait]
impl theirs::streamer_server::Streamer for Theirs {
    type DownloadStream = TonicStream;
    type EchoStream = TonicStream;

    async fn download(
        &self,
        request: tonic::Request<theirs::Want>,
    ) -> Result<tonic::Response<TonicStream>, tonic::Status> {
        let want = request.into_inner();
        let chunk = theirs::Chunk {
            data: vec![7; want.size as usize],
        };
        let chunks = std::iter::repeat_n(Ok(chunk), want.count as usize);
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn echo(
        &self,
        request: tonic::Request<tonic::Streaming<theirs::Chunk>>,
    ) -> Result<tonic::Response<TonicStream>, tonic::Status> {
        Ok(tonic::Response::new(Box::pin(request.into_inner())))
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
            // RGRPC_PING_POLICY=off: no observer of clients' PINGs, to measure what it costs.
            if std::env::var("RGRPC_PING_POLICY").as_deref() == Ok("off") {
                builder = builder.keepalive_enforcement(Duration::ZERO, true);
            }
            builder
                .add_service(ours::StreamerServer::new(Ours))
                .serve_with_shutdown(&addr, stop())
                .await
                .expect("rgrpc server")
        }
        "tonic" => tonic::transport::Server::builder()
            .add_service(theirs::streamer_server::StreamerServer::new(Theirs))
            .serve_with_shutdown(addr.parse().unwrap(), stop())
            .await
            .expect("tonic server"),
        other => panic!("unknown server {other}"),
    }
}

/// Counts arriving messages for `seconds`; (messages per second, MiB per second).
async fn drive(kind: &str, addr: &str, shape: &str, size: usize, seconds: f64) -> (f64, f64) {
    let url = format!("http://{addr}");
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let started = Instant::now();
    let (kind, shape) = (kind.to_owned(), shape.to_owned());
    let run = async move {
        match (kind.as_str(), shape.as_str()) {
            ("rgrpc", "download") => {
                let client = ours::StreamerClient::connect(&url).await.expect("connect");
                let want = ours::Want {
                    size: size as u32,
                    count: u64::MAX >> 1,
                };
                let mut s = client.download(want).await.expect("call").into_inner();
                while let Some(_chunk) = s.message().await.expect("message") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            ("rgrpc", "echo") => {
                let client = ours::StreamerClient::connect(&url).await.expect("connect");
                let chunk = ours::Chunk {
                    data: vec![7; size],
                };
                let outgoing = rgrpc::stream::iter(std::iter::repeat(chunk));
                let mut s = client.echo(outgoing).await.expect("call").into_inner();
                while let Some(_chunk) = s.message().await.expect("message") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            ("tonic", "download") => {
                let channel = tonic::transport::Endpoint::from_shared(url)
                    .unwrap()
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .expect("connect");
                let mut client = theirs::streamer_client::StreamerClient::new(channel);
                let want = theirs::Want {
                    size: size as u32,
                    count: u64::MAX >> 1,
                };
                let mut s = client.download(want).await.expect("call").into_inner();
                while let Some(_chunk) = s.message().await.expect("message") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            ("tonic", "echo") => {
                let channel = tonic::transport::Endpoint::from_shared(url)
                    .unwrap()
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .expect("connect");
                let mut client = theirs::streamer_client::StreamerClient::new(channel);
                let chunk = theirs::Chunk {
                    data: vec![7; size],
                };
                let outgoing = tokio_stream::iter(std::iter::repeat(chunk));
                let mut s = client.echo(outgoing).await.expect("call").into_inner();
                while let Some(_chunk) = s.message().await.expect("message") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            other => panic!("unknown client or shape {other:?}"),
        }
    };
    // Count from the first message, so that connecting is not measured.
    let task = tokio::spawn(run);
    while received.load(Ordering::Relaxed) == 0 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (from, t0) = (received.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let (to, elapsed) = (received.load(Ordering::Relaxed), t0.elapsed().as_secs_f64());
    task.abort();
    let rate = (to - from) as f64 / elapsed;
    (rate, rate * size as f64 / (1024.0 * 1024.0))
}

/// Reads 1 GiB in 64 KiB messages from one server stream; (seconds, MiB per second).
async fn gib(addr: &str) -> (f64, f64) {
    const SIZE: u32 = 64 * 1024;
    const COUNT: u64 = 16 * 1024;
    let client = ours::StreamerClient::connect(&format!("http://{addr}"))
        .await
        .expect("connect");
    let started = Instant::now();
    let want = ours::Want {
        size: SIZE,
        count: COUNT,
    };
    let mut s = client.download(want).await.expect("call").into_inner();
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = s.message().await.expect("message") {
        n += 1;
        bytes += chunk.data.len() as u64;
    }
    assert_eq!(
        (n, bytes),
        (COUNT, COUNT * u64::from(SIZE)),
        "the whole GiB"
    );
    let seconds = started.elapsed().as_secs_f64();
    (seconds, 1024.0 / seconds)
}

/// This process's user and system CPU time so far, in seconds, from `/proc/self/stat` (fields 14
/// and 15, in the kernel's USER_HZ of 100 ticks a second).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it follow its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // `rest` starts at field 3, so fields 14 and 15 are its 12th and 13th.
    let tick = |i: usize| fields.get(i).copied().unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") if args.len() == 4 => serve(&args[2], args[3].parse().expect("PORT")).await,
        Some("drive") if args.len() == 7 => {
            let size = args[5].parse().expect("SIZE");
            let seconds = args[6].parse().expect("SECONDS");
            let (rate, mib) = drive(&args[2], &args[3], &args[4], size, seconds).await;
            let (user, system) = cpu_seconds();
            println!("{rate:.0} {mib:.1} {user:.2} {system:.2}");
        }
        Some("gib") if args.len() == 3 => {
            let (seconds, mib) = gib(&args[2]).await;
            println!("{seconds:.3} {mib:.0}");
        }
        _ => {
            eprintln!(
                "usage: stream serve rgrpc|tonic PORT | stream drive rgrpc|tonic ADDR download|echo SIZE SECONDS | stream gib ADDR"
            );
            std::process::exit(2);
        }
    }
}
