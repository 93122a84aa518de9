//! The context of one server call: who called, until when, and whether the call is still wanted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
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
    cancel: Option<Cancel>,
    previous_attempts: u32,
}

impl Context {
    pub(crate) fn new(
        peer: Option<SocketAddr>,
        peer_certs: Option<Arc<[Vec<u8>]>>,
        deadline: Option<Instant>,
        cancel: Cancel,
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
        self.cancel.as_ref().is_some_and(Cancel::is_cancelled)
    }

    /// Completes when the call is cancelled; never, for a context that belongs to no call.
    pub async fn cancelled(&self) {
        match &self.cancel {
            Some(cancel) => cancel.cancelled().await,
            None => std::future::pending().await,
        }
    }

    /// A token that is cancelled with the call, to hand to spawned work. Cancelling it does not
    /// cancel the call.
    pub fn cancellation_token(&self) -> CancellationToken {
        match &self.cancel {
            Some(cancel) => cancel.token(),
            None => CancellationToken::new(),
        }
    }

    pub(crate) fn cancel(&self) {
        if let Some(cancel) = &self.cancel {
            cancel.cancel();
        }
    }
}

/// A call's cancellation, shared by the call and every copy of its context. Cloning and checking
/// it touch one atomic: `tokio_util`'s token takes a lock for each, and a call clones its context
/// several times. A `CancellationToken` is made only when a handler asks for one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cancel(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    cancelled: AtomicBool,
    waiters: Notify,
    /// Handed out by [`Context::cancellation_token`]; cancelled with the call.
    token: Mutex<Option<CancellationToken>>,
}

impl Cancel {
    pub(crate) fn cancel(&self) {
        if self.0.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        self.0.waiters.notify_waiters();
        if let Some(token) = &*self.0.token.lock().unwrap_or_else(|e| e.into_inner()) {
            token.cancel();
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    async fn cancelled(&self) {
        loop {
            let notified = self.0.waiters.notified();
            tokio::pin!(notified);
            // Registered before the check, so that a cancel in between is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// A child of the call's token. `cancel` sets the flag before it takes the lock and this
    /// reads it under the lock, so whichever comes second cancels the token.
    fn token(&self) -> CancellationToken {
        let mut slot = self.0.token.lock().unwrap_or_else(|e| e.into_inner());
        let token = slot.get_or_insert_with(CancellationToken::new);
        if self.is_cancelled() {
            token.cancel();
        }
        token.child_token()
    }

    /// Cancels the call when dropped, unless [`CancelOnDrop::disarm`] was called first.
    pub(crate) fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

/// See [`Cancel::on_drop`].
pub(crate) struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_reaches_waiters_tokens_and_copies() {
        let cancel = Cancel::default();
        let context = Context::new(None, None, None, cancel.clone());
        let copy = context.clone();
        let early = context.cancellation_token();
        let waiter = tokio::spawn(async move { copy.cancelled().await });
        tokio::task::yield_now().await;
        assert!(!context.is_cancelled() && !early.is_cancelled());
        cancel.cancel();
        waiter.await.unwrap();
        assert!(context.is_cancelled() && early.is_cancelled());
        // Asked for after the call was cancelled: born cancelled.
        assert!(context.cancellation_token().is_cancelled());
        context.cancelled().await;
    }

    #[test]
    fn dropped_guard_cancels_and_a_disarmed_one_does_not() {
        let cancel = Cancel::default();
        cancel.on_drop().disarm();
        assert!(!cancel.is_cancelled());
        drop(cancel.on_drop());
        assert!(cancel.is_cancelled());
        // A context that belongs to no call is never cancelled.
        assert!(!Context::default().is_cancelled());
    }
}
