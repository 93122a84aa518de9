//! What happens around calls: cancellation, deadlines, limits, shutdown, reconnection, and
//! flow control with a slow reader.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rgrpc::Code;
use rgrpc::client::Request;
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};

fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

async fn wait_for_cancels(service: &EchoService, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while service.observed.cancelled.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "server never saw the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_cancellation_token_ends_a_call_with_cancelled_on_both_sides() {
    let service = EchoService::default();
    let server = TestServer::start(echo_server(service.clone())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();

    // A unary call the server holds until it is cancelled.
    let token = rgrpc::CancellationToken::new();
    let mut request = Request::new(req("held"));
    request.set_cancellation_token(token.clone());
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.wait_for_cancel(request).await }
    });
    service.observed.wait_for_started(1).await;
    token.cancel();
    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status}");
    wait_for_cancels(&service, 1).await;

    // A response stream, cancelled after its first message: the next read says CANCELLED.
    let token = rgrpc::CancellationToken::new();
    let mut r = req("s");
    r.count = 1000;
    r.delay_ms = 5;
    let mut request = Request::new(r);
    request.set_cancellation_token(token.clone());
    let mut stream = client.server_stream(request).await.unwrap().into_inner();
    stream.message().await.unwrap().unwrap();
    token.cancel();
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status}");
    assert!(stream.message().await.unwrap().is_none());

    // A token cancelled before the call: it never leaves the client.
    let before = service.observed.started.load(Ordering::SeqCst);
    let token = rgrpc::CancellationToken::new();
    token.cancel();
    let mut request = Request::new(req("never"));
    request.set_cancellation_token(token);
    let status = client.unary(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status}");
    assert_eq!(service.observed.started.load(Ordering::SeqCst), before);

    // The connection still serves other calls.
    assert_eq!(
        client.unary(req("after")).await.unwrap().get_ref().message,
        "after"
    );
    server.stop().await;
}

#[tokio::test]
async fn dropping_a_call_cancels_it_on_the_server() {
    let service = EchoService::default();
    let server = TestServer::start(echo_server(service.clone())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let call = client.wait_for_cancel(req("x"));
    // Give the call time to reach the handler, then drop it.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), call)
            .await
            .is_err()
    );
    wait_for_cancels(&service, 1).await;

    // Dropping a response stream midway cancels too.
    let mut r = req("s");
    r.count = 1000;
    r.delay_ms = 5;
    let mut stream = client.server_stream(r).await.unwrap().into_inner();
    stream.message().await.unwrap().unwrap();
    drop(stream);
    // The connection still serves other calls.
    assert_eq!(
        client.unary(req("after")).await.unwrap().get_ref().message,
        "after"
    );
    server.stop().await;
}

#[tokio::test]
async fn deadline_exceeded_on_both_sides() {
    let service = EchoService::default();
    let server = TestServer::start(echo_server(service.clone())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();

    // Client side: the call gives up at its deadline, and the server is told (grpc-timeout) and
    // cancels the handler.
    let mut request = Request::new(req("slow"));
    request.set_timeout(Duration::from_millis(100));
    let started = Instant::now();
    let status = client.wait_for_cancel(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(2));
    wait_for_cancels(&service, 1).await;

    // Streaming: the deadline covers reading the stream too.
    let mut r = req("s");
    r.count = 100;
    r.delay_ms = 50;
    let mut request = Request::new(r);
    request.set_timeout(Duration::from_millis(300));
    let mut stream = client.server_stream(request).await.unwrap().into_inner();
    let mut last = None;
    while let Some(item) = stream.next().await {
        if let Err(status) = item {
            last = Some(status);
        }
    }
    assert_eq!(last.unwrap().code(), Code::DeadlineExceeded);
    server.stop().await;
}

#[tokio::test]
async fn channel_default_timeout_applies() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let channel = rgrpc::Channel::builder(&server.url())
        .unwrap()
        .timeout(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let mut slow = req("slow");
    slow.delay_ms = 2000;
    assert_eq!(
        client.unary(slow).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    assert!(client.unary(req("fast")).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn oversized_message_is_resource_exhausted_and_others_keep_working() {
    let builder = echo_server(EchoService::default()).max_recv_message_size(1024 * 1024);
    let server = TestServer::start(builder).await;
    let channel = rgrpc::Channel::builder(&server.url())
        .unwrap()
        .max_send_message_size(8 * 1024 * 1024)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);

    // A stream in flight on the same connection before, during and after the failure.
    let mut r = req("bg");
    r.count = 20;
    r.delay_ms = 10;
    let mut background = client.server_stream(r).await.unwrap().into_inner();

    let big = req(&"x".repeat(2 * 1024 * 1024));
    let status = client.unary(big).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");

    let mut n = 0;
    while let Some(m) = background.message().await.unwrap() {
        assert_eq!(m.index, n);
        n += 1;
    }
    assert_eq!(n, 20);
    assert_eq!(
        client.unary(req("ok")).await.unwrap().get_ref().message,
        "ok"
    );

    // Just under the limit passes.
    let fits = req(&"y".repeat(1024 * 1024 - 16));
    assert!(client.unary(fits).await.is_ok());

    // The client's own limits: refusing to send, refusing to receive.
    let small = rgrpc::Channel::builder(&server.url())
        .unwrap()
        .max_send_message_size(100)
        .max_recv_message_size(100)
        .connect()
        .await
        .unwrap();
    let small = EchoClient::new(small);
    let status = small.unary(req(&"z".repeat(200))).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let mut r = req("a");
    r.reply_size = 200;
    let status = small.unary(r).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_calls() {
    let service = EchoService::default();
    let server = TestServer::start(echo_server(service.clone())).await;
    let url = server.url();
    let client = EchoClient::connect(&url).await.unwrap();
    let mut slow = req("in flight");
    slow.delay_ms = 500;
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.unary(slow).await }
    });
    service.observed.wait_for_started(1).await;
    let started = Instant::now();
    server.stop().await;
    // stop() returned only after the call finished, and the call succeeded.
    assert!(started.elapsed() >= Duration::from_millis(300));
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.get_ref().message, "in flight");
    // And the port no longer serves.
    let status = client.unary(req("late")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");
}

#[tokio::test]
async fn shutdown_grace_period_cancels_stuck_calls() {
    let service = EchoService::default();
    let builder =
        echo_server(service.clone()).graceful_shutdown_timeout(Duration::from_millis(200));
    let server = TestServer::start(builder).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let stuck = tokio::spawn({
        let client = client.clone();
        async move { client.wait_for_cancel(req("stuck")).await }
    });
    service.observed.wait_for_started(1).await;
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_for_cancels(&service, 1).await;
    let status = stuck.await.unwrap().unwrap_err();
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Cancelled),
        "{status}"
    );
}

