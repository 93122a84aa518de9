//! Retries, hedging and method settings from the service config (gRFC A2, A6), end to end
//! against our server, whose test service fails until `grpc-previous-rpc-attempts` reaches the
//! number a request asks for.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rgrpc::client::Request;
use rgrpc::{Channel, Code};
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};

fn retry_config(max_attempts: u32, backoff: &str) -> String {
    format!(
        r#"{{"methodConfig":[{{"name":[{{"service":"test.echo.Echo"}}],
            "retryPolicy":{{"maxAttempts":{max_attempts},"initialBackoff":"{backoff}",
            "maxBackoff":"{backoff}","backoffMultiplier":1,
            "retryableStatusCodes":["UNAVAILABLE","RESOURCE_EXHAUSTED"]}}}}]}}"#
    )
}

async fn client_with(server: &TestServer, config: &str) -> EchoClient {
    let channel = Channel::builder(&server.url())
        .unwrap()
        .default_service_config(config)
        .connect()
        .await
        .unwrap();
    EchoClient::new(channel)
}

fn failing(until: u32) -> EchoRequest {
    EchoRequest {
        message: "retry me".into(),
        fail_until_attempt: until,
        ..Default::default()
    }
}

async fn start() -> (TestServer, EchoService) {
    let service = EchoService::default();
    (
        TestServer::start(echo_server(service.clone())).await,
        service,
    )
}

#[tokio::test]
async fn succeeds_on_the_attempt_the_server_wants() {
    let (server, service) = start().await;
    let client = client_with(&server, &retry_config(4, "0.01s")).await;
    let response = client.unary(failing(3)).await.unwrap();
    // The reply carries the attempt's grpc-previous-rpc-attempts.
    assert_eq!(response.get_ref().index, 2);
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 3);
    server.stop().await;
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_the_last_status() {
    let (server, service) = start().await;
    let client = client_with(&server, &retry_config(3, "0.01s")).await;
    let status = client.unary(failing(10)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "attempt 3 fails");
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 3);
    // maxAttempts above 5 is capped at 5.
    let client = client_with(&server, &retry_config(9, "0.001s")).await;
    client.unary(failing(10)).await.unwrap_err();
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 3 + 5);
    server.stop().await;
}

#[tokio::test]
async fn codes_not_listed_are_not_retried() {
    let (server, service) = start().await;
    let client = client_with(&server, &retry_config(5, "0.01s")).await;
    let mut request = failing(3);
    request.fail_code = Code::Internal as i32;
    let status = client.unary(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test]
async fn pushback_sets_the_delay_or_stops() {
    let (server, service) = start().await;
    let client = client_with(&server, &retry_config(3, "0.001s")).await;
    let mut request = failing(2);
    request.pushback_ms = 300;
    let started = Instant::now();
    client.unary(request).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 2);

    let mut request = failing(2);
    request.pushback_ms = -1;
    let status = client.unary(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        service.observed.attempts.load(Ordering::SeqCst),
        3,
        "no retry after pushback -1"
    );
    server.stop().await;
}

#[tokio::test]
async fn throttling_stops_retries() {
    let (server, service) = start().await;
    let config = r#"{"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":5,
        "initialBackoff":"0.001s","maxBackoff":"0.001s","backoffMultiplier":1,
        "retryableStatusCodes":["UNAVAILABLE"]}}],
        "retryThrottling":{"maxTokens":4,"tokenRatio":0.5}}"#;
    let client = client_with(&server, config).await;
    // 4 tokens: a failure leaves 3 (> 2, retry), the next leaves 2 (not > 2): 2 attempts.
    client.unary(failing(100)).await.unwrap_err();
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 2);
    // 2 -> 1: no retry at all now.
    client.unary(failing(100)).await.unwrap_err();
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 3);
    // Successes refill the bucket (0.5 each): at 4 tokens again, a failure leaves 3 and may
    // retry.
    for _ in 0..6 {
        client.unary(failing(0)).await.unwrap();
    }
    let before = service.observed.attempts.load(Ordering::SeqCst);
    client.unary(failing(2)).await.unwrap();
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), before + 2);
    server.stop().await;
}

#[tokio::test]
async fn a_request_past_the_retry_buffer_is_committed_at_once() {
    let (server, service) = start().await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .default_service_config(retry_config(5, "0.001s"))
        .per_call_retry_buffer(1024)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let mut big = failing(2);
    big.payload = vec![7; 4096];
    assert_eq!(
        client.unary(big).await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 1);
    // A small one still retries.
    client.unary(failing(2)).await.unwrap();
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 3);
    server.stop().await;
}

#[tokio::test]
async fn one_deadline_covers_every_attempt_and_each_is_told_the_time_left() {
    let (server, service) = start().await;
    let client = client_with(&server, &retry_config(5, "0.2s")).await;
    let mut request = Request::new(failing(3));
    request.set_timeout(Duration::from_secs(2));
    client.unary(request).await.unwrap();
    let left = service.observed.time_left.lock().unwrap().clone();
    assert_eq!(left.len(), 3);
    // About 2 s, then 2 s less one backoff, then less two.
    assert!(left[0] > Duration::from_millis(1800), "{left:?}");
    assert!(left[1] < left[0] - Duration::from_millis(140), "{left:?}");
    assert!(left[2] < left[1] - Duration::from_millis(140), "{left:?}");

    // A deadline shorter than the retries ends the call with DEADLINE_EXCEEDED.
    let mut request = Request::new(failing(5));
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = client.unary(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_millis(800));
    server.stop().await;
}

