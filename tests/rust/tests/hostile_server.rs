//! Our client against servers that break the protocol, written here with the `h2` crate so that
//! every header, frame and reset is ours to choose. Each case must end with the right code
//! within the call's deadline: never a hang, a panic, or an OK that hides lost data.
//! (Mappings: grpc/grpc `doc/http-grpc-status-mapping.md` for HTTP statuses without
//! `grpc-status`, `doc/PROTOCOL-HTTP2.md` for RST_STREAM codes.)

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use prost::Message;
use rgrpc::client::Request;
use rgrpc::{Channel, Code, Status};
use rgrpc_tests::echo::{EchoRequest, EchoResponse};

type Respond = h2::server::SendResponse<Bytes>;
type Handler =
    Arc<dyn Fn(http::Request<h2::RecvStream>, Respond) -> BoxFut + Send + Sync + 'static>;
type BoxFut = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A misbehaving server on a free loopback port: `settings` shapes its HTTP/2 settings, and
/// `handler` answers each stream. Stops when dropped.
struct Hostile {
    addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
    connections: Arc<AtomicUsize>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What to do with each connection once the handshake is done.
enum Mode {
    /// Answer every stream with the handler.
    Streams(Handler),
    /// Take the connection over.
    Connection(Arc<dyn Fn(ServerConn) -> BoxFut + Send + Sync>),
}

type ServerConn = h2::server::Connection<tokio::net::TcpStream, Bytes>;

async fn hostile(settings: fn(&mut h2::server::Builder), mode: Mode) -> Hostile {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let mode = Arc::new(mode);
    let accept = tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mode = mode.clone();
            tasks.spawn(async move {
                let mut builder = h2::server::Builder::new();
                settings(&mut builder);
                let Ok(mut conn) = builder.handshake::<_, Bytes>(socket).await else {
                    return;
                };
                match &*mode {
                    Mode::Connection(take) => take(conn).await,
                    Mode::Streams(handler) => {
                        let mut streams = tokio::task::JoinSet::new();
                        while let Some(Ok((request, respond))) = conn.accept().await {
                            streams.spawn(handler(request, respond));
                        }
                    }
                }
            });
        }
    });
    Hostile {
        addr,
        accept,
        connections,
    }
}

fn streams<F, Fut>(f: F) -> Mode
where
    F: Fn(http::Request<h2::RecvStream>, Respond) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Mode::Streams(Arc::new(move |r, s| Box::pin(f(r, s))))
}

fn defaults(_: &mut h2::server::Builder) {}

/// Reads the whole request body, so that the client's side of the stream is done.
async fn drain(request: http::Request<h2::RecvStream>) {
    let mut body = request.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
}

fn grpc_head() -> http::Response<()> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap()
}

fn trailers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn framed(compressed: bool, body: &[u8]) -> Bytes {
    let mut out = vec![u8::from(compressed)];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out.into()
}

