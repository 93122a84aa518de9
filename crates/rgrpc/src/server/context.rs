//! The context of one server call: who called, until when, and whether the call is still wanted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// What a handler knows about its call besides the message and metadata.
///
/// The call is cancelled when the client cancels it (RST_STREAM), when its deadline passes, or when
/// the server shuts down past its grace period. The handler's future is then dropped; work it
/// spawned can watch [`Context::cancelled`] or a token from [`Context::cancellation_token`].
#[derive(Debug, Clone, Default)]
pub struct Context {
    peer: Option<SocketAddr>,
    peer_certs: Option<Arc<[Vec<u8>]>>,
    deadline: Option<Instant>,
    cancel: Option<CancellationToken>,
    previous_attempts: u32,
}

impl Context {
    pub(crate) fn new(
        peer: Option<SocketAddr>,
        peer_certs: Option<Arc<[Vec<u8>]>>,
        deadline: Option<Instant>,
        cancel: CancellationToken,
    ) -> Context {
        Context {
            peer,
            peer_certs,
            deadline,
            cancel: Some(cancel),
            previous_attempts: 0,
        }
    }

    pub(crate) fn with_previous_attempts(mut self, n: u32) -> Context {
        self.previous_attempts = n;
        self
    }

    /// How many attempts of this call the client made before this one, from
    /// `grpc-previous-rpc-attempts` (gRFC A6): 0 for a first attempt.
    pub fn previous_attempts(&self) -> u32 {
        self.previous_attempts
    }

    /// The client's certificate chain (DER, leaf first) when it authenticated with mutual TLS.
    pub fn peer_certificates(&self) -> Option<&[Vec<u8>]> {
        self.peer_certs.as_deref()
    }

    /// The client's address, for TCP connections.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// When the call must be finished, from the client's `grpc-timeout`.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left until the deadline (zero once it has passed); `None` without a deadline.
    pub fn time_remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// True once the call has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// Completes when the call is cancelled; never, for a context that belongs to no call.
    pub async fn cancelled(&self) {
        match &self.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    }

    /// A token that is cancelled with the call, to hand to spawned work. Cancelling it does not
    /// cancel the call.
    pub fn cancellation_token(&self) -> CancellationToken {
        match &self.cancel {
            Some(token) => token.child_token(),
            None => CancellationToken::new(),
        }
    }

    pub(crate) fn cancel(&self) {
        if let Some(token) = &self.cancel {
            token.cancel();
        }
    }
}
