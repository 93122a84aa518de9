//! The soak test's two programs (`bench/soak.sh` runs them and plots what the server samples):
//!
//! - `soak serve`: the Soak service on 127.0.0.1 with the default configuration (a worker per
//!   core), printing `listening on ADDR`, then every second a line `sample UNIX_SECONDS RSS_KIB
//!   OPEN_FDS LIVE_TASKS` (tasks on the server's workers and on the main runtime). Stops at
//!   stdin EOF.
//! - `soak load ADDR [UNARY STREAMED STORM]`: over 100 connections, UNARY unary calls (default
//!   10,000,000), then STREAMED messages on bidi streams (default 1,000,000, each echoed), then
//!   a storm of STORM calls (default 100,000) of every kind cancelled or timed out at a random
//!   point, then the streams and the storm once more (`repeat`). Prints `phase NAME START_UNIX
//!   END_UNIX` for each, and fails if a call that should have succeeded did not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rgrpc::client::Request;
use rgrpc::{Code, Response, ResponseStream, Status, Streaming};

mod pb {
    include!(concat!(env!("OUT_DIR"), "/rgrpc/bench.soak.rs"));
}
use pb::Work;

const CONNECTIONS: usize = 100;
/// Calls in flight per connection in the unary phase and the storm.
const PER_CONNECTION: usize = 4;

struct Soak;

impl pb::Soak for Soak {
    async fn unary(&self, request: rgrpc::Request<Work>) -> Result<Response<Work>, Status> {
        let work = request.into_inner();
        if work.delay_us > 0 {
            tokio::time::sleep(Duration::from_micros(work.delay_us.into())).await;
        }
        Ok(Response::new(work))
    }

    async fn download(
        &self,
        request: rgrpc::Request<Work>,
    ) -> Result<Response<ResponseStream<Work>>, Status> {
        let work = request.into_inner();
        let delay = Duration::from_micros(work.delay_us.into());
        let count = work.count;
        let item = Work {
            data: work.data,
            ..Default::default()
        };
        let stream = futures_stream(count, delay, item);
        Ok(Response::new(ResponseStream::new(stream)))
    }

    async fn upload(
        &self,
        request: rgrpc::Request<Streaming<Work>>,
    ) -> Result<Response<Work>, Status> {
        let mut stream = request.into_inner();
        let mut count = 0;
        while stream.message().await?.is_some() {
            count += 1;
        }
        Ok(Response::new(Work {
            count,
            ..Default::default()
        }))
    }

    async fn chat(
        &self,
        request: rgrpc::Request<Streaming<Work>>,
    ) -> Result<Response<ResponseStream<Work>>, Status> {
        Ok(Response::new(ResponseStream::new(request.into_inner())))
    }
}

/// `count` copies of `item`, `delay` apart, without a task of their own.
fn futures_stream(
    count: u32,
    delay: Duration,
    item: Work,
) -> impl tokio_stream::Stream<Item = Result<Work, Status>> + Send {
    let items = tokio_stream::iter(std::iter::repeat_n(item, count as usize).map(Ok));
    tokio_stream::StreamExt::throttle(items, delay)
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

async fn serve() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    let stop = async {
        use tokio::io::AsyncReadExt;
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while stdin.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
    };
    let sampler = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let tasks = rgrpc::server::live_worker_tasks()
                + tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks();
            println!(
                "sample {:.3} {} {} {}",
                now_unix(),
                rss_kib(),
                open_fds(),
                tasks
            );
        }
    };
    let server = rgrpc::Server::builder()
        .add_service(pb::SoakServer::new(Soak))
        .serve_with_listener(listener, stop);
    tokio::select! {
        result = server => result.expect("serve"),
        () = sampler => {}
    }
    std::process::exit(0);
}

/// A small, seedable generator for the storm's random points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn work(bytes: usize) -> Work {
    Work {
        data: vec![0x5a; bytes],
        ..Default::default()
    }
}

