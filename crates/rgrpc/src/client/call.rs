//! The four call kinds on the client: send the request head and messages, read the response head,
//! messages and status, all under the call's deadline. Dropping the returned future or stream
//! resets the HTTP/2 stream with CANCEL, which the server sees as a cancelled call.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use h2::SendStream;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Uri, header};
use prost::Message;
use tokio::time::Instant;

use super::Channel;
use crate::codec::{self, Encoding, IntoOutgoing, Outgoing, RecvEncoding, SendCompression};
use crate::framing::FrameWriter;
use crate::http2::body::{Outbound, SendError};
use crate::metadata::names::{GRPC_ACCEPT_ENCODING, GRPC_ENCODING, GRPC_TIMEOUT};
use crate::metadata::{MetadataMap, format_timeout};
use crate::request::{Request, Response};
use crate::status::{Code, Status};
use crate::streaming::{ClientSide, Streaming};

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

/// The parts of a request that shape its head.
struct CallHead {
    metadata: MetadataMap,
    timeout: Option<Duration>,
    wait_for_ready: bool,
    compression: Encoding,
}

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
        let (head, message) = self.prepare(&path, request)?;
        let deadline = head.timeout.map(|t| Instant::now() + t);
        let call = async {
            let frame = codec::encode(
                &mut FrameWriter::new(),
                &message,
                self.inner.config.max_send_message,
                head.compression,
            )?;
            let response = self.send_whole(path, &head, frame).await?;
            let (metadata, mut stream) = self.response::<Resp>(Ok(response), None, None)?;
            single_response(metadata, &mut stream).await
        };
        with_deadline(deadline, call).await
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
        let (head, message) = self.prepare(&path, request)?;
        let deadline = head.timeout.map(|t| Instant::now() + t);
        let call = async {
            let frame = codec::encode(
                &mut FrameWriter::new(),
                &message,
                self.inner.config.max_send_message,
                head.compression,
            )?;
            let response = self.send_whole(path, &head, frame).await?;
            let (metadata, stream) = self.response::<Resp>(Ok(response), None, deadline)?;
            Ok(Response::from_parts(metadata, stream, MetadataMap::new()))
        };
        with_deadline(deadline, call).await
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
        let (head, messages) = self.prepare(&path, request)?;
        let deadline = head.timeout.map(|t| Instant::now() + t);
        let call = async {
            let (response, send) = self.start(path, &head).await?;
            let sender = self.spawn_sender(send, messages, head.compression);
            let (metadata, mut stream) =
                self.response::<Resp>(response.await, Some(sender), None)?;
            single_response(metadata, &mut stream).await
        };
        with_deadline(deadline, call).await
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
        let (head, messages) = self.prepare(&path, request)?;
        let deadline = head.timeout.map(|t| Instant::now() + t);
        let call = async {
            let (response, send) = self.start(path, &head).await?;
            let sender = self.spawn_sender(send, messages, head.compression);
            // Return before the response head: a server may wait for our first message first.
            let side = client_side(Some(sender), deadline);
            let stream =
                Streaming::client_pending(response, self.inner.config.max_recv_message, side);
            Ok(Response::new(stream))
        };
        with_deadline(deadline, call).await
    }

    /// Splits a request into its head and message, adding call credentials (never over plaintext
    /// unless allowed) and running the channel's interceptors.
    fn prepare<T>(
        &self,
        path: &PathAndQuery,
        mut request: Request<T>,
    ) -> Result<(CallHead, T), Status> {
        let config = &self.inner.config;
        if let Some(token) = request.take_bearer().or_else(|| config.bearer.clone()) {
            if self.inner.scheme != http::uri::Scheme::HTTPS && !config.allow_insecure_credentials {
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
        Ok(self.split(request))
    }

    fn split<T>(&self, request: Request<T>) -> (CallHead, T) {
        let timeout = request.timeout().or(self.inner.config.timeout);
        let wait_for_ready = request.wait_for_ready();
        let compression = request
            .compression()
            .or(self.inner.config.send_compressed)
            .unwrap_or(Encoding::Identity);
        let (metadata, message, _) = request.into_parts();
        (
            CallHead {
                metadata,
                timeout,
                wait_for_ready,
                compression,
            },
            message,
        )
    }

    /// Opens the stream and sends the request head.
    async fn start(
        &self,
        path: PathAndQuery,
        head: &CallHead,
    ) -> Result<(h2::client::ResponseFuture, SendStream<Bytes>), Status> {
        let inner = &self.inner;
        let send = inner.sender(head.wait_for_ready).await?;
        let mut send = send
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("connection lost: {e}")).with_source(e))?;
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(inner.scheme.clone());
        uri.authority = Some(inner.authority.clone());
        uri.path_and_query = Some(path);
        let uri = Uri::from_parts(uri).map_err(|e| Status::internal(format!("bad path: {e}")))?;
        let mut request = http::Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(
            GRPC_ACCEPT_ENCODING,
            HeaderValue::from_static(Encoding::accept_header()),
        );
        if head.compression != Encoding::Identity {
            headers.insert(
                GRPC_ENCODING,
                HeaderValue::from_static(head.compression.name()),
            );
        }
        if let Some(timeout) = head.timeout {
            // format_timeout yields ASCII digits and a unit letter.
            if let Ok(v) = HeaderValue::from_str(&format_timeout(timeout)) {
                headers.insert(GRPC_TIMEOUT, v);
            }
        }
        head.metadata.write_to(headers);
        let agent = match headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            Some(user) => format!("{user} {}", inner.config.user_agent),
            None => inner.config.user_agent.clone(),
        };
        if let Ok(v) = HeaderValue::from_str(&agent) {
            headers.insert(header::USER_AGENT, v);
        }
        send.send_request(request, false).map_err(Status::from_h2)
    }

    /// Sends a request held whole (unary and server-streaming calls) and waits for the response
    /// head. A stream the server refused (REFUSED_STREAM, e.g. past its concurrency limit) was
    /// never processed, so it is sent again, transparently, a few times.
    async fn send_whole(
        &self,
        path: PathAndQuery,
        head: &CallHead,
        frame: Bytes,
    ) -> Result<http::Response<h2::RecvStream>, Status> {
        const ATTEMPTS: usize = 5;
        let mut attempt = 1;
        loop {
            let (response, mut send) = self.start(path.clone(), head).await?;
            // One message, bounded by the send limit, then the end of the request.
            send.send_data(frame.clone(), true)
                .map_err(Status::from_h2)?;
            match response.await {
                Err(err)
                    if err.reason() == Some(h2::Reason::REFUSED_STREAM) && attempt < ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(err) => return Err(Status::from_h2(err)),
                Ok(response) => return Ok(response),
            }
        }
    }

    /// Checks the response head and wraps the body in a message stream.
    fn response<T>(
        &self,
        response: Result<http::Response<h2::RecvStream>, h2::Error>,
        sender: Option<Sender>,
        deadline: Option<Instant>,
    ) -> Result<(MetadataMap, Streaming<T>), Status> {
        let response = match response {
            Ok(r) => r,
            Err(err) => {
                let from_sender = sender.as_ref().and_then(|s| s.error.lock().ok()?.take());
                return Err(from_sender.unwrap_or_else(|| Status::from_h2(err)));
            }
        };
        let head = read_head(response)?;
        let stream = Streaming::client(
            head.body,
            self.inner.config.max_recv_message,
            head.encoding,
            client_side(sender, deadline),
            head.trailers_only,
        );
        Ok((head.metadata, stream))
    }

    /// Sends a request stream from its own task, so that reading responses never waits on it.
    fn spawn_sender<S, M>(&self, send: SendStream<Bytes>, messages: S, encoding: Encoding) -> Sender
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
        let limit = self.inner.config.max_send_message;
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
}

