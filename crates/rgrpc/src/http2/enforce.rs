//! Keepalive enforcement on the server: a client that PINGs more often than the policy allows is
//! sent away with GOAWAY `ENHANCE_YOUR_CALM` and the debug data `too_many_pings`, which tells
//! grpc clients to double their keepalive time (gRFC A8; grpc-go's
//! `KeepaliveEnforcementPolicy`).
//!
//! h2 answers PINGs inside the engine and reports none of them, so [`Observer`] sits between the
//! socket (or TLS session) and h2 and reads the 9-byte header of every frame going either way:
//! PINGs without ACK coming in count against the policy, and HEADERS or DATA going out forgive
//! them, as in grpc-go (a server that is sending has a live peer). It reads payloads not at all.
//!
//! One write is ours: h2 cannot put debug data on a GOAWAY, and clients look for exactly that
//! data, so when the policy trips the observer writes one complete GOAWAY frame with it at the
//! next frame boundary, before anything else h2 writes. The connection loop then has h2 close
//! the connection with its own GOAWAY (same code, same or lower last stream id, which HTTP/2
//! allows after an earlier GOAWAY).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How often a client may PING (grpc-go's `KeepaliveEnforcementPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// The least time between two PINGs while calls are open (default 5 minutes).
    pub(crate) min_time: Duration,
    /// Whether PINGs are allowed at that rate with no call open; if not, a connection without
    /// calls may PING once per two hours.
    pub(crate) permit_without_stream: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            min_time: Duration::from_secs(300),
            permit_without_stream: false,
        }
    }
}

impl Policy {
    /// A policy no client can break: nothing to enforce, so no observer is installed.
    pub(crate) fn is_off(&self) -> bool {
        self.min_time.is_zero() && self.permit_without_stream
    }
}

/// PINGs allowed too early before the connection is closed: the third one past this is.
const MAX_STRIKES: u32 = 2;
/// With no call open and `permit_without_stream` false, PINGs closer than this are strikes.
const IDLE_PING_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);

/// The policy's bookkeeping for one connection.
#[derive(Debug)]
pub(crate) struct Strikes {
    policy: Policy,
    last_ping: Option<Instant>,
    strikes: u32,
    /// Set when the server sends HEADERS or DATA: the next PING starts the count afresh.
    forgive: bool,
}

impl Strikes {
    pub(crate) fn new(policy: Policy) -> Strikes {
        Strikes {
            policy,
            last_ping: None,
            strikes: 0,
            forgive: false,
        }
    }

    /// A PING without ACK arrived at `now` with `calls` calls open; true when the connection
    /// must be closed.
    pub(crate) fn ping(&mut self, now: Instant, calls: usize) -> bool {
        let last = self.last_ping.replace(now);
        if std::mem::take(&mut self.forgive) {
            self.strikes = 0;
            return false;
        }
        let Some(last) = last else {
            return false;
        };
        let allowed = if calls == 0 && !self.policy.permit_without_stream {
            IDLE_PING_INTERVAL
        } else {
            self.policy.min_time
        };
        if now.duration_since(last) < allowed {
            self.strikes += 1;
        }
        self.strikes > MAX_STRIKES
    }

    /// The server sent HEADERS or DATA.
    pub(crate) fn sent(&mut self) {
        self.forgive = true;
    }
}

/// What the observer and the connection loop share. The observer only notes when PINGs
/// arrive and whether the server has sent since; the connection loop, which knows how many
/// streams are open (h2's count), judges them, so that no call has to be counted on its way.
#[derive(Debug)]
pub(crate) struct Watch {
    strikes: Mutex<Strikes>,
    /// Arrival times of PINGs not yet judged.
    pings: Mutex<Vec<Instant>>,
    /// Set with each PING, cleared when judged: what the connection loop polls.
    pending: AtomicBool,
    waker: futures_util::task::AtomicWaker,
    /// The server sent HEADERS or DATA since the last PING.
    sent: AtomicBool,
    /// The policy tripped: the observer writes the GOAWAY.
    tripped: AtomicBool,
}