async fn unary_phase(clients: &[pb::SoakClient], total: u64) {
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        for _ in 0..PER_CONNECTION {
            let (client, done) = (client.clone(), done.clone());
            tasks.spawn(async move {
                while done.fetch_add(1, Ordering::Relaxed) < total {
                    client
                        .unary(work(32))
                        .await
                        .expect("a unary call of the soak");
                }
            });
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

async fn stream_phase(clients: &[pb::SoakClient], total: u64) {
    let per_stream = total / clients.len() as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let client = client.clone();
        tasks.spawn(async move {
            let (tx, rx) = rgrpc::stream::channel(16);
            let mut replies = client.chat(rx).await.expect("chat").into_inner();
            let send = async {
                for _ in 0..per_stream {
                    tx.send(work(64)).await.expect("send");
                }
                drop(tx);
            };
            let receive = async {
                let mut n = 0;
                while replies.message().await.expect("echo").is_some() {
                    n += 1;
                }
                n
            };
            let ((), n) = tokio::join!(send, receive);
            assert_eq!(n, per_stream, "every message echoed");
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

/// One call of the storm: a random kind, ended at a random point by a deadline, a cancellation
/// token or dropping it. Returns the code it ended with (OK when it finished first).
async fn storm_call(client: &pb::SoakClient, rng: &mut Rng) -> Code {
    let wait = Duration::from_micros(rng.below(3000));
    let code = |r: Result<(), Status>| match r {
        Ok(()) => Code::Ok,
        Err(s) => {
            if !matches!(s.code(), Code::Cancelled | Code::DeadlineExceeded) {
                eprintln!("storm call ended {s:?}");
            }
            s.code()
        }
    };
    match rng.below(5) {
        0 => {
            // A deadline that may fall before, during or after a delayed answer.
            let mut request = Request::new(Work {
                delay_us: rng.below(5000) as u32,
                ..work(16)
            });
            request.set_timeout(wait);
            code(client.unary(request).await.map(drop))
        }
        1 => {
            // Cancelled through its token at a random moment.
            let token = rgrpc::CancellationToken::new();
            let mut request = Request::new(Work {
                delay_us: rng.below(5000) as u32,
                ..work(16)
            });
            request.set_cancellation_token(token.clone());
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                token.cancel();
            });
            code(client.unary(request).await.map(drop))
        }
        2 => {
            // A server stream read for a while, then dropped.
            let request = Work {
                count: 1000,
                delay_us: 50,
                ..work(128)
            };
            let read = rng.below(50);
            let call = async {
                let mut stream = client.download(request).await?.into_inner();
                for _ in 0..read {
                    if stream.message().await?.is_none() {
                        break;
                    }
                }
                Ok(())
            };
            code(call.await)
        }
        3 => {
            // A client stream given up while it sends.
            let (tx, rx) = rgrpc::stream::channel(4);
            let sends = rng.below(50);
            let call = client.upload(rx);
            let feed = async {
                for _ in 0..sends {
                    if tx.send(work(256)).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(wait).await;
            };
            tokio::select! {
                r = call => code(r.map(drop)),
                () = feed => Code::Cancelled,
            }
        }
        _ => {
            // A bidi stream dropped at a random point, with a deadline as well.
            let (tx, rx) = rgrpc::stream::channel(4);
            let mut request = Request::new(rx);
            request.set_timeout(Duration::from_millis(rng.below(20) + 1));
            let rounds = rng.below(30);
            let call = async {
                let mut replies = client.chat(request).await?.into_inner();
                for _ in 0..rounds {
                    if tx.send(work(64)).await.is_err() {
                        break;
                    }
                    if replies.message().await?.is_none() {
                        break;
                    }
                }
                Ok(())
            };
            code(call.await)
        }
    }
}

async fn storm_phase(clients: &[pb::SoakClient], total: u64) -> Vec<(Code, u64)> {
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, client) in clients.iter().enumerate() {
        for j in 0..PER_CONNECTION {
            let (client, done) = (client.clone(), done.clone());
            tasks.spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((i * 31 + j) as u64 + 1));
                let mut codes = std::collections::HashMap::new();
                while done.fetch_add(1, Ordering::Relaxed) < total {
                    *codes
                        .entry(storm_call(&client, &mut rng).await)
                        .or_insert(0u64) += 1;
                }
                codes
            });
        }
    }
    let mut all = std::collections::HashMap::new();
    while let Some(r) = tasks.join_next().await {
        for (code, n) in r.unwrap() {
            *all.entry(code).or_insert(0) += n;
        }
    }
    let mut all: Vec<_> = all.into_iter().collect();
    all.sort_by_key(|(c, _)| *c as i32);
    all
}

async fn load(addr: &str, unary: u64, streamed: u64, storm: u64) {
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        // One channel each: one connection each.
        let channel = rgrpc::Channel::connect(&format!("http://{addr}"))
            .await
            .expect("connect");
        clients.push(pb::SoakClient::new(channel));
    }
    let phase = |name: &str, start: f64, began: Instant| {
        println!("phase {name} {start:.3} {:.3}", now_unix());
        eprintln!("{name}: {:.1} s", began.elapsed().as_secs_f64());
    };
    let (start, began) = (now_unix(), Instant::now());
    unary_phase(&clients, unary).await;
    phase("unary", start, began);
    let (start, began) = (now_unix(), Instant::now());
    stream_phase(&clients, streamed).await;
    phase("streams", start, began);
    let (start, began) = (now_unix(), Instant::now());
    let codes = storm_phase(&clients, storm).await;
    phase("storm", start, began);
    // The streams and the storm once more: whatever the first round left allocated must be
    // reused, not added to.
    let (start, began) = (now_unix(), Instant::now());
    stream_phase(&clients, streamed).await;
    let again = storm_phase(&clients, storm).await;
    phase("repeat", start, began);
    let mut merged: std::collections::BTreeMap<i32, (Code, u64)> =
        std::collections::BTreeMap::new();
    for (code, n) in codes.into_iter().chain(again) {
        merged.entry(code as i32).or_insert((code, 0)).1 += n;
    }
    let codes: Vec<(Code, u64)> = merged.into_values().collect();
    let summary: Vec<String> = codes.iter().map(|(c, n)| format!("{c:?}={n}")).collect();
    println!("storm codes {}", summary.join(" "));
    let unexpected: u64 = codes
        .iter()
        .filter(|(c, _)| !matches!(c, Code::Ok | Code::Cancelled | Code::DeadlineExceeded))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        unexpected, 0,
        "storm calls ended only OK, CANCELLED or DEADLINE_EXCEEDED"
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve().await,
        Some("load") if args.len() >= 3 => {
            let n = |i: usize, default: u64| {
                args.get(i).map_or(default, |v| v.parse().expect("a count"))
            };
            load(&args[2], n(3, 10_000_000), n(4, 1_000_000), n(5, 100_000)).await;
        }
        _ => {
            eprintln!("usage: soak serve | soak load ADDR [UNARY STREAMED STORM]");
            std::process::exit(2);
        }
    }
}
