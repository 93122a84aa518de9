//! The server's wire behaviour, driven by a raw `h2` client so that every byte is ours to choose:
//! framing split anywhere, non-gRPC requests, cardinality violations, limits and server deadlines.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use prost::Message;
use rgrpc_tests::echo::{EchoRequest, EchoResponse};
use rgrpc_tests::{EchoService, TestServer, echo_server};

struct Raw {
    send: h2::client::SendRequest<Bytes>,
    authority: String,
}

/// What came back: HTTP status, headers, body bytes, trailers.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
}

impl Answer {
    /// grpc-status from the trailers, or from the headers of a Trailers-Only response.
    fn grpc_status(&self) -> Option<&str> {
        self.trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| self.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
    }

    fn grpc_message(&self) -> String {
        self.trailers
            .as_ref()
            .and_then(|t| t.get("grpc-message"))
            .or_else(|| self.headers.get("grpc-message"))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    }
}

impl Raw {
    async fn connect(server: &TestServer) -> Raw {
        let io = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (send, conn) = h2::client::handshake(io).await.unwrap();
        tokio::spawn(conn);
        Raw {
            send,
            authority: server.addr.to_string(),
        }
    }

    /// Sends a request with `headers`, the body in `chunks` (one DATA frame each), and reads
    /// everything back. With `end` false the request stays open after the chunks.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        chunks: Vec<Vec<u8>>,
        end: bool,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{}", self.authority, path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let send = self.send.clone().ready().await.unwrap();
        let mut send = send;
        let (response, mut body_tx) = send.send_request(request.body(()).unwrap(), false).unwrap();
        let n = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            body_tx
                .send_data(Bytes::from(chunk), end && i + 1 == n)
                .unwrap();
        }
        if n == 0 && end {
            body_tx.send_data(Bytes::new(), true).unwrap();
        }
        let response = tokio::time::timeout(Duration::from_secs(10), response)
            .await
            .expect("response head in time")
            .unwrap();
        let (parts, mut body) = response.into_parts();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.unwrap();
        drop(body_tx);
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: bytes,
            trailers,
        }
    }
}

const GRPC: [(&str, &str); 2] = [("content-type", "application/grpc"), ("te", "trailers")];

fn frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn echo(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn messages_split_at_every_byte_or_packed_together() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let mut raw = Raw::connect(&server).await;
    let wire = frame(&echo("split me"));
    // One byte per DATA frame.
    let chunks = wire.iter().map(|b| vec![*b]).collect();
    let answer = raw
        .call(Method::POST, "/test.echo.Echo/Unary", &GRPC, chunks, true)
        .await;
    assert_eq!(answer.grpc_status(), Some("0"));
    let reply = EchoResponse::decode(&answer.body[5..]).unwrap();
    assert_eq!(reply.message, "split me");

    // Five messages in one DATA frame, to a client-streaming method.
    let packed: Vec<u8> = ["a", "b", "c", "d", ""]
        .iter()
        .flat_map(|m| frame(&echo(m)))
        .collect();
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/ClientStream",
            &GRPC,
            vec![packed],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("0"));
    assert_eq!(
        EchoResponse::decode(&answer.body[5..]).unwrap().message,
        "a,b,c,d,"
    );
    server.stop().await;
}

#[tokio::test]
async fn non_grpc_requests_get_http_errors() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let mut raw = Raw::connect(&server).await;
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &[("content-type", "application/json")],
            vec![b"{}".to_vec()],
            true,
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer = raw
        .call(Method::GET, "/test.echo.Echo/Unary", &GRPC, vec![], true)
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    // application/grpc+proto is gRPC.
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &[("content-type", "application/grpc+proto")],
            vec![frame(&echo("p"))],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("0"));
    server.stop().await;
}

#[tokio::test]
async fn unary_cardinality_is_enforced() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let mut raw = Raw::connect(&server).await;
    let two: Vec<u8> = [frame(&echo("1")), frame(&echo("2"))].concat();
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![two],
            true,
        )
        .await;
    // A cardinality violation is UNIMPLEMENTED (grpc doc/statuscodes.md).
    assert_eq!(
        answer.grpc_status(),
        Some("12"),
        "{}",
        answer.grpc_message()
    );
    assert!(answer.grpc_message().contains("more than one"));

    let answer = raw
        .call(Method::POST, "/test.echo.Echo/Unary", &GRPC, vec![], true)
        .await;
    assert_eq!(answer.grpc_status(), Some("12"));
    assert!(answer.grpc_message().contains("no request message"));
    server.stop().await;
}

