//! One server connection: the HTTP/2 handshake, accepting streams, checking each request's head,
//! and handing the call to its service. Draining on shutdown happens here too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use std::future::Future;
use std::pin::Pin;
use std::task::{Poll, Wake, Waker};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::task::AtomicWaker;
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::either::Either;

use super::context::{Cancel, CancelOnDrop};
use super::{BoxFuture, CallInfo, Context, ServerCall, Shared};
use crate::codec::{Encoding, RecvEncoding};
use crate::http2::enforce::{Observer, Watch};
use crate::metadata::names::GRPC_ACCEPT_ENCODING;
use crate::metadata::{MetadataMap, parse_timeout};
use crate::status::{Code, Status};

/// A connection just accepted: TLS first when the server has it, then HTTP/2. The TLS handshake
/// runs here, in the connection's own task, never in the accept loop.
pub(crate) async fn serve_accepted<IO>(
    io: IO,
    peer: Option<SocketAddr>,
    shared: Arc<Shared>,
    draining: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &shared.tls {
        let timeout = shared.config.handshake_timeout;
        // Boxed for the same reason as the HTTP/2 handshake below.
        match Box::pin(crate::transport::tls::server_handshake(
            acceptor, io, timeout,
        ))
        .await
        {
            Ok((tls, certs)) => return serve_connection(tls, peer, certs, shared, draining).await,
            Err(err) => {
                tracing::debug!(?peer, error = %err, "closing the connection");
                return;
            }
        }
    }
    serve_connection(io, peer, None, shared, draining).await
}