fn reply() -> Vec<u8> {
    EchoResponse {
        message: "hi".into(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A response: headers, then `data` chunks, then `trailers` (or an end of stream without any).
async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: Respond,
    head: http::Response<()>,
    data: Vec<Bytes>,
    end: Option<HeaderMap>,
) {
    drain(request).await;
    let Ok(mut send) = respond.send_response(head, false) else {
        return;
    };
    for chunk in data {
        let _ = send.send_data(chunk, false);
    }
    match end {
        Some(t) => {
            let _ = send.send_trailers(t);
        }
        None => {
            let _ = send.send_data(Bytes::new(), true);
        }
    }
    // Keep the stream's handle until the client has read it all.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// A good answer behind `head`: one reply message, then OK.
async fn answer_ok(
    request: http::Request<h2::RecvStream>,
    respond: Respond,
    head: http::Response<()>,
) {
    let ok = Some(trailers(&[("grpc-status", "0")]));
    answer(request, respond, head, vec![framed(false, &reply())], ok).await;
}

/// A unary call with a deadline of `deadline`; panics if it outlives it by more than a second.
async fn unary(server: &Hostile, deadline: Duration) -> Result<EchoResponse, Status> {
    let channel = Channel::builder(&format!("http://{}", server.addr))
        .unwrap()
        .max_recv_message_size(1024)
        .connect_lazy()
        .unwrap();
    unary_on(&channel, deadline).await
}

async fn unary_on(channel: &Channel, deadline: Duration) -> Result<EchoResponse, Status> {
    let mut request = Request::new(EchoRequest {
        message: "hello".into(),
        ..Default::default()
    });
    request.set_timeout(deadline);
    let path = http::uri::PathAndQuery::from_static("/test.echo.Echo/Unary");
    let started = Instant::now();
    let call = channel.unary::<_, EchoResponse>(path, request);
    let result = tokio::time::timeout(deadline + Duration::from_secs(1), call)
        .await
        .expect("the call outlived its deadline");
    assert!(started.elapsed() < deadline + Duration::from_secs(1));
    result.map(|r| r.into_inner())
}

/// The code a failed call ended with, and its message for the assertion's text.
fn code(result: Result<EchoResponse, Status>) -> (Code, String) {
    match result {
        Ok(r) => panic!("expected a failure, got OK with {r:?}"),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

const SHORT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn bad_or_missing_grpc_status() {
    let cases: Vec<(&str, Option<HeaderMap>, Code)> = vec![
        // Trailers without grpc-status, and no trailers at all: the status is lost.
        (
            "no grpc-status",
            Some(trailers(&[("x-other", "1")])),
            Code::Internal,
        ),
        ("no trailers", None, Code::Internal),
        (
            "letters",
            Some(trailers(&[("grpc-status", "abc")])),
            Code::Unknown,
        ),
        (
            "signed",
            Some(trailers(&[("grpc-status", "+0")])),
            Code::Unknown,
        ),
        (
            "empty",
            Some(trailers(&[("grpc-status", "")])),
            Code::Unknown,
        ),
        // A number that is no code is UNKNOWN, as every implementation reads it.
        (
            "out of range",
            Some(trailers(&[("grpc-status", "99")])),
            Code::Unknown,
        ),
    ];
    for (name, end, want) in cases {
        let server = hostile(
            defaults,
            streams(move |req, respond| {
                let end = end.clone();
                answer(
                    req,
                    respond,
                    grpc_head(),
                    vec![framed(false, &reply())],
                    end,
                )
            }),
        )
        .await;
        let result = unary(&server, SHORT).await;
        assert!(result.is_err(), "{name}: OK");
        let (got, message) = code(result);
        assert_eq!(got, want, "{name}: {message}");
    }
}

#[tokio::test]
async fn http_statuses_without_grpc_status() {
    let cases = [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (500, Code::Unknown),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
        (418, Code::Unknown),
    ];
    for (http_status, want) in cases {
        let server = hostile(
            defaults,
            streams(move |req, mut respond| async move {
                drain(req).await;
                let head = http::Response::builder()
                    .status(http_status)
                    .header("content-type", "text/html")
                    .body(())
                    .unwrap();
                if let Ok(mut send) = respond.send_response(head, false) {
                    let _ = send.send_data(Bytes::from_static(b"<html>busy</html>"), true);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }),
        )
        .await;
        let (got, message) = code(unary(&server, SHORT).await);
        assert_eq!(got, want, "HTTP {http_status}: {message}");
        assert!(message.contains(&http_status.to_string()), "{message}");
    }
}

#[tokio::test]
async fn a_200_that_is_not_grpc() {
    // An HTML page with 200 (a misrouted proxy), and the same with trailers that look like gRPC.
    for with_status in [false, true] {
        let server = hostile(
            defaults,
            streams(move |req, respond| {
                let head = http::Response::builder()
                    .status(200)
                    .header("content-type", "text/html")
                    .body(())
                    .unwrap();
                let end = with_status.then(|| trailers(&[("grpc-status", "0")]));
                answer(req, respond, head, vec![Bytes::from_static(b"<html>")], end)
            }),
        )
        .await;
        let (got, message) = code(unary(&server, SHORT).await);
        assert_eq!(got, Code::Unknown, "{message}");
        assert!(message.contains("text/html"), "{message}");
    }
}

#[tokio::test]
async fn broken_messages() {
    let ok = || Some(trailers(&[("grpc-status", "0")]));
    let mut over = framed(false, &reply()).to_vec();
    over[1..5].copy_from_slice(&100_000u32.to_be_bytes());
    let truncated = framed(false, &reply()).slice(..6);
    let cases: Vec<(&str, HeaderMap, Vec<Bytes>, Code)> = vec![
        (
            "prefix over the receive limit",
            HeaderMap::new(),
            vec![Bytes::from(over)],
            Code::ResourceExhausted,
        ),
        (
            "truncated message",
            HeaderMap::new(),
            vec![truncated],
            Code::Internal,
        ),
        (
            "compressed flag without grpc-encoding",
            HeaderMap::new(),
            vec![framed(true, &reply())],
            Code::Internal,
        ),
        (
            "an encoding the client never offered",
            trailers(&[("grpc-encoding", "snappy")]),
            vec![framed(true, &reply())],
            Code::Internal,
        ),
        (
            "invalid protobuf",
            HeaderMap::new(),
            vec![framed(false, &[0xff, 0xff, 0xff])],
            Code::Internal,
        ),
        (
            "no message on a unary call",
            HeaderMap::new(),
            vec![],
            Code::Unimplemented,
        ),
        (
            "two messages on a unary call",
            HeaderMap::new(),
            vec![framed(false, &reply()), framed(false, &reply())],
            Code::Unimplemented,
        ),
        (
            "a bad flag byte",
            HeaderMap::new(),
            vec![Bytes::from_static(&[7, 0, 0, 0, 0])],
            Code::Internal,
        ),
    ];
    for (name, extra, data, want) in cases {
        let server = hostile(
            defaults,
            streams(move |req, respond| {
                let mut head = grpc_head();
                head.headers_mut().extend(extra.clone());
                answer(req, respond, head, data.clone(), ok())
            }),
        )
        .await;
        let (got, message) = code(unary(&server, SHORT).await);
        assert_eq!(got, want, "{name}: {message}");
    }
}

#[tokio::test]
async fn every_rst_stream_code() {
    use h2::Reason;
    // REFUSED_STREAM is retried transparently (the server never saw the call), so it is tested
    // on its own below.
    let cases = [
        (Reason::NO_ERROR, Code::Internal),
        (Reason::PROTOCOL_ERROR, Code::Internal),
        (Reason::INTERNAL_ERROR, Code::Internal),
        (Reason::FLOW_CONTROL_ERROR, Code::Internal),
        (Reason::SETTINGS_TIMEOUT, Code::Internal),
        (Reason::STREAM_CLOSED, Code::Internal),
        (Reason::FRAME_SIZE_ERROR, Code::Internal),
        (Reason::CANCEL, Code::Cancelled),
        (Reason::COMPRESSION_ERROR, Code::Internal),
        (Reason::CONNECT_ERROR, Code::Internal),
        (Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
        (Reason::INADEQUATE_SECURITY, Code::PermissionDenied),
        (Reason::HTTP_1_1_REQUIRED, Code::Internal),
    ];
    for (reason, want) in cases {
        // Reset after the response headers, so the call is under way.
        let server = hostile(
            defaults,
            streams(move |req, mut respond| async move {
                drain(req).await;
                if let Ok(mut send) = respond.send_response(grpc_head(), false) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    send.send_reset(reason);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }),
        )
        .await;
        let (got, message) = code(unary(&server, SHORT).await);
        assert_eq!(got, want, "RST_STREAM {reason:?}: {message}");
    }
}

#[tokio::test]
async fn refused_streams_are_retried_transparently_then_fail_unavailable() {
    // The first stream of each connection is refused, the next answered: the call succeeds on
    // the second stream without the caller seeing the refusal.
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let server = hostile(
        defaults,
        streams(move |req, mut respond| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                    return;
                }
                answer_ok(req, respond, grpc_head()).await;
            }
        }),
    )
    .await;
    let reply = unary(&server, SHORT)
        .await
        .expect("retried past the refusal");
    assert_eq!(reply.message, "hi");
    assert_eq!(seen.load(Ordering::SeqCst), 2, "one refusal, one answer");

    // A server that refuses every stream: the call ends UNAVAILABLE, after a bounded number of
    // tries, within its deadline.
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let server = hostile(
        defaults,
        streams(move |_, mut respond| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { respond.send_reset(h2::Reason::REFUSED_STREAM) }
        }),
    )
    .await;
    let (got, message) = code(unary(&server, Duration::from_secs(5)).await);
    assert!(
        matches!(got, Code::Unavailable | Code::DeadlineExceeded),
        "{got:?}: {message}"
    );
    let tries = seen.load(Ordering::SeqCst);
    assert!((2..=64).contains(&tries), "{tries} tries");
}

#[tokio::test]
async fn goaway_before_and_during_a_call() {
    // GOAWAY as soon as the connection is up, before any stream: the call finds no usable
    // connection (each new one is sent away at once) and fails UNAVAILABLE by its deadline.
    let server = hostile(
        defaults,
        Mode::Connection(Arc::new(|mut conn: ServerConn| {
            Box::pin(async move {
                conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Some(Ok(_)) = conn.accept().await {}
                })
                .await;
            })
        })),
    )
    .await;
    let (got, message) = code(unary(&server, SHORT).await);
    assert!(
        matches!(got, Code::Unavailable | Code::DeadlineExceeded),
        "{got:?}: {message}"
    );

    // GOAWAY after the response headers, then the connection closes with the call open.
    let server = hostile(
        defaults,
        Mode::Connection(Arc::new(|mut conn: ServerConn| {
            Box::pin(async move {
                let Some(Ok((req, mut respond))) = conn.accept().await else {
                    return;
                };
                let send = respond.send_response(grpc_head(), false);
                drop(req);
                conn.abrupt_shutdown(h2::Reason::INTERNAL_ERROR);
                let _ = tokio::time::timeout(Duration::from_millis(200), async {
                    while let Some(Ok(_)) = conn.accept().await {}
                })
                .await;
                drop(send);
            })
        })),
    )
    .await;
    let (got, message) = code(unary(&server, SHORT).await);
    assert!(
        matches!(got, Code::Unavailable | Code::Internal),
        "{got:?}: {message}"
    );
}

#[tokio::test]
async fn silence_after_headers_ends_at_the_deadline() {
    let server = hostile(
        defaults,
        streams(|req, mut respond| async move {
            drain(req).await;
            let _send = respond.send_response(grpc_head(), false);
            tokio::time::sleep(Duration::from_secs(30)).await;
        }),
    )
    .await;
    let started = Instant::now();
    let (got, _) = code(unary(&server, Duration::from_millis(300)).await);
    assert_eq!(got, Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_huge_header_block_is_refused() {
    let server = hostile(
        defaults,
        streams(|req, respond| {
            let mut head = grpc_head();
            for i in 0..2000 {
                let name = http::HeaderName::from_bytes(format!("x-pad-{i}").as_bytes()).unwrap();
                head.headers_mut()
                    .insert(name, HeaderValue::from_static("padding-padding-padding"));
            }
            answer_ok(req, respond, head)
        }),
    )
    .await;
    let (got, message) = code(unary(&server, SHORT).await);
    assert!(
        matches!(got, Code::Internal | Code::ResourceExhausted),
        "{got:?}: {message}"
    );
}

#[tokio::test]
async fn a_ping_flood_does_not_stop_the_call() {
    // Thousands of PINGs ahead of the answer: the client acknowledges them and the call ends OK.
    let server = hostile(
        defaults,
        Mode::Connection(Arc::new(|mut conn: ServerConn| {
            Box::pin(async move {
                let mut pinger = conn.ping_pong().expect("ping_pong taken once");
                let Some(Ok((req, respond))) = conn.accept().await else {
                    return;
                };
                let flood = async {
                    for _ in 0..5000 {
                        if pinger.ping(h2::Ping::opaque()).await.is_err() {
                            break;
                        }
                    }
                    answer_ok(req, respond, grpc_head()).await;
                };
                let drive = async { while let Some(Ok(_)) = conn.accept().await {} };
                tokio::select! {
                    () = flood => {}
                    () = drive => {}
                }
            })
        })),
    )
    .await;
    let reply = unary(&server, Duration::from_secs(20)).await.unwrap();
    assert_eq!(reply.message, "hi");
}

#[tokio::test]
async fn zero_concurrent_streams_ends_at_the_deadline() {
    // MAX_CONCURRENT_STREAMS 0: the client may open no stream at all. The call waits for a
    // stream and ends at its deadline instead of hanging.
    let server = hostile(
        |b| {
            b.max_concurrent_streams(0);
        },
        streams(|req, respond| {
            answer(
                req,
                respond,
                grpc_head(),
                vec![],
                Some(trailers(&[("grpc-status", "0")])),
            )
        }),
    )
    .await;
    let (got, message) = code(unary(&server, Duration::from_millis(500)).await);
    assert!(
        matches!(got, Code::DeadlineExceeded | Code::Unavailable),
        "{got:?}: {message}"
    );
    assert!(server.connections.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn window_starvation_ends_at_the_deadline() {
    // A stream window of zero that the server never opens: the request cannot be sent, and the
    // call ends at its deadline.
    let server = hostile(
        |b| {
            b.initial_window_size(0);
        },
        streams(|req, respond| async move {
            // Held, not dropped: dropping them would reset the stream with CANCEL.
            let _held = (req, respond);
            tokio::time::sleep(Duration::from_secs(30)).await;
        }),
    )
    .await;
    let started = Instant::now();
    let (got, message) = code(unary(&server, Duration::from_millis(500)).await);
    assert_eq!(got, Code::DeadlineExceeded, "{message}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
