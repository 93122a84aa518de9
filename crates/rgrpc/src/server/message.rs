//! What a handler receives and returns: [`Request`] (a message with its metadata and the call's
//! [`Context`]) and [`Response`] (a message with the metadata to send around it).
//!
//! These are the server's halves of a call. A client builds `client::Request` and gets
//! `client::Response` back: the options only a client sets (timeout, wait-for-ready, credentials)
//! and what only a server sees (peer, deadline, inbound compression) live on different types, so
//! that setting a timeout on a request a handler received, say, does not compile:
//!
//! ```compile_fail
//! fn handler(mut request: rgrpc::Request<()>) {
//!     request.set_timeout(std::time::Duration::from_secs(1)); // a client's option
//! }
//! ```

use crate::metadata::MetadataMap;
use crate::server::Context;

/// A request as a handler receives it: the message (or stream of messages), the client's
/// metadata and the call's [`Context`].
#[derive(Debug)]
pub struct Request<T> {
    metadata: MetadataMap,
    message: T,
    context: Context,
    message_compressed: bool,
}

impl<T> Request<T> {
    /// A request with empty metadata and an empty context (no deadline, no peer): what a unit
    /// test of a handler passes in.
    pub fn new(message: T) -> Request<T> {
        Request::from_parts(MetadataMap::new(), message, Context::default())
    }

    /// A request with the given metadata and context.
    pub fn from_parts(metadata: MetadataMap, message: T, context: Context) -> Request<T> {
        Request {
            metadata,
            message,
            context,
            message_compressed: false,
        }
    }

    pub(crate) fn with_message_compressed(mut self, compressed: bool) -> Request<T> {
        self.message_compressed = compressed;
        self
    }

    message_accessors!();

    /// The metadata (headers) the client sent.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// The client's metadata, mutably (for middleware that rewrites it before the handler).
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// The call's context: deadline, peer address and certificates, cancellation, attempt count.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Whether the request message arrived compressed (unary and server-streaming calls; a
    /// stream of requests tells it per message with `Streaming::last_message_compressed`).
    pub fn message_compressed(&self) -> bool {
        self.message_compressed
    }

    /// Splits into metadata, message and context.
    pub fn into_parts(self) -> (MetadataMap, T, Context) {
        (self.metadata, self.message, self.context)
    }

    /// Keeps metadata and context, with another message.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            metadata: self.metadata,
            message: f(self.message),
            context: self.context,
            message_compressed: self.message_compressed,
        }
    }
}

/// A response as a handler returns it: the message (or stream of messages) with the header
/// metadata to send before it and the trailer metadata to send with the status.
#[derive(Debug)]
pub struct Response<T> {
    metadata: MetadataMap,
    message: T,
    trailers: MetadataMap,
    compress: Option<bool>,
}

impl<T> Response<T> {
    /// A response with empty metadata and the server's default compression.
    pub fn new(message: T) -> Response<T> {
        Response {
            metadata: MetadataMap::new(),
            message,
            trailers: MetadataMap::new(),
            compress: None,
        }
    }

    /// Compresses the response message (with the server's `send_compressed` encoding if the
    /// client accepts it, else one the client accepts) or sends it uncompressed, overriding the
    /// server's default. For a response stream, this is the default of its messages.
    pub fn set_compressed(&mut self, yes: bool) {
        self.compress = Some(yes);
    }

    /// The choice made with [`Response::set_compressed`].
    pub fn compressed(&self) -> Option<bool> {
        self.compress
    }

    message_accessors!();

    /// Header metadata, sent before the first message.
    pub fn metadata(&self) -> &MetadataMap {
        &self.metadata
    }

    /// Header metadata, mutably.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.metadata
    }

    /// Trailer metadata, sent with the final status.
    pub fn trailers(&self) -> &MetadataMap {
        &self.trailers
    }

    /// Trailer metadata, mutably.
    pub fn trailers_mut(&mut self) -> &mut MetadataMap {
        &mut self.trailers
    }

    /// Splits into header metadata, message and trailer metadata.
    pub fn into_parts(self) -> (MetadataMap, T, MetadataMap) {
        (self.metadata, self.message, self.trailers)
    }

    /// Keeps the metadata and compression choice, with another message.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            metadata: self.metadata,
            message: f(self.message),
            trailers: self.trailers,
            compress: self.compress,
        }
    }
}
