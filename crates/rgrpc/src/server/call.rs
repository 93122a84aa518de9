//! The four call kinds on the server: read the request, run the handler under the call's deadline,
//! the client's cancellation and the server's shutdown, then write the response and the status.
//!
//! Streaming responses have one shape for every kind: the handler returns a stream of messages
//! ([`ResponseStream`], built from any `Stream` or from a channel). The call task pulls the next
//! message only when HTTP/2 has granted window for the previous one, so a slow client slows the
//! handler down instead of filling memory, and one task owns the HTTP/2 stream without a lock.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures_core::Stream;
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue};
use prost::Message;
use tokio::sync::mpsc;

use super::conn::{grpc_headers, respond_status};
use super::message::{Request, Response};
use super::{Context, Shared};
use crate::codec::{self, Encoding, IntoOutgoing, Outgoing, RecvEncoding, SendCompression};
use crate::framing::FrameWriter;
use crate::http2::body::{Outbound, SendError};
use crate::metadata::MetadataMap;
use crate::metadata::names::GRPC_ENCODING;
use crate::status::{Code, Status};
use crate::streaming::Streaming;

/// One call as the server received it, before its handler runs. Generated code passes it on to
/// the call-kind functions; it has no public API of its own.
pub struct ServerCall {
    pub(crate) accept_encoding: Option<HeaderValue>,
    pub(crate) metadata: MetadataMap,
    pub(crate) body: RecvStream,
    pub(crate) respond: SendResponse<Bytes>,
    pub(crate) context: Context,
    pub(crate) encoding: RecvEncoding,
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for ServerCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCall")
            .field("metadata", &self.metadata)
            .field("context", &self.context)
            .finish()
    }
}

/// The messages a handler answers with on a streaming response.
pub struct ResponseStream<T> {
    inner: Pin<Box<dyn Stream<Item = Result<Outgoing<T>, Status>> + Send + 'static>>,
}

impl<T: 'static> ResponseStream<T> {
    /// Any stream of messages (or of [`Outgoing`] messages, to choose compression per message).
    /// An `Err` item ends the call with that status.
    pub fn new<S, I>(stream: S) -> Self
    where
        S: Stream<Item = Result<I, Status>> + Send + 'static,
        I: IntoOutgoing<Message = T>,
    {
        ResponseStream {
            inner: Box::pin(IntoOutgoingStream { inner: stream }),
        }
    }

    /// A stream fed through a channel: the handler (or a task it spawns) sends messages with the
    /// [`StreamSender`]; the call ends with OK when every sender is dropped. `capacity` messages
    /// may wait in the channel; past that, `send` waits for the client to read.
    pub fn channel(capacity: usize) -> (StreamSender<T>, ResponseStream<T>)
    where
        T: Send + 'static,
    {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stream = ResponseStream {
            inner: Box::pin(ChannelStream { rx }),
        };
        (StreamSender { tx }, stream)
    }

    /// A stream of the items of an iterator.
    pub fn iter<I>(items: I) -> Self
    where
        I: IntoIterator<IntoIter: Send + 'static>,
        I::Item: IntoOutgoing<Message = T>,
    {
        ResponseStream::new(OkStream(crate::stream::iter(items)))
    }
}

impl<T> Stream for ResponseStream<T> {
    type Item = Result<Outgoing<T>, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<T> fmt::Debug for ResponseStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseStream")
    }
}

/// Sends messages into a [`ResponseStream::channel`].
pub struct StreamSender<T> {
    tx: mpsc::Sender<Result<Outgoing<T>, Status>>,
}

impl<T> StreamSender<T> {
    /// Sends a message (or an [`Outgoing`] one), waiting while the channel is full. Fails with
    /// `CANCELLED` once the call is over (the client went away or the deadline passed).
    pub async fn send(&self, message: impl IntoOutgoing<Message = T>) -> Result<(), Status> {
        self.tx
            .send(Ok(message.into_outgoing()))
            .await
            .map_err(|_| Status::cancelled("the call has ended"))
    }

    /// Ends the call with `status` as soon as the messages before it are sent.
    pub async fn fail(self, status: Status) {
        let _ = self.tx.send(Err(status)).await;
    }

    /// True once the call is over and messages would be dropped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl<T> Clone for StreamSender<T> {
    fn clone(&self) -> Self {
        StreamSender {
            tx: self.tx.clone(),
        }
    }
}

impl<T> fmt::Debug for StreamSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSender")
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

struct ChannelStream<T> {
    rx: mpsc::Receiver<Result<Outgoing<T>, Status>>,
}

impl<T> Stream for ChannelStream<T> {
    type Item = Result<Outgoing<T>, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

pin_project_lite::pin_project! {
    /// A user's stream of messages as a stream of `Outgoing` ones.
    struct IntoOutgoingStream<S> {
        #[pin]
        inner: S,
    }
}

impl<S, I> Stream for IntoOutgoingStream<S>
where
    S: Stream<Item = Result<I, Status>>,
    I: IntoOutgoing,
{
    type Item = Result<Outgoing<I::Message>, Status>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.project()
            .inner
            .poll_next(cx)
            .map(|item| item.map(|r| r.map(IntoOutgoing::into_outgoing)))
    }
}