/// Serves one connection until the client closes it, the server drains it, or shutdown forces it.
async fn serve_connection<IO>(
    io: IO,
    peer: Option<SocketAddr>,
    peer_certs: Option<Arc<[Vec<u8>]>>,
    shared: Arc<Shared>,
    mut draining: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &shared.config;
    let policy = config.ping_policy;
    let watch = (!policy.is_off()).then(|| Watch::new(policy));
    let io = match &watch {
        Some(watch) => Either::Left(Observer::new(io, watch.clone())),
        None => Either::Right(io),
    };
    // Boxed: the handshake lives only until the connection is up, and inline it would keep its
    // 1.4 KiB in the connection's future for as long as the connection lasts (the future is as
    // large as its largest state; measured with -Zprint-type-sizes: 3,928 bytes inline).
    let handshake = Box::pin(crate::http2::handshake::server(io, config));
    let mut conn = match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => {
            tracing::debug!(?peer, error = %err, "HTTP/2 handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(?peer, "HTTP/2 handshake timed out");
            return;
        }
    };
    let mut is_draining = *draining.borrow();
    if is_draining {
        conn.graceful_shutdown();
    }
    let keepalive = config.keepalive.zip(conn.ping_pong());
    #[cfg(feature = "tower")]
    let layer = shared.layered.as_ref().map(|make| make());
    // Boxed, and only with keepalive: inline it would take its room in every connection.
    let mut alive =
        keepalive.map(|(config, pinger)| Box::pin(crate::http2::keepalive::run(pinger, config)));
    // Timers exist only when configured: an unused one would take room in every connection's
    // task, and each poll of a sleep spends coop budget on the connection's hot loop.
    let mut aged = config
        .max_connection_age
        .map(|age| Box::pin(tokio::time::sleep(age)));
    // With the idle timeout: the timeout and its timer.
    let mut idle_check = config
        .idle_timeout
        .map(|idle| (idle, Box::pin(tokio::time::sleep(idle))));
    let mut enforcing = watch.is_some();
    // On the server's own workers, a connection's calls run in its task: no spawn per call, and
    // the responses that one wake makes ready leave in one write when the connection is polled
    // next (docs/ARCHITECTURE.md has the figures). Each worker is one thread anyway, so spawning
    // would buy no parallelism. On the caller's runtime (`worker_threads(0)`), calls are tasks
    // of their own, free to run on any of its threads.
    let inline = config.workers > 0;
    // Calls in flight on this connection, for the idle timeout, and for the PING policy when
    // calls are tasks of their own (inline, the set of calls knows its size).
    let counted = idle_check.is_some() || (watch.is_some() && !inline);
    let active = counted.then(|| Arc::new(AtomicUsize::new(0)));
    // Made when a call arrives and dropped when the last one ends: an empty set still holds a
    // node as large as a call's future, and idle connections should not.
    let mut calls = None;
    let mut accepted_in_row = 0;
    // The shutdown signals are waited on by futures made once: one made per turn of the loop
    // would register with (and leave) their notifiers' lists on every call.
    let force = shared.force.cancelled();
    tokio::pin!(force);
    let drain = async {
        while draining.changed().await.is_ok() {
            if *draining.borrow() {
                return;
            }
        }
    };
    tokio::pin!(drain);
    let signals = Arc::new(Signals {
        fired: AtomicBool::new(true),
        task: AtomicWaker::new(),
    });
    let signals_waker = Waker::from(signals.clone());
    loop {
        let drain_signal = (!is_draining).then_some(drain.as_mut());
        tokio::select! {
            biased;
            stop = shutdown(&signals, &signals_waker, force.as_mut(), drain_signal) => match stop {
                Stop::Force => return,
                Stop::Drain => {
                    conn.graceful_shutdown();
                    is_draining = true;
                }
            },
            why = fire(alive.as_mut()), if alive.is_some() => {
                tracing::debug!(?peer, reason = %why, "closing the connection");
                return;
            }
            () = fire(aged.as_mut()), if aged.is_some() && !is_draining => {
                tracing::debug!(?peer, "connection reached its maximum age; sending GOAWAY");
                conn.graceful_shutdown();
                is_draining = true;
            }
            () = pinged(watch.as_deref()), if enforcing => {
                let open = match (&active, &calls) {
                    (Some(active), _) if !inline => active.load(Ordering::Acquire),
                    (_, Some(calls)) => calls.len(),
                    _ => 0,
                };
                if watch.as_ref().is_some_and(|w| w.judge(open)) {
                    tracing::debug!(?peer, "client PINGs too often; GOAWAY ENHANCE_YOUR_CALM too_many_pings");
                    conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                    is_draining = true;
                    enforcing = false;
                }
            }
            () = fire(idle_check.as_mut().map(|(_, sleep)| sleep)), if idle_check.is_some() && !is_draining => {
                if let Some((idle, sleep)) = idle_check.as_mut() {
                    // With an idle timeout the calls are always counted.
                    if active.as_ref().is_none_or(|a| a.load(Ordering::Acquire) == 0) {
                        tracing::debug!(?peer, "connection idle; sending GOAWAY");
                        conn.graceful_shutdown();
                        is_draining = true;
                    } else {
                        sleep.as_mut().reset(tokio::time::Instant::now() + *idle);
                    }
                }
            }
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => {
                    if let Some((idle, sleep)) = idle_check.as_mut() {
                        sleep.as_mut().reset(tokio::time::Instant::now() + *idle);
                    }
                    let guard = active.as_ref().map(ActiveCall::new);
                    #[cfg(feature = "tower")]
                    let layer = layer.as_ref().map(|l| l());
                    if inline {
                        // Checked, routed and started here; the handler runs with the calls.
                        #[cfg(feature = "tower")]
                        let call = accept_call(request, respond, &shared, peer, peer_certs.clone(), guard, layer);
                        #[cfg(not(feature = "tower"))]
                        let call = accept_call(request, respond, &shared, peer, peer_certs.clone(), guard);
                        let calls = calls.get_or_insert_with(FuturesUnordered::new);
                        calls.push(call);
                        // A peer that keeps opening streams (and resetting them) must not keep
                        // the calls already accepted from running.
                        accepted_in_row += 1;
                        if accepted_in_row == ACCEPTS_BEFORE_RUNNING {
                            accepted_in_row = 0;
                            poll_ready_calls(calls).await;
                        }
                    } else {
                        // In the call's own task, checks and interceptors included, so that they
                        // run in parallel on the caller's runtime.
                        let (shared, peer_certs) = (shared.clone(), peer_certs.clone());
                        shared.clone().tasks.spawn(async move {
                            #[cfg(feature = "tower")]
                            let call = accept_call(request, respond, &shared, peer, peer_certs, guard, layer);
                            #[cfg(not(feature = "tower"))]
                            let call = accept_call(request, respond, &shared, peer, peer_certs, guard);
                            call.await;
                        });
                    }
                }
                Some(Err(err)) => {
                    tracing::debug!(?peer, error = %err, "connection ended with an error");
                    break;
                }
                None => break,
            },
            () = run_ready(&mut calls), if calls.is_some() => {
                accepted_in_row = 0;
                if calls.as_ref().is_some_and(FuturesUnordered::is_empty) {
                    calls = None;
                }
            }
        }
    }
    // Calls still running keep the connection open; both end before the task does.
    let finish_calls = async {
        if let Some(calls) = &mut calls {
            while calls.next().await.is_some() {}
        }
    };
    let closed = std::future::poll_fn(|cx| conn.poll_closed(cx));
    tokio::select! {
        () = &mut force => {}
        _ = async { tokio::join!(finish_calls, closed) } => {}
    }
}

