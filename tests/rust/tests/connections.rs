//! Connection management: keepalive against a black-holed connection, and the server's
//! connection limits (count, idle time, age).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rgrpc::client::Request;
use rgrpc::{Channel, Code};
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

/// A loopback TCP proxy that can stop forwarding while keeping every socket open: a network
/// that silently drops packets, as far as either end can tell.
struct Blackhole {
    addr: std::net::SocketAddr,
    dropping: Arc<AtomicBool>,
}

impl Blackhole {
    async fn start(upstream: std::net::SocketAddr) -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dropping = Arc::new(AtomicBool::new(false));
        let flag = dropping.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, flag.clone()));
                tokio::spawn(pump(sr, cw, flag.clone()));
            }
        });
        Blackhole { addr, dropping }
    }

    fn drop_traffic(&self, yes: bool) {
        self.dropping.store(yes, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dropping: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if dropping.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn client_keepalive_notices_a_dead_connection_and_reconnects() {
    let service = EchoService::default();
    let server = TestServer::start(echo_server(service.clone())).await;
    let proxy = Blackhole::start(server.addr).await;
    let channel = Channel::builder(&format!("http://{}", proxy.addr))
        .unwrap()
        .keepalive(Duration::from_millis(200), Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    assert!(client.unary(req("before")).await.is_ok());

    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.wait_for_cancel(req("stuck")).await }
    });
    // "before" was the first call to reach the handler, "stuck" the second.
    service.observed.wait_for_started(2).await;
    proxy.drop_traffic(true);
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the call must fail once keepalive gives up")
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    // time (200 ms) + timeout (300 ms), with room for a slow machine.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    proxy.drop_traffic(false);
    let mut request = Request::new(req("after"));
    request.set_wait_for_ready(true);
    request.set_timeout(Duration::from_secs(10));
    assert_eq!(
        client.unary(request).await.unwrap().get_ref().message,
        "after"
    );
    server.stop().await;
}

#[tokio::test]
async fn server_keepalive_cancels_calls_of_a_dead_client() {
    let service = EchoService::default();
    let builder = echo_server(service.clone())
        .keepalive(Duration::from_millis(200), Duration::from_millis(300));
    let server = TestServer::start(builder).await;
    let proxy = Blackhole::start(server.addr).await;
    let client = EchoClient::connect(&format!("http://{}", proxy.addr))
        .await
        .unwrap();
    let _pending = tokio::spawn(async move { client.wait_for_cancel(req("stuck")).await });
    service.observed.wait_for_started(1).await;
    proxy.drop_traffic(true);
    let deadline = Instant::now() + Duration::from_secs(3);
    while service.observed.cancelled.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the server never gave up on the dead client"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

fn peer_port(response: &rgrpc::client::Response<rgrpc_tests::echo::EchoResponse>) -> String {
    response.metadata().get("x-peer-port").unwrap().to_owned()
}

#[tokio::test]
async fn max_connections_holds_new_clients_until_a_slot_frees() {
    let server = TestServer::start(echo_server(EchoService::default()).max_connections(1)).await;
    let first = EchoClient::connect(&server.url()).await.unwrap();
    assert!(first.unary(req("one")).await.is_ok());

    let second = EchoClient::new(
        Channel::builder(&server.url())
            .unwrap()
            .connect_timeout(Duration::from_secs(10))
            .connect_lazy()
            .unwrap(),
    );
    let mut request = Request::new(req("two"));
    request.set_timeout(Duration::from_millis(300));
    let status = second.unary(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");

    drop(first);
    let mut request = Request::new(req("two again"));
    request.set_timeout(Duration::from_secs(10));
    request.set_wait_for_ready(true);
    assert!(second.unary(request).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_clients_reconnect() {
    let builder = echo_server(EchoService::default()).idle_timeout(Duration::from_millis(200));
    let server = TestServer::start(builder).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let a = peer_port(&client.unary(req("a")).await.unwrap());
    let b = peer_port(&client.unary(req("b")).await.unwrap());
    assert_eq!(a, b, "busy connections stay");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut request = Request::new(req("c"));
    request.set_wait_for_ready(true);
    let c = peer_port(&client.unary(request).await.unwrap());
    assert_ne!(a, c, "the idle connection was closed and a new one opened");
    server.stop().await;
}

#[tokio::test]
async fn old_connections_get_goaway_but_finish_their_calls() {
    let builder =
        echo_server(EchoService::default()).max_connection_age(Duration::from_millis(300));
    let server = TestServer::start(builder).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let mut slow = req("slow");
    slow.delay_ms = 700;
    let first = client.unary(slow).await.unwrap();
    assert_eq!(
        first.get_ref().message,
        "slow",
        "the call in flight at GOAWAY finished"
    );
    let mut request = Request::new(req("next"));
    request.set_wait_for_ready(true);
    let next = client.unary(request).await.unwrap();
    assert_ne!(
        peer_port(&first),
        peer_port(&next),
        "a new connection after GOAWAY"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_speaks_is_dropped_after_the_handshake_timeout() {
    let builder = echo_server(EchoService::default()).handshake_timeout(Duration::from_millis(200));
    let server = TestServer::start(builder).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    // The server sends its SETTINGS, then closes the connection when no preface comes.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match silent.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the silent connection was never closed");
    assert!(started.elapsed() >= Duration::from_millis(150));
    // Other clients are served as usual.
    let client = EchoClient::connect(&server.url()).await.unwrap();
    assert!(client.unary(req("ok")).await.is_ok());
    server.stop().await;
}
