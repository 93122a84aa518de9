//! The four call kinds on the client: send the request head and messages, read the response head,
//! messages and status, all under one deadline that covers every attempt. Dropping the returned
//! future or stream resets the HTTP/2 stream with CANCEL, which the server sees as a cancelled
//! call.
//!
//! Unary and server-streaming requests are held whole, so they follow the method's retry or
//! hedging policy (`retry.rs`); every kind retries transparently a stream that never left the
//! client or that the server refused unprocessed.

pub(crate) mod attempt;
mod replay;
pub(crate) mod retry;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use h2::SendStream;
use http::uri::PathAndQuery;
use prost::Message;
use tokio::time::Instant;

use super::Channel;
use super::service_config::CallPolicy;
use crate::client::{Request, Response};
use crate::codec::{self, Encoding, IntoOutgoing, Outgoing, SendCompression};
use crate::framing::FrameWriter;
use crate::http2::body::{Outbound, SendError};
use crate::metadata::MetadataMap;
use crate::status::Status;
use crate::streaming::{ClientSide, PendingHead, Streaming};
use attempt::{AttemptError, CallHead, Opened, ResponseHead, read_head};
use retry::{Hedger, Jitter, Next, Pushback, Retrier};

/// Anything a client-streaming or bidirectional method accepts: a `Stream` of messages, or a
/// [`Request`] wrapping one (to add metadata or a timeout).
pub trait IntoStreamingRequest {
    /// The stream of messages (plain, or [`Outgoing`] to choose compression per message).
    type Stream: Stream<Item: IntoOutgoing<Message = Self::Message>> + Send + 'static;
    /// The message type.
    type Message;
    /// Wraps the stream in a request.
    fn into_streaming_request(self) -> Request<Self::Stream>;
}

impl<S> IntoStreamingRequest for S
where
    S: Stream<Item: IntoOutgoing> + Send + 'static,
{
    type Stream = S;
    type Message = <S::Item as IntoOutgoing>::Message;
    fn into_streaming_request(self) -> Request<S> {
        Request::new(self)
    }
}

impl<S> IntoStreamingRequest for Request<S>
where
    S: Stream<Item: IntoOutgoing> + Send + 'static,
{
    type Stream = S;
    type Message = <S::Item as IntoOutgoing>::Message;
    fn into_streaming_request(self) -> Request<S> {
        self
    }
}

/// Streams that never left the client are sent again at most this many times in a row; each
/// such failure also takes its connection out of the picker, so the next try waits for a new one.
const NOT_SENT_LIMIT: u32 = 16;