/// Notes that a shutdown signal woke the connection, and wakes its task.
struct Signals {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signals {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Which shutdown signal fired.
enum Stop {
    Force,
    Drain,
}

/// The server's shutdown signals (forced, and draining while not yet draining), polled only on
/// the first turn and after one of them woke the task, under a waker that notes it. Polled on
/// every turn of the loop they would cost a lock each (tokio's `Notify` checks its waiter under
/// one), and every call turns the loop.
fn shutdown<'a, F, D>(
    signals: &'a Signals,
    waker: &'a Waker,
    mut force: Pin<&'a mut F>,
    mut drain: Option<Pin<&'a mut D>>,
) -> impl Future<Output = Stop> + 'a
where
    F: Future<Output = ()>,
    D: Future<Output = ()>,
{
    std::future::poll_fn(move |cx| {
        signals.task.register(cx.waker());
        if !signals.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut own = std::task::Context::from_waker(waker);
        if force.as_mut().poll(&mut own).is_ready() {
            return Poll::Ready(Stop::Force);
        }
        if let Some(drain) = drain.as_mut()
            && drain.as_mut().poll(&mut own).is_ready()
        {
            return Poll::Ready(Stop::Drain);
        }
        Poll::Pending
    })
}

/// A configured timer's expiry (or keepalive's verdict); never, for one not configured.
async fn fire<F: Future>(future: Option<&mut Pin<Box<F>>>) -> F::Output {
    match future {
        Some(future) => future.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Streams accepted one after another before the calls accepted so far are polled.
const ACCEPTS_BEFORE_RUNNING: usize = 128;

/// Polls the calls until none is ready; true if any finished.
fn poll_calls<F: Future<Output = ()>>(
    calls: &mut FuturesUnordered<F>,
    cx: &mut std::task::Context<'_>,
) -> bool {
    let mut finished = false;
    while let Poll::Ready(Some(())) = calls.poll_next_unpin(cx) {
        finished = true;
    }
    finished
}

/// Polls every call that is ready, once.
fn poll_ready_calls<F: Future<Output = ()>>(
    calls: &mut FuturesUnordered<F>,
) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| {
        poll_calls(calls, cx);
        Poll::Ready(())
    })
}

/// Ready once a call finished, so that the connection is polled again only after every call
/// that could make progress did.
fn run_ready<F: Future<Output = ()>>(
    calls: &mut Option<FuturesUnordered<F>>,
) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| {
        if calls.as_mut().is_some_and(|calls| poll_calls(calls, cx)) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

/// Counts a call as in flight on its connection while it lives.
struct ActiveCall(Arc<AtomicUsize>);

/// PINGs to judge on a connection with a PING policy; never without one.
fn pinged(watch: Option<&Watch>) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |cx| match watch {
        Some(watch) => watch.poll_pinged(cx),
        None => Poll::Pending,
    })
}

impl ActiveCall {
    fn new(active: &Arc<AtomicUsize>) -> ActiveCall {
        active.fetch_add(1, Ordering::AcqRel);
        ActiveCall(active.clone())
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A call on its way: the future of its handler (through any tower layers), and what has to
/// happen when it ends. Written by hand rather than as an `async fn` so that the connection's set
/// of calls holds a few words per call, not a second copy of an awaited future.
pub(crate) struct CallTask {
    /// `None` once the call has ended (or when it was answered before any handler ran).
    run: Option<BoxFuture<Code>>,
    /// Cancels the call's context when the call is dropped before it ends (its connection died
    /// under it), so that work the handler spawned hears of it.
    dropped: Option<CancelOnDrop>,
    /// Interceptors to tell how the call ended.
    ended: Option<Ended>,
    /// Counts the call as in flight while it lives.
    _active: Option<ActiveCall>,
}

struct Ended {
    shared: Arc<Shared>,
    uri: http::Uri,
    started: Instant,
}

impl Future for CallTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(run) = this.run.as_mut() else {
            return Poll::Ready(());
        };
        let code = std::task::ready!(run.as_mut().poll(cx));
        this.run = None;
        if let Some(dropped) = this.dropped.take() {
            dropped.disarm();
        }
        if let Some(ended) = this.ended.take() {
            finish(&ended.shared, ended.uri.path(), Some(ended.started), code);
        }
        Poll::Ready(())
    }
}

