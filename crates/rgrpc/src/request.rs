//! `Request` and `Response`: a message with its metadata, and for requests the per-call options a
//! client sets (timeout, wait-for-ready) and the context a server sees (deadline, peer, cancellation).

use std::time::Duration;

use crate::codec::Encoding;
use crate::metadata::MetadataMap;
use crate::server::Context;

/// A request message with its metadata.
///
/// A client fills in the message, metadata and per-call options; a server handler receives it
/// with a [`Context`].
#[derive(Debug)]
pub struct Request<T> {
    metadata: MetadataMap,
    message: T,
    timeout: Option<Duration>,
    wait_for_ready: Option<bool>,
    compression: Option<Encoding>,
    message_compressed: bool,
    bearer: Option<String>,
    context: Context,
}

impl<T> Request<T> {
    /// A request with empty metadata and no per-call options.
    pub fn new(message: T) -> Request<T> {
        Request {
            metadata: MetadataMap::new(),
            message,
            timeout: None,
            wait_for_ready: None,
            compression: None,
            message_compressed: false,
            bearer: None,
            context: Context::default(),
        }
    }

    pub(crate) fn from_server(metadata: MetadataMap, message: T, context: Context) -> Request<T> {
        Request {
            metadata,
            message,
            timeout: None,
            wait_for_ready: None,
            compression: None,
            message_compressed: false,
            bearer: None,
            context,
        }
    }

    pub(crate) fn with_message_compressed(mut self, compressed: bool) -> Request<T> {
        self.message_compressed = compressed;
        self
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// Takes the message out.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// Request metadata (headers).
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// Request metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// Client side: fails the call with `DEADLINE_EXCEEDED` if it takes longer than `timeout`,
    /// and tells the server so through `grpc-timeout`.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// The per-call timeout set by [`Request::set_timeout`].
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Client side: instead of failing at once while the channel cannot connect, wait until it
    /// can (or the deadline passes).
    /// This overrides the method's `waitForReady` from the service config.
    pub fn set_wait_for_ready(&mut self, wait: bool) {
        self.wait_for_ready = Some(wait);
    }

    /// Whether [`Request::set_wait_for_ready`] is on.
    pub fn wait_for_ready(&self) -> bool {
        self.wait_for_ready.unwrap_or(false)
    }

    /// The explicit wait-for-ready choice, if the caller made one.
    pub(crate) fn wait_for_ready_choice(&self) -> Option<bool> {
        self.wait_for_ready
    }

    /// Client side: compresses this call's messages with `encoding` (sent as `grpc-encoding`),
    /// overriding the channel's default. Single messages of a stream can opt out with
    /// `Outgoing::compressed(false)`.
    pub fn set_compression(&mut self, encoding: Encoding) {
        self.compression = Some(encoding);
    }

    /// Client side: sends `authorization: Bearer <token>` with this call (overriding the channel's
    /// token). Refused with UNAUTHENTICATED over a plaintext channel unless the channel allows
    /// insecure credentials.
    pub fn set_bearer_token(&mut self, token: impl Into<String>) {
        self.bearer = Some(token.into());
    }

    pub(crate) fn take_bearer(&mut self) -> Option<String> {
        self.bearer.take()
    }

    /// The compression set by [`Request::set_compression`].
    pub fn compression(&self) -> Option<Encoding> {
        self.compression
    }

    /// Server side: whether the request message arrived compressed (unary and server-streaming
    /// calls; a stream of requests tells it per message with `Streaming::last_message_compressed`).
    pub fn message_compressed(&self) -> bool {
        self.message_compressed
    }

    /// Server side: the call's context (deadline, peer address, cancellation). On a request that a
    /// client builds, an empty context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Splits into metadata, message and context.
    pub fn into_parts(self) -> (MetadataMap, T, Context) {
        (self.metadata, self.message, self.context)
    }

    /// Keeps metadata, options and context, with another message.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            metadata: self.metadata,
            message: f(self.message),
            timeout: self.timeout,
            wait_for_ready: self.wait_for_ready,
            compression: self.compression,
            message_compressed: self.message_compressed,
            bearer: self.bearer,
            context: self.context,
        }
    }
}

/// Anything a generated client method accepts as a request: a message or a [`Request`].
pub trait IntoRequest<T> {
    /// Wraps the value in a request.
    fn into_request(self) -> Request<T>;
}

impl<T> IntoRequest<T> for T {
    fn into_request(self) -> Request<T> {
        Request::new(self)
    }
}

impl<T> IntoRequest<T> for Request<T> {
    fn into_request(self) -> Request<T> {
        self
    }
}

/// A response message with its header and trailer metadata.
#[derive(Debug)]
pub struct Response<T> {
    metadata: MetadataMap,
    message: T,
    trailers: MetadataMap,
    compress: Option<bool>,
    message_compressed: bool,
}

impl<T> Response<T> {
    /// A response with empty metadata.
    pub fn new(message: T) -> Response<T> {
        Response {
            metadata: MetadataMap::new(),
            message,
            trailers: MetadataMap::new(),
            compress: None,
            message_compressed: false,
        }
    }

    pub(crate) fn from_parts(metadata: MetadataMap, message: T, trailers: MetadataMap) -> Self {
        Response {
            metadata,
            message,
            trailers,
            compress: None,
            message_compressed: false,
        }
    }

    pub(crate) fn with_message_compressed(mut self, compressed: bool) -> Self {
        self.message_compressed = compressed;
        self
    }

    /// Client side: whether the response message arrived compressed (unary and client-streaming
    /// calls; a response stream tells it per message with `Streaming::last_message_compressed`).
    pub fn message_compressed(&self) -> bool {
        self.message_compressed
    }

    /// Server side: compresses the response message (with the server's `send_compressed`
    /// encoding if the client accepts it, else one the client accepts) or sends it uncompressed,
    /// overriding the server's default. For a response stream, this is the default of its messages.
    pub fn set_compressed(&mut self, yes: bool) {
        self.compress = Some(yes);
    }

    /// The choice made with [`Response::set_compressed`].
    pub fn compressed(&self) -> Option<bool> {
        self.compress
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// Takes the message out.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// Response header metadata.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// Response header metadata, mutably (server side: sent before the first message).
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// Trailer metadata. On the client, for a unary or client-streaming call, the trailers the
    /// server sent; for a streaming response, see `Streaming::trailers`.
    pub fn trailers(&self) -> &MetadataMap {
        &self.trailers
    }

    /// Trailer metadata, mutably (server side: sent with the final status).
    pub fn trailers_mut(&mut self) -> &mut MetadataMap {
        &mut self.trailers
    }

    /// Splits into header metadata, message and trailer metadata.
    pub fn into_parts(self) -> (MetadataMap, T, MetadataMap) {
        (self.metadata, self.message, self.trailers)
    }

    /// Keeps the metadata, with another message.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            metadata: self.metadata,
            message: f(self.message),
            trailers: self.trailers,
            compress: self.compress,
            message_compressed: self.message_compressed,
        }
    }
}