/// Items of an `Unpin` stream as `Ok` results.
struct OkStream<S>(S);

impl<S: Stream + Unpin> Stream for OkStream<S> {
    type Item = Result<S::Item, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0).poll_next(cx).map(|item| item.map(Ok))
    }
}

/// How the handler phase of a call ended.
enum Outcome<T> {
    Finished(Result<T, Status>),
    /// The client reset the stream; there is no one left to answer.
    Gone,
}

/// Waits for `fut` unless the client resets the stream or the deadline passes first. In those
/// cases `fut` is dropped and the call's context is cancelled. A forced shutdown needs no waiter
/// per call: it drops the connection, and h2 then fails every stream's `poll_reset`.
///
/// `fut` is pinned by the caller and borrowed here: moved in, it would sit in this future beside
/// the caller's copy (a moved-from value keeps its space in an `async fn`'s state).
async fn run_handler<T>(
    respond: &mut SendResponse<Bytes>,
    context: &Context,
    fut: Pin<&mut impl Future<Output = Result<T, Status>>>,
) -> Outcome<T> {
    let deadline = context.deadline();
    let expired = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        biased;
        result = fut => return Outcome::Finished(result),
        _ = poll_fn(|cx| respond.poll_reset(cx)) => Outcome::Gone,
        () = expired => Outcome::Finished(Err(Status::deadline_exceeded("deadline exceeded"))),
    };
    context.cancel();
    outcome
}

/// Reads the one request message of a unary or server-streaming call, and its end. Any other
/// number of messages is a cardinality violation, UNIMPLEMENTED as grpc's `doc/statuscodes.md`
/// lists it (the method was called as if it had another shape).
async fn single_message<T: Message + Default>(requests: &mut Streaming<T>) -> Result<T, Status> {
    let message = requests
        .message()
        .await?
        .ok_or_else(|| Status::unimplemented("the client sent no request message"))?;
    if requests.message().await?.is_some() {
        return Err(Status::unimplemented(
            "the client sent more than one request message to a method that takes one",
        ));
    }
    Ok(message)
}

/// The handler phase shared by the four kinds: wraps the request body in a message stream, runs
/// `work` under the call's deadline and the client's cancellation, and answers a failure. Returns
/// what is left to send on success.
async fn handle<Req, R, W, Fut>(call: ServerCall, work: W) -> Result<Answer<R>, Code>
where
    W: FnOnce(MetadataMap, Streaming<Req>, Context) -> Fut,
    Fut: Future<Output = Result<R, Status>>,
{
    let ServerCall {
        accept_encoding,
        metadata,
        body,
        mut respond,
        context,
        encoding,
        shared,
    } = call;
    let requests = Streaming::server(body, shared.config.max_recv_message, encoding);
    let ctx = context.clone();
    let work = pin!(work(metadata, requests, context));
    match run_handler(&mut respond, &ctx, work).await {
        Outcome::Finished(Ok(response)) => Ok(Answer {
            respond,
            response,
            context: ctx,
            shared,
            accept_encoding,
        }),
        Outcome::Finished(Err(status)) => {
            respond_status(&mut respond, &status);
            Err(status.code())
        }
        Outcome::Gone => Err(Code::Cancelled),
    }
}

/// What is left to send once a handler succeeded.
struct Answer<R> {
    respond: SendResponse<Bytes>,
    response: R,
    context: Context,
    shared: Arc<Shared>,
    accept_encoding: Option<HeaderValue>,
}

impl<R> Answer<R> {
    /// How this call's responses are compressed: the encoding negotiated with what the client
    /// accepts, and whether messages use it unless they say otherwise.
    fn compression(&self, choice: Option<bool>) -> SendCompression {
        let preferred = self.shared.config.send_compressed;
        let by_default = choice.unwrap_or(preferred.is_some());
        let encoding = Encoding::negotiate(
            preferred,
            self.accept_encoding.as_ref().map(HeaderValue::as_bytes),
        );
        SendCompression {
            encoding,
            by_default,
        }
    }
}

/// Runs a unary method.
pub(crate) async fn unary<Req, Resp, F, Fut>(call: ServerCall, handler: F) -> Code
where
    Req: Message + Default,
    Resp: Message,
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let answer = handle(call, |metadata, mut requests, context| async move {
        let message = single_message(&mut requests).await?;
        let request = Request::from_parts(metadata, message, context)
            .with_message_compressed(requests.last_message_compressed());
        handler(request).await
    });
    match answer.await {
        Ok(answer) => send_unary(answer),
        Err(code) => code,
    }
}

/// Runs a client-streaming method.
pub(crate) async fn client_streaming<Req, Resp, F, Fut>(call: ServerCall, handler: F) -> Code
where
    Req: Message + Default,
    Resp: Message,
    F: FnOnce(Request<Streaming<Req>>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let answer = handle(call, |metadata, requests, context| {
        handler(Request::from_parts(metadata, requests, context))
    });
    match answer.await {
        Ok(answer) => send_unary(answer),
        Err(code) => code,
    }
}

