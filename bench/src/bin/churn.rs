//! Connection churn: each of `PARALLEL` loops opens a connection, makes one unary call and
//! closes it, for `SECONDS`. Prints connections per second. bench/run.sh runs it against our
//! server with its workers (each accepted socket handed from the acceptor to a worker) and
//! with `RGRPC_WORKERS=0` (served where it was accepted), to price the hand-off.
//!
//! `churn ADDR PARALLEL SECONDS`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod ours {
    include!(concat!(env!("OUT_DIR"), "/rgrpc/helloworld.rs"));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: churn ADDR PARALLEL SECONDS");
        std::process::exit(2);
    }
    let addr = format!("http://{}", args[1]);
    let parallel: usize = args[2].parse().expect("PARALLEL");
    let seconds: f64 = args[3].parse().expect("SECONDS");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let loops: Vec<_> = (0..parallel)
        .map(|_| {
            let (addr, stop, done) = (addr.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let client = ours::GreeterClient::connect(&addr).await.expect("connect");
                    let name = "world".to_owned();
                    client
                        .say_hello(ours::HelloRequest { name })
                        .await
                        .expect("call");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("{rate:.0}");
}