#[tokio::test]
async fn client_survives_a_server_restart() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let addr = server.addr;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    assert!(client.unary(req("one")).await.is_ok());
    server.stop().await;
    assert!(client.unary(req("down")).await.is_err());

    let server = TestServer::start_on(echo_server(EchoService::default()), &addr.to_string()).await;
    // The channel is in backoff after the failed attempt; wait-for-ready rides it out.
    let mut request = Request::new(req("two"));
    request.set_wait_for_ready(true);
    request.set_timeout(Duration::from_secs(10));
    assert_eq!(
        client.unary(request).await.unwrap().get_ref().message,
        "two"
    );
    assert!(client.unary(req("three")).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn unavailable_server_fails_fast_without_wait_for_ready() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = rgrpc::Channel::connect(&format!("http://{addr}"))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert!(err.to_string().contains("TCP connect"), "{err}");

    let channel = rgrpc::Channel::builder(&format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    let started = Instant::now();
    let status = client.unary(req("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(5));
    // In backoff now: the next call fails at once with the same reason.
    let status = client.unary(req("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("TCP connect"), "{status}");
}

#[tokio::test]
async fn slow_reader_holds_back_the_server_stream() {
    let service = EchoService::default();
    let server = TestServer::start(echo_server(service.clone())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let mut r = req("flow");
    r.count = 400;
    r.reply_size = 64 * 1024;
    let mut stream = client.server_stream(r).await.unwrap().into_inner();
    stream.message().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 400 x 64 KiB = 25 MiB were asked for; windows and one-message buffers allow a few MiB.
    let produced = service.observed.produced.load(Ordering::SeqCst);
    assert!(
        produced < 80,
        "server produced {produced} messages ahead of a stalled reader"
    );
    let mut n = 1;
    while stream.message().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 400);
    server.stop().await;
}

#[tokio::test]
async fn many_concurrent_calls_share_one_connection() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let calls = (0..500).map(|i| {
        let client = client.clone();
        async move { client.unary(req(&i.to_string())).await }
    });
    let results = futures_util::future::join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap().get_ref().message, i.to_string());
    }
    server.stop().await;
}

#[tokio::test]
async fn slow_server_reader_holds_back_the_client_stream() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let requests = futures_util::stream::iter(0..300).map(move |i| {
        counter.fetch_add(1, Ordering::SeqCst);
        EchoRequest {
            message: i.to_string(),
            payload: vec![0; 64 * 1024],
            delay_ms: if i == 0 { 600 } else { 0 },
            ..Default::default()
        }
    });
    let call = tokio::spawn(async move { client.client_stream(requests).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    // 300 x 64 KiB = 19 MiB offered; the server's windows (1 MiB stream, 2 MiB connection) and
    // one message in flight on each side are all that may be taken while it sleeps.
    let taken = produced.load(Ordering::SeqCst);
    assert!(
        taken < 40,
        "client produced {taken} messages ahead of a stalled server"
    );
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.get_ref().index, 300);
    server.stop().await;
}

#[tokio::test]
async fn oversized_header_block_is_refused_and_the_connection_lives_on() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let mut request = Request::new(req("big headers"));
    request
        .metadata_mut()
        .insert("x-big", &"v".repeat(20 * 1024))
        .unwrap();
    let status = client.unary(request).await.unwrap_err();
    assert_ne!(status.code(), Code::Ok);
    assert!(status.message().contains("431"), "{status}");
    assert!(client.unary(req("small")).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn a_response_over_the_server_send_limit_is_resource_exhausted() {
    let builder = echo_server(EchoService::default()).max_send_message_size(1000);
    let server = TestServer::start(builder).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let mut big = req("big");
    big.reply_size = 2000;
    let status = client.unary(big).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("send limit"), "{status}");
    // Streams too: the first oversized message ends the call with the same status.
    let mut stream_req = req("s");
    stream_req.count = 3;
    stream_req.reply_size = 2000;
    let mut stream = client.server_stream(stream_req).await.unwrap().into_inner();
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    let mut small = req("small");
    small.reply_size = 500;
    assert!(client.unary(small).await.is_ok());
    server.stop().await;
}
