//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not an API). Each takes
//! arbitrary bytes, drives one part of the runtime with them, and panics only when an invariant
//! breaks: a decoder that loses or invents bytes, a limit exceeded, a status that does not
//! survive the wire, a connection that hangs.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::subchannel::{Connect, Connected};
use crate::codec::{Encoding, RecvEncoding};
use crate::framing::{Decoder, Frame, FrameError, HEADER_LEN};
use crate::metadata::{MetadataMap, format_timeout, parse_timeout};
use crate::server::{BoxFuture, ServerCall, Service};
use crate::status::{Code, Status};
use crate::transport::connect::Address;

/// The framing decoder, fed in chunks whose sizes the input chooses, against a one-shot reading
/// of the same bytes: both must see the same messages and the same error.
pub fn framing(data: &[u8]) {
    let [limit, step, rest @ ..] = data else {
        return;
    };
    let limit = usize::from(*limit) * 3;
    let step = usize::from(*step % 32) + 1;
    let expected = reference_frames(rest, limit);
    let mut decoder = Decoder::new(limit);
    let mut got = Vec::new();
    let mut error = None;
    'feed: for chunk in rest.chunks(step) {
        decoder.push(Bytes::copy_from_slice(chunk));
        loop {
            match decoder.decode() {
                Ok(Some(frame)) => {
                    assert!(frame.data.len() <= limit, "a message past the limit");
                    got.push(frame);
                }
                Ok(None) => break,
                Err(err) => {
                    error = Some(err);
                    break 'feed;
                }
            }
        }
        // Held bytes never exceed one prefix plus one message under the limit, plus a chunk.
        assert!(decoder.buffered() <= HEADER_LEN + limit + step);
    }
    let error = error.or_else(|| decoder.finish().err());
    assert_eq!((got, error), expected, "chunked and whole readings differ");
}

/// The frames of `data` read in one pass, and the error that ends them (if any).
fn reference_frames(mut data: &[u8], limit: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut frames = Vec::new();
    while !data.is_empty() {
        // A prefix cut short is truncated, whatever its flag byte says.
        if data.len() < HEADER_LEN {
            let truncated = FrameError::Truncated {
                buffered: data.len(),
                expected: HEADER_LEN,
            };
            return (frames, Some(truncated));
        }
        if data[0] > 1 {
            return (frames, Some(FrameError::BadFlag(data[0])));
        }
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        if len > limit {
            let len = len as u64;
            return (frames, Some(FrameError::TooLarge { len, limit }));
        }
        if data.len() < HEADER_LEN + len {
            let truncated = FrameError::Truncated {
                buffered: data.len(),
                expected: HEADER_LEN + len,
            };
            return (frames, Some(truncated));
        }
        frames.push(Frame {
            compressed: data[0] == 1,
            data: Bytes::copy_from_slice(&data[HEADER_LEN..HEADER_LEN + len]),
        });
        data = &data[HEADER_LEN + len..];
    }
    (frames, None)
}

