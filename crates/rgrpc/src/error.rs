//! `Error`: what can go wrong outside a call (binding, connecting, a bad address).
//!
//! Calls fail with a [`Status`](crate::Status); this type is for the operations around them. It is
//! opaque: ask it with the `is_*` predicates and follow `source()` for the cause. Its message names
//! the step that failed (name resolution, TCP connect, HTTP/2 handshake, bind), never a bare
//! "transport error".

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// An error outside a call. Cheap to clone: a channel keeps the last connection error to
/// report it to every call that fails for it.
#[derive(Clone)]
pub struct Error {
    kind: Kind,
    message: String,
    source: Option<Source>,
    /// Whether Display adds the source's text (a summary that already says it does not).
    shows_source: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    InvalidAddress,
    Bind,
    Resolve,
    Connect,
    Handshake,
    Timeout,
    Config,
    Unhealthy,
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
            shows_source: true,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Error {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// A summary of the same kind whose `message` already tells `self`'s text; `self` stays the
    /// source.
    pub(crate) fn summarize(&self, message: String) -> Error {
        Error {
            kind: self.kind,
            message,
            source: Some(Arc::new(self.clone())),
            shows_source: false,
        }
    }

    /// The address or URI could not be parsed or is not supported.
    pub fn is_invalid_address(&self) -> bool {
        self.kind == Kind::InvalidAddress
    }

    /// The server could not listen on its address.
    pub fn is_bind(&self) -> bool {
        self.kind == Kind::Bind
    }

    /// The host name could not be resolved.
    pub fn is_resolve(&self) -> bool {
        self.kind == Kind::Resolve
    }

    /// No TCP (or Unix socket) connection could be made.
    pub fn is_connect(&self) -> bool {
        self.kind == Kind::Connect
    }

    /// The connection was made but the HTTP/2 (or TLS) handshake failed.
    pub fn is_handshake(&self) -> bool {
        self.kind == Kind::Handshake
    }

    /// The operation took longer than its timeout.
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// The server is up but its health check says it cannot serve (gRFC A17).
    pub fn is_unhealthy(&self) -> bool {
        self.kind == Kind::Unhealthy
    }

    /// A configuration (a service config, say) was refused.
    pub fn is_config(&self) -> bool {
        self.kind == Kind::Config
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            // One level of cause is part of the message; the rest is in source().
            Some(source) if self.shows_source => write!(f, "{}: {}", self.message, source),
            _ => f.write_str(&self.message),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<Error> for crate::Status {
    fn from(err: Error) -> crate::Status {
        let code = match err.kind {
            Kind::InvalidAddress | Kind::Config => crate::Code::InvalidArgument,
            Kind::Timeout => crate::Code::DeadlineExceeded,
            _ => crate::Code::Unavailable,
        };
        crate::Status::new(code, err.to_string()).with_source(err)
    }
}
