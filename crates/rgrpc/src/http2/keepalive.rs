//! Keepalive: an HTTP/2 PING every `time`, and the connection declared dead when the PONG does not
//! come back within `timeout`. Used by both roles; the caller drops the connection when
//! [`Keepalive::run`] returns, which fails its calls with UNAVAILABLE.
//!
//! This module sends PINGs; the server polices its clients' PINGs in [`super::enforce`].

use std::time::Duration;

/// How often to ping, and how long to wait for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Time between PINGs.
    pub time: Duration,
    /// How long a PONG may take before the connection is considered dead.
    pub timeout: Duration,
}

impl KeepaliveConfig {
    /// PINGs every `time`, each answered within `timeout`.
    pub fn new(time: Duration, timeout: Duration) -> KeepaliveConfig {
        KeepaliveConfig { time, timeout }
    }
}

/// Runs keepalive on one connection until it finds the peer unresponsive (or the connection
/// gone), then returns why.
pub(crate) async fn run(mut pinger: h2::PingPong, config: KeepaliveConfig) -> String {
    loop {
        tokio::time::sleep(config.time).await;
        match tokio::time::timeout(config.timeout, pinger.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => continue,
            Ok(Err(err)) => return format!("keepalive PING failed: {err}"),
            Err(_) => {
                return format!(
                    "no keepalive PONG within {:?}: the connection is dead",
                    config.timeout
                );
            }
        }
    }
}
