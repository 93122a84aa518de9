//! Chaos, bounded: three echo servers (separate processes) behind round_robin with a retry policy
//! on UNAVAILABLE and wait-for-ready; 10,000 unary calls at concurrency 50 while one server is
//! killed with SIGKILL and restarted, twice. No call may fail, and in every stretch of time the
//! calls spread within ±20% over the servers alive then.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rgrpc::Channel;
use rgrpc::client::Request;
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CALLS: usize = 10_000;
const CONCURRENCY: usize = 50;

async fn spawn_server(port: u16, id: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--addr", &format!("127.0.0.1:{port}"), "--id", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start echo-server");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .expect("echo-server starts")
        .unwrap();
    assert!(line.starts_with("listening on"), "{line}");
    child
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A stretch of time: which servers are alive, whether the spread is judged (not while a
/// restarted server is still being reconnected), and who served how many calls.
struct Stretch {
    alive: Vec<&'static str>,
    judged: bool,
    counts: HashMap<String, usize>,
}

#[derive(Default)]
struct Log {
    stretches: Vec<Stretch>,
}

impl Log {
    fn open(&mut self, alive: &[&'static str], judged: bool) {
        self.stretches.push(Stretch {
            alive: alive.to_vec(),
            judged,
            counts: HashMap::new(),
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_servers_cost_no_call_and_calls_spread_evenly() {
    let ids = ["s1", "s2", "s3"];
    let ports: Vec<u16> = ids.iter().map(|_| free_port()).collect();
    let mut servers = Vec::new();
    for (port, id) in ports.iter().zip(ids) {
        servers.push(Some(spawn_server(*port, id).await));
    }
    let target = format!(
        "ipv4:{}",
        ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let config = r#"{"loadBalancingConfig":[{"round_robin":{}}],
        "methodConfig":[{"name":[{"service":"test.echo.Echo"}],"waitForReady":true,"timeout":"10s",
          "retryPolicy":{"maxAttempts":5,"initialBackoff":"0.01s","maxBackoff":"0.1s",
            "backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}"#;
    let channel = Channel::builder(&target)
        .unwrap()
        .default_service_config(config)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);

    let log = Arc::new(Mutex::new(Log::default()));
    log.lock().unwrap().open(&ids, true);
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, log, done, failures, next) = (
            client.clone(),
            log.clone(),
            done.clone(),
            failures.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < CALLS {
                let request = Request::new(EchoRequest {
                    message: "chaos".into(),
                    ..Default::default()
                });
                match client.unary(request).await {
                    Ok(response) => {
                        let id = response
                            .metadata()
                            .get("x-server-id")
                            .unwrap_or("?")
                            .to_owned();
                        let mut log = log.lock().unwrap();
                        let stretch = log.stretches.last_mut().unwrap();
                        *stretch.counts.entry(id).or_default() += 1;
                    }
                    Err(status) => failures.lock().unwrap().push(status.to_string()),
                }
                done.fetch_add(1, Ordering::SeqCst);
                // About 2,500 calls a second in all, so that the kills land mid-run.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    let wait_for = |n: usize| {
        let done = done.clone();
        async move {
            while done.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    for (victim, at, alive) in [(1usize, 1_000, ["s1", "s3"]), (2, 5_000, ["s1", "s2"])] {
        wait_for(at).await;
        let mut child = servers[victim].take().unwrap();
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        log.lock().unwrap().open(&alive, true);
        tokio::time::sleep(Duration::from_millis(300)).await;
        servers[victim] = Some(spawn_server(ports[victim], ids[victim]).await);
        // Until the channel has reconnected to it, the restarted server is not judged.
        log.lock().unwrap().open(&ids, false);
        back_again(&log, ids[victim]).await;
        log.lock().unwrap().open(&ids, true);
    }
    for w in workers {
        w.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} calls failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    let log = log.lock().unwrap();
    let total: usize = log.stretches.iter().flat_map(|s| s.counts.values()).sum();
    assert_eq!(total, CALLS);
    for Stretch {
        alive,
        judged,
        counts,
    } in &log.stretches
    {
        // A dead server answers nothing; a few of its last answers may be logged just after
        // the kill by a worker that ran late on a loaded machine.
        for (id, n) in counts {
            assert!(
                alive.contains(&id.as_str()) || *n <= 20,
                "{id} served {n} calls while dead: {counts:?}"
            );
        }
        let in_stretch: usize = counts.values().sum();
        eprintln!("alive {alive:?} judged {judged}: {counts:?}");
        if !judged || in_stretch < 300 {
            continue; // reconnecting, or too short to judge a spread
        }
        let fair = in_stretch as f64 / alive.len() as f64;
        for id in alive {
            let got = *counts.get(*id).unwrap_or(&0) as f64;
            assert!(
                (got - fair).abs() <= 0.2 * fair,
                "{id} served {got} of {in_stretch} with {alive:?} alive: {counts:?}"
            );
        }
    }
    for child in servers.iter_mut().flatten() {
        let _ = child.start_kill();
    }
}

/// Waits until `id` answers a call in the current stretch.
async fn back_again(log: &Arc<Mutex<Log>>, id: &'static str) {
    for _ in 0..2000 {
        if log
            .lock()
            .unwrap()
            .stretches
            .last()
            .unwrap()
            .counts
            .contains_key(id)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{id} never came back after its restart");
}
