//! The client: a `Channel` to one target, shared by clones, multiplexing calls over one HTTP/2
//! connection that it opens lazily and reopens after a failure with backoff.
//!
//! A call takes the current connection's `h2` sender (a cheap clone) and talks to the socket's
//! task directly: there is no queue or extra task between the caller and the connection. Load
//! balancing across several addresses is not handled at this level.

mod backoff;
mod call;
mod connection;

pub use call::IntoStreamingRequest;
pub(crate) use call::read_head;

use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};

use crate::codec::Encoding;
use crate::error::{Error, Kind};
use crate::http2::settings::*;
use connection::{Connector, Target};

/// A connection to one gRPC server, cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Channel {
    inner: Arc<connection::Inner>,
}

/// Settings of a channel.
#[derive(Clone)]
pub(crate) struct ChannelConfig {
    pub(crate) timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) max_recv_message: usize,
    pub(crate) max_send_message: usize,
    pub(crate) stream_window: u32,
    pub(crate) connection_window: u32,
    pub(crate) max_header_list_size: u32,
    pub(crate) user_agent: String,
    pub(crate) send_compressed: Option<Encoding>,
    pub(crate) bearer: Option<String>,
    pub(crate) allow_insecure_credentials: bool,
    pub(crate) interceptors: Vec<Arc<Interceptor>>,
    pub(crate) keepalive: Option<crate::KeepaliveConfig>,
}

/// A client interceptor: sees each call's path and metadata before it is sent, may add to the
/// metadata or fail the call with a status.
pub type Interceptor =
    dyn Fn(&str, &mut crate::MetadataMap) -> Result<(), crate::Status> + Send + Sync + 'static;

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("timeout", &self.timeout)
            .field("max_recv_message", &self.max_recv_message)
            .field("max_send_message", &self.max_send_message)
            .field("credentials", &self.bearer.is_some())
            .field("interceptors", &self.interceptors.len())
            .finish_non_exhaustive()
    }
}

impl Default for ChannelConfig {
    fn default() -> ChannelConfig {
        ChannelConfig {
            timeout: None,
            connect_timeout: None,
            max_recv_message: DEFAULT_MAX_RECV_MESSAGE,
            max_send_message: DEFAULT_MAX_SEND_MESSAGE,
            stream_window: DEFAULT_STREAM_WINDOW,
            connection_window: DEFAULT_CONNECTION_WINDOW,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
            user_agent: concat!("rgrpc-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            send_compressed: None,
            bearer: None,
            allow_insecure_credentials: false,
            interceptors: Vec::new(),
            keepalive: None,
        }
    }
}

impl Channel {
    /// Connects to `target` with default settings, waiting for the connection.
    ///
    /// Targets: `http://host:port`, `host:port`, `http://[::1]:50051`, `unix:/path/to.sock`.
    pub async fn connect(target: &str) -> Result<Channel, Error> {
        Channel::builder(target)?.connect().await
    }

    /// A builder for a channel to `target`.
    pub fn builder(target: &str) -> Result<Builder, Error> {
        Ok(Builder {
            target: Target::parse(target)?,
            config: ChannelConfig::default(),
            #[cfg(feature = "tls")]
            tls: None,
        })
    }
}

/// Settings for a [`Channel`], then `connect` or `connect_lazy`.
#[derive(Clone)]
pub struct Builder {
    target: (Target, Scheme, Authority),
    config: ChannelConfig,
    #[cfg(feature = "tls")]
    tls: Option<crate::transport::tls::ClientTlsConfig>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("target", &self.target.0)
            .field("authority", &self.target.2)
            .finish()
    }
}

