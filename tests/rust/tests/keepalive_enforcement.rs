//! The server's PING policy (grpc-go's `KeepaliveEnforcementPolicy`): a client that PINGs too
//! often gets GOAWAY `ENHANCE_YOUR_CALM` with `too_many_pings` and loses the connection, and our
//! client then doubles its keepalive time, as gRFC A8 asks. (grpc-go's client against our server
//! is in `tests/python/test_keepalive.py`.)

use std::time::{Duration, Instant};

use rgrpc::client::Request;
use rgrpc::{Channel, Code};
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::raw::{PREFACE, frame};
use rgrpc_tests::{EchoService, TestServer, echo_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every frame in `bytes`: (type, flags, payload).
fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        if bytes.len() < 9 + len {
            break;
        }
        out.push((bytes[3], bytes[4], bytes[9..9 + len].to_vec()));
        bytes = &bytes[9 + len..];
    }
    out
}

#[tokio::test]
async fn a_client_that_pings_too_often_gets_too_many_pings_and_is_closed() {
    let server = TestServer::start(
        echo_server(EchoService::default()).keepalive_enforcement(Duration::from_secs(60), false),
    )
    .await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(4, 0, 0, &[]));
    socket.write_all(&hello).await.unwrap();
    // Four PINGs with no call open: the first is free, the next three are strikes.
    for i in 0..4u8 {
        socket.write_all(&frame(6, 0, 0, &[i; 8])).await.unwrap();
    }
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut received))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let frames = frames(&received);
    let goaway = frames
        .iter()
        .find(|(kind, _, _)| *kind == 7)
        .expect("a GOAWAY");
    assert_eq!(&goaway.2[4..8], &11u32.to_be_bytes(), "ENHANCE_YOUR_CALM");
    assert_eq!(&goaway.2[8..], b"too_many_pings");
    let pongs = frames
        .iter()
        .filter(|(k, f, _)| *k == 6 && f & 1 == 1)
        .count();
    assert_eq!(pongs, 4, "every PING is still answered: {frames:?}");
    server.stop().await;
}

#[tokio::test]
async fn pings_within_the_policy_keep_the_connection() {
    // Allowed without calls, at the rate the policy permits: never sent away.
    let server = TestServer::start(
        echo_server(EchoService::default()).keepalive_enforcement(Duration::from_millis(100), true),
    )
    .await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .keepalive(Duration::from_millis(150), Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel.clone());
    client.unary(EchoRequest::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        channel.state(false),
        rgrpc::client::ConnectivityState::Ready
    );
    server.stop().await;
}

#[tokio::test]
async fn our_client_doubles_its_keepalive_time_on_too_many_pings() {
    let server = TestServer::start(
        echo_server(EchoService::default())
            .keepalive_enforcement(Duration::from_millis(1500), false),
    )
    .await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .keepalive(Duration::from_secs(1), Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let long_call = |deadline: Duration| {
        let mut request = Request::new(EchoRequest {
            count: 1,
            delay_ms: 60_000,
            ..Default::default()
        });
        request.set_timeout(deadline);
        let client = client.clone();
        async move {
            let started = Instant::now();
            let result = async {
                let mut stream = client.server_stream(request).await?.into_inner();
                while stream.message().await?.is_some() {}
                Ok::<(), rgrpc::Status>(())
            }
            .await;
            (result.unwrap_err(), started.elapsed())
        }
    };
    // PINGs every second against a minimum of 1.5 s: the fourth one ends the connection.
    let (status, took) = long_call(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(took < Duration::from_secs(8), "sent away after {took:?}");
    // The next connection PINGs every 2 s, which the policy allows: the call lasts until its
    // own deadline.
    let (status, took) = long_call(Duration::from_secs(7)).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(took >= Duration::from_millis(6900), "{took:?}");
    server.stop().await;
}