impl Watch {
    pub(crate) fn new(policy: Policy) -> Arc<Watch> {
        Arc::new(Watch {
            strikes: Mutex::new(Strikes::new(policy)),
            pings: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            waker: futures_util::task::AtomicWaker::new(),
            sent: AtomicBool::new(false),
            tripped: AtomicBool::new(false),
        })
    }

    /// Ready when PINGs wait to be judged. Polled on every turn of the connection loop, so it
    /// costs an atomic load and a waker check, no lock.
    pub(crate) fn poll_pinged(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.pending.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Judges the PINGs that arrived, with `calls` streams open; true when the client has
    /// broken the policy (the observer then writes the GOAWAY before anything else).
    pub(crate) fn judge(&self, calls: usize) -> bool {
        self.pending.store(false, Ordering::Release);
        let pings = std::mem::take(&mut *self.pings.lock().unwrap());
        let mut strikes = self.strikes.lock().unwrap();
        let mut trip = false;
        for at in pings {
            if self.sent.swap(false, Ordering::AcqRel) {
                strikes.sent();
            }
            trip |= strikes.ping(at, calls);
        }
        if trip {
            self.tripped.store(true, Ordering::Release);
        }
        trip
    }

    fn ping(&self) {
        self.pings.lock().unwrap().push(Instant::now());
        self.pending.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn sent(&self) {
        // Read first: most frames find it set already, and a load costs less than a store.
        if !self.sent.load(Ordering::Relaxed) {
            self.sent.store(true, Ordering::Release);
        }
    }
}

/// A frame header just seen in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHead {
    kind: u8,
    flags: u8,
    stream: u32,
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const PING: u8 = 6;
const ACK: u8 = 1;
const HEAD_LEN: usize = 9;
const PREFACE_LEN: usize = 24;

/// Finds frame headers in one direction's bytes, however they are split.
#[derive(Debug)]
struct Frames {
    /// Bytes of the client preface still to pass (reading side only).
    preface: usize,
    head: [u8; HEAD_LEN],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    skip: usize,
}

fn parse_head(h: &[u8]) -> (usize, FrameHead) {
    let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
    let head = FrameHead {
        kind: h[3],
        flags: h[4],
        stream,
    };
    (len, head)
}

impl Frames {
    fn new(preface: usize) -> Frames {
        Frames {
            preface,
            head: [0; HEAD_LEN],
            have: 0,
            skip: 0,
        }
    }

    /// Between two frames: nothing of one is half passed.
    fn at_boundary(&self) -> bool {
        self.preface == 0 && self.have == 0 && self.skip == 0
    }

    /// How many bytes may pass before the next point where a frame header is complete or a
    /// frame ends (0 at a boundary).
    fn to_boundary(&self) -> usize {
        if self.preface > 0 {
            self.preface
        } else if self.have > 0 {
            HEAD_LEN - self.have
        } else {
            self.skip
        }
    }

    fn feed(&mut self, mut data: &[u8], mut seen: impl FnMut(FrameHead)) {
        while !data.is_empty() {
            if self.preface > 0 {
                let n = self.preface.min(data.len());
                self.preface -= n;
                data = &data[n..];
            } else if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
            } else if self.have == 0 && data.len() >= HEAD_LEN {
                // The common case: a whole header in hand, read in place.
                let (len, head) = parse_head(data);
                self.skip = len;
                data = &data[HEAD_LEN..];
                seen(head);
            } else {
                let n = (HEAD_LEN - self.have).min(data.len());
                self.head[self.have..self.have + n].copy_from_slice(&data[..n]);
                self.have += n;
                data = &data[n..];
                if self.have == HEAD_LEN {
                    self.have = 0;
                    let (len, head) = parse_head(&self.head);
                    self.skip = len;
                    seen(head);
                }
            }
        }
    }
}

/// The frame the observer adds when the policy trips.
fn too_many_pings(last_stream: u32) -> Vec<u8> {
    const DEBUG: &[u8] = b"too_many_pings";
    const ENHANCE_YOUR_CALM: u32 = 0xb;
    let len = 8 + DEBUG.len();
    let mut frame = Vec::with_capacity(HEAD_LEN + len);
    frame.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(&[7, 0, 0, 0, 0, 0]);
    frame.extend_from_slice(&last_stream.to_be_bytes());
    frame.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
    frame.extend_from_slice(DEBUG);
    frame
}

/// The connection's bytes, passed through unchanged, with their frame headers read.
#[derive(Debug)]
pub(crate) struct Observer<IO> {
    io: IO,
    watch: Arc<Watch>,
    incoming: Frames,
    outgoing: Frames,
    /// The highest stream a client HEADERS frame opened.
    last_stream: u32,
    /// Once the policy has tripped: the GOAWAY, and how much of it is written.
    goaway: Option<(Vec<u8>, usize)>,
}

impl<IO> Observer<IO> {
    pub(crate) fn new(io: IO, watch: Arc<Watch>) -> Observer<IO> {
        Observer {
            io,
            watch,
            incoming: Frames::new(PREFACE_LEN),
            outgoing: Frames::new(0),
            last_stream: 0,
            goaway: None,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Observer<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let (watch, last_stream) = (&this.watch, &mut this.last_stream);
        this.incoming
            .feed(&buf.filled()[before..], |head| match head.kind {
                PING if head.flags & ACK == 0 => watch.ping(),
                HEADERS => *last_stream = (*last_stream).max(head.stream),
                _ => {}
            });
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> Observer<IO> {
    /// True while a GOAWAY waits to be written.
    fn goaway_pending(&mut self) -> bool {
        if self.goaway.is_none() {
            if !self.watch.tripped.load(Ordering::Acquire) {
                return false;
            }
            self.goaway = Some((too_many_pings(self.last_stream), 0));
        }
        matches!(&self.goaway, Some((frame, done)) if *done < frame.len())
    }

    /// Writes the pending GOAWAY if the outgoing bytes are between frames.
    fn poll_goaway(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.goaway_pending() || !self.outgoing.at_boundary() {
            return Poll::Ready(Ok(()));
        }
        while let Some((frame, done)) = &mut self.goaway {
            if *done == frame.len() {
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &frame[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }

    fn wrote(&mut self, bytes: &[u8]) {
        let watch = &self.watch;
        self.outgoing.feed(bytes, |head| {
            if head.kind == HEADERS || head.kind == DATA {
                watch.sent();
            }
        });
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Observer<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut buf = buf;
        if this.goaway_pending() {
            ready!(this.poll_goaway(cx))?;
            if this.goaway_pending() {
                // Mid-frame: write only to the end of this frame, so the next write starts
                // at a boundary.
                let rest = this.outgoing.to_boundary();
                if rest > 0 {
                    buf = &buf[..rest.min(buf.len())];
                }
            }
        }
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.wrote(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.goaway_pending() {
            // Rare: take the careful path one slice at a time.
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            return Pin::new(this).poll_write(cx, first);
        }
        let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for b in bufs {
            if left == 0 {
                break;
            }
            let take = left.min(b.len());
            this.wrote(&b[..take]);
            left -= take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_goaway(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_goaway(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min_secs: u64, permit: bool) -> Policy {
        Policy {
            min_time: Duration::from_secs(min_secs),
            permit_without_stream: permit,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_third_early_ping_trips_and_on_time_pings_never_do() {
        let mut s = Strikes::new(policy(10, false));
        // On time, with a call open: never.
        for _ in 0..20 {
            assert!(!s.ping(Instant::now(), 1));
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        // The first early PING is forgiven (nothing to compare with on a new connection); three
        // early ones after it trip.
        let mut s = Strikes::new(policy(10, false));
        assert!(!s.ping(Instant::now(), 1));
        for strike in 1..=3 {
            tokio::time::advance(Duration::from_secs(9)).await;
            assert_eq!(s.ping(Instant::now(), 1), strike == 3, "strike {strike}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn without_calls_pings_need_two_hours_unless_permitted() {
        let mut s = Strikes::new(policy(10, false));
        let mut tripped = false;
        for _ in 0..4 {
            tripped = s.ping(Instant::now(), 0);
            tokio::time::advance(Duration::from_secs(3600)).await;
        }
        assert!(tripped, "hourly PINGs on an idle connection");
        let mut s = Strikes::new(policy(10, false));
        for _ in 0..10 {
            assert!(!s.ping(Instant::now(), 0));
            tokio::time::advance(IDLE_PING_INTERVAL).await;
        }
        let mut s = Strikes::new(policy(10, true));
        for _ in 0..10 {
            assert!(!s.ping(Instant::now(), 0));
            tokio::time::advance(Duration::from_secs(10)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sending_forgives_the_strikes_so_far() {
        let mut s = Strikes::new(policy(10, false));
        assert!(!s.ping(Instant::now(), 1));
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(!s.ping(Instant::now(), 1));
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(!s.ping(Instant::now(), 1));
            // A response went out: the count starts again.
            s.sent();
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(!s.ping(Instant::now(), 1));
        }
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn frame_heads_are_found_however_the_bytes_are_split() {
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend(frame(4, 0, 0, &[0; 12]));
        bytes.extend(frame(HEADERS, 4, 1, &[0x83; 40]));
        bytes.extend(frame(DATA, 1, 1, &[6; 300]));
        bytes.extend(frame(PING, 0, 0, &[1; 8]));
        bytes.extend(frame(PING, ACK, 0, &[2; 8]));
        bytes.extend(frame(HEADERS, 5, 3, &[]));
        let want = [
            (4, 0),
            (HEADERS, 1),
            (DATA, 1),
            (PING, 0),
            (PING, 0),
            (HEADERS, 3),
        ];
        for step in 1..=bytes.len() {
            let mut frames = Frames::new(PREFACE_LEN);
            let mut seen = Vec::new();
            for chunk in bytes.chunks(step) {
                frames.feed(chunk, |h| seen.push((h.kind, h.stream)));
            }
            assert_eq!(seen, want, "split every {step} bytes");
            assert!(frames.at_boundary());
        }
    }

    #[test]
    fn the_goaway_carries_too_many_pings() {
        let f = too_many_pings(7);
        let mut frames = Frames::new(0);
        let mut seen = Vec::new();
        frames.feed(&f, |h| seen.push(h));
        assert_eq!(
            seen,
            [FrameHead {
                kind: 7,
                flags: 0,
                stream: 0
            }]
        );
        assert!(frames.at_boundary());
        assert_eq!(&f[9..13], &7u32.to_be_bytes());
        assert_eq!(&f[13..17], &11u32.to_be_bytes());
        assert_eq!(&f[17..], b"too_many_pings");
    }

    /// Bytes written through the observer come out unchanged, with the GOAWAY added between two
    /// frames when the policy trips mid-frame.
    #[tokio::test(start_paused = true)]
    async fn the_goaway_goes_between_frames_and_nothing_else_changes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let watch = Watch::new(policy(10, false));
        let mut observed = Observer::new(near, watch.clone());
        let one = frame(DATA, 0, 1, &[9; 100]);
        let two = frame(DATA, 0, 1, &[8; 50]);
        observed.write_all(&one[..40]).await.unwrap();
        // The client PINGs four times at once.
        let mut pings = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        for _ in 0..4 {
            pings.extend(frame(PING, 0, 0, &[0; 8]));
        }
        far.write_all(&pings).await.unwrap();
        let mut sink = vec![0; pings.len()];
        observed.read_exact(&mut sink).await.unwrap();
        assert_eq!(sink, pings, "reads pass through unchanged");
        std::future::poll_fn(|cx| watch.poll_pinged(cx)).await;
        assert!(watch.judge(1), "four PINGs at once, with a call open");
        observed.write_all(&one[40..]).await.unwrap();
        observed.write_all(&two).await.unwrap();
        observed.flush().await.unwrap();
        let mut want = one.clone();
        want.extend(too_many_pings(0));
        want.extend(&two);
        let mut got = vec![0; want.len()];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(got, want);
    }
}