/// What a checked response head holds.
pub(crate) struct ResponseHead {
    pub(crate) metadata: MetadataMap,
    pub(crate) encoding: RecvEncoding,
    pub(crate) body: h2::RecvStream,
    /// The status block of a Trailers-Only response with an OK status.
    pub(crate) trailers_only: Option<MetadataMap>,
}

/// Checks a response head: HTTP status, content-type, and a Trailers-Only status.
pub(crate) fn read_head(response: http::Response<h2::RecvStream>) -> Result<ResponseHead, Status> {
    let (parts, body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        if let Some(Err(status)) = Status::from_trailers(&parts.headers) {
            return Err(status);
        }
        return Err(Status::new(
            Code::from_http_status(parts.status.as_u16()),
            format!(
                "server answered HTTP {} instead of a gRPC response",
                parts.status
            ),
        ));
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    if !content_type.is_some_and(|v| v.as_bytes().starts_with(b"application/grpc")) {
        return Err(Status::unknown(format!(
            "server answered with content-type {content_type:?}, not application/grpc"
        )));
    }
    let trailers_only = if body.is_end_stream() {
        match Status::from_trailers(&parts.headers) {
            Some(Ok(())) => Some(MetadataMap::from_headers(parts.headers.clone())),
            Some(Err(status)) => return Err(status),
            None => {
                return Err(Status::internal(
                    "server ended the response without a grpc-status",
                ));
            }
        }
    } else {
        None
    };
    let encoding =
        RecvEncoding::from_header(parts.headers.get(GRPC_ENCODING).map(|v| v.as_bytes()));
    Ok(ResponseHead {
        metadata: MetadataMap::from_headers(parts.headers),
        encoding,
        body,
        trailers_only,
    })
}

fn client_side(sender: Option<Sender>, deadline: Option<Instant>) -> ClientSide {
    let (task, send_error) = match sender {
        Some(s) => (Some(s.task), Some(s.error)),
        None => (None, None),
    };
    ClientSide {
        deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        sender: task,
        send_error,
    }
}

/// The request-sending task of a streaming call, and the error it may leave behind.
struct Sender {
    task: tokio::task::JoinHandle<()>,
    error: Arc<Mutex<Option<Status>>>,
}

/// Reads the one message of a unary response and the status after it.
async fn single_response<T: Message + Default>(
    metadata: MetadataMap,
    stream: &mut Streaming<T>,
) -> Result<Response<T>, Status> {
    let message = stream.message().await?.ok_or_else(|| {
        Status::internal("server ended the call with OK but sent no response message")
    })?;
    if stream.message().await?.is_some() {
        return Err(Status::internal(
            "server sent more than one response message to a unary call",
        ));
    }
    let compressed = stream.last_message_compressed();
    let trailers = stream.trailers().cloned().unwrap_or_default();
    Ok(Response::from_parts(metadata, message, trailers).with_message_compressed(compressed))
}

async fn with_deadline<T>(
    deadline: Option<Instant>,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match deadline {
        None => call.await,
        Some(at) => match tokio::time::timeout_at(at, call).await {
            Ok(result) => result,
            Err(_) => Err(Status::deadline_exceeded("deadline exceeded")),
        },
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