/// Splits input into header (name, value) pairs: records separated by `\n`, name and value by
/// the first `:`. Pairs `http` refuses are skipped, as h2 would never hand them over.
fn header_pairs(data: &[u8], names: &[&'static str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for record in data.split(|&b| b == b'\n') {
        let Some(colon) = record.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&record[..colon], &record[colon + 1..]);
        // A one-byte name picks one of the interesting names, so that the fuzzer need not
        // spell them.
        let name = match name {
            [i] if !names.is_empty() => {
                HeaderName::from_static(names[usize::from(*i) % names.len()])
            }
            _ => match HeaderName::from_bytes(name) {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    headers
}

/// `grpc-timeout` parsing and formatting, and metadata built from received headers.
pub fn metadata(data: &[u8]) {
    if let Ok(timeout) = parse_timeout(data) {
        // What we send for a parsed timeout is never shorter, and parses again.
        let again = parse_timeout(format_timeout(timeout).as_bytes()).expect("our own format");
        assert!(again >= timeout || again == parse_timeout(b"99999999H").unwrap());
    }
    if data.len() >= 12 {
        let secs = u64::from_le_bytes(data[..8].try_into().unwrap());
        let nanos = u32::from_le_bytes(data[8..12].try_into().unwrap()) % 1_000_000_000;
        let timeout = Duration::new(secs, nanos);
        let text = format_timeout(timeout);
        assert!(
            text.len() <= 9,
            "grpc-timeout is at most 8 digits and a unit"
        );
        let back = parse_timeout(text.as_bytes()).expect("our own format");
        assert!(
            back >= timeout || text == "99999999H",
            "{timeout:?} sent as {text}"
        );
    }
    let names = [
        "grpc-timeout",
        "content-type",
        "te",
        "x-a-bin",
        "x-b",
        "grpc-status",
    ];
    let headers = header_pairs(data, &names);
    let map = MetadataMap::from_headers(headers.clone());
    for (key, _) in map.iter() {
        assert!(!crate::metadata::is_reserved(key), "{key} kept");
        if key.ends_with("-bin") {
            let _ = map.get_bin(key);
            let _ = map.get_all_bin(key);
        } else {
            let _ = map.get_all(key).count();
        }
    }
    let kept: usize = headers
        .iter()
        .filter(|(k, _)| !crate::metadata::is_reserved(k.as_str()))
        .count();
    assert_eq!(map.len(), kept, "metadata lost or invented entries");
    let mut out = HeaderMap::new();
    map.write_to(&mut out);
    assert_eq!(MetadataMap::from_headers(out).len(), kept);
}

/// A status read from trailers: never OK with a message, and what it says survives being written
/// again and read back.
pub fn status_from_trailers(data: &[u8]) {
    let names = [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "grpc-retry-pushback-ms",
        "x-trailer",
    ];
    let headers = header_pairs(data, &names);
    let Some(read) = Status::from_trailers(&headers) else {
        assert!(!headers.contains_key("grpc-status"));
        return;
    };
    let Err(status) = read else {
        return;
    };
    assert_ne!(status.code(), Code::Ok);
    let mut written = HeaderMap::new();
    status.write_trailers(&mut written);
    let again = Status::from_trailers(&written)
        .expect("grpc-status written")
        .expect_err("not OK");
    assert_eq!(again.code(), status.code());
    assert_eq!(again.message(), status.message());
    assert_eq!(again.details(), status.details());
}

/// Decompression under a receive limit: the input's first bytes pick the encoding and the limit;
/// a success never exceeds the limit, and what we compress comes back whole.
pub fn decompress(data: &[u8]) {
    let [pick, a, b, body @ ..] = data else {
        return;
    };
    let encoding = Encoding::SUPPORTED[usize::from(*pick) % Encoding::SUPPORTED.len()];
    let limit = usize::from(u16::from_le_bytes([*a, *b]));
    let received = RecvEncoding::Known(encoding);
    if let Ok(out) = received.decompress(Bytes::copy_from_slice(body), limit) {
        assert!(
            out.len() <= limit,
            "{} bytes past a limit of {limit}",
            out.len()
        );
    }
    let mut packed = BytesMut::new();
    encoding.compress(body, &mut packed).expect("compress");
    match received.decompress(packed.clone().freeze(), limit) {
        Ok(out) => assert_eq!(&out[..], body),
        Err(status) => {
            assert!(body.len() > limit, "refused under the limit: {status:?}");
            assert_eq!(status.code(), Code::ResourceExhausted);
        }
    }
    let identity = RecvEncoding::Identity.decompress(packed.freeze(), limit);
    assert_eq!(identity.expect_err("no encoding").code(), Code::Internal);
}

/// A service with one method of each kind, over `bytes` messages (BytesValue on the wire).
struct Echo;

impl Service for Echo {
    fn name(&self) -> &'static str {
        "fuzz.Echo"
    }
    fn methods(&self) -> &'static [&'static str] {
        &["Unary", "Server", "Client", "Bidi"]
    }
    fn call(&self, method: usize, call: ServerCall) -> BoxFuture<Code> {
        use crate::server::{Request, Response};
        use crate::streaming::Streaming;
        match method {
            0 => Box::pin(crate::server::unary(
                call,
                |r: Request<Vec<u8>>| async move { Ok(Response::new(r.into_inner())) },
            )),
            1 => Box::pin(crate::server::server_streaming(
                call,
                |r: Request<Vec<u8>>| async move {
                    let m = r.into_inner();
                    let items = vec![
                        Ok(crate::codec::Outgoing::new(m.clone())),
                        Ok(crate::codec::Outgoing::new(m)),
                    ];
                    Ok(Response::new(futures_util::stream::iter(items)))
                },
            )),
            2 => Box::pin(crate::server::client_streaming(
                call,
                |r: Request<Streaming<Vec<u8>>>| async move {
                    let mut stream = r.into_inner();
                    let mut all = Vec::new();
                    while let Some(m) = stream.message().await? {
                        all.extend_from_slice(&m);
                    }
                    Ok(Response::new(all))
                },
            )),
            3 => Box::pin(crate::server::bidi_streaming(
                call,
                |r: Request<Streaming<Vec<u8>>>| async move {
                    use futures_util::StreamExt as _;
                    let out = r.into_inner().map(|m| m.map(crate::codec::Outgoing::new));
                    Ok(Response::new(out))
                },
            )),
            _ => crate::codegen::unknown_method(call),
        }
    }
}