#[tokio::test]
async fn hostile_framing_gets_a_status_and_the_connection_lives_on() {
    let builder = echo_server(EchoService::default()).max_recv_message_size(1000);
    let server = TestServer::start(builder).await;
    let mut raw = Raw::connect(&server).await;

    // A prefix announcing 4 GiB: refused on the prefix alone, with the stream still open.
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![vec![0, 0xff, 0xff, 0xff, 0xff]],
            false,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("8"), "{}", answer.grpc_message());

    // A prefix promising more than arrives before END_STREAM.
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![vec![0, 0, 0, 0, 10, 1, 2]],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("13"));

    // A flag byte that is neither 0 nor 1.
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![vec![7, 0, 0, 0, 0]],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("13"));

    // Bytes that are not the message.
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![vec![0, 0, 0, 0, 3, 0x0a, 0xff, 0xff]],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("13"));

    // Compressed without an encoding, and in an encoding we lack.
    let mut compressed = frame(&echo("z"));
    compressed[0] = 1;
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![compressed.clone()],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("13"));
    let headers = [GRPC[0], GRPC[1], ("grpc-encoding", "snappy-9")];
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &headers,
            vec![compressed],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("12"));
    assert!(answer.grpc_message().contains("snappy-9"));

    // A malformed grpc-timeout.
    let headers = [GRPC[0], GRPC[1], ("grpc-timeout", "soon")];
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &headers,
            vec![frame(&echo("t"))],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("13"));

    // After all that, the same connection still serves.
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![frame(&echo("ok"))],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("0"));
    server.stop().await;
}

#[tokio::test]
async fn server_enforces_grpc_timeout_itself() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let mut raw = Raw::connect(&server).await;
    let headers = [GRPC[0], GRPC[1], ("grpc-timeout", "200m")];
    let started = std::time::Instant::now();
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/WaitForCancel",
            &headers,
            vec![frame(&echo("w"))],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("4"));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(190) && elapsed < Duration::from_secs(3));
    server.stop().await;
}

#[tokio::test]
async fn response_headers_are_grpc() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let mut raw = Raw::connect(&server).await;
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![frame(&echo("h"))],
            true,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/grpc");
    // A status with a message is percent-encoded on the wire.
    let mut failing = echo("100% ☺");
    failing.fail_code = 9;
    let answer = raw
        .call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![frame(&failing)],
            true,
        )
        .await;
    assert_eq!(answer.grpc_status(), Some("9"));
    assert_eq!(answer.grpc_message(), "100%25 %E2%98%BA");
    // Trailers-Only: no body, status in the headers.
    assert!(answer.body.is_empty() && answer.trailers.is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_reset_streams_does_not_stop_the_server() {
    // Streams opened and reset at once, as fast as the client can: the server runs a
    // connection's calls in the connection's task, and must keep running them (and serving
    // others) while new streams keep arriving.
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let flood = Raw::connect(&server).await;
    let uri = format!("http://{}/test.echo.Echo/WaitForCancel", flood.authority);
    let mut opened = 0;
    for _ in 0..2000 {
        let Ok(mut send) = flood.send.clone().ready().await else {
            break; // the server told this connection to go away: also a fine answer
        };
        let mut request = Request::builder().method(Method::POST).uri(&uri);
        for (k, v) in GRPC {
            request = request.header(k, v);
        }
        let Ok((_response, mut body)) = send.send_request(request.body(()).unwrap(), false) else {
            break;
        };
        body.send_reset(h2::Reason::CANCEL);
        opened += 1;
    }
    assert!(opened > 0);
    // h2 itself answers a flood like this with GOAWAY (ENHANCE_YOUR_CALM) once the resets pile
    // up; what matters here is that everyone else is still served.
    // Another connection is served at once.
    let mut other = Raw::connect(&server).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        other.call(
            Method::POST,
            "/test.echo.Echo/Unary",
            &GRPC,
            vec![frame(&echo("hi"))],
            true,
        ),
    )
    .await
    .expect("a second connection is served during the flood");
    assert_eq!(answer.grpc_status(), Some("0"));
    let reply = EchoResponse::decode(&answer.body[5..]).unwrap();
    assert_eq!(reply.message, "hi");
    server.stop().await;
}
