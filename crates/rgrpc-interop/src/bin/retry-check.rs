//! `retry-check --target=T`: rgrpc's retries (gRFC A6) against another implementation's server
//! that fails calls until `grpc-previous-rpc-attempts` reaches the number a call asks for (the
//! servers in `tests/go/retryserver` and `tests/node/retry-server.js`). Prints a line per check
//! and `N passed, M failed`; exits non-zero on a failure.

use std::time::{Duration, Instant};

use rgrpc::client::Request;
use rgrpc::{Channel, Code, Status};
use rgrpc_interop::pb::{self, Empty, SimpleRequest, StreamingInputCallRequest};
use rgrpc_interop::{Flags, payload};

type Outcome = Result<(), String>;

fn config(max_attempts: u32, backoff: &str, throttling: &str) -> String {
    format!(
        r#"{{"methodConfig":[{{"name":[{{"service":"grpc.testing.TestService"}}],
            "retryPolicy":{{"maxAttempts":{max_attempts},"initialBackoff":"{backoff}",
              "maxBackoff":"{backoff}","backoffMultiplier":1,
              "retryableStatusCodes":["UNAVAILABLE"]}}}}]{throttling}}}"#
    )
}

fn client(
    target: &str,
    config: &str,
    buffer: Option<usize>,
) -> Result<pb::TestServiceClient, String> {
    let mut builder = Channel::builder(target)
        .map_err(|e| e.to_string())?
        .default_service_config(config);
    if let Some(bytes) = buffer {
        builder = builder.per_call_retry_buffer(bytes);
    }
    Ok(pb::TestServiceClient::new(
        builder.connect_lazy().map_err(|e| e.to_string())?,
    ))
}

fn failing<T>(message: T, until: u32, pushback: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(Duration::from_secs(20));
    let md = request.metadata_mut();
    // Plain ASCII keys and digits: always valid metadata.
    let _ = md.insert("x-fail-until", &until.to_string());
    if let Some(p) = pushback {
        let _ = md.insert("x-pushback-ms", p);
    }
    request
}

fn unary(until: u32, pushback: Option<&str>) -> Request<SimpleRequest> {
    failing(
        SimpleRequest {
            response_size: 10,
            ..Default::default()
        },
        until,
        pushback,
    )
}

/// The attempts the server has seen so far.
async fn calls(client: &pb::TestServiceClient) -> Result<u64, String> {
    let r = client
        .empty_call(Empty {})
        .await
        .map_err(|s| s.to_string())?;
    r.metadata()
        .get("x-calls")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no x-calls header".to_owned())
}

fn attempt_header<T>(r: &rgrpc::client::Response<T>) -> Option<u32> {
    r.metadata().get("x-attempt")?.parse().ok()
}

fn ensure(ok: bool, what: impl Into<String>) -> Outcome {
    if ok { Ok(()) } else { Err(what.into()) }
}

fn expect_failure(result: Result<impl std::fmt::Debug, Status>, message: &str) -> Outcome {
    match result {
        Ok(r) => Err(format!("succeeded: {r:?}")),
        Err(s) => ensure(
            s.code() == Code::Unavailable && s.message() == message,
            format!(
                "got {}: {:?}, wanted UNAVAILABLE: {message:?}",
                s.code(),
                s.message()
            ),
        ),
    }
}

