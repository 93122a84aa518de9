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
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner`, polled one turn of the scheduler after each wake-up.
pub(crate) struct Batched<F> {
    inner: F,
    deferred: bool,
    /// Set by the connection's [`ReadGate`] when it yielded: that wake-up is a deferral already.
    yielded: Arc<AtomicBool>,
}

impl<F> Batched<F> {
    pub(crate) fn new(inner: F, yielded: Arc<AtomicBool>) -> Batched<F> {
        Batched {
            inner,
            deferred: false,
            yielded,
        }
    }
}

impl<F: Future + Unpin> Future for Batched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.deferred && !self.yielded.swap(false, Ordering::Relaxed) {
            self.deferred = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.deferred = false;
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// A connection's socket, read so that one poll of its driver takes in at most `budget` ended
/// streams (HEADERS or DATA frames with END_STREAM: a unary response's trailers, a unary
/// request's message).
///
/// Without it, a driver reads every response waiting in the socket, all their calls run, and
/// only then are their next requests written: with one connection and a peer that batches the
/// same way, client and server take turns and each idles while the other works. Cut into
/// rounds, the first requests leave while later responses are still being handled. Only frame
/// headers are looked at, to find where frames end; `h2` parses everything. Frames of messages
/// that do not end a stream (streaming) pass without limit.
pub(crate) struct ReadGate<IO> {
    io: IO,
    budget: usize,
    /// Bytes read past a cut, handed out on the next round.
    leftover: BytesMut,
    scan: FrameScan,
    /// The round is over: the next read yields to the calls it woke.
    exhausted: bool,
    /// Set when the gate yielded: the driver, queued behind the calls already, need not defer
    /// itself again (see [`Batched`]).
    yielded: Arc<AtomicBool>,
}

impl<IO> ReadGate<IO> {
    pub(crate) fn new(io: IO, budget: usize, yielded: Arc<AtomicBool>) -> ReadGate<IO> {
        ReadGate {
            io,
            budget,
            leftover: BytesMut::new(),
            scan: FrameScan::default(),
            exhausted: false,
            yielded,
        }
    }
}

/// Where the reader is in the peer's frame sequence.
#[derive(Default)]
struct FrameScan {
    /// Payload bytes of the current frame still to pass.
    skip: usize,
    head: [u8; 9],
    have: usize,
    /// Streams ended this round.
    ended: usize,
    /// The round's last ended stream is in the frame being skipped: cut where it ends.
    cut_after_frame: bool,
}

impl FrameScan {
    /// Follows `data`; returns how many of its bytes belong to this round when the round ends
    /// within them.
    fn feed(&mut self, data: &[u8], budget: usize) -> Option<usize> {
        let mut i = 0;
        while i < data.len() {
            if self.skip > 0 {
                let step = self.skip.min(data.len() - i);
                self.skip -= step;
                i += step;
                if self.skip == 0 && self.cut_after_frame {
                    self.cut_after_frame = false;
                    return Some(i);
                }
                continue;
            }
            let step = (9 - self.have).min(data.len() - i);
            self.head[self.have..self.have + step].copy_from_slice(&data[i..i + step]);
            self.have += step;
            i += step;
            if self.have < 9 {
                break;
            }
            self.have = 0;
            let h = self.head;
            self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
            let (kind, flags) = (h[3], h[4]);
            const DATA: u8 = 0;
            const HEADERS: u8 = 1;
            const END_STREAM: u8 = 1;
            if matches!(kind, DATA | HEADERS) && flags & END_STREAM != 0 {
                self.ended += 1;
                if self.ended >= budget {
                    if self.skip == 0 {
                        return Some(i);
                    }
                    self.cut_after_frame = true;
                }
            }
        }
        None
    }
}

impl<IO> ReadGate<IO> {
    /// The round's last stream is in. With more bytes already read, the driver yields before
    /// taking them; when the round ended with the bytes at hand, the next read starts a new
    /// round without a detour through the scheduler.
    fn end_round(&mut self) {
        self.scan.ended = 0;
        self.exhausted = !self.leftover.is_empty();
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ReadGate<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.exhausted {
            this.exhausted = false;
            this.yielded.store(true, Ordering::Relaxed);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if !this.leftover.is_empty() {
            let n = this.leftover.len().min(buf.remaining());
            let cut = this.scan.feed(&this.leftover[..n], this.budget);
            let take = cut.unwrap_or(n);
            buf.put_slice(&this.leftover[..take]);
            this.leftover.advance(take);
            if cut.is_some() {
                this.end_round();
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            Poll::Pending => {
                // Nothing more to read: the next bytes start a new round.
                this.scan.ended = 0;
                return Poll::Pending;
            }
            other => return other,
        }
        let got = &buf.filled()[before..];
        if let Some(cut) = this.scan.feed(got, this.budget) {
            this.leftover.extend_from_slice(&got[cut..]);
            buf.set_filled(before + cut);
            this.end_round();
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ReadGate<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn frame(kind: u8, flags: u8, len: usize) -> Vec<u8> {
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            1,
        ];
        f.extend(std::iter::repeat_n(0xAB, len));
        f
    }

    /// Headers, a message and trailers: what one unary response looks like.
    fn response() -> Vec<u8> {
        [frame(1, 4, 3), frame(0, 0, 5), frame(1, 5, 2)].concat()
    }

    #[tokio::test]
    async fn rounds_end_after_the_budgeted_stream_ends_and_no_byte_is_lost() {
        let input: Vec<u8> = (0..40).flat_map(|_| response()).collect();
        let mut gate = ReadGate::new(&input[..], 16, Arc::default());
        let mut buf = vec![0u8; 64 * 1024];
        let per = response().len();
        let mut sizes = Vec::new();
        let mut out = Vec::new();
        loop {
            let n = gate.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            sizes.push(n);
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, input);
        assert_eq!(sizes, [16 * per, 16 * per, 8 * per]);
    }

    #[tokio::test]
    async fn frame_headers_split_across_reads_are_followed() {
        let input: Vec<u8> = (0..4).flat_map(|_| response()).collect();
        let mut gate = ReadGate::new(&input[..], 2, Arc::default());
        // Reads of 5 bytes cut frame headers in two; rounds still end where the second
        // response's trailers end.
        let mut buf = [0u8; 5];
        let mut out = Vec::new();
        let mut round_ends = Vec::new();
        loop {
            let n = gate.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if gate.exhausted {
                round_ends.push(out.len());
            }
        }
        assert_eq!(out, input);
        let per = response().len();
        // The second round ends with the input: nothing is left to hold back, so no yield.
        assert_eq!(round_ends, [2 * per]);
    }

    #[tokio::test]
    async fn streamed_messages_pass_without_rounds() {
        let input: Vec<u8> = (0..64).flat_map(|_| frame(0, 0, 1000)).collect();
        let mut gate = ReadGate::new(&input[..], 1, Arc::default());
        let mut buf = vec![0u8; 1 << 20];
        let n = gate.read(&mut buf).await.unwrap();
        assert_eq!(n, input.len());
        assert!(!gate.exhausted);
    }
}
