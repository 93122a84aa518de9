//! Client scale-out benchmarks, printing figures and ratios from one run:
//!
//! - **round_robin over four backends vs the same four connections picked by the caller**:
//!   closed-loop unary calls at concurrency 64 for a few seconds each, interleaved rounds,
//!   medians. Picks should cost nothing measurable: the target is at least 0.95 of the direct
//!   QPS. One direct connection carrying all 64 calls is printed too; it is faster still, since
//!   a connection with many calls in flight reads in rounds and overlaps its peer's work
//!   (docs/ARCHITECTURE.md), which 16 calls per connection do not.
//! - **hedging**: three backends, one of which adds 50 ms to 10% of its calls; p99 with
//!   `hedgingDelay` 10 ms against p99 without hedging. The target is at most half.
//!
//! `cargo run --release --bin scale-out [SECONDS_PER_ROUND]` (bench/run.sh runs it too).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod ours {
    include!(concat!(env!("OUT_DIR"), "/rgrpc/helloworld.rs"));
}

/// A greeter that delays a share of its calls.
struct Greeter {
    slow_every: u64,
    delay: Duration,
    calls: AtomicU64,
}

impl ours::Greeter for Greeter {
    async fn say_hello(
        &self,
        request: rgrpc::Request<ours::HelloRequest>,
    ) -> Result<rgrpc::Response<ours::HelloReply>, rgrpc::Status> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        if self.slow_every > 0 && n.is_multiple_of(self.slow_every) {
            tokio::time::sleep(self.delay).await;
        }
        Ok(rgrpc::Response::new(ours::HelloReply {
            message: format!("Hello {}", request.into_inner().name),
        }))
    }
}

/// Starts `n` servers on the given runtime; the second element says which one is slow.
fn servers(rt: &tokio::runtime::Runtime, n: usize, slow: Option<usize>) -> Vec<String> {
    (0..n)
        .map(|i| {
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            let greeter = Greeter {
                slow_every: if slow == Some(i) { 10 } else { 0 },
                delay: Duration::from_millis(50),
                calls: AtomicU64::new(1),
            };
            rt.spawn(async move {
                rgrpc::Server::builder()
                    .add_service(ours::GreeterServer::new(greeter))
                    .serve_with_listener(listener, std::future::pending())
                    .await
                    .expect("serve");
            });
            addr
        })
        .collect()
}

async fn channel(target: &str, config: &str) -> ours::GreeterClient {
    let channel = rgrpc::Channel::builder(target)
        .expect("target")
        .default_service_config(config)
        .connect()
        .await
        .expect("connect");
    ours::GreeterClient::new(channel)
}

/// Closed loop: `concurrency` workers calling for `time`, worker `i` on `clients[i % n]`; calls
/// per second.
async fn qps(clients: &[ours::GreeterClient], concurrency: usize, time: Duration) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + time;
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let (client, done) = (clients[i % clients.len()].clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let r = client
                        .say_hello(ours::HelloRequest {
                            name: "world".into(),
                        })
                        .await;
                    if r.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    done.load(Ordering::Relaxed) as f64 / time.as_secs_f64()
}

/// `calls` calls from `concurrency` workers; latencies sorted.
async fn latencies(
    client: &ours::GreeterClient,
    calls: usize,
    concurrency: usize,
) -> Vec<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let t = Instant::now();
                    let r = client
                        .say_hello(ours::HelloRequest {
                            name: "world".into(),
                        })
                        .await;
                    if r.is_ok() {
                        out.push(t.elapsed());
                    }
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap_or_default());
    }
    all.sort();
    all
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let round = Duration::from_secs_f64(seconds);
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");

    // round_robin over four against one direct connection.
    let four = servers(&server_rt, 4, None);
    let rr_target = format!("ipv4:{}", four.join(","));
    let (direct, spread, rr) = client_rt.block_on(async {
        let direct = channel(&format!("http://{}", four[0]), "{}").await;
        let mut spread = Vec::new();
        for addr in &four {
            spread.push(channel(&format!("http://{addr}"), "{}").await);
        }
        let rr = channel(
            &rr_target,
            r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#,
        )
        .await;
        // Let round_robin connect to all four before measuring.
        tokio::time::sleep(Duration::from_millis(300)).await;
        (direct, spread, rr)
    });
    let (mut direct_qps, mut spread_qps, mut rr_qps) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        direct_qps.push(client_rt.block_on(qps(std::slice::from_ref(&direct), 64, round)));
        spread_qps.push(client_rt.block_on(qps(&spread, 64, round)));
        rr_qps.push(client_rt.block_on(qps(std::slice::from_ref(&rr), 64, round)));
    }
    let (d, s, r) = (median(direct_qps), median(spread_qps), median(rr_qps));
    println!("unary, closed loop, concurrency 64, median of 3 interleaved rounds of {seconds} s:");
    println!("  one direct connection              {d:>10.0} calls/s");
    println!("  four direct connections, 16 each   {s:>10.0} calls/s");
    println!("  round_robin over the four          {r:>10.0} calls/s");
    // What picking costs: the same four connections, chosen by the balancer or by the caller.
    println!(
        "  round_robin / four direct          {:>10.2}   (target >= 0.95)",
        r / s
    );
    println!(
        "  round_robin / one direct           {:>10.2}   (one connection with 64 calls pipelines its reads)",
        r / d
    );

    // Hedging with one backend slow on 10% of its calls.
    let three = servers(&server_rt, 3, Some(0));
    let target = format!("ipv4:{}", three.join(","));
    let plain_config = r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#;
    let hedged_config = r#"{"loadBalancingConfig":[{"round_robin":{}}],
        "methodConfig":[{"name":[{"service":"helloworld.Greeter"}],
          "hedgingPolicy":{"maxAttempts":3,"hedgingDelay":"0.01s"}}]}"#;
    let (plain, hedged) = client_rt.block_on(async {
        let plain = channel(&target, plain_config).await;
        let hedged = channel(&target, hedged_config).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        (plain, hedged)
    });
    let calls = 3000;
    let without = client_rt.block_on(latencies(&plain, calls, 8));
    let with = client_rt.block_on(latencies(&hedged, calls, 8));
    println!(
        "hedging: 3 backends, one adds 50 ms to 10% of its calls; {calls} calls at concurrency 8:"
    );
    println!(
        "  without hedging   p50 {:>9.2?}  p99 {:>9.2?}",
        pct(&without, 0.5),
        pct(&without, 0.99)
    );
    println!(
        "  hedgingDelay 10ms p50 {:>9.2?}  p99 {:>9.2?}",
        pct(&with, 0.5),
        pct(&with, 0.99)
    );
    println!(
        "  p99 hedged / unhedged {:>6.2}   (target <= 0.5)",
        pct(&with, 0.99).as_secs_f64() / pct(&without, 0.99).as_secs_f64()
    );
}
