//! The channel's connectivity state (grpc's connectivity-semantics-and-api.md) as a program sees
//! it: IDLE until asked, CONNECTING, READY, TRANSIENT_FAILURE, waiting for changes, and the idle
//! timeout that closes connections no call uses.

use std::time::Duration;

use rgrpc::Channel;
use rgrpc::client::ConnectivityState;
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};

async fn until_state(channel: &Channel, want: ConnectivityState) {
    let mut state = channel.state(false);
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while state != want {
            state = channel.wait_for_state_change(state).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "still {state} instead of {want}");
}

#[tokio::test]
async fn idle_until_asked_then_ready() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .connect_lazy()
        .unwrap();
    assert_eq!(channel.state(false), ConnectivityState::Idle);
    // Looking does not connect; asking does.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(channel.state(false), ConnectivityState::Idle);
    channel.state(true);
    until_state(&channel, ConnectivityState::Ready).await;
    server.stop().await;
}

#[tokio::test]
async fn transient_failure_when_nothing_listens() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let channel = Channel::builder(&format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
        .unwrap();
    channel.state(true);
    until_state(&channel, ConnectivityState::TransientFailure).await;
}

#[tokio::test]
async fn the_idle_timeout_closes_unused_connections_and_a_call_reopens_them() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .idle_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel.clone());
    client.unary(EchoRequest::default()).await.unwrap();
    until_state(&channel, ConnectivityState::Idle).await;
    // The next call leaves IDLE by itself.
    client.unary(EchoRequest::default()).await.unwrap();
    assert_eq!(channel.state(false), ConnectivityState::Ready);

    // A call in progress keeps the channel out of IDLE, however long it runs.
    let (tx, rx) = tokio::sync::mpsc::channel::<EchoRequest>(1);
    let requests =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut replies = client.bidi(requests).await.unwrap().into_inner();
    tx.send(EchoRequest::default()).await.unwrap();
    replies.message().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    tx.send(EchoRequest::default()).await.unwrap();
    replies.message().await.unwrap().unwrap();
    drop(tx);
    assert!(replies.message().await.unwrap().is_none());
    drop(replies);
    until_state(&channel, ConnectivityState::Idle).await;
    server.stop().await;
}
