//! Every call kind end to end over loopback, with metadata, statuses and routing.

use futures_util::StreamExt;
use rgrpc::{Code, Request};
use rgrpc_tests::echo::{CounterClient, EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};

fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn unary_with_metadata_headers_and_trailers() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let mut request = rgrpc::client::Request::new(req("hello"));
    request.metadata_mut().insert("x-echo", "abc").unwrap();
    let response = client.unary(request).await.unwrap();
    assert_eq!(response.metadata().get("x-echo"), Some("abc"));
    assert_eq!(response.trailers().get("x-echo-trailer"), Some("abc"));
    assert_eq!(response.into_inner().message, "hello");
    server.stop().await;
}

#[tokio::test]
async fn status_code_message_and_unicode_cross_the_wire() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let text = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
    for code in 1..=16 {
        let mut r = req(text);
        r.fail_code = code;
        let status = client.unary(r).await.unwrap_err();
        assert_eq!(status.code(), Code::from_i32(code));
        assert_eq!(status.message(), text);
    }
    server.stop().await;
}

#[tokio::test]
async fn server_streaming_in_order() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let mut r = req("s");
    r.count = 50;
    r.reply_size = 1000;
    let mut stream = client.server_stream(r).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(m) = stream.message().await.unwrap() {
        assert_eq!(m.index, n);
        assert_eq!(m.padding.len(), 1000);
        n += 1;
    }
    assert_eq!(n, 50);
    assert!(stream.trailers().is_some());
    server.stop().await;
}

#[tokio::test]
async fn server_streaming_empty_and_failing() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let stream = client
        .server_stream(req("none"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.count().await, 0);
    let mut r = req("nope");
    r.fail_code = Code::NotFound as i32;
    let status = client.server_stream(r).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn client_streaming_joins_messages() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let items: Vec<_> = ["a", "b", "c", "d"].iter().map(|s| req(s)).collect();
    let response = client
        .client_stream(futures_util::stream::iter(items))
        .await
        .unwrap();
    assert_eq!(response.get_ref().message, "a,b,c,d");
    let empty = client
        .client_stream(futures_util::stream::iter(Vec::<EchoRequest>::new()))
        .await
        .unwrap();
    assert_eq!(empty.get_ref().index, 0);
    server.stop().await;
}

/// A bidi call whose requests are sent through a channel: the sender and the replies.
async fn bidi_channel(
    client: &EchoClient,
) -> (
    tokio::sync::mpsc::Sender<EchoRequest>,
    rgrpc::Streaming<rgrpc_tests::echo::EchoResponse>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<EchoRequest>(1);
    let outbound =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    (tx, client.bidi(outbound).await.unwrap().into_inner())
}

#[tokio::test]
async fn bidi_ping_pong() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let (tx, mut inbound) = bidi_channel(&client).await;
    for i in 0..20u32 {
        tx.send(req(&format!("ping {i}"))).await.unwrap();
        let pong = inbound.message().await.unwrap().unwrap();
        assert_eq!(pong.message, format!("ping {i}"));
        assert_eq!(pong.index, i);
    }
    drop(tx);
    assert!(inbound.message().await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn calls_on_one_connection_run_side_by_side() {
    // The server runs a connection's calls in the connection's task: one call that waits must not
    // hold up another on the same connection, nor the connection's own reading and writing.
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let (tx, mut inbound) = bidi_channel(&client).await;
    tx.send(req("open")).await.unwrap();
    assert_eq!(inbound.message().await.unwrap().unwrap().message, "open");
    // The stream is open and its handler is waiting for the next message; unary calls pass by.
    for i in 0..10 {
        let reply = client.unary(req(&format!("u{i}"))).await.unwrap();
        assert_eq!(reply.get_ref().message, format!("u{i}"));
    }
    tx.send(req("still here")).await.unwrap();
    assert_eq!(
        inbound.message().await.unwrap().unwrap().message,
        "still here"
    );
    drop(tx);
    assert!(inbound.message().await.unwrap().is_none());
    server.stop().await;
}

#[tokio::test]
async fn several_services_on_one_port_and_unimplemented() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let channel = rgrpc::Channel::connect(&server.url()).await.unwrap();
    let counter = CounterClient::new(channel.clone());
    assert_eq!(counter.count(req("")).await.unwrap().get_ref().index, 1);
    assert_eq!(counter.count(req("")).await.unwrap().get_ref().index, 2);

    let path = |p: &'static str| http::uri::PathAndQuery::from_static(p);
    let unknown_method = channel
        .unary::<_, rgrpc_tests::echo::EchoResponse>(
            path("/test.echo.Echo/Nope"),
            rgrpc::client::Request::new(req("")),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown_method.code(), Code::Unimplemented);
    assert!(
        unknown_method.message().contains("Nope"),
        "{unknown_method}"
    );

    let kitchen = rgrpc_tests::kitchen::KitchenClient::new(channel.clone());
    let unknown_service = kitchen.get(()).await.unwrap_err();
    assert_eq!(unknown_service.code(), Code::Unimplemented);
    assert!(unknown_service.message().contains("test.kitchen.Kitchen"));
    server.stop().await;
}