#[tokio::test]
async fn server_streaming_calls_retry_until_the_response_head() {
    let (server, service) = start().await;
    let client = client_with(&server, &retry_config(3, "0.01s")).await;
    let mut request = failing(2);
    request.count = 3;
    let mut stream = client.server_stream(request).await.unwrap().into_inner();
    let mut n = 0;
    while stream.message().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 2);
    server.stop().await;
}

#[tokio::test]
async fn hedging_answers_from_the_fastest_attempt() {
    let (server, service) = start().await;
    let config = r#"{"methodConfig":[{"name":[{"service":"test.echo.Echo","method":"Unary"}],
        "hedgingPolicy":{"maxAttempts":3,"hedgingDelay":"0.05s","nonFatalStatusCodes":["UNAVAILABLE"]}}]}"#;
    let client = client_with(&server, config).await;
    // The first attempt is slow; the hedge sent 50 ms later answers at once.
    let request = EchoRequest {
        message: "hedged".into(),
        delay_ms: 3000,
        delay_attempts: 1,
        ..Default::default()
    };
    let started = Instant::now();
    let response = client.unary(request).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response.get_ref().index, 1, "the second attempt answered");
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 2);

    // A fatal code ends the call at once, whatever attempts are left.
    let mut request = failing(3);
    request.fail_code = Code::Internal as i32;
    let status = client.unary(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    // Non-fatal failures send the next hedge without waiting for the delay.
    let before = service.observed.attempts.load(Ordering::SeqCst);
    let started = Instant::now();
    client.unary(failing(3)).await.unwrap();
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), before + 3);
    assert!(started.elapsed() < Duration::from_millis(500));
    server.stop().await;
}

#[tokio::test]
async fn method_settings_from_the_service_config() {
    let (server, _service) = start().await;
    let config = r#"{"methodConfig":[{"name":[{"service":"test.echo.Echo","method":"Unary"}],
        "timeout":"0.1s","maxResponseMessageBytes":1000}]}"#;
    let client = client_with(&server, config).await;
    // The config's timeout applies to calls without one, and caps a longer one.
    let slow = EchoRequest {
        delay_ms: 500,
        ..Default::default()
    };
    assert_eq!(
        client.unary(slow.clone()).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    let mut longer = Request::new(slow);
    longer.set_timeout(Duration::from_secs(5));
    assert_eq!(
        client.unary(longer).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    // The response limit is the smaller of the channel's and the method's.
    let big = EchoRequest {
        reply_size: 2000,
        ..Default::default()
    };
    assert_eq!(
        client.unary(big).await.unwrap_err().code(),
        Code::ResourceExhausted
    );
    server.stop().await;

    // waitForReady from the config: a call to a closed port waits for its deadline instead of
    // failing at once.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let config = r#"{"methodConfig":[{"name":[{}],"waitForReady":true,"timeout":"0.3s"}]}"#;
    let channel = Channel::builder(&format!("http://{addr}"))
        .unwrap()
        .default_service_config(config)
        .connect_lazy()
        .unwrap();
    let status = EchoClient::new(channel)
        .unary(EchoRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
}

#[tokio::test]
async fn a_bad_default_service_config_is_refused_naming_the_field() {
    let err = Channel::builder("localhost:1")
        .unwrap()
        .default_service_config(
            r#"{"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":1}}]}"#,
        )
        .connect_lazy()
        .unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(
        err.to_string()
            .contains("methodConfig[0].retryPolicy.maxAttempts"),
        "{err}"
    );
}

fn stream_of(n: usize, until: u32, size: usize) -> Vec<EchoRequest> {
    (0..n)
        .map(|i| EchoRequest {
            message: format!("m{i}"),
            fail_until_attempt: until,
            payload: vec![1; size],
            ..Default::default()
        })
        .collect()
}

#[tokio::test]
async fn a_client_stream_is_replayed_whole() {
    let (server, service) = start().await;
    let client = client_with(&server, &retry_config(4, "0.01s")).await;
    // The server reads the whole stream, then fails the first two attempts.
    let requests = futures_util::stream::iter(stream_of(20, 3, 100));
    let response = client.client_stream(requests).await.unwrap();
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(response.get_ref().message, expected.join(","));
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 3);
    server.stop().await;
}

#[tokio::test]
async fn a_client_stream_past_the_retry_buffer_is_not_retried() {
    let (server, service) = start().await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .default_service_config(retry_config(4, "0.01s"))
        .per_call_retry_buffer(1000)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    // 20 messages of 100 bytes: past 1000 bytes the call is committed to its first attempt.
    let requests = futures_util::stream::iter(stream_of(20, 3, 100));
    let status = client.client_stream(requests).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_bidi_stream_is_retried_until_the_response_head() {
    let (server, service) = start().await;
    let client = client_with(&server, &retry_config(4, "0.01s")).await;
    let requests = futures_util::stream::iter(stream_of(3, 2, 10));
    let mut responses = client.bidi(requests).await.unwrap().into_inner();
    let mut got = Vec::new();
    while let Some(m) = responses.message().await.unwrap() {
        got.push(m.message);
    }
    assert_eq!(got, ["m0", "m1", "m2"]);
    assert_eq!(service.observed.attempts.load(Ordering::SeqCst), 2);
    server.stop().await;
}
