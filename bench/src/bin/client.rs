//! Client benchmark: closed-loop unary calls from our generated client or tonic's against one
//! server (bench/run.sh points both at the bare h2 server, so the server costs the same for
//! both), `CONNS` connections with `STREAMS` calls in flight on each, for `SECONDS`.
//! Prints `QPS P99_MS`.
//!
//! `client rgrpc|tonic ADDR CONNS STREAMS SECONDS`
//!
//! It runs as users run clients: under `#[tokio::main]`, tokio's multi-thread runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod ours {
    include!(concat!(env!("OUT_DIR"), "/rgrpc/helloworld.rs"));
}
mod theirs {
    include!(concat!(env!("OUT_DIR"), "/tonic/helloworld.rs"));
}

/// Runs `workers` loops of `call` until `seconds` pass; (calls per second, p99 in ms).
async fn drive<F, Fut>(workers: usize, seconds: f64, call: F) -> (f64, f64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|i| {
            let (call, stop) = (call.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    call(i).await;
                    latencies.push(began.elapsed().as_micros() as u32);
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or(0) as f64 / 1000.0;
    (all.len() as f64 / elapsed, p99)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: client rgrpc|tonic ADDR CONNS STREAMS SECONDS");
        std::process::exit(2);
    }
    let addr = format!("http://{}", args[2]);
    let conns: usize = args[3].parse().expect("CONNS");
    let streams: usize = args[4].parse().expect("STREAMS");
    let seconds: f64 = args[5].parse().expect("SECONDS");
    let workers = conns * streams;
    let (qps, p99) = match args[1].as_str() {
        "rgrpc" => {
            let mut clients = Vec::new();
            for _ in 0..conns {
                clients.push(ours::GreeterClient::connect(&addr).await.expect("connect"));
            }
            drive(workers, seconds, move |i| {
                let client = clients[i % conns].clone();
                async move {
                    let name = "world".to_owned();
                    client
                        .say_hello(ours::HelloRequest { name })
                        .await
                        .expect("call");
                }
            })
            .await
        }
        "tonic" => {
            let mut clients = Vec::new();
            for _ in 0..conns {
                let channel = tonic::transport::Endpoint::from_shared(addr.clone())
                    .unwrap()
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .expect("connect");
                clients.push(theirs::greeter_client::GreeterClient::new(channel));
            }
            drive(workers, seconds, move |i| {
                let mut client = clients[i % conns].clone();
                async move {
                    let name = "world".to_owned();
                    client
                        .say_hello(theirs::HelloRequest { name })
                        .await
                        .expect("call");
                }
            })
            .await
        }
        other => panic!("unknown client {other}"),
    };
    println!("{qps:.0} {p99:.2}");
}
