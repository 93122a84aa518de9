//! The client: a [`Channel`] to a target, shared by clones, spreading calls over the servers
//! its resolver finds.
//!
//! ```text
//! target ─▶ resolver ─▶ addresses + service config ─▶ balancer ─▶ subchannels ─▶ picker
//! target.rs resolver/                                 balancer/    subchannel.rs   (per call)
//! ```
//!
//! A call asks the current picker for a READY subchannel (no lock, no queueing task between the
//! caller and the socket), runs an attempt on its connection (`call/attempt.rs`), and the retry
//! layer (`call/retry.rs`) decides whether another attempt follows. The control task
//! (`control.rs`) runs the resolver and the balancer one event at a time.

mod backoff;
pub mod balancer;
pub mod blocking;
pub(crate) mod call;
mod connector;
pub(crate) mod control;
mod health;
mod request;
pub mod resolver;
mod rng;
pub mod service_config;
pub(crate) mod subchannel;
pub mod target;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use balancer::ConnectivityState;
pub use call::IntoStreamingRequest;
pub use request::{IntoRequest, Request, Response};
pub use resolver::{DnsOptions, ManualResolver};
pub use service_config::ServiceConfig;
pub use target::Target;

use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::codec::Encoding;
use crate::error::{Error, Kind};
use crate::http2::settings::*;
use call::retry::{DEFAULT_CHANNEL_BUFFER, DEFAULT_PER_CALL_BUFFER};
use target::invalid_target;

/// A channel to a target: its resolver, balancer and connections. Cheap to clone; clones share
/// everything. The last clone dropped closes it.
#[derive(Clone, Debug)]
pub struct Channel {
    shared: Arc<control::Shared>,
    _owner: Arc<Owner>,
}

/// Stops the control task when the last clone of a channel is dropped.
#[derive(Debug)]
struct Owner(#[allow(dead_code)] DropGuard);

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
    pub(crate) per_call_buffer: usize,
    pub(crate) channel_buffer: usize,
    pub(crate) idle_timeout: Option<Duration>,
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
            per_call_buffer: DEFAULT_PER_CALL_BUFFER,
            channel_buffer: DEFAULT_CHANNEL_BUFFER,
            // grpc-go's default.
            idle_timeout: Some(Duration::from_secs(30 * 60)),
        }
    }
}

impl Channel {
    /// Connects to `target` with default settings, waiting until it is READY (or has failed).
    ///
    /// Targets (grpc's `doc/naming.md`): `host:port`, `http://host:port`, `https://host:port`,
    /// `dns:[//dns-server/]host[:port]`, `unix:path`, `unix:///absolute/path`,
    /// `unix-abstract:name`, `ipv4:addr:port[,addr:port...]`, `ipv6:[addr]:port[,...]`, and
    /// the schemes of resolvers registered with [`Builder::resolver`].
    pub async fn connect(target: &str) -> Result<Channel, Error> {
        Channel::builder(target)?.connect().await
    }

    /// A builder for a channel to `target`.
    pub fn builder(target: &str) -> Result<Builder, Error> {
        Ok(Builder {
            raw_target: target.to_owned(),
            target: Target::parse(target)?,
            config: ChannelConfig::default(),
            resolvers: resolver::Registry::default(),
            balancers: balancer::Registry::default(),
            default_service_config: None,
            authority: None,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "fuzzing")]
            custom_connector: None,
        })
    }

    /// The channel's connectivity state; with `try_to_connect`, an IDLE channel starts
    /// connecting.
    pub fn state(&self, try_to_connect: bool) -> ConnectivityState {
        self.shared.state(try_to_connect)
    }

    /// Waits until the state differs from `from`, and returns the new state.
    pub async fn wait_for_state_change(&self, from: ConnectivityState) -> ConnectivityState {
        self.shared.changed_from(from).await
    }

    /// The target this channel was built for.
    pub fn target(&self) -> &Target {
        &self.shared.target
    }
}

/// Settings for a [`Channel`], then `connect` or `connect_lazy`.
#[derive(Clone)]
pub struct Builder {
    raw_target: String,
    target: Target,
    config: ChannelConfig,
    resolvers: resolver::Registry,
    balancers: balancer::Registry,
    default_service_config: Option<String>,
    authority: Option<String>,
    #[cfg(feature = "tls")]
    tls: Option<crate::transport::tls::ClientTlsConfig>,
    /// Replaces the transport (the fuzz targets' in-memory pipe).
    #[cfg(feature = "fuzzing")]
    pub(crate) custom_connector: Option<Arc<dyn subchannel::Connect>>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("target", &self.raw_target)
            .field("resolvers", &self.resolvers)
            .field("balancers", &self.balancers)
            .finish_non_exhaustive()
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

