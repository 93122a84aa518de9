//! Makes a connection's driver run after the calls that woke it, so that what they queued goes
//! out in one write.
//!
//! A call that queues a frame wakes its connection's driver task. On tokio's multi-thread
//! runtime a task woken from another task runs next (the scheduler's "LIFO slot"), so with many
//! calls ready at once the driver would run after each of them and write each frame with a
//! system call of its own: on loopback that doubled the time a unary call costs. A driver that
//! was woken first puts itself at the back of the run queue once (a task that wakes itself is
//! queued last, never in that slot), and then finds every frame the ready calls queued in the
//! meantime.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `inner`, polled one turn of the scheduler after each wake-up.
pub(crate) struct Batched<F> {
    inner: F,
    deferred: bool,
}

impl<F> Batched<F> {
    pub(crate) fn new(inner: F) -> Batched<F> {
        Batched {
            inner,
            deferred: false,
        }
    }
}

impl<F: Future + Unpin> Future for Batched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.deferred {
            self.deferred = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.deferred = false;
        Pin::new(&mut self.inner).poll(cx)
    }
}