impl Channel {
    /// Calls a unary method: one request, one response. Generated clients call this; it is also the
    /// way to call a method by path, e.g. with dynamic messages.
    pub async fn unary<Req, Resp>(
        &self,
        path: PathAndQuery,
        request: Request<Req>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message,
        Resp: Message + Default,
    {
        self.shared
            .first_resolution(request.timeout().or(self.shared.config.timeout))
            .await;
        let (head, message, policy) = self.prepare(path, request)?;
        let deadline = head.deadline;
        let cancel = head.cancel.clone();
        let head_cancel = cancel.clone();
        let call = async {
            let response = self.send_message(&head, &message, policy).await?;
            let mut stream = Streaming::client(
                response.body,
                head.max_recv,
                response.encoding,
                client_side(None, None, None, response.on_end),
                response.trailers_only,
            );
            single_response(response.metadata, &mut stream).await
        };
        with_deadline(deadline, head_cancel, std::pin::pin!(call)).await
    }

    /// Calls a server-streaming method: one request, a stream of responses.
    pub async fn server_streaming<Req, Resp>(
        &self,
        path: PathAndQuery,
        request: Request<Req>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        Req: Message,
        Resp: Message + Default,
    {
        self.shared
            .first_resolution(request.timeout().or(self.shared.config.timeout))
            .await;
        let (mut head, message, policy) = self.prepare(path, request)?;
        let deadline = head.deadline;
        let cancel = head.cancel.clone();
        let head_cancel = cancel.clone();
        let active = head.active.take();
        let call = async {
            let response = self.send_message(&head, &message, policy).await?;
            let mut side = client_side(None, deadline, cancel.clone(), response.on_end);
            side.active = active;
            let stream = Streaming::client(
                response.body,
                head.max_recv,
                response.encoding,
                side,
                response.trailers_only,
            );
            Ok(Response::from_parts(
                response.metadata,
                stream,
                MetadataMap::new(),
            ))
        };
        with_deadline(deadline, head_cancel, std::pin::pin!(call)).await
    }

    /// Calls a client-streaming method: a stream of requests, one response.
    pub async fn client_streaming<S, Req, Resp>(
        &self,
        path: PathAndQuery,
        request: Request<S>,
    ) -> Result<Response<Resp>, Status>
    where
        S: Stream<Item: IntoOutgoing<Message = Req>> + Send + 'static,
        Req: Message + 'static,
        Resp: Message + Default,
    {
        self.shared
            .first_resolution(request.timeout().or(self.shared.config.timeout))
            .await;
        let (head, messages, policy) = self.prepare(path, request)?;
        let deadline = head.deadline;
        let cancel = head.cancel.clone();
        let head_cancel = cancel.clone();
        let call = async {
            if let Some(retrier) = retrier_for(policy) {
                let (pump, task) = self.pump(messages, &head);
                let throttle = self.shared.applied().throttle.clone();
                let response = retry_stream(self, &head, &pump, retrier, throttle).await;
                let sender = Sender {
                    task,
                    error: pump.error.clone(),
                };
                let response = response?;
                let side = client_side(Some(sender), None, None, response.on_end);
                let mut stream = Streaming::client(
                    response.body,
                    head.max_recv,
                    response.encoding,
                    side,
                    response.trailers_only,
                );
                return single_response(response.metadata, &mut stream).await;
            }
            let opened = self.open_stream(&head).await?;
            let on_end = opened.picked.on_end;
            let sender = spawn_sender(opened.send, messages, head.compression, head.max_send);
            let response = opened.response.await;
            let side = client_side(Some(sender), None, None, on_end);
            let (metadata, mut stream) = response_stream::<Resp>(response, side, head.max_recv)?;
            single_response(metadata, &mut stream).await
        };
        with_deadline(deadline, head_cancel, std::pin::pin!(call)).await
    }

    /// Calls a bidirectional-streaming method: a stream of requests, a stream of responses.
    pub async fn streaming<S, Req, Resp>(
        &self,
        path: PathAndQuery,
        request: Request<S>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        S: Stream<Item: IntoOutgoing<Message = Req>> + Send + 'static,
        Req: Message + 'static,
        Resp: Message + Default,
    {
        self.shared
            .first_resolution(request.timeout().or(self.shared.config.timeout))
            .await;
        let (mut head, messages, policy) = self.prepare(path, request)?;
        let deadline = head.deadline;
        let cancel = head.cancel.clone();
        let head_cancel = cancel.clone();
        let active = head.active.take();
        if let Some(retrier) = retrier_for(policy) {
            // The attempts run inside the response stream, until one is committed.
            let (pump, task) = self.pump(messages, &head);
            let sender = Sender {
                task,
                error: pump.error.clone(),
            };
            let max_recv = head.max_recv;
            let channel = self.clone();
            let throttle = self.shared.applied().throttle.clone();
            let attempts =
                async move { retry_stream(&channel, &head, &pump, retrier, throttle).await };
            let mut side = client_side(Some(sender), deadline, cancel.clone(), None);
            side.active = active;
            let pending = PendingHead::Retrying(Box::pin(attempts));
            return Ok(Response::streaming(Streaming::client_pending(
                pending, max_recv, side,
            )));
        }
        let call = async {
            let opened = self.open_stream(&head).await?;
            let on_end = opened.picked.on_end;
            let sender = spawn_sender(opened.send, messages, head.compression, head.max_send);
            // Return before the response head: a server may wait for our first message first.
            let mut side = client_side(Some(sender), deadline, cancel.clone(), on_end);
            side.active = active;
            let pending = PendingHead::Stream(opened.response);
            let stream = Streaming::client_pending(pending, head.max_recv, side);
            Ok(Response::streaming(stream))
        };
        with_deadline(deadline, head_cancel, std::pin::pin!(call)).await
    }

    /// Splits a request into the head every attempt sends, its message, and the method's retry
    /// or hedging policy. Adds call credentials (never over plaintext unless allowed), applies
    /// the service config's method settings, and runs the channel's interceptors.
    fn prepare<T>(
        &self,
        path: PathAndQuery,
        mut request: Request<T>,
    ) -> Result<(CallHead, T, Option<CallPolicy>), Status> {
        let shared = &self.shared;
        let config = &shared.config;
        if let Some(token) = request.take_bearer().or_else(|| config.bearer.clone()) {
            if shared.scheme != http::uri::Scheme::HTTPS && !config.allow_insecure_credentials {
                return Err(Status::unauthenticated(
                    "refusing to send call credentials over a plaintext connection: use TLS, or \
                     allow_insecure_credentials(true) on the channel",
                ));
            }
            let value = format!("Bearer {token}");
            request
                .metadata_mut()
                .insert("authorization", &value)
                .map_err(|e| Status::invalid_argument(format!("bad bearer token: {e}")))?;
        }
        for interceptor in &config.interceptors {
            interceptor(path.path(), request.metadata_mut())?;
        }
        let applied = shared.applied();
        // A resolver's config selector routes the call, its method settings replacing the
        // service config's.
        let selection = match &applied.selector {
            Some(selector) => Some(selector.select(path.path(), request.metadata())?),
            None => None,
        };
        let method = match &selection {
            Some(selection) => selection.method_config(),
            None => applied.config.method(path.path()),
        };
        let mut timeout = request.timeout().or(config.timeout);
        let mut wait_for_ready = request.wait_for_ready();
        let mut max_send = config.max_send_message;
        let mut max_recv = config.max_recv_message;
        let mut policy = None;
        if let Some(m) = method {
            // The service config's timeout caps the caller's (A2: the lower one wins).
            timeout = match (timeout, m.timeout) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            wait_for_ready = wait_for_ready.or(m.wait_for_ready);
            if let Some(n) = m.max_request_message_bytes {
                max_send = max_send.min(n);
            }
            if let Some(n) = m.max_response_message_bytes {
                max_recv = max_recv.min(n);
            }
            policy = m.policy.clone();
        }
        let compression = request
            .compression()
            .or(config.send_compressed)
            .unwrap_or(Encoding::Identity);
        let cancel = request.take_cancellation_token();
        let (metadata, message) = request.into_parts();
        let head = CallHead {
            path,
            metadata,
            // A timeout too far away to represent is no deadline at all.
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
            wait_for_ready: wait_for_ready.unwrap_or(false),
            compression,
            max_send,
            max_recv,
            active: Some(shared.call_started()),
            cancel,
            cluster: selection.and_then(|s| s.cluster().cloned()),
        };
        Ok((head, message, policy))
    }

    /// Opens a stream for a streaming request, retrying transparently while the stream cannot
    /// leave the client (nothing of the request stream has been taken yet).
    async fn open_stream(&self, head: &CallHead) -> Result<Opened, Status> {
        let mut not_sent = 0;
        loop {
            match attempt::open(&self.shared, head, 0).await {
                Ok(opened) => return Ok(opened),
                Err(AttemptError::NotSent(_)) if not_sent < NOT_SENT_LIMIT => not_sent += 1,
                Err(err) => return Err(err.into_status()),
            }
        }
    }

    /// One attempt of a call whose request is held whole: open, send the frame, read the head.
    async fn attempt_whole(
        &self,
        head: &CallHead,
        frame: &Bytes,
        previous: u32,
    ) -> Result<ResponseHead, AttemptError> {
        let mut opened = attempt::open(&self.shared, head, previous).await?;
        // One message, bounded by the send limit, then the end of the request.
        let sent = opened.send.send_data(frame.clone(), true);
        // h2 refuses data on a stream the server has already ended (it answers a call whose
        // deadline is past, or one it rejects, without waiting for the request): that answer,
        // not the refusal, says how the call ended. A reset, a GOAWAY or a lost connection is
        // the answer itself.
        let refused_by_h2 = |e: &h2::Error| e.reason().is_none() && !e.is_io();
        let result = match sent {
            Err(err) if !refused_by_h2(&err) => Err(attempt::response_error(
                err,
                &opened.picked,
                &opened.transport,
            )),
            _ => match (&mut opened.response).await {
                Err(err) => Err(attempt::response_error(
                    err,
                    &opened.picked,
                    &opened.transport,
                )),
                Ok(response) => read_head(response).map_err(AttemptError::Failed),
            },
        };
        match result {
            Ok(mut response) => {
                response.on_end = opened.picked.on_end.take();
                Ok(response)
            }
            Err(err) => {
                let code = match &err {
                    AttemptError::Failed(s)
                    | AttemptError::Refused(s)
                    | AttemptError::NotSent(s)
                    | AttemptError::Pick(s) => s.code(),
                };
                opened.failed(code);
                Err(err)
            }
        }
    }

    /// Encodes the one request message and sends it under the method's policy.
    async fn send_message<M: Message>(
        &self,
        head: &CallHead,
        message: &M,
        policy: Option<CallPolicy>,
    ) -> Result<ResponseHead, Status> {
        let frame = codec::encode(
            &mut FrameWriter::new(),
            message,
            head.max_send,
            head.compression,
        )?;
        self.send_whole(head, frame, policy).await
    }

    /// Sends a request held whole under the method's policy until an attempt is committed (its
    /// response head arrived) or the call has failed for good.
    async fn send_whole(
        &self,
        head: &CallHead,
        frame: Bytes,
        policy: Option<CallPolicy>,
    ) -> Result<ResponseHead, Status> {
        // Not a guard held across the call's awaits: arc-swap's guards are for short reads.
        let throttle = self.shared.applied().throttle.clone();
        let throttle = throttle.as_deref();
        // The request is replayable only within the per-call and channel-wide buffers;
        // past them the call is committed from the start.
        let buffered = frame.len();
        let replayable = policy.is_some()
            && buffered <= self.shared.config.per_call_buffer
            && self.shared.replay.reserve(buffered);
        let _release = ReleaseOnDrop {
            budget: &self.shared.replay,
            bytes: if replayable { buffered } else { 0 },
        };
        let policy = if replayable { policy } else { None };
        let result = match policy {
            // Boxed: inline, hedging's state (its set of attempts) would set the size of every
            // unary call's future, hedged or not.
            Some(CallPolicy::Hedging(h)) => {
                Box::pin(self.hedge(head, &frame, Hedger::new(h), throttle)).await
            }
            Some(CallPolicy::Retry(r)) => {
                self.retry(
                    head,
                    &frame,
                    Some(Retrier::new(r, Jitter::from_entropy())),
                    throttle,
                )
                .await
            }
            None => self.retry(head, &frame, None, throttle).await,
        };
        if result.is_ok()
            && let Some(t) = throttle
        {
            t.success();
        }
        result
    }

    async fn retry(
        &self,
        head: &CallHead,
        frame: &Bytes,
        mut retrier: Option<Retrier>,
        throttle: Option<&retry::Throttle>,
    ) -> Result<ResponseHead, Status> {
        let (mut refused_once, mut not_sent) = (false, 0);
        loop {
            let previous = retrier.as_ref().map_or(0, |r| r.attempts() - 1);
            let status = match self.attempt_whole(head, frame, previous).await {
                Ok(response) => return Ok(response),
                Err(AttemptError::NotSent(_)) if not_sent < NOT_SENT_LIMIT => {
                    not_sent += 1;
                    continue;
                }
                Err(AttemptError::Refused(_)) if !refused_once => {
                    // Reached the server but never its application: once more, uncounted.
                    refused_once = true;
                    continue;
                }
                Err(AttemptError::Pick(status)) => return Err(status),
                Err(err) => err.into_status(),
            };
            let Some(r) = retrier.as_mut() else {
                return Err(status);
            };
            let pushback = Pushback::from_status(&status);
            match r.after_failure(status.code(), pushback, throttle) {
                Next::RetryAfter(delay) => {
                    tracing::debug!(path = head.path.path(), code = %status.code(), ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Next::Stop => return Err(status),
            }
        }
    }

    /// Hedging: a new attempt every `hedgingDelay` until one is committed, a fatal status ends the
    /// call, or the attempts run out. Dropping the losers resets their streams.
    async fn hedge(
        &self,
        head: &CallHead,
        frame: &Bytes,
        mut hedger: Hedger,
        throttle: Option<&retry::Throttle>,
    ) -> Result<ResponseHead, Status> {
        type Running<'a> =
            Pin<Box<dyn Future<Output = Result<ResponseHead, AttemptError>> + Send + 'a>>;
        let mut running: Vec<Running<'_>> = vec![Box::pin(self.attempt_whole(head, frame, 0))];
        let delay = hedger.delay();
        let mut next = Box::pin(tokio::time::sleep(delay));
        let mut last: Option<Status> = None;
        poll_fn(|cx| {
            loop {
                let mut i = 0;
                let mut progressed = false;
                while i < running.len() {
                    match running[i].as_mut().poll(cx) {
                        Poll::Pending => i += 1,
                        Poll::Ready(result) => {
                            drop(running.swap_remove(i));
                            progressed = true;
                            match result {
                                Ok(response) => return Poll::Ready(Ok(response)),
                                Err(AttemptError::Pick(status)) => return Poll::Ready(Err(status)),
                                Err(err) => {
                                    let status = err.into_status();
                                    let pushback = Pushback::from_status(&status);
                                    if !hedger.non_fatal(status.code(), pushback, throttle) {
                                        return Poll::Ready(Err(status));
                                    }
                                    last = Some(status);
                                    // A non-fatal failure sends the next hedge at once.
                                    next.as_mut().reset(match pushback {
                                        Some(Pushback::After(d)) => Instant::now() + d,
                                        _ => Instant::now(),
                                    });
                                }
                            }
                        }
                    }
                }
                if next.as_mut().poll(cx).is_ready() {
                    if hedger.may_send(throttle) {
                        let previous = hedger.sent() - 1;
                        running.push(Box::pin(self.attempt_whole(head, frame, previous)));
                        next.as_mut().reset(Instant::now() + delay);
                        continue;
                    }
                    if running.is_empty() {
                        return Poll::Ready(Err(last.take().unwrap_or_else(|| {
                            Status::unavailable("every hedged attempt failed")
                        })));
                    }
                    // No more hedges: only the running attempts are left to wait for.
                    next.as_mut()
                        .reset(Instant::now() + Duration::from_secs(86_400 * 365));
                }
                if !progressed {
                    return Poll::Pending;
                }
            }
        })
        .await
    }
}

impl Channel {
    /// Starts the request pump of a retried streaming call.
    fn pump<S, M>(
        &self,
        messages: S,
        head: &CallHead,
    ) -> (replay::Pump, tokio::task::JoinHandle<()>)
    where
        S: Stream<Item: IntoOutgoing<Message = M>> + Send + 'static,
        M: Message + 'static,
    {
        replay::Pump::spawn(
            messages,
            head.compression,
            head.max_send,
            self.shared.config.per_call_buffer,
            self.shared.replay.clone(),
        )
    }
}

/// The retry state of a streaming call. Hedging a request stream is not done: its attempts
/// would each need a copy of a stream that may never end, so such calls run once.
fn retrier_for(policy: Option<CallPolicy>) -> Option<Retrier> {
    match policy {
        Some(CallPolicy::Retry(r)) => Some(Retrier::new(r, Jitter::from_entropy())),
        _ => None,
    }
}

/// Attempts of a streaming call until one is committed (its response head arrives) or the call
/// fails for good. The pump replays the kept request frames into each new attempt.
async fn retry_stream(
    channel: &Channel,
    head: &CallHead,
    pump: &replay::Pump,
    mut retrier: Retrier,
    throttle: Option<Arc<retry::Throttle>>,
) -> Result<ResponseHead, Status> {
    let (mut refused_once, mut not_sent) = (false, 0);
    loop {
        let previous = retrier.attempts() - 1;
        let opened = match attempt::open(&channel.shared, head, previous).await {
            Ok(opened) => opened,
            Err(AttemptError::NotSent(_)) if not_sent < NOT_SENT_LIMIT => {
                not_sent += 1;
                continue;
            }
            Err(err) => return Err(err.into_status()),
        };
        let Opened {
            response,
            send,
            transport,
            mut picked,
        } = opened;
        pump.attempt(send);
        let result = match response.await {
            Ok(response) => read_head(response).map_err(AttemptError::Failed),
            Err(err) => Err(attempt::response_error(err, &picked, &transport)),
        };
        let err = match result {
            Ok(mut response) => {
                pump.commit();
                if let Some(t) = &throttle {
                    t.success();
                }
                response.on_end = picked.on_end.take();
                return Ok(response);
            }
            Err(err) => err,
        };
        let refused = matches!(err, AttemptError::Refused(_));
        let status = err.into_status();
        if let Some(on_end) = picked.on_end.take() {
            on_end(&crate::client::balancer::CallEnd::new(status.code()));
        }
        if let Some(local) = pump.local_error() {
            return Err(local);
        }
        if refused && !refused_once {
            refused_once = true;
            continue;
        }
        if pump.overflowed() {
            return Err(status);
        }
        match retrier.after_failure(
            status.code(),
            Pushback::from_status(&status),
            throttle.as_deref(),
        ) {
            Next::RetryAfter(delay) => tokio::time::sleep(delay).await,
            Next::Stop => return Err(status),
        }
    }
}

/// Gives back a call's share of the channel's replay buffer.
struct ReleaseOnDrop<'a> {
    budget: &'a retry::ReplayBudget,
    bytes: usize,
}

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

/// Checks the response head of a streaming request and wraps the body in a message stream.
fn response_stream<T>(
    response: Result<http::Response<h2::RecvStream>, h2::Error>,
    mut side: ClientSide,
    limit: usize,
) -> Result<(MetadataMap, Streaming<T>), Status> {
    let head = match response {
        Ok(r) => read_head(r),
        Err(err) => {
            let from_sender = side.send_error.as_ref().and_then(|s| s.lock().ok()?.take());
            Err(from_sender.unwrap_or_else(|| Status::from_h2(err)))
        }
    };
    let head = match head {
        Ok(head) => head,
        Err(status) => {
            side.end(status.code());
            if let Some(sender) = side.sender.take() {
                sender.abort();
            }
            return Err(status);
        }
    };
    let stream = Streaming::client(head.body, limit, head.encoding, side, head.trailers_only);
    Ok((head.metadata, stream))
}

/// Sends a request stream from its own task, so that reading responses never waits on it.
fn spawn_sender<S, M>(
    send: SendStream<Bytes>,
    messages: S,
    encoding: Encoding,
    limit: usize,
) -> Sender
where
    S: Stream<Item: IntoOutgoing<Message = M>> + Send + 'static,
    M: Message + 'static,
{
    let compression = SendCompression {
        encoding,
        by_default: true,
    };
    let error = Arc::new(Mutex::new(None));
    let slot = error.clone();
    let task = tokio::spawn(async move {
        let mut send = send;
        let mut messages = OkStream(Box::pin(messages));
        let mut outbound = Outbound::new();
        let result = poll_fn(|cx| {
            outbound.poll_send(cx, &mut send, Pin::new(&mut messages), limit, compression)
        })
        .await;
        match result {
            Ok(()) => {
                let _ = send.send_data(Bytes::new(), true);
            }
            Err(SendError::Local(status)) => {
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(status);
                }
                send.send_reset(h2::Reason::CANCEL);
            }
            Err(SendError::Gone(_)) => {}
        }
    });
    Sender { task, error }
}

fn client_side(
    sender: Option<Sender>,
    deadline: Option<Instant>,
    cancel: Option<tokio_util::sync::CancellationToken>,
    on_end: Option<crate::client::balancer::OnEnd>,
) -> ClientSide {
    let (task, send_error) = match sender {
        Some(s) => (Some(s.task), Some(s.error)),
        None => (None, None),
    };
    ClientSide {
        deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        cancel: cancel.map(|token| Box::pin(token.cancelled_owned())),
        sender: task,
        send_error,
        on_end,
        active: None,
    }
}

/// The request-sending task of a streaming call, and the error it may leave behind.
struct Sender {
    task: tokio::task::JoinHandle<()>,
    error: Arc<Mutex<Option<Status>>>,
}

/// A failed single-response call has no `Response` to carry the headers the server sent before
/// failing, so they go in the status's metadata, ahead of its trailers.
fn with_headers(mut status: Status, headers: &MetadataMap) -> Status {
    if !headers.is_empty() {
        let trailers = std::mem::take(status.metadata_mut());
        let mut all = headers.clone();
        all.extend(trailers);
        *status.metadata_mut() = all;
    }
    status
}

/// Reads the one message of a unary response and the status after it. Any other number of
/// messages is a cardinality violation, UNIMPLEMENTED as grpc's `doc/statuscodes.md` lists it.
async fn single_response<T: Message + Default>(
    metadata: MetadataMap,
    stream: &mut Streaming<T>,
) -> Result<Response<T>, Status> {
    let message = stream
        .message()
        .await
        .map_err(|status| with_headers(status, &metadata))?
        .ok_or_else(|| {
            Status::unimplemented("server ended the call with OK but sent no response message")
        })?;
    if stream
        .message()
        .await
        .map_err(|status| with_headers(status, &metadata))?
        .is_some()
    {
        return Err(Status::unimplemented(
            "server sent more than one response message to a unary call",
        ));
    }
    let compressed = stream.last_message_compressed();
    let trailers = stream.take_trailers().unwrap_or_default();
    Ok(Response::from_parts(metadata, message, trailers).with_message_compressed(compressed))
}

/// Runs `call` under its deadline and cancellation token. The call is pinned by the caller and
/// borrowed here and below: moved in, each layer would keep its own copy of the whole call in
/// its state (a moved-from value keeps its space), copied once more per call.
async fn with_deadline<T, F: Future<Output = Result<T, Status>>>(
    deadline: Option<Instant>,
    cancel: Option<tokio_util::sync::CancellationToken>,
    call: Pin<&mut F>,
) -> Result<T, Status> {
    let Some(token) = cancel else {
        return within_deadline(deadline, call).await;
    };
    // Cancellation wins over anything the call could still do; dropping the call resets its
    // stream.
    let mut call = std::pin::pin!(within_deadline(deadline, call));
    let mut cancelled = std::pin::pin!(token.cancelled());
    poll_fn(|cx| {
        if cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(cancelled_by_client()));
        }
        call.as_mut().poll(cx)
    })
    .await
}

/// The status of a call its cancellation token ended.
pub(crate) fn cancelled_by_client() -> Status {
    Status::cancelled("the call was cancelled by the client")
}

async fn within_deadline<T, F: Future<Output = Result<T, Status>>>(
    deadline: Option<Instant>,
    call: Pin<&mut F>,
) -> Result<T, Status> {
    match deadline {
        None => call.await,
        Some(at) => match tokio::time::timeout_at(at, call).await {
            Ok(result) => result.map_err(|status| deadline_cause(status, Some(at.into_std()))),
            Err(_) => Err(Status::deadline_exceeded("deadline exceeded")),
        },
    }
}

/// A CANCELLED that arrives once the call's deadline has passed is the deadline: the server's
/// timer, started a little after ours, can still win the race against our own by a hair and
/// reset the stream, and the caller should hear DEADLINE_EXCEEDED either way (grpc-go does the
/// same).
pub(crate) fn deadline_cause(status: Status, deadline: Option<std::time::Instant>) -> Status {
    match deadline {
        Some(at) if status.code() == crate::Code::Cancelled && std::time::Instant::now() >= at => {
            Status::deadline_exceeded(format!("deadline exceeded ({})", status.message()))
        }
        _ => status,
    }
}

/// A stream of messages seen as a stream of `Ok` results. The user's stream is boxed once per call
/// so that it can be polled without a pin projection.
struct OkStream<S>(Pin<Box<S>>);

impl<S: Stream<Item: IntoOutgoing>> Stream for OkStream<S> {
    type Item = Result<Outgoing<<S::Item as IntoOutgoing>::Message>, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|o| o.map(|m| Ok(m.into_outgoing())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    #[test]
    fn a_reset_after_the_deadline_is_the_deadline() {
        let past = std::time::Instant::now() - Duration::from_millis(1);
        let future = std::time::Instant::now() + Duration::from_secs(60);
        let reset = || Status::cancelled("stream cancelled by the peer");
        assert_eq!(
            deadline_cause(reset(), Some(past)).code(),
            Code::DeadlineExceeded
        );
        assert_eq!(
            deadline_cause(reset(), Some(future)).code(),
            Code::Cancelled
        );
        assert_eq!(deadline_cause(reset(), None).code(), Code::Cancelled);
        let other = Status::unavailable("gone");
        assert_eq!(deadline_cause(other, Some(past)).code(), Code::Unavailable);
    }

    #[test]
    fn a_failed_single_response_keeps_the_headers_ahead_of_the_trailers() {
        let mut headers = MetadataMap::new();
        headers.append("x-header", "h").unwrap();
        let mut status = Status::internal("boom");
        status.metadata_mut().append("x-trailer", "t1").unwrap();
        status.metadata_mut().append("x-trailer", "t2").unwrap();
        let status = with_headers(status, &headers);
        let keys: Vec<_> = status.metadata().keys().collect();
        assert_eq!(keys, ["x-header", "x-trailer"]);
        assert_eq!(status.metadata().get_all("x-trailer").count(), 2);
    }
}