#[tokio::test]
async fn lower_case_methods_and_packageless_services_route() {
    use rgrpc::{Response, Status};
    use rgrpc_tests::common::Point;
    use rgrpc_tests::kitchen::{Kitchen, KitchenClient, KitchenServer, Sink};
    use rgrpc_tests::nopackage::{AddRequest, Cal, CalClient, CalServer, ResultReply};

    struct K;
    impl Kitchen for K {
        async fn put(&self, _: Request<Sink>) -> Result<Response<()>, Status> {
            Ok(Response::new(()))
        }
        async fn get(&self, _: Request<()>) -> Result<Response<Sink>, Status> {
            let mut sink = Sink::default();
            sink.counts.insert("12".into(), 1232);
            Ok(Response::new(sink))
        }
        async fn hello(&self, r: Request<Point>) -> Result<Response<Point>, Status> {
            let p = r.into_inner();
            Ok(Response::new(Point { x: p.y, y: p.x }))
        }
    }
    struct C;
    impl Cal for C {
        async fn add(&self, r: Request<AddRequest>) -> Result<Response<ResultReply>, Status> {
            let r = r.into_inner();
            let number = r
                .number1
                .checked_add(r.number2)
                .ok_or_else(|| Status::out_of_range("sum overflows int32"))?;
            Ok(Response::new(ResultReply { number }))
        }
    }
    assert_eq!(KitchenServer::<K>::SERVICE_NAME, "test.kitchen.Kitchen");
    assert_eq!(CalServer::<C>::SERVICE_NAME, "Cal");
    let builder = rgrpc::Server::builder()
        .add_service(KitchenServer::new(K))
        .add_service(CalServer::new(C));
    let server = TestServer::start(builder).await;
    let channel = rgrpc::Channel::connect(&server.url()).await.unwrap();
    let kitchen = KitchenClient::new(channel.clone());
    let p = kitchen
        .hello(Point { x: 1, y: 2 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((p.x, p.y), (2, 1));
    assert_eq!(kitchen.get(()).await.unwrap().get_ref().counts["12"], 1232);
    kitchen.put(Sink::default()).await.unwrap();
    let cal = CalClient::new(channel);
    let sum = cal
        .add(AddRequest {
            number1: 100,
            number2: 300,
        })
        .await
        .unwrap();
    assert_eq!(sum.get_ref().number, 400);
    let overflow = cal
        .add(AddRequest {
            number1: i32::MAX,
            number2: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(overflow.code(), Code::OutOfRange);
    server.stop().await;
}

#[tokio::test]
async fn ipv6_loopback_and_unix_socket() {
    let v6 = TestServer::start_on(echo_server(EchoService::default()), "[::1]:0").await;
    let client = EchoClient::connect(&format!("http://[::1]:{}", v6.addr.port()))
        .await
        .unwrap();
    assert_eq!(
        client.unary(req("v6")).await.unwrap().get_ref().message,
        "v6"
    );
    v6.stop().await;

    let dir = std::env::temp_dir().join(format!("rgrpc-uds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve_path = path.clone();
    let server = tokio::spawn(async move {
        echo_server(EchoService::default())
            .serve_unix(&serve_path, async move {
                let _ = rx.await;
            })
            .await
    });
    for _ in 0..100 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let client = EchoClient::connect(&format!("unix:{}", path.display()))
        .await
        .unwrap();
    assert_eq!(
        client.unary(req("uds")).await.unwrap().get_ref().message,
        "uds"
    );
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sending_has_no_limit_of_its_own_by_default() {
    // Only receivers limit message sizes by default (4 MiB), as in grpc-go, grpc-java and C-core:
    // when both ends raise their receive limits, a 6 MiB echo goes through without a send limit
    // to raise on either side.
    let eight = 8 * 1024 * 1024;
    let builder = echo_server(EchoService::default()).max_recv_message_size(eight);
    let server = TestServer::start(builder).await;
    let channel = rgrpc::Channel::builder(&server.url())
        .unwrap()
        .max_recv_message_size(eight)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let big = "x".repeat(6 * 1024 * 1024);
    let response = client.unary(req(&big)).await.unwrap().into_inner();
    assert_eq!(response.message.len(), big.len());

    // A client with default limits gets back exactly the 4 MiB it may receive.
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let limit = 4 * 1024 * 1024;
    let request = req(&"x".repeat(limit - 5));
    assert_eq!(prost::Message::encoded_len(&request), limit);
    let response = client.unary(request).await.unwrap().into_inner();
    assert_eq!(response.message.len(), limit - 5);
    server.stop().await;
}