impl Builder {
    /// Timeout for every call that does not set its own (default: none).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = Some(timeout);
        self
    }

    /// How long one connection attempt may take (default: the backoff's minimum of 20 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = Some(timeout);
        self
    }

    /// Largest response message accepted (default 4 MiB).
    pub fn max_recv_message_size(mut self, bytes: usize) -> Self {
        self.config.max_recv_message = bytes;
        self
    }

    /// Largest request message sent (default 4 MiB).
    pub fn max_send_message_size(mut self, bytes: usize) -> Self {
        self.config.max_send_message = bytes;
        self
    }

    /// HTTP/2 receive window of each call (default 1 MiB).
    pub fn initial_stream_window_size(mut self, bytes: u32) -> Self {
        self.config.stream_window = bytes;
        self
    }

    /// HTTP/2 receive window of the connection (default 2 MiB).
    pub fn initial_connection_window_size(mut self, bytes: u32) -> Self {
        self.config.connection_window = bytes;
        self
    }

    /// Compresses every call's request messages with `encoding` unless the call sets its own
    /// (default: uncompressed). Compressed responses are accepted in every built-in encoding.
    pub fn send_compressed(mut self, encoding: Encoding) -> Self {
        self.config.send_compressed = Some(encoding);
        self
    }

    /// Sends `authorization: Bearer <token>` (an OAuth2 access token, say) with every call. Over a
    /// plaintext channel calls then fail with UNAUTHENTICATED, unless
    /// [`Builder::allow_insecure_credentials`] says that sending the token in clear is wanted.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.config.bearer = Some(token.into());
        self
    }

    /// Allows call credentials over a plaintext (`http://`) channel, e.g. to a sidecar on
    /// loopback. Off by default: a token sent in clear is a mistake users must opt into.
    pub fn allow_insecure_credentials(mut self, allow: bool) -> Self {
        self.config.allow_insecure_credentials = allow;
        self
    }

    /// Sends an HTTP/2 PING every `time` and drops the connection when the answer takes longer
    /// than `timeout`: calls on it fail with UNAVAILABLE and the next call reconnects. Off by
    /// default. Servers limit how often clients may ping (grpc's default minimum is 5 minutes);
    /// stay above what the server allows.
    pub fn keepalive(mut self, time: Duration, timeout: Duration) -> Self {
        self.config.keepalive = Some(crate::KeepaliveConfig::new(time, timeout));
        self
    }

    /// Adds an interceptor run before every call, in the order added.
    pub fn interceptor<F>(mut self, f: F) -> Self
    where
        F: Fn(&str, &mut crate::MetadataMap) -> Result<(), crate::Status> + Send + Sync + 'static,
    {
        self.config.interceptors.push(Arc::new(f));
        self
    }

    /// TLS settings: trusted CAs, the server name to verify, a client identity for mutual TLS.
    /// Turns an `http://` target into a TLS one.
    #[cfg(feature = "tls")]
    pub fn tls_config(
        mut self,
        tls: crate::transport::tls::ClientTlsConfig,
    ) -> Result<Self, Error> {
        if let Some(domain) = tls.domain() {
            let port = self.target.2.port_u16().unwrap_or(443);
            self.target.2 = format!("{domain}:{port}")
                .parse()
                .map_err(|_| invalid_target(domain, "not a valid authority"))?;
        }
        self.target.1 = Scheme::HTTPS;
        self.tls = Some(tls);
        Ok(self)
    }

    /// Replaces the `user-agent` sent with every call.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.config.user_agent = user_agent.into();
        self
    }

    /// Connects now, failing if the first attempt fails.
    pub async fn connect(self) -> Result<Channel, Error> {
        let channel = self.build()?;
        channel.inner.connect_now().await?;
        Ok(channel)
    }

    /// A channel that connects on its first call. Fails only on a TLS configuration that cannot
    /// be built (an unusable certificate, say).
    pub fn connect_lazy(self) -> Result<Channel, Error> {
        self.build()
    }

    fn build(self) -> Result<Channel, Error> {
        let (target, scheme, authority) = self.target;
        #[cfg(feature = "tls")]
        let tls = if scheme == Scheme::HTTPS {
            let config = self.tls.unwrap_or_default();
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = crate::transport::tls::server_name(host)?;
            Some((config.connector()?, name))
        } else {
            None
        };
        let connector = Connector {
            target,
            #[cfg(feature = "tls")]
            tls,
        };
        Ok(Channel {
            inner: Arc::new(connection::Inner::new(
                connector,
                scheme,
                authority,
                self.config,
            )),
        })
    }
}

pub(crate) fn invalid_target(target: &str, why: &str) -> Error {
    Error::new(
        Kind::InvalidAddress,
        format!("invalid target {target:?}: {why}"),
    )
}
