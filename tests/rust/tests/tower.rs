//! Existing `tower` middleware around a server's calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rgrpc::Code;
use rgrpc::server::TowerRequest;
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};
use tower::ServiceBuilder;

fn req(message: &str, delay_ms: u32) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        delay_ms,
        ..Default::default()
    }
}

#[tokio::test]
async fn load_shedding_over_a_concurrency_limit_answers_unavailable() {
    let layers = ServiceBuilder::new().load_shed().concurrency_limit(1);
    let service = EchoService::default();
    let server = TestServer::start(echo_server(service.clone()).layer(layers)).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.unary(req("slow", 500)).await }
    });
    // The slow call holds the one slot once its handler runs.
    service.observed.wait_for_started(1).await;
    let status = client.unary(req("shed", 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(status.message().contains("overloaded"), "{status}");
    assert!(slow.await.unwrap().is_ok());
    assert!(client.unary(req("after", 0)).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn a_custom_layer_sees_every_call() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let count = tower::layer::layer_fn(move |inner| {
        let counter = counter.clone();
        tower::service_fn(move |request: TowerRequest| {
            assert!(request.path().starts_with("/test.echo."));
            counter.fetch_add(1, Ordering::SeqCst);
            let mut inner: rgrpc::server::Dispatch = inner;
            async move { tower::Service::call(&mut inner, request).await }
        })
    });
    let server = TestServer::start(echo_server(EchoService::default()).layer(count)).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    for i in 0..3 {
        assert!(client.unary(req(&i.to_string(), 0)).await.is_ok());
    }
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    server.stop().await;
}