impl CallTask {
    /// A call answered on the spot (a bad request, an unknown method, a refusal).
    fn answered(active: Option<ActiveCall>) -> CallTask {
        CallTask {
            run: None,
            dropped: None,
            ended: None,
            _active: active,
        }
    }
}

/// Checks a request's head, routes it, runs the interceptors and starts the call: the handler
/// runs as the returned future is polled.
fn accept_call(
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    shared: &Arc<Shared>,
    peer: Option<SocketAddr>,
    peer_certs: Option<Arc<[Vec<u8>]>>,
    active: Option<ActiveCall>,
    #[cfg(feature = "tower")] layer: Option<super::tower_glue::CallLayer>,
) -> CallTask {
    let (head, body) = request.into_parts();
    if head.method != Method::POST {
        respond_http(&mut respond, StatusCode::METHOD_NOT_ALLOWED);
        return CallTask::answered(active);
    }
    let content_type = head.headers.get(header::CONTENT_TYPE);
    if !is_grpc_content_type(content_type) {
        respond_http(&mut respond, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        return CallTask::answered(active);
    }
    if let Some(codec) = foreign_codec(content_type) {
        let status = Status::unimplemented(format!(
            "content-type {codec:?} names a message format this server does not speak; it speaks \
             application/grpc and application/grpc+proto"
        ));
        respond_status(&mut respond, &status);
        return CallTask::answered(active);
    }
    let (service, method) = match shared.router.route(head.uri.path()) {
        Ok(route) => route,
        Err(status) => {
            respond_status(&mut respond, &status);
            return CallTask::answered(active);
        }
    };
    // The gRPC headers the call needs, in one pass over the block (the first of repeats counts).
    let (mut timeout, mut encoding, mut accept_encoding, mut previous_attempts) =
        (None, None, None, None);
    for (name, value) in &head.headers {
        match name.as_str() {
            "grpc-timeout" if timeout.is_none() => timeout = Some(value),
            "grpc-encoding" if encoding.is_none() => encoding = Some(value.as_bytes()),
            "grpc-accept-encoding" if accept_encoding.is_none() => {
                accept_encoding = Some(value.clone());
            }
            "grpc-previous-rpc-attempts" if previous_attempts.is_none() => {
                previous_attempts = Some(value);
            }
            _ => {}
        }
    }
    let deadline = match timeout {
        None => None,
        Some(raw) => match parse_timeout(raw.as_bytes()) {
            // A timeout too far away to represent is no deadline at all.
            Ok(timeout) => Instant::now().checked_add(timeout),
            Err(err) => {
                respond_status(&mut respond, &Status::internal(err.to_string()));
                return CallTask::answered(active);
            }
        },
    };
    let encoding = RecvEncoding::from_header(encoding);
    if let RecvEncoding::Unsupported(name) = &encoding {
        // Refused before any message is read, with the encodings we do take (PROTOCOL-HTTP2 and
        // doc/compression.md: UNIMPLEMENTED, and grpc-accept-encoding in the response).
        let status = Status::unimplemented(format!(
            "grpc-encoding {name:?} is not supported; supported: {}",
            Encoding::accept_header()
        ));
        respond_status(&mut respond, &status);
        return CallTask::answered(active);
    }
    let previous_attempts = previous_attempts
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok()?.parse().ok())
        .unwrap_or(0);
    let mut metadata = MetadataMap::from_headers(head.headers);
    let cancel = Cancel::default();
    let dropped = cancel.on_drop();
    let context =
        Context::new(peer, peer_certs, deadline, cancel).with_previous_attempts(previous_attempts);
    let started = (!shared.interceptors.is_empty()).then(Instant::now);
    let path = head.uri.path();
    for interceptor in &shared.interceptors {
        let mut info = CallInfo {
            path,
            metadata: &mut metadata,
            context: &context,
        };
        if let Err(status) = interceptor.on_call(&mut info) {
            respond_status(&mut respond, &status);
            dropped.disarm();
            finish(shared, path, started, status.code());
            return CallTask::answered(active);
        }
    }
    let call = ServerCall {
        accept_encoding,
        metadata,
        body,
        respond,
        context,
        encoding,
        shared: shared.clone(),
    };
    #[cfg(feature = "tower")]
    let run = match layer {
        Some(layered) => layered(call, service.clone(), method, path),
        None => service.call(method, call),
    };
    #[cfg(not(feature = "tower"))]
    let run = service.call(method, call);
    CallTask {
        run: Some(run),
        dropped: Some(dropped),
        ended: started.map(|started| Ended {
            shared: shared.clone(),
            uri: head.uri,
            started,
        }),
        _active: active,
    }
}