async fn check(name: &str, target: &str) -> Outcome {
    match name {
        "success_on_the_right_attempt" => {
            let c = client(target, &config(4, "0.01s", ""), None)?;
            let r = c
                .unary_call(unary(3, None))
                .await
                .map_err(|s| s.to_string())?;
            ensure(
                attempt_header(&r) == Some(3),
                format!("answered by attempt {:?}", attempt_header(&r)),
            )
        }
        "max_attempts_then_the_last_status" => {
            let c = client(target, &config(3, "0.01s", ""), None)?;
            expect_failure(c.unary_call(unary(10, None)).await, "attempt 3 fails")
        }
        "pushback_delays_the_retry" => {
            let c = client(target, &config(3, "0.001s", ""), None)?;
            let started = Instant::now();
            let r = c
                .unary_call(unary(2, Some("300")))
                .await
                .map_err(|s| s.to_string())?;
            ensure(
                attempt_header(&r) == Some(2),
                "answered by the second attempt",
            )?;
            ensure(
                started.elapsed() >= Duration::from_millis(300),
                format!(
                    "retried after {:?}, before the 300 ms pushback",
                    started.elapsed()
                ),
            )
        }
        "negative_pushback_stops" => {
            let c = client(target, &config(3, "0.001s", ""), None)?;
            expect_failure(c.unary_call(unary(2, Some("-1"))).await, "attempt 1 fails")
        }
        "throttling_stops_retries" => {
            let throttling = r#","retryThrottling":{"maxTokens":4,"tokenRatio":0.5}"#;
            let c = client(target, &config(5, "0.001s", throttling), None)?;
            let before = calls(&c).await?;
            // 4 -> 3 (retry) -> 2 (no longer more than half): 2 attempts, then 1.
            c.unary_call(unary(100, None))
                .await
                .err()
                .ok_or("succeeded")?;
            let first = calls(&c).await? - before;
            c.unary_call(unary(100, None))
                .await
                .err()
                .ok_or("succeeded")?;
            let second = calls(&c).await? - before - first;
            ensure(
                first == 2 && second == 1,
                format!("attempts {first} then {second}, wanted 2 then 1"),
            )
        }
        "buffer_overflow_commits" => {
            let c = client(target, &config(5, "0.001s", ""), Some(1024))?;
            let before = calls(&c).await?;
            let mut request = unary(2, None);
            request.get_mut().payload = Some(payload(4096));
            expect_failure(c.unary_call(request).await, "attempt 1 fails")?;
            let used = calls(&c).await? - before;
            ensure(
                used == 1,
                format!("{used} attempts for a request past the buffer"),
            )
        }
        "client_stream_replayed_whole" => {
            let c = client(target, &config(4, "0.01s", ""), None)?;
            let messages: Vec<StreamingInputCallRequest> = (0..20)
                .map(|_| StreamingInputCallRequest {
                    payload: Some(payload(1000)),
                    ..Default::default()
                })
                .collect();
            let request = failing(rgrpc::stream::iter(messages), 3, None);
            let r = c
                .streaming_input_call(request)
                .await
                .map_err(|s| s.to_string())?;
            ensure(
                attempt_header(&r) == Some(3),
                format!("answered by attempt {:?}", attempt_header(&r)),
            )?;
            let total = r.get_ref().aggregated_payload_size;
            ensure(
                total == 20_000,
                format!("the server received {total} bytes, not 20000"),
            )
        }
        other => Err(format!("unknown check {other}")),
    }
}

const CHECKS: &[&str] = &[
    "success_on_the_right_attempt",
    "max_attempts_then_the_last_status",
    "pushback_delays_the_retry",
    "negative_pushback_stops",
    "throttling_stops_retries",
    "buffer_overflow_commits",
    "client_stream_replayed_whole",
];

#[tokio::main]
async fn main() {
    let flags = Flags::parse(std::env::args().skip(1), &["target"]).unwrap_or_else(|e| {
        eprintln!("retry-check: {e}");
        std::process::exit(2);
    });
    let Some(target) = flags.get("target") else {
        eprintln!("retry-check: --target=T is required");
        std::process::exit(2);
    };
    let (mut passed, mut failed) = (0, 0);
    for name in CHECKS {
        let outcome = match tokio::time::timeout(Duration::from_secs(60), check(name, target)).await
        {
            Ok(o) => o,
            Err(_) => Err("timed out after 60 s".into()),
        };
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("PASS {name}");
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
