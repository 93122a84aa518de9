//! Message compression end to end: every encoding both ways, per-message choice, negotiation,
//! and a zip bomb that must stop at the receive limit.

use rgrpc::client::Request;
use rgrpc::{Code, Encoding, Outgoing};
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};

fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

fn encodings() -> Vec<Encoding> {
    Encoding::SUPPORTED
        .iter()
        .copied()
        .filter(|e| *e != Encoding::Identity)
        .collect()
}

#[tokio::test]
async fn compressed_requests_in_every_encoding() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    for encoding in encodings() {
        let mut request = Request::new(req(&"compress me ".repeat(1000)));
        request.set_compression(encoding);
        let response = client.unary(request).await.unwrap();
        assert_eq!(
            response.metadata().get("x-request-compressed"),
            Some("true"),
            "{encoding:?}"
        );
        assert_eq!(response.get_ref().message.len(), 12_000);
    }
    let plain = client.unary(req("plain")).await.unwrap();
    assert!(plain.metadata().get("x-request-compressed").is_none());
    server.stop().await;
}

#[tokio::test]
async fn compressed_responses_per_message() {
    for encoding in encodings() {
        let builder = echo_server(EchoService::default()).send_compressed(encoding);
        let server = TestServer::start(builder).await;
        let client = EchoClient::connect(&server.url()).await.unwrap();
        let mut r = req("s");
        r.count = 6;
        r.reply_size = 5000;
        r.fail_code = -1; // odd messages opt out
        let response = client.server_stream(r).await.unwrap();
        assert_eq!(response.metadata().get("x-request-compressed"), None);
        let mut stream = response.into_inner();
        let mut i = 0;
        while let Some(m) = stream.message().await.unwrap() {
            assert_eq!(m.padding.len(), 5000);
            assert_eq!(
                stream.last_message_compressed(),
                i % 2 == 0,
                "{encoding:?} #{i}"
            );
            i += 1;
        }
        assert_eq!(i, 6);
        server.stop().await;
    }
}

#[tokio::test]
async fn client_streams_choose_per_message() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let gzip = Encoding::from_name(b"gzip").unwrap();
    let messages = vec![
        Outgoing::new(req("a")),
        Outgoing::new(req("b")).compressed(false),
        Outgoing::new(req("c")).compressed(true),
    ];
    let mut request = Request::new(rgrpc::stream::iter(messages));
    request.set_compression(gzip);
    let response = client.client_stream(request).await.unwrap();
    assert_eq!(response.get_ref().message, "a,b,c");
    server.stop().await;
}

#[tokio::test]
async fn decompressed_size_is_held_to_the_receive_limit() {
    let builder = echo_server(EchoService::default()).max_recv_message_size(64 * 1024);
    let server = TestServer::start(builder).await;
    let channel = rgrpc::Channel::builder(&server.url())
        .unwrap()
        .max_send_message_size(64 << 20)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    for encoding in encodings() {
        // 16 MiB of one letter compresses to a few KiB: under the limit on the wire, far over it
        // once inflated.
        let mut request = Request::new(req(&"a".repeat(16 << 20)));
        request.set_compression(encoding);
        let status = client.unary(request).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::ResourceExhausted,
            "{encoding:?}: {status}"
        );
    }
    assert!(client.unary(req("still fine")).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn a_unary_handler_chooses_compression_for_its_reply() {
    // Without a server default, set_compressed(true) compresses in an encoding the client takes.
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    let mut r = req(&"squeeze ".repeat(500));
    r.fail_code = -2;
    let response = client.unary(r).await.unwrap();
    assert!(response.message_compressed());
    assert_eq!(response.get_ref().message.len(), 4000);
    let plain = client.unary(req("as is")).await.unwrap();
    assert!(!plain.message_compressed());
    server.stop().await;

    // With a server default, set_compressed(false) sends that one reply uncompressed.
    let builder = echo_server(EchoService::default()).send_compressed(Encoding::Gzip);
    let server = TestServer::start(builder).await;
    let client = EchoClient::connect(&server.url()).await.unwrap();
    assert!(
        client
            .unary(req("default"))
            .await
            .unwrap()
            .message_compressed()
    );
    let mut r = req("opted out");
    r.fail_code = -1;
    assert!(!client.unary(r).await.unwrap().message_compressed());
    server.stop().await;
}
