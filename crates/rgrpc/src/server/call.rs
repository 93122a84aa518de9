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
use http::HeaderMap;
use prost::Message;
use tokio::sync::mpsc;

use super::conn::{grpc_headers, respond_status};
use super::{Context, Shared};
use crate::codec::{self, Encoding};
use crate::framing::FrameWriter;
use crate::http2::body::{Outbound, SendError};
use crate::metadata::MetadataMap;
use crate::request::{Request, Response};
use crate::status::{Code, Status};
use crate::streaming::Streaming;

/// One call as the server received it, before its handler runs. Generated code passes it on to
/// the call-kind functions; it has no public API of its own.
pub struct ServerCall {
    pub(crate) metadata: MetadataMap,
    pub(crate) body: RecvStream,
    pub(crate) respond: SendResponse<Bytes>,
    pub(crate) context: Context,
    pub(crate) encoding: Encoding,
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
    inner: Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>,
}

impl<T> ResponseStream<T> {
    /// Any stream of messages. An `Err` item ends the call with that status.
    pub fn new(stream: impl Stream<Item = Result<T, Status>> + Send + 'static) -> Self {
        ResponseStream {
            inner: Box::pin(stream),
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
        (
            StreamSender { tx },
            ResponseStream::new(ChannelStream { rx }),
        )
    }

    /// A stream of the items of an iterator.
    pub fn iter(items: impl IntoIterator<Item = T, IntoIter: Send + 'static>) -> Self
    where
        T: 'static,
    {
        ResponseStream::new(OkStream(crate::stream::iter(items)))
    }
}

impl<T> Stream for ResponseStream<T> {
    type Item = Result<T, Status>;

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
    tx: mpsc::Sender<Result<T, Status>>,
}

impl<T> StreamSender<T> {
    /// Sends a message, waiting while the channel is full. Fails with `CANCELLED` once the call is
    /// over (the client went away or the deadline passed).
    pub async fn send(&self, message: T) -> Result<(), Status> {
        self.tx
            .send(Ok(message))
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
    rx: mpsc::Receiver<Result<T, Status>>,
}

impl<T> Stream for ChannelStream<T> {
    type Item = Result<T, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
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
async fn run_handler<T>(
    respond: &mut SendResponse<Bytes>,
    context: &Context,
    fut: impl Future<Output = Result<T, Status>>,
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

/// Reads the one request message of a unary or server-streaming call, and its end.
async fn single_message<T: Message + Default>(requests: &mut Streaming<T>) -> Result<T, Status> {
    let message = requests
        .message()
        .await?
        .ok_or_else(|| Status::internal("the client sent no request message"))?;
    if requests.message().await?.is_some() {
        return Err(Status::internal(
            "the client sent more than one request message to a method that takes one",
        ));
    }
    Ok(message)
}

/// The handler phase shared by the four kinds: wraps the request body in a message stream, runs
/// `work` under the call's deadline and the client's cancellation, and answers a failure. Returns
/// what is left to send on success.
async fn handle<Req, R, W, Fut>(
    call: ServerCall,
    work: W,
) -> Option<(SendResponse<Bytes>, R, Context, Arc<Shared>)>
where
    W: FnOnce(MetadataMap, Streaming<Req>, Context) -> Fut,
    Fut: Future<Output = Result<R, Status>>,
{
    let ServerCall {
        metadata,
        body,
        mut respond,
        context,
        encoding,
        shared,
    } = call;
    let requests = Streaming::server(body, shared.config.max_recv_message, encoding);
    let ctx = context.clone();
    match run_handler(&mut respond, &ctx, work(metadata, requests, context)).await {
        Outcome::Finished(Ok(answer)) => Some((respond, answer, ctx, shared)),
        Outcome::Finished(Err(status)) => {
            respond_status(&mut respond, &status);
            None
        }
        Outcome::Gone => None,
    }
}

/// Runs a unary method.
pub(crate) async fn unary<Req, Resp, F, Fut>(call: ServerCall, handler: F)
where
    Req: Message + Default,
    Resp: Message,
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let answer = handle(call, |metadata, mut requests, context| async move {
        let message = single_message(&mut requests).await?;
        handler(Request::from_server(metadata, message, context)).await
    });
    if let Some((respond, response, _, shared)) = answer.await {
        send_unary(respond, response, &shared);
    }
}

/// Runs a client-streaming method.
pub(crate) async fn client_streaming<Req, Resp, F, Fut>(call: ServerCall, handler: F)
where
    Req: Message + Default,
    Resp: Message,
    F: FnOnce(Request<Streaming<Req>>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let answer = handle(call, |metadata, requests, context| {
        handler(Request::from_server(metadata, requests, context))
    });
    if let Some((respond, response, _, shared)) = answer.await {
        send_unary(respond, response, &shared);
    }
}

/// Runs a server-streaming method.
pub(crate) async fn server_streaming<Req, Resp, S, F, Fut>(call: ServerCall, handler: F)
where
    Req: Message + Default,
    Resp: Message,
    S: Stream<Item = Result<Resp, Status>>,
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<S>, Status>>,
{
    let answer = handle(call, |metadata, mut requests, context| async move {
        let message = single_message(&mut requests).await?;
        handler(Request::from_server(metadata, message, context)).await
    });
    if let Some((respond, response, context, shared)) = answer.await {
        send_stream(respond, response, &context, &shared).await;
    }
}

/// Runs a bidirectional-streaming method.
pub(crate) async fn bidi_streaming<Req, Resp, S, F, Fut>(call: ServerCall, handler: F)
where
    Req: Message + Default,
    Resp: Message,
    S: Stream<Item = Result<Resp, Status>>,
    F: FnOnce(Request<Streaming<Req>>) -> Fut,
    Fut: Future<Output = Result<Response<S>, Status>>,
{
    let answer = handle(call, |metadata, requests, context| {
        handler(Request::from_server(metadata, requests, context))
    });
    if let Some((respond, response, context, shared)) = answer.await {
        send_stream(respond, response, &context, &shared).await;
    }
}

/// Headers, the one message and OK trailers. The message is handed to h2 whole: it is bounded by
/// the send limit, and a single message is all a unary response ever holds.
fn send_unary<M: Message>(
    mut respond: SendResponse<Bytes>,
    response: Response<M>,
    shared: &Shared,
) {
    let (metadata, message, trailers) = response.into_parts();
    let frame = match codec::encode(
        &mut FrameWriter::new(),
        &message,
        shared.config.max_send_message,
    ) {
        Ok(frame) => frame,
        Err(status) => return respond_status(&mut respond, &status),
    };
    let Ok(mut send) = respond.send_response(response_head(&metadata), false) else {
        return;
    };
    if send.send_data(frame, false).is_err() {
        return;
    }
    let _ = send.send_trailers(ok_trailers(&trailers));
}

/// Headers, then messages as flow control allows, then the status.
async fn send_stream<M, S>(
    mut respond: SendResponse<Bytes>,
    response: Response<S>,
    context: &Context,
    shared: &Shared,
) where
    M: Message,
    S: Stream<Item = Result<M, Status>>,
{
    let (metadata, messages, trailers) = response.into_parts();
    let Ok(mut send) = respond.send_response(response_head(&metadata), false) else {
        return;
    };
    let mut messages = pin!(messages);
    let mut outbound = Outbound::new();
    let mut expired = context
        .deadline()
        .map(|d| Box::pin(tokio::time::sleep_until(d.into())));
    let limit = shared.config.max_send_message;
    let result = poll_fn(|cx| {
        if let Some(sleep) = expired.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(SendError::Local(Status::deadline_exceeded(
                    "deadline exceeded",
                ))));
            }
        }
        outbound.poll_send(cx, &mut send, messages.as_mut(), limit)
    })
    .await;
    match result {
        Ok(()) => {
            let _ = send.send_trailers(ok_trailers(&trailers));
        }
        Err(SendError::Local(status)) => {
            context.cancel();
            let mut headers = HeaderMap::new();
            status.write_trailers(&mut headers);
            let _ = send.send_trailers(headers);
        }
        Err(SendError::Gone(status)) => {
            tracing::debug!(%status, "client went away during a streaming response");
            context.cancel();
        }
    }
}

fn response_head(metadata: &MetadataMap) -> http::Response<()> {
    let mut head = http::Response::new(());
    let headers = head.headers_mut();
    grpc_headers(headers);
    metadata.write_to(headers);
    head
}

fn ok_trailers(trailers: &MetadataMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(1 + trailers.len());
    trailers.write_to(&mut headers);
    Status::write_code(Code::Ok, &mut headers);
    headers
}
