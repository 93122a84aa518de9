//! The generated blocking clients, from plain threads as synchronous programs call them, and the
//! clear refusal of a blocking call on a current-thread runtime's own thread.

use std::time::Duration;

use rgrpc::Code;
use rgrpc::client::Request;
use rgrpc_tests::echo::{EchoBlockingClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};

fn req(message: &str, count: u32) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        count,
        ..Default::default()
    }
}

/// A server on a runtime of its own, as a separate program would have it.
fn with_server(test: impl FnOnce(&str)) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(TestServer::start(echo_server(EchoService::default())));
    test(&server.url());
    rt.block_on(server.stop());
}

#[test]
fn every_call_kind_from_synchronous_code() {
    with_server(|url| {
        let client = EchoBlockingClient::connect(url).unwrap();
        assert_eq!(
            client.unary(req("sync", 0)).unwrap().into_inner().message,
            "sync"
        );

        let mut timed = Request::new(EchoRequest {
            delay_ms: 500,
            ..Default::default()
        });
        timed.set_timeout(Duration::from_millis(50));
        assert_eq!(
            client.unary(timed).unwrap_err().code(),
            Code::DeadlineExceeded
        );

        let replies: Vec<u32> = client
            .server_stream(req("s", 4))
            .unwrap()
            .into_inner()
            .map(|m| m.unwrap().index)
            .collect();
        assert_eq!(replies, [0, 1, 2, 3]);

        let joined = client
            .client_stream(rgrpc::stream::iter(vec![req("a", 0), req("b", 0)]))
            .unwrap();
        assert_eq!(joined.into_inner().message, "a,b");

        let mut bidi = client
            .bidi(rgrpc::stream::iter(vec![req("x", 0), req("y", 0)]))
            .unwrap()
            .into_inner();
        assert_eq!(bidi.message().unwrap().unwrap().message, "x");
        assert_eq!(bidi.next().unwrap().unwrap().message, "y");
        assert!(bidi.next().is_none());

        // Clones share the channel, from several threads at once.
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let client = client.clone();
                std::thread::spawn(move || {
                    client
                        .unary(req(&i.to_string(), 0))
                        .unwrap()
                        .into_inner()
                        .message
                })
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            assert_eq!(t.join().unwrap(), i.to_string());
        }
    });
}

#[test]
fn a_connection_failure_is_an_error() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let err = EchoBlockingClient::connect(&format!("http://{addr}")).unwrap_err();
    assert!(err.is_connect(), "{err}");
}

#[tokio::test]
async fn refused_on_a_current_thread_runtime() {
    let channel = rgrpc::Channel::builder("http://127.0.0.1:1")
        .unwrap()
        .connect_lazy()
        .unwrap();
    let client = EchoBlockingClient::new(channel);
    let status = client.unary(req("x", 0)).unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("deadlock"), "{status}");
}
