//! `chaos-client --target=T [--calls=N] [--concurrency=C] [--interval_ms=MS]
//! [--service_config_json=JSON] [--header=KEY:VALUE] [--fail_until=N] [--wait_for_ready=true]`: unary
//! `grpc.testing.TestService/UnaryCall`s from C workers, each pausing MS between calls, for tests
//! that kill and restart servers meanwhile, and for the xDS tests (`xds:` targets work: the
//! program registers rgrpc-xds), side by side with grpc-go's `tests/xds/xdsclient`. Each call may
//! carry a header, and `x-fail-until: N` for the retry servers. Prints one line per call,
//! `<unix time in ms> <x-server-id or FAILED> <detail>`, then `N passed, M failed`; exits
//! non-zero if a call failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rgrpc::Channel;
use rgrpc::client::Request;
use rgrpc_interop::Flags;
use rgrpc_interop::pb::{self, SimpleRequest};

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let known = [
        "target",
        "calls",
        "concurrency",
        "interval_ms",
        "service_config_json",
        "header",
        "fail_until",
        "wait_for_ready",
    ];
    let flags = Flags::parse(std::env::args().skip(1), &known).unwrap_or_else(|e| {
        eprintln!("chaos-client: {e}");
        std::process::exit(2);
    });
    let number = |name: &str, default: usize| {
        flags.number(name, default).unwrap_or_else(|e| {
            eprintln!("chaos-client: {e}");
            std::process::exit(2);
        })
    };
    let (calls, concurrency, interval) = (
        number("calls", 10_000),
        number("concurrency", 50),
        Duration::from_millis(number("interval_ms", 20) as u64),
    );
    rgrpc_xds::init();
    let header = flags
        .get("header")
        .and_then(|h| h.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let fail_until = number("fail_until", 0);
    let wait_for_ready = flags.bool("wait_for_ready", false).unwrap_or_else(|e| {
        eprintln!("chaos-client: {e}");
        std::process::exit(2);
    });
    let Some(target) = flags.get("target") else {
        eprintln!("chaos-client: --target=T is required");
        std::process::exit(2);
    };
    let mut builder = Channel::builder(target).unwrap_or_else(|e| {
        eprintln!("chaos-client: {e}");
        std::process::exit(2);
    });
    if let Some(json) = flags.get("service_config_json") {
        builder = builder.default_service_config(json);
    }
    let channel = builder.connect_lazy().unwrap_or_else(|e| {
        eprintln!("chaos-client: {e}");
        std::process::exit(2);
    });
    let client = pb::TestServiceClient::new(channel);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, next, failed, tx) = (client.clone(), next.clone(), failed.clone(), tx.clone());
        let header = header.clone();
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < calls {
                let mut request = Request::new(SimpleRequest {
                    response_size: 1,
                    ..Default::default()
                });
                if let Some((k, v)) = &header {
                    let _ = request.metadata_mut().insert(k, v);
                }
                if fail_until > 0 {
                    let _ = request
                        .metadata_mut()
                        .insert("x-fail-until", &fail_until.to_string());
                }
                if wait_for_ready {
                    request.set_wait_for_ready(true);
                    request.set_timeout(Duration::from_secs(10));
                }
                let line = match client.unary_call(request).await {
                    Ok(r) => format!(
                        "{} {} ok",
                        now_ms(),
                        r.metadata().get("x-server-id").unwrap_or("?")
                    ),
                    Err(status) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        format!(
                            "{} FAILED {}: {}",
                            now_ms(),
                            status.code(),
                            status.message()
                        )
                    }
                };
                let _ = tx.send(line);
                tokio::time::sleep(interval).await;
            }
        }));
    }
    drop(tx);
    let printer = tokio::spawn(async move {
        let mut lines = Vec::with_capacity(calls);
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    });
    for w in workers {
        let _ = w.await;
    }
    let lines = printer.await.unwrap_or_default();
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
    let failed = failed.load(Ordering::SeqCst);
    println!("{} passed, {failed} failed", calls - failed);
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
