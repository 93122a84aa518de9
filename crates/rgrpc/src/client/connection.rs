//! The connection behind a channel: its states (idle, connecting, ready, failed), connecting over
//! TCP or a Unix socket, and the task that drives HTTP/2 until the connection ends.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use bytes::Bytes;
use h2::client::SendRequest;
use http::uri::{Authority, Scheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::Notify;

use super::ChannelConfig;
use super::backoff::{Backoff, BackoffConfig};
use super::invalid_target;
use crate::error::{Error, Kind};
use crate::status::Status;

/// Where a channel connects.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl Target {
    /// Parses `http://host:port`, `host:port` or `unix:path`, with the scheme and authority the
    /// requests will carry.
    pub(crate) fn parse(target: &str) -> Result<(Target, Scheme, Authority), Error> {
        if let Some(path) = target.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(invalid_target(target, "the socket path is empty"));
            }
            return Ok((
                Target::Unix(PathBuf::from(path)),
                Scheme::HTTP,
                Authority::from_static("localhost"),
            ));
        }
        let (rest, scheme) = if let Some(rest) = target.strip_prefix("http://") {
            (rest, Scheme::HTTP)
        } else if let Some(rest) = target.strip_prefix("https://") {
            if !cfg!(feature = "tls") {
                return Err(invalid_target(
                    target,
                    "https needs rgrpc's `tls` feature; build with it or use http://",
                ));
            }
            (rest, Scheme::HTTPS)
        } else if target.contains("://") {
            return Err(invalid_target(
                target,
                "the scheme must be http:// or unix:",
            ));
        } else {
            (target, Scheme::HTTP)
        };
        let rest = rest.trim_end_matches('/');
        let authority: Authority = rest
            .parse()
            .map_err(|_| invalid_target(target, "expected host:port"))?;
        let port = authority
            .port_u16()
            .ok_or_else(|| invalid_target(target, "the port is missing (host:port)"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid_target(target, "the host is missing"));
        }
        Ok((Target::Tcp { host, port }, scheme, authority))
    }
}

/// Opens transport connections to the target.
pub(crate) struct Connector {
    pub(crate) target: Target,
    /// TLS for `https://` targets, and the name the server certificate must carry.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
}

/// The shared state of a channel.
pub(crate) struct Inner {
    connector: Connector,
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    pub(crate) config: ChannelConfig,
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    phase: Phase,
    backoff: Backoff,
    generation: u64,
}

enum Phase {
    Idle,
    Connecting,
    Ready {
        send: SendRequest<Bytes>,
        generation: u64,
    },
    Failed {
        error: String,
        retry_at: Instant,
    },
}

impl Inner {
    pub(crate) fn new(
        connector: Connector,
        scheme: Scheme,
        authority: Authority,
        config: ChannelConfig,
    ) -> Inner {
        Inner {
            connector,
            scheme,
            authority,
            config,
            state: Mutex::new(State {
                phase: Phase::Idle,
                backoff: Backoff::new(BackoffConfig::default()),
                generation: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is left consistent before every unlock, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects now (for `Builder::connect`), reporting the first attempt's error.
    pub(crate) async fn connect_now(self: &Arc<Self>) -> Result<(), Error> {
        {
            let mut state = self.lock();
            if !matches!(state.phase, Phase::Idle) {
                return Ok(());
            }
            state.phase = Phase::Connecting;
        }
        self.attempt().await
    }

    /// The sender of a ready connection, connecting first when needed. Without `wait_for_ready`
    /// a call fails with UNAVAILABLE while the channel is in backoff after a failure.
    pub(crate) async fn sender(
        self: &Arc<Self>,
        wait_for_ready: bool,
    ) -> Result<SendRequest<Bytes>, Status> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let retry_at = {
                let mut state = self.lock();
                match &state.phase {
                    Phase::Ready { send, .. } => return Ok(send.clone()),
                    Phase::Connecting => None,
                    Phase::Idle => {
                        state.phase = Phase::Connecting;
                        self.spawn_attempt();
                        None
                    }
                    Phase::Failed { error, retry_at } => {
                        if Instant::now() >= *retry_at {
                            state.phase = Phase::Connecting;
                            self.spawn_attempt();
                            None
                        } else if !wait_for_ready {
                            return Err(Status::unavailable(error.clone()));
                        } else {
                            Some(*retry_at)
                        }
                    }
                }
            };
            match retry_at {
                Some(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    fn spawn_attempt(self: &Arc<Self>) {
        let inner = self.clone();
        tokio::spawn(async move {
            let _ = inner.attempt().await;
        });
    }

    /// One connection attempt; the phase must be `Connecting`.
    async fn attempt(self: &Arc<Self>) -> Result<(), Error> {
        let timeout = self
            .config
            .connect_timeout
            .unwrap_or_else(|| self.lock().backoff.connect_timeout());
        let result = match tokio::time::timeout(timeout, self.open()).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                Kind::Timeout,
                format!(
                    "connecting to {} timed out after {timeout:?}",
                    self.authority
                ),
            )),
        };
        if let Err(err) = &result {
            let mut state = self.lock();
            let delay = state.backoff.next_delay();
            state.phase = Phase::Failed {
                error: err.to_string(),
                retry_at: Instant::now() + delay,
            };
            tracing::debug!(target = %self.authority, error = %err, ?delay, "connection failed");
        }
        self.changed.notify_waiters();
        result
    }

    async fn open(self: &Arc<Self>) -> Result<(), Error> {
        match &self.connector.target {
            Target::Tcp { host, port } => {
                let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), *port))
                    .await
                    .map_err(|e| {
                        Error::new(Kind::Resolve, format!("cannot resolve host {host:?}"))
                            .with_source(e)
                    })?
                    .collect();
                let mut last = None;
                for addr in addrs {
                    match TcpStream::connect(addr).await {
                        Ok(io) => {
                            let _ = io.set_nodelay(true);
                            return self.secure_then_handshake(io).await;
                        }
                        Err(e) => last = Some((addr, e)),
                    }
                }
                Err(match last {
                    Some((addr, e)) => Error::new(
                        Kind::Connect,
                        format!("TCP connect to {addr} (host {host}) failed"),
                    )
                    .with_source(e),
                    None => Error::new(Kind::Resolve, format!("host {host:?} has no address")),
                })
            }
            Target::Unix(path) => {
                let io = UnixStream::connect(path).await.map_err(|e| {
                    Error::new(
                        Kind::Connect,
                        format!("connect to Unix socket {} failed", path.display()),
                    )
                    .with_source(e)
                })?;
                self.secure_then_handshake(io).await
            }
        }
    }