/// A runtime on the paused clock: timers fire as soon as everything else waits, so handshake
/// timeouts and deadlines end a run at once instead of holding the fuzzer up.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// The client's connection preface, which the fuzz input follows.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A whole server connection (HTTP/2, routing, the four call kinds, limits) fed `data` after the
/// client preface through an in-memory pipe. The connection must end once its input has: no
/// hang, no panic.
pub fn server_connection(data: &[u8]) {
    let (flags, data) = data.split_first().unwrap_or((&0, data));
    runtime().block_on(async {
        let builder = crate::Server::builder()
            .max_recv_message_size(1024)
            .max_concurrent_streams(8)
            .max_header_list_size(4096)
            .add_service(Echo);
        let (shared, _) = builder.into_shared().expect("no TLS");
        let (draining_tx, draining) = tokio::sync::watch::channel(false);
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let force = shared.force.clone();
        let grace = shared.config.shutdown_grace;
        let conn = tokio::spawn(crate::server::conn_for_fuzzing(server, shared, draining));
        let writer = async {
            let _ = client.write_all(PREFACE).await;
            let _ = client.write_all(data).await;
            if flags & 1 == 0 {
                let _ = client.shutdown().await;
            } else {
                // Or keep the pipe open and shut the server down as `serve` does: drain, and
                // after the grace period force what is left.
                let _ = draining_tx.send(true);
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    force.cancel();
                });
            }
            let mut sink = [0u8; 4096];
            while let Ok(n) = client.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let ended = tokio::time::timeout(Duration::from_secs(600), async {
            writer.await;
            conn.await.expect("the connection task panicked");
        })
        .await;
        assert!(ended.is_ok(), "the server connection did not end");
    });
}

/// Hands out one in-memory connection whose server side sends the fuzz input.
struct Pipe {
    server: std::sync::Mutex<Option<tokio::io::DuplexStream>>,
    used: std::sync::atomic::AtomicBool,
    settings: crate::http2::handshake::ClientSettings,
}

impl Connect for Pipe {
    fn connect(
        &self,
        _: &Address,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Connected, crate::Error>> + Send>> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let settings = self.settings.clone();
        let first = !self.used.swap(true, std::sync::atomic::Ordering::SeqCst);
        if first {
            *self.server.lock().unwrap() = Some(server);
        }
        Box::pin(async move {
            if !first {
                return Err(crate::Error::new(
                    crate::error::Kind::Connect,
                    "only one pipe",
                ));
            }
            let (send, ended) = crate::http2::handshake::client(client, &settings, &"fuzz").await?;
            Ok(Connected { send, ended })
        })
    }
    fn timeout(&self, backoff: Duration) -> Duration {
        backoff
    }
}

/// A whole client connection (HTTP/2, response headers, framing, decompression, trailers) fed
/// `data` as the server's bytes after an empty SETTINGS frame, under a unary and a
/// server-streaming call: each must end, by its deadline at the latest, with a response or a
/// status that is not OK.
pub fn client_connection(data: &[u8]) {
    let (flags, data) = data.split_first().unwrap_or((&0, data));
    runtime().block_on(async {
        let pipe = Arc::new(Pipe {
            server: std::sync::Mutex::new(None),
            used: std::sync::atomic::AtomicBool::new(false),
            settings: crate::http2::handshake::ClientSettings {
                stream_window: 65_535,
                connection_window: 65_535,
                max_header_list_size: 16 * 1024,
                keepalive: None,
            },
        });
        let mut builder = crate::Channel::builder("127.0.0.1:1")
            .expect("target")
            .max_recv_message_size(1024);
        builder.custom_connector = Some(pipe.clone());
        let channel = builder.connect_lazy().expect("channel");
        let calls = async {
            let path = http::uri::PathAndQuery::from_static("/fuzz.Echo/Unary");
            let mut request = crate::client::Request::new(b"hello".to_vec());
            request.set_timeout(Duration::from_secs(5));
            let unary = channel.unary::<_, Vec<u8>>(path, request);
            let path = http::uri::PathAndQuery::from_static("/fuzz.Echo/Server");
            let mut request = crate::client::Request::new(b"hello".to_vec());
            request.set_timeout(Duration::from_secs(5));
            let streaming = async {
                let mut stream = channel
                    .server_streaming::<_, Vec<u8>>(path, request)
                    .await?
                    .into_inner();
                let mut n = 0usize;
                while let Some(m) = stream.message().await? {
                    assert!(m.len() <= 1024);
                    n += 1;
                }
                Ok::<usize, Status>(n)
            };
            let (u, s) = tokio::join!(unary, streaming);
            if let Err(status) = &u {
                assert_ne!(status.code(), Code::Ok);
            }
            if let Err(status) = &s {
                assert_ne!(status.code(), Code::Ok);
            }
        };
        let server = async {
            // Wait for the channel to connect, then play the server.
            let mut server = loop {
                if let Some(s) = pipe.server.lock().unwrap().take() {
                    break s;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            };
            let _ = server.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await;
            let _ = server.write_all(data).await;
            if flags & 1 == 0 {
                let _ = server.shutdown().await;
            }
            let mut sink = [0u8; 4096];
            while let Ok(n) = server.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        };
        let ended = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                () = calls => {}
                () = async { server.await; std::future::pending::<()>().await } => {}
            }
        })
        .await;
        assert!(ended.is_ok(), "calls outlived their deadlines");
    });
}