/// Runs a server-streaming method.
pub(crate) async fn server_streaming<Req, Resp, S, F, Fut>(call: ServerCall, handler: F) -> Code
where
    Req: Message + Default,
    Resp: Message,
    S: Stream<Item = Result<Outgoing<Resp>, Status>>,
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<S>, Status>>,
{
    let answer = handle(call, |metadata, mut requests, context| async move {
        let message = single_message(&mut requests).await?;
        let request = Request::from_parts(metadata, message, context)
            .with_message_compressed(requests.last_message_compressed());
        handler(request).await
    });
    match answer.await {
        Ok(answer) => send_stream(answer).await,
        Err(code) => code,
    }
}

/// Runs a bidirectional-streaming method.
pub(crate) async fn bidi_streaming<Req, Resp, S, F, Fut>(call: ServerCall, handler: F) -> Code
where
    Req: Message + Default,
    Resp: Message,
    S: Stream<Item = Result<Outgoing<Resp>, Status>>,
    F: FnOnce(Request<Streaming<Req>>) -> Fut,
    Fut: Future<Output = Result<Response<S>, Status>>,
{
    let answer = handle(call, |metadata, requests, context| {
        handler(Request::from_parts(metadata, requests, context))
    });
    match answer.await {
        Ok(answer) => send_stream(answer).await,
        Err(code) => code,
    }
}

/// Headers, the one message and OK trailers. The message is handed to h2 whole: it is bounded by
/// the send limit, and a single message is all a unary response ever holds.
fn send_unary<M: Message>(answer: Answer<Response<M>>) -> Code {
    let choice = answer.response.compressed();
    // Negotiate only when compression could apply: most calls never look at the header.
    let wanted = choice.unwrap_or(answer.shared.config.send_compressed.is_some());
    let encoding = if wanted {
        answer.compression(choice).encoding
    } else {
        Encoding::Identity
    };
    let Answer {
        mut respond,
        response,
        shared,
        ..
    } = answer;
    let (metadata, message, trailers) = response.into_parts();
    let limit = shared.config.max_send_message;
    let frame = match codec::encode(&mut FrameWriter::new(), &message, limit, encoding) {
        Ok(frame) => frame,
        Err(status) => {
            respond_status(&mut respond, &status);
            return status.code();
        }
    };
    let Ok(mut send) = respond.send_response(response_head(&metadata, encoding), false) else {
        return Code::Cancelled;
    };
    if send.send_data(frame, false).is_err() {
        return Code::Cancelled;
    }
    match send.send_trailers(ok_trailers(&trailers)) {
        Ok(()) => Code::Ok,
        Err(_) => Code::Cancelled,
    }
}

/// Headers, then messages as flow control allows, then the status.
async fn send_stream<M, S>(answer: Answer<Response<S>>) -> Code
where
    M: Message,
    S: Stream<Item = Result<Outgoing<M>, Status>>,
{
    let compression = answer.compression(answer.response.compressed());
    let Answer {
        mut respond,
        response,
        context,
        shared,
        ..
    } = answer;
    let (metadata, messages, trailers) = response.into_parts();
    let head = response_head(&metadata, compression.encoding);
    let Ok(mut send) = respond.send_response(head, false) else {
        return Code::Cancelled;
    };
    let mut messages = pin!(messages);
    let mut outbound = Outbound::new();
    let mut expired = context
        .deadline()
        .map(|d| Box::pin(tokio::time::sleep_until(d.into())));
    let limit = shared.config.max_send_message;
    let result = poll_fn(|cx| {
        if let Some(sleep) = expired.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(SendError::Local(Status::deadline_exceeded(
                "deadline exceeded",
            ))));
        }
        outbound.poll_send(cx, &mut send, messages.as_mut(), limit, compression)
    })
    .await;
    match result {
        Ok(()) => {
            let _ = send.send_trailers(ok_trailers(&trailers));
            Code::Ok
        }
        Err(SendError::Local(status)) => {
            context.cancel();
            // The trailers the handler set go out with the error as they would with OK.
            let mut headers = HeaderMap::new();
            trailers.write_to(&mut headers);
            status.write_trailers(&mut headers);
            let _ = send.send_trailers(headers);
            status.code()
        }
        Err(SendError::Gone(status)) => {
            tracing::debug!(%status, "client went away during a streaming response");
            context.cancel();
            Code::Cancelled
        }
    }
}

fn response_head(metadata: &MetadataMap, encoding: Encoding) -> http::Response<()> {
    let mut head = http::Response::new(());
    let headers = head.headers_mut();
    grpc_headers(headers);
    if encoding != Encoding::Identity {
        headers.insert(GRPC_ENCODING, HeaderValue::from_static(encoding.name()));
    }
    metadata.write_to(headers);
    head
}

fn ok_trailers(trailers: &MetadataMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(1 + trailers.len());
    trailers.write_to(&mut headers);
    Status::write_code(Code::Ok, &mut headers);
    headers
}