    /// TLS first, when the channel has it, then the HTTP/2 handshake.
    async fn secure_then_handshake<IO>(self: &Arc<Self>, io: IO) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        #[cfg(feature = "tls")]
        if let Some((connector, name)) = &self.connector.tls {
            let tls = connector.connect(name.clone(), io).await.map_err(|e| {
                Error::new(
                    Kind::Handshake,
                    format!("TLS handshake with {} failed", self.authority),
                )
                .with_source(e)
            })?;
            let (_, session) = tls.get_ref();
            if !crate::transport::tls::negotiated_h2(session.alpn_protocol()) {
                return Err(Error::new(
                    Kind::Handshake,
                    format!(
                        "{} did not agree to HTTP/2 over TLS (ALPN h2)",
                        self.authority
                    ),
                ));
            }
            return self.handshake(tls).await;
        }
        self.handshake(io).await
    }

    /// The HTTP/2 handshake; on success the channel is ready and a task drives the connection.
    async fn handshake<IO>(self: &Arc<Self>, io: IO) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = &self.config;
        let (send, mut conn) = h2::client::Builder::new()
            .enable_push(false)
            // Until the server's SETTINGS arrive, assume the common floor of 100 streams rather
            // than opening streams it would refuse.
            .initial_max_send_streams(100)
            .initial_window_size(config.stream_window)
            .initial_connection_window_size(config.connection_window)
            .max_header_list_size(config.max_header_list_size)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| {
                Error::new(
                    Kind::Handshake,
                    format!("HTTP/2 handshake with {} failed", self.authority),
                )
                .with_source(e)
            })?;
        let generation = {
            let mut state = self.lock();
            state.generation += 1;
            state.backoff.reset();
            state.phase = Phase::Ready {
                send,
                generation: state.generation,
            };
            state.generation
        };
        let weak = Arc::downgrade(self);
        let keepalive = self.config.keepalive.zip(conn.ping_pong());
        tokio::spawn(async move {
            let alive = async {
                match keepalive {
                    Some((config, pinger)) => crate::http2::keepalive::run(pinger, config).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ended = conn => if let Err(err) = ended {
                    tracing::debug!(error = %err, "connection ended with an error");
                },
                why = alive => tracing::debug!(reason = %why, "dropping the connection"),
            }
            Inner::connection_ended(weak, generation);
        });
        Ok(())
    }

    /// The connection of `generation` is gone: the channel goes idle and reconnects on demand.
    fn connection_ended(weak: Weak<Inner>, generation: u64) {
        let Some(inner) = weak.upgrade() else { return };
        let mut state = inner.lock();
        if matches!(state.phase, Phase::Ready { generation: g, .. } if g == generation) {
            state.phase = Phase::Idle;
        }
        drop(state);
        inner.changed.notify_waiters();
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match &self.lock().phase {
            Phase::Idle => "idle",
            Phase::Connecting => "connecting",
            Phase::Ready { .. } => "ready",
            Phase::Failed { .. } => "transient failure",
        };
        f.debug_struct("Channel")
            .field("target", &self.connector.target)
            .field("state", &phase)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let (t, _, a) = Target::parse("http://localhost:50051").unwrap();
        assert!(matches!(t, Target::Tcp { ref host, port: 50051 } if host == "localhost"));
        assert_eq!(a.as_str(), "localhost:50051");
        let (t, _, _) = Target::parse("[::1]:80").unwrap();
        assert!(matches!(t, Target::Tcp { ref host, port: 80 } if host == "::1"));
        let (t, _, _) = Target::parse("unix:///tmp/x.sock").unwrap();
        assert!(matches!(t, Target::Unix(ref p) if p.to_str() == Some("/tmp/x.sock")));
        let (t, _, _) = Target::parse("unix:rel.sock").unwrap();
        assert!(matches!(t, Target::Unix(ref p) if p.to_str() == Some("rel.sock")));
        for bad in ["http://nohost", "ftp://a:1", "unix:", "http://:80", ""] {
            let err = Target::parse(bad).unwrap_err();
            assert!(err.is_invalid_address(), "{bad}: {err}");
        }
    }
}
