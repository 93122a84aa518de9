//! What a client sends and gets back: [`Request`] (a message with its metadata and the options
//! of one call) and [`Response`] (the reply with the metadata the server sent around it).
//!
//! The server has its own `Request` and `Response` (`rgrpc::Request`, `rgrpc::Response`): per-call
//! options exist only here, and the call's context (peer, deadline as the server sees it) only
//! there, so neither can be used in the wrong role:
//!
//! ```compile_fail
//! fn caller(request: rgrpc::client::Request<()>) {
//!     let _ = request.context(); // only a handler's request has a context
//! }
//! ```

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::codec::Encoding;
use crate::metadata::MetadataMap;

/// A request a client sends: the message (or stream of messages), metadata, and options for
/// this one call that override the channel's and the service config's.
#[derive(Debug)]
pub struct Request<T> {
    metadata: MetadataMap,
    message: T,
    timeout: Option<Duration>,
    wait_for_ready: Option<bool>,
    compression: Option<Encoding>,
    bearer: Option<String>,
    cancel: Option<CancellationToken>,
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
            bearer: None,
            cancel: None,
        }
    }

    message_accessors!();

    /// The metadata (headers) to send.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// The metadata to send, mutably.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// Fails the call with `DEADLINE_EXCEEDED` if it takes longer than `timeout`, and tells the
    /// server so through `grpc-timeout`. Overrides the channel's default and the method's
    /// `timeout` from the service config.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// The per-call timeout set by [`Request::set_timeout`].
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Instead of failing at once while the channel cannot connect, wait until it can (or the
    /// deadline passes). Overrides the method's `waitForReady` from the service config.
    pub fn set_wait_for_ready(&mut self, wait: bool) {
        self.wait_for_ready = Some(wait);
    }

    /// The choice made with [`Request::set_wait_for_ready`], if any (without one, the service
    /// config decides, and without that the call fails fast).
    pub fn wait_for_ready(&self) -> Option<bool> {
        self.wait_for_ready
    }

    /// Compresses this call's messages with `encoding` (sent as `grpc-encoding`), overriding the
    /// channel's default. Single messages of a stream can opt out with
    /// `Outgoing::compressed(false)`.
    pub fn set_compression(&mut self, encoding: Encoding) {
        self.compression = Some(encoding);
    }

    /// The compression set by [`Request::set_compression`].
    pub fn compression(&self) -> Option<Encoding> {
        self.compression
    }

    /// Sends `authorization: Bearer <token>` with this call (overriding the channel's token).
    /// Refused with UNAUTHENTICATED over a plaintext channel unless the channel allows insecure
    /// credentials.
    pub fn set_bearer_token(&mut self, token: impl Into<String>) {
        self.bearer = Some(token.into());
    }

    pub(crate) fn take_bearer(&mut self) -> Option<String> {
        self.bearer.take()
    }

    /// Cancels the call when `token` is cancelled: the stream is reset (RST_STREAM `CANCEL`, which
    /// the server sees as a cancellation) and the call, or its response stream, ends with
    /// `CANCELLED`. Dropping the call's future or stream cancels it too; a token lets code that
    /// does not hold the call (another task, a handler whose own call was cancelled) end it.
    pub fn set_cancellation_token(&mut self, token: CancellationToken) {
        self.cancel = Some(token);
    }

    /// The token set with [`Request::set_cancellation_token`].
    pub fn cancellation_token(&self) -> Option<&CancellationToken> {
        self.cancel.as_ref()
    }

    pub(crate) fn take_cancellation_token(&mut self) -> Option<CancellationToken> {
        self.cancel.take()
    }

    /// Splits into metadata and message (the options are dropped).
    pub fn into_parts(self) -> (MetadataMap, T) {
        (self.metadata, self.message)
    }

    /// Keeps metadata and options, with another message.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            metadata: self.metadata,
            message: f(self.message),
            timeout: self.timeout,
            wait_for_ready: self.wait_for_ready,
            compression: self.compression,
            bearer: self.bearer,
            cancel: self.cancel,
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

/// A reply as a client receives it: the message (or stream of messages) with the server's header
/// metadata and, for a single reply, its trailers.
#[derive(Debug)]
pub struct Response<T> {
    metadata: MetadataMap,
    message: T,
    trailers: MetadataMap,
    message_compressed: bool,
}

impl<T> Response<T> {
    /// A response made of its parts: for clients stubbed in tests and for middleware that
    /// answers in place of a server.
    pub fn from_parts(metadata: MetadataMap, message: T, trailers: MetadataMap) -> Response<T> {
        Response {
            metadata,
            message,
            trailers,
            message_compressed: false,
        }
    }

    /// A response whose metadata arrives with its message stream (`Streaming::headers`).
    pub(crate) fn streaming(message: T) -> Response<T> {
        Response::from_parts(MetadataMap::new(), message, MetadataMap::new())
    }

    pub(crate) fn with_message_compressed(mut self, compressed: bool) -> Response<T> {
        self.message_compressed = compressed;
        self
    }

    message_accessors!();

    /// The header metadata the server sent.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// For a unary or client-streaming call, the trailers the server sent with its status; for a
    /// stream of replies they arrive at its end, see `Streaming::trailers`.
    pub fn trailers(&self) -> &MetadataMap {
        &self.trailers
    }

    /// Whether the reply arrived compressed (unary and client-streaming calls; a stream of
    /// replies tells it per message with `Streaming::last_message_compressed`).
    pub fn message_compressed(&self) -> bool {
        self.message_compressed
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
            message_compressed: self.message_compressed,
        }
    }
}
