//! Client-side health checking (gRFC A17) end to end: round_robin with a `healthCheckConfig`
//! sends calls only to servers whose health service says SERVING, follows changes as they are
//! watched, and treats a server without a health service as healthy.

use std::collections::HashMap;
use std::time::Duration;

use rgrpc::client::Request;
use rgrpc::{Channel, Code};
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};

const SERVICE: &str = "test.echo.Echo";

fn config(policy: &str) -> String {
    format!(
        r#"{{"loadBalancingConfig":[{{"{policy}":{{}}}}],"healthCheckConfig":{{"serviceName":"{SERVICE}"}}}}"#
    )
}

async fn server(id: &str, health: bool) -> (TestServer, Option<rgrpc_health::HealthReporter>) {
    let service = EchoService {
        server_id: Some(id.to_owned()),
        ..EchoService::default()
    };
    let mut builder = echo_server(service);
    let mut reporter = None;
    if health {
        let (r, health) = rgrpc_health::service();
        r.set_serving(SERVICE);
        builder = builder.add_service(health);
        reporter = Some(r);
    }
    (TestServer::start(builder).await, reporter)
}

/// Who answered `n` calls; failed calls count under "failed".
async fn spread(client: &EchoClient, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in 0..n {
        let mut request = Request::new(EchoRequest {
            message: i.to_string(),
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(5));
        let id = match client.unary(request).await {
            Ok(response) => response.metadata().get("x-server-id").unwrap().to_owned(),
            Err(_) => "failed".to_owned(),
        };
        *counts.entry(id).or_default() += 1;
    }
    counts
}

/// Calls until `want(counts)` holds for a batch of 20, for at most 5 s.
async fn until(
    client: &EchoClient,
    want: impl Fn(&HashMap<String, usize>) -> bool,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..250 {
        counts = spread(client, 20).await;
        if want(&counts) {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never reached the wanted spread; last {counts:?}");
}

#[tokio::test]
async fn round_robin_follows_the_health_service() {
    let (a, health_a) = server("a", true).await;
    let (b, _health_b) = server("b", true).await;
    let (c, _) = server("c", false).await;
    let target = format!("ipv4:{},{},{}", a.addr, b.addr, c.addr);
    let channel = Channel::builder(&target)
        .unwrap()
        .default_service_config(config("round_robin"))
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    // c has no health service: UNIMPLEMENTED counts as healthy.
    until(&client, |c| c.len() == 3 && !c.contains_key("failed")).await;

    let health_a = health_a.unwrap();
    health_a.set_not_serving(SERVICE);
    let counts = until(&client, |c| !c.contains_key("a")).await;
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(
        !counts.contains_key("failed"),
        "the other two still serve: {counts:?}"
    );
    // Stays out while unhealthy.
    let counts = spread(&client, 60).await;
    assert!(!counts.contains_key("a"), "{counts:?}");

    health_a.set_serving(SERVICE);
    until(&client, |c| c.contains_key("a")).await;
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test]
async fn every_server_unhealthy_fails_calls_with_the_reason() {
    let (a, health) = server("a", true).await;
    let health = health.unwrap();
    health.set_not_serving(SERVICE);
    let channel = Channel::builder(&format!("ipv4:{}", a.addr))
        .unwrap()
        .default_service_config(config("round_robin"))
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    let mut status = None;
    for _ in 0..100 {
        match client.unary(EchoRequest::default()).await {
            Err(s) if s.message().contains("NOT_SERVING") => {
                status = Some(s);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let status = status.expect("calls fail while the only server is unhealthy");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains(SERVICE), "{status}");
    // Back to SERVING: calls succeed again without reconnecting.
    health.set_serving(SERVICE);
    until(&client, |c| c.get("a") == Some(&20)).await;
    a.stop().await;
}

#[tokio::test]
async fn pick_first_does_not_health_check() {
    let (a, health) = server("a", true).await;
    health.unwrap().set_not_serving(SERVICE);
    let channel = Channel::builder(&format!("ipv4:{}", a.addr))
        .unwrap()
        .default_service_config(config("pick_first"))
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    assert_eq!(
        spread(&client, 5).await.get("a"),
        Some(&5),
        "no health check, no failure"
    );
    a.stop().await;
}

#[tokio::test]
async fn outlier_detection_routes_around_a_failing_server() {
    let named = |id: &str| EchoService {
        server_id: Some(id.to_owned()),
        ..EchoService::default()
    };
    let a = TestServer::start(echo_server(named("a"))).await;
    let b = TestServer::start(echo_server(named("b"))).await;
    // c is up but fails every call.
    let c =
        TestServer::start(echo_server(named("c")).interceptor(
            |_: &mut rgrpc::server::CallInfo<'_>| Err(rgrpc::Status::internal("broken")),
        ))
        .await;
    let target = format!("ipv4:{},{},{}", a.addr, b.addr, c.addr);
    let config = r#"{"loadBalancingConfig":[{"outlier_detection_experimental":{
        "interval":"0.2s","baseEjectionTime":"30s","maxEjectionPercent":50,
        "failurePercentageEjection":{"threshold":50,"minimumHosts":3,"requestVolume":5},
        "childPolicy":[{"round_robin":{}}]}}]}"#;
    let channel = Channel::builder(&target)
        .unwrap()
        .default_service_config(config)
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    // Before the first judgement, a third of the calls fail; after it, none do.
    until(&client, |c| c.len() == 3).await;
    let counts = until(&client, |c| !c.contains_key("failed")).await;
    assert_eq!(counts.len(), 2, "{counts:?}");
    let counts = spread(&client, 60).await;
    assert!(
        !counts.contains_key("failed"),
        "c stays ejected: {counts:?}"
    );
    a.stop().await;
    b.stop().await;
    c.stop().await;
}