/// Tells interceptors how a call ended.
fn finish(shared: &Shared, path: &str, started: Option<Instant>, code: crate::Code) {
    if let Some(started) = started {
        let elapsed = started.elapsed();
        for interceptor in &shared.interceptors {
            interceptor.on_end(path, code, elapsed);
        }
    }
}

/// `application/grpc`, optionally followed by `+format` or `;parameters`.
fn is_grpc_content_type(value: Option<&HeaderValue>) -> bool {
    let Some(value) = value else { return false };
    let v = value.as_bytes();
    const PREFIX: &[u8] = b"application/grpc";
    v.len() >= PREFIX.len()
        && v[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
        && matches!(v.get(PREFIX.len()), None | Some(b'+') | Some(b';'))
}

/// The message format a gRPC content-type names after `+`, when it is not protobuf (the only one
/// the server speaks). `None` for `application/grpc` and `application/grpc+proto`.
fn foreign_codec(value: Option<&HeaderValue>) -> Option<String> {
    let v = value?.as_bytes();
    let subtype = v.get(b"application/grpc".len()..)?.strip_prefix(b"+")?;
    let subtype = subtype.split(|b| *b == b';').next().unwrap_or_default();
    (!subtype.eq_ignore_ascii_case(b"proto")).then(|| String::from_utf8_lossy(v).into_owned())
}

/// A plain HTTP error, for requests that are not gRPC at all.
fn respond_http(respond: &mut SendResponse<Bytes>, status: StatusCode) {
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    let _ = respond.send_response(response, true);
}

/// A Trailers-Only response carrying `status`.
pub(crate) fn respond_status(respond: &mut SendResponse<Bytes>, status: &Status) {
    let mut response = http::Response::new(());
    grpc_headers(response.headers_mut());
    status.write_trailers(response.headers_mut());
    let _ = respond.send_response(response, true);
}

/// The headers every gRPC response starts with.
pub(crate) fn grpc_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(
        GRPC_ACCEPT_ENCODING,
        HeaderValue::from_static(Encoding::accept_header()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let ok = |s: &'static str| is_grpc_content_type(Some(&HeaderValue::from_static(s)));
        assert!(ok("application/grpc"));
        assert!(ok("application/grpc+proto"));
        assert!(ok("application/grpc;charset=utf-8"));
        assert!(ok("Application/GRPC"));
        assert!(!ok("application/grpcx"));
        let codec = |v: &str| foreign_codec(Some(&HeaderValue::from_str(v).unwrap()));
        assert_eq!(codec("application/grpc"), None);
        assert_eq!(codec("application/grpc+proto"), None);
        assert_eq!(codec("application/grpc+PROTO;charset=x"), None);
        assert_eq!(codec("application/grpc;charset=x"), None);
        assert!(codec("application/grpc+foo").is_some());
        assert!(!ok("application/json"));
        assert!(!ok("application/grp"));
        assert!(!is_grpc_content_type(None));
    }
}

/// A connection's task holds its future for as long as the connection lives, so its size is
/// memory per connection (the bench's `memory` section measures the RSS).
#[cfg(all(test, not(feature = "tls")))]
mod size {
    #[test]
    fn a_connection_future_stays_small() {
        let (shared, _) = crate::Server::builder().into_shared().unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let c = tokio::net::TcpStream::connect(l.local_addr().unwrap())
                .await
                .unwrap();
            let f = super::serve_accepted(c, None, shared, rx);
            // 4,032 bytes before the handshakes and keepalive were boxed; 2,600 after.
            let size = std::mem::size_of_val(&f);
            assert!(size <= 2_700, "the connection future grew to {size} bytes");
        });
    }
}
