//! Rapid reset (CVE-2023-44487): an attacker that opens streams and resets them at once, as
//! fast as one core can write them, over connection after connection, must not push another
//! client's median latency past twice what it is without the attack. The attacker writes raw frames
//! (HEADERS then RST_STREAM CANCEL, in batches) from a thread of its own, the way the published
//! attack does; h2's reset limits (set in `http2/handshake.rs`) send its connections away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::raw::{PREFACE, frame};
use rgrpc_tests::{EchoService, TestServer, echo_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// A request's header block with no HPACK state: POST and http from the static table, the rest
/// as literals.
fn request_block() -> Vec<u8> {
    let mut block = vec![0x83, 0x86];
    literal(&mut block, ":path", "/test.echo.Echo/Unary");
    literal(&mut block, ":authority", "attack");
    literal(&mut block, "content-type", "application/grpc");
    literal(&mut block, "te", "trailers");
    block
}

/// Connects, then writes batches of opened-and-reset streams until the server closes the
/// connection; then again, until `stop`.
async fn attack(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    streams: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
) {
    let block = request_block();
    while !stop.load(Ordering::Relaxed) {
        let Ok(socket) = tokio::net::TcpStream::connect(addr).await else {
            continue;
        };
        connections.fetch_add(1, Ordering::Relaxed);
        let (mut read, mut write) = socket.into_split();
        let drain = tokio::spawn(async move {
            let mut sink = vec![0u8; 64 * 1024];
            while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(4, 0, 0, &[]));
        if write.write_all(&hello).await.is_err() {
            continue;
        }
        let mut id = 1u32;
        'conn: while !stop.load(Ordering::Relaxed) && id < (1 << 30) {
            let mut batch = Vec::with_capacity(100 * 80);
            for _ in 0..100 {
                batch.extend(frame(1, 4, id, &block));
                batch.extend(frame(3, 0, id, &8u32.to_be_bytes()));
                id += 2;
            }
            if write.write_all(&batch).await.is_err() {
                break 'conn;
            }
            streams.fetch_add(100, Ordering::Relaxed);
            if drain.is_finished() {
                break 'conn;
            }
        }
        drain.abort();
    }
}

/// Median and 90th percentile of `n` sequential unary calls.
async fn latency(client: &EchoClient, n: usize) -> (Duration, Duration) {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        client
            .unary(EchoRequest {
                message: "ping".into(),
                ..Default::default()
            })
            .await
            .expect("a well-behaved client is served during the attack");
        took.push(started.elapsed());
    }
    took.sort();
    (took[n / 2], took[n * 9 / 10])
}

#[tokio::test]
async fn a_rapid_reset_attack_does_not_double_other_clients_latency() {
    // The server as users get it (a worker per core). The attacker reconnects whenever h2's
    // reset limits send a connection away, so its connections land on every worker.
    // Its accept loop runs on a runtime of its own, as a server process's would, not on the
    // thread that measures.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt
        .spawn(TestServer::start(echo_server(EchoService::default())))
        .await
        .unwrap();
    let client = EchoClient::connect(&server.url()).await.unwrap();
    latency(&client, 200).await; // warm up
    let (base50, base90) = latency(&client, 1000).await;

    let stop = Arc::new(AtomicBool::new(false));
    let streams = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (stop, streams, connections) = (stop.clone(), streams.clone(), connections.clone());
        let addr = server.addr;
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(attack(addr, stop, streams, connections));
        })
    };
    // Let the attack get going, then measure while it lasts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during_start = streams.load(Ordering::Relaxed);
    let (attack50, attack90) = latency(&client, 1000).await;
    let during = streams.load(Ordering::Relaxed) - during_start;
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    println!(
        "latency p50/p90: {base50:?}/{base90:?} alone, {attack50:?}/{attack90:?} under attack \
         ({during} streams reset over {} connections)",
        connections.load(Ordering::Relaxed)
    );
    assert!(during > 10_000, "the attack ran: {during} streams");
    assert!(
        attack50 <= base50 * 2,
        "median {attack50:?} under attack against {base50:?}"
    );
    // The tail (printed above) is not held to the bound: on two cores the attacker, the
    // server's workers and this client share the CPU, and the p90 is what that sharing moves.
    server_rt.spawn(server.stop()).await.unwrap();
    tokio::task::spawn_blocking(move || drop(server_rt))
        .await
        .unwrap();
}
