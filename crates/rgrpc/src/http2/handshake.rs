//! The HTTP/2 handshake for both roles, with the settings each side announces, and the task
//! that drives a client connection until it ends.
//!
//! This module starts connections; it does not decide when to open or close them.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Error, Kind};
use crate::server::ServerConfig;

/// Calls a client connection's driver lets finish per round of reading (see
/// [`crate::http2::batch::ReadGate`]). Measured with 100 unary calls in flight on one connection
/// against the bare h2 server: 8, 16 and 32 all about double the calls per second of reading
/// everything at once; 16 had the lowest p99.
const ROUND: usize = 16;

/// What a client announces and assumes on a new connection.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub(crate) stream_window: u32,
    pub(crate) connection_window: u32,
    pub(crate) max_header_list_size: u32,
    pub(crate) keepalive: Option<std::sync::Arc<ClientKeepalive>>,
}

/// A channel's keepalive, shared by its connections: the time between PINGs doubles each time a
/// server sends a connection away for pinging too often (gRFC A8), for the connections made
/// after that.
#[derive(Debug)]
pub(crate) struct ClientKeepalive {
    time_nanos: std::sync::atomic::AtomicU64,
    timeout: std::time::Duration,
}

impl ClientKeepalive {
    pub(crate) fn new(config: crate::KeepaliveConfig) -> std::sync::Arc<ClientKeepalive> {
        let nanos = u64::try_from(config.time.as_nanos()).unwrap_or(u64::MAX);
        std::sync::Arc::new(ClientKeepalive {
            time_nanos: std::sync::atomic::AtomicU64::new(nanos),
            timeout: config.timeout,
        })
    }

    /// What a new connection uses now.
    pub(crate) fn config(&self) -> crate::KeepaliveConfig {
        let nanos = self.time_nanos.load(std::sync::atomic::Ordering::Relaxed);
        crate::KeepaliveConfig::new(std::time::Duration::from_nanos(nanos), self.timeout)
    }

    /// The server said `too_many_pings`: twice the time from now on.
    pub(crate) fn too_many_pings(&self) -> std::time::Duration {
        use std::sync::atomic::Ordering::Relaxed;
        let _ = self
            .time_nanos
            .fetch_update(Relaxed, Relaxed, |t| Some(t.saturating_mul(2)));
        self.config().time
    }
}

/// The server handshake with the server's limits; the caller bounds it with its timeout.
pub(crate) fn server<IO>(io: IO, config: &ServerConfig) -> h2::server::Handshake<IO, Bytes>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    h2::server::Builder::new()
        .max_concurrent_streams(config.max_concurrent_streams)
        .max_header_list_size(config.max_header_list_size)
        .initial_window_size(config.stream_window)
        .initial_connection_window_size(config.connection_window)
        .max_frame_size(config.max_frame_size)
        // The rapid-reset defences (CVE-2023-44487), named here rather than left implicit:
        // streams a client opens and resets before we accept them are capped, and so are the
        // streams we must reset for its protocol errors; past either, GOAWAY.
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .handshake(io)
}

/// Streams reset by the client before the server accepted them, at once, before GOAWAY.
const MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams the server had to reset for the client's errors before GOAWAY.
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// The client handshake. On success the connection runs on a task of its own, with keepalive if
/// configured; the receiver completes when that connection has ended, with the reason.
pub(crate) async fn client<IO>(
    io: IO,
    settings: &ClientSettings,
    peer: &(dyn std::fmt::Display + Sync),
) -> Result<
    (
        h2::client::SendRequest<Bytes>,
        tokio::sync::oneshot::Receiver<String>,
    ),
    Error,
>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let yielded = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (send, mut h2_conn) = h2::client::Builder::new()
        .enable_push(false)
        // Until the server's SETTINGS arrive, assume the common floor of 100 streams rather
        // than opening streams it would refuse.
        .initial_max_send_streams(100)
        .initial_window_size(settings.stream_window)
        .initial_connection_window_size(settings.connection_window)
        .max_header_list_size(settings.max_header_list_size)
        .handshake::<_, Bytes>(crate::http2::batch::ReadGate::new(
            io,
            ROUND,
            yielded.clone(),
        ))
        .await
        .map_err(|e| {
            Error::new(
                Kind::Handshake,
                format!("HTTP/2 handshake with {peer} failed"),
            )
            .with_source(e)
        })?;
    let (mut ended_tx, ended) = tokio::sync::oneshot::channel();
    let shared_keepalive = settings.keepalive.clone();
    let keepalive = settings
        .keepalive
        .as_ref()
        .map(|k| k.config())
        .zip(h2_conn.ping_pong());
    let mut conn = crate::http2::batch::Batched::new(h2_conn, yielded);
    tokio::spawn(async move {
        let alive = async {
            match keepalive {
                Some((config, pinger)) => crate::http2::keepalive::run(pinger, config).await,
                None => std::future::pending().await,
            }
        };
        let why = tokio::select! {
            ended = &mut conn => match ended {
                Ok(()) => "the connection closed".to_owned(),
                Err(err) => {
                    // GOAWAY ENHANCE_YOUR_CALM: the server's keepalive policy (h2 does not show
                    // us the debug data, so any such GOAWAY counts as `too_many_pings`).
                    let calm = err.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
                        && err.is_go_away()
                        && err.is_remote();
                    if let (true, Some(k)) = (calm, &shared_keepalive) {
                        let time = k.too_many_pings();
                        tracing::warn!(?time, "server sent GOAWAY ENHANCE_YOUR_CALM (too many pings): keepalive time doubled");
                    }
                    format!("the connection failed: {err}")
                }
            },
            why = alive => why,
            // Nobody listens for the end any more: the connection closes by itself once its
            // request senders are gone and its calls have finished.
            () = ended_tx.closed() => {
                let _ = conn.await;
                return;
            }
        };
        tracing::debug!(reason = %why, "client connection ended");
        let _ = ended_tx.send(why);
    });
    Ok((send, ended))
}