    /// Largest request message sent (default: no limit); with a limit set, a larger request fails
    /// with `RESOURCE_EXHAUSTED` before anything is sent.
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
            let port = self
                .target
                .default_authority()
                .parse::<Authority>()
                .ok()
                .and_then(|a| a.port_u16())
                .unwrap_or(443);
            let authority = format!("{domain}:{port}");
            authority
                .parse::<Authority>()
                .map_err(|_| invalid_target(domain, "not a valid authority"))?;
            self.authority = Some(authority);
        }
        self.tls = Some(tls);
        Ok(self)
    }

    /// Registers a resolver for its scheme (replacing a built-in one of the same scheme), so
    /// that targets like `myscheme:///name` resolve through it.
    pub fn resolver(mut self, builder: impl resolver::ResolverBuilder) -> Self {
        self.resolvers.add(Arc::new(builder));
        self
    }

    /// Settings of the DNS resolver: minimum re-resolution interval, TXT service configs.
    pub fn dns_options(mut self, options: DnsOptions) -> Self {
        self.resolvers.dns = options;
        self
    }

    /// Registers a load-balancing policy, which a service config can then name in
    /// `loadBalancingConfig`.
    pub fn balancer(mut self, builder: impl balancer::BalancerBuilder) -> Self {
        self.balancers.add(Arc::new(builder));
        self
    }

    /// The service config (gRFC A2 JSON) used while the resolver provides none: load balancing,
    /// per-method timeouts, wait-for-ready, message limits, retry and hedging policies, retry
    /// throttling. Checked when the channel is built.
    pub fn default_service_config(mut self, json: impl Into<String>) -> Self {
        self.default_service_config = Some(json.into());
        self
    }

    /// Largest request a call keeps to replay it on a retry (default 256 KiB); a larger one
    /// is committed at once and not retried.
    pub fn per_call_retry_buffer(mut self, bytes: usize) -> Self {
        self.config.per_call_buffer = bytes;
        self
    }

    /// Closes the channel's connections and stops resolving after `idle` without calls (default
    /// 30 minutes, as grpc-go; zero never idles). The next call reconnects.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.config.idle_timeout = Some(idle);
        self
    }

    /// Request bytes all calls of the channel may keep for retries at once (default 16 MiB).
    pub fn retry_buffer(mut self, bytes: usize) -> Self {
        self.config.channel_buffer = bytes;
        self
    }

    /// The `:authority` calls carry, instead of the one the target implies.
    pub fn authority(mut self, authority: impl Into<String>) -> Result<Self, Error> {
        let authority = authority.into();
        authority
            .parse::<Authority>()
            .map_err(|_| invalid_target(&authority, "not a valid authority"))?;
        self.authority = Some(authority);
        Ok(self)
    }

    /// Replaces the `user-agent` sent with every call.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.config.user_agent = user_agent.into();
        self
    }

    /// Builds the channel and waits until it is READY; fails with the reason if it reaches
    /// TRANSIENT_FAILURE first (every address failed, or resolution did).
    pub async fn connect(self) -> Result<Channel, Error> {
        let channel = self.build()?;
        let mut state = channel.state(false);
        loop {
            match state {
                ConnectivityState::Ready => return Ok(channel),
                ConnectivityState::TransientFailure | ConnectivityState::Shutdown => {
                    return Err(channel.shared.last_error().unwrap_or_else(|| {
                        Error::new(
                            Kind::Connect,
                            format!("cannot connect to {}", channel.target()),
                        )
                    }));
                }
                // At the start, or again when a connection was lost before this loop saw it
                // READY: ask to connect, or nothing ever will.
                ConnectivityState::Idle => {
                    channel.shared.exit_idle();
                    state = channel.wait_for_state_change(state).await;
                }
                ConnectivityState::Connecting => {
                    state = channel.wait_for_state_change(state).await;
                }
            }
        }
    }

    /// A channel that connects on its first call. Fails only on a configuration that cannot be
    /// used (a target without a resolver, a bad default service config, an unusable
    /// certificate).
    pub fn connect_lazy(self) -> Result<Channel, Error> {
        self.build()
    }

    fn build(self) -> Result<Channel, Error> {
        let target = self.target;
        let resolver = self.resolvers.builder(target.scheme()).ok_or_else(|| {
            invalid_target(
                &self.raw_target,
                &format!(
                    "no resolver for the scheme {:?}; register one with Builder::resolver",
                    target.scheme()
                ),
            )
        })?;
        let default_config = self
            .default_service_config
            .as_deref()
            .map(|json| ServiceConfig::parse(json, &self.balancers))
            .transpose()
            .map_err(|why| Error::new(Kind::Config, format!("default service config: {why}")))?;
        let authority_text = self
            .authority
            .clone()
            .unwrap_or_else(|| target.default_authority());
        let authority: Authority = authority_text.parse().map_err(|_| {
            invalid_target(
                &self.raw_target,
                "no valid :authority; set one with Builder::authority",
            )
        })?;
        #[cfg(feature = "tls")]
        let tls_wanted = target.is_tls() || self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let tls_wanted = false;
        let scheme = if tls_wanted {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        #[cfg(feature = "tls")]
        let tls = if tls_wanted {
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
        let config = self.config;
        let connector = Arc::new(connector::TransportConnector {
            settings: crate::http2::handshake::ClientSettings {
                stream_window: config.stream_window,
                connection_window: config.connection_window,
                max_header_list_size: config.max_header_list_size,
                keepalive: config
                    .keepalive
                    .map(crate::http2::handshake::ClientKeepalive::new),
            },
            connect_timeout: config.connect_timeout,
            #[cfg(feature = "tls")]
            tls,
        });
        #[allow(unused_mut)]
        let mut connector: Arc<dyn subchannel::Connect> = Arc::new(connector);
        #[cfg(feature = "fuzzing")]
        if let Some(custom) = self.custom_connector {
            connector = custom;
        }
        let stop = CancellationToken::new();
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let start = control::Start {
            events,
            resolver,
            balancers: self.balancers,
            connector,
            default_config,
            stop: stop.clone(),
        };
        let shared = control::Shared::new(config, scheme, authority, target, events_tx, start);
        Ok(Channel {
            shared: Arc::new(shared),
            _owner: Arc::new(Owner(stop.drop_guard())),
        })
    }
}
