//! Reassembling messages from DATA frames of any size.
//!
//! A message wholly inside one received chunk is handed out as a slice of that chunk (no copy);
//! only a message that spans chunks is gathered into a buffer, and that buffer never grows past
//! the prefix plus the receive limit.

use bytes::{Buf, Bytes, BytesMut};

use super::{Frame, FrameError, HEADER_LEN};

/// Incremental decoder for one direction of one stream.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Unconsumed bytes of the latest chunk, when nothing else is buffered.
    chunk: Bytes,
    /// Bytes gathered from several chunks; when non-empty, `chunk` is empty.
    gathered: BytesMut,
    limit: usize,
}

impl Decoder {
    /// A decoder refusing messages longer than `limit` bytes.
    pub(crate) fn new(limit: usize) -> Decoder {
        Decoder {
            chunk: Bytes::new(),
            gathered: BytesMut::new(),
            limit,
        }
    }

    /// Adds received bytes.
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if self.gathered.is_empty() && self.chunk.is_empty() {
            self.chunk = data;
        } else {
            if !self.chunk.is_empty() {
                let rest = std::mem::take(&mut self.chunk);
                self.gathered.extend_from_slice(&rest);
            }
            self.gathered.extend_from_slice(&data);
        }
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    pub(crate) fn decode(&mut self) -> Result<Option<Frame>, FrameError> {
        if !self.chunk.is_empty() {
            let Some(len) = message_len(&self.chunk, self.limit)? else {
                return Ok(None);
            };
            if self.chunk.len() < HEADER_LEN + len {
                return Ok(None);
            }
            let compressed = self.chunk[0] == 1;
            self.chunk.advance(HEADER_LEN);
            let data = self.chunk.split_to(len);
            return Ok(Some(Frame { compressed, data }));
        }
        let Some(len) = message_len(&self.gathered, self.limit)? else {
            return Ok(None);
        };
        if self.gathered.len() < HEADER_LEN + len {
            // Make room for the whole message once, bounded by the limit checked above.
            self.gathered
                .reserve(HEADER_LEN + len - self.gathered.len());
            return Ok(None);
        }
        let compressed = self.gathered[0] == 1;
        self.gathered.advance(HEADER_LEN);
        let data = self.gathered.split_to(len).freeze();
        Ok(Some(Frame { compressed, data }))
    }

    /// Called at the end of the stream: bytes left over mean a truncated message.
    pub(crate) fn finish(&self) -> Result<(), FrameError> {
        let buffered = self.buffered();
        if buffered == 0 {
            return Ok(());
        }
        let expected = if buffered >= HEADER_LEN {
            let head = if self.chunk.is_empty() {
                &self.gathered[..]
            } else {
                &self.chunk[..]
            };
            HEADER_LEN + u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize
        } else {
            HEADER_LEN
        };
        Err(FrameError::Truncated { buffered, expected })
    }

    /// Bytes held but not yet handed out.
    pub(crate) fn buffered(&self) -> usize {
        self.chunk.len() + self.gathered.len()
    }
}

/// Reads and checks a prefix, if a whole one is there.
fn message_len(head: &[u8], limit: usize) -> Result<Option<usize>, FrameError> {
    if head.len() < HEADER_LEN {
        return Ok(None);
    }
    if head[0] > 1 {
        return Err(FrameError::BadFlag(head[0]));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > limit {
        return Err(FrameError::TooLarge {
            len: len as u64,
            limit,
        });
    }
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::FrameWriter;
    use bytes::BufMut;

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut w = FrameWriter::new();
        let mut out = Vec::new();
        for m in msgs {
            out.extend_from_slice(
                &w.frame(m.len(), usize::MAX, false, |b| b.put_slice(m))
                    .unwrap(),
            );
        }
        out
    }

    /// Found by the framing fuzz target: a stream ending inside a prefix is truncated, whatever
    /// its first byte holds (the prefix is judged only once it is whole).
    #[test]
    fn a_short_prefix_is_truncated_whatever_its_flag() {
        let mut d = Decoder::new(100);
        d.push(Bytes::from_static(&[0xff, 0x00]));
        assert_eq!(d.decode(), Ok(None));
        assert_eq!(
            d.finish(),
            Err(FrameError::Truncated {
                buffered: 2,
                expected: HEADER_LEN
            })
        );
    }

    fn drain(d: &mut Decoder) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(f) = d.decode().unwrap() {
            out.push(f.data);
        }
        out
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let msgs: [&[u8]; 3] = [b"hello", b"", b"world!!"];
        let wire = framed(&msgs);
        for cut in 0..=wire.len() {
            for cut2 in cut..=wire.len() {
                let mut d = Decoder::new(1024);
                let mut got = Vec::new();
                for part in [&wire[..cut], &wire[cut..cut2], &wire[cut2..]] {
                    d.push(Bytes::copy_from_slice(part));
                    got.extend(drain(&mut d));
                }
                assert_eq!(got, msgs, "cuts at {cut} and {cut2}");
                d.finish().unwrap();
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let msgs: [&[u8]; 2] = [b"abc", &[9u8; 300]];
        let wire = framed(&msgs);
        let mut d = Decoder::new(1024);
        let mut got = Vec::new();
        for b in wire {
            d.push(Bytes::copy_from_slice(&[b]));
            got.extend(drain(&mut d));
        }
        assert_eq!(got, msgs);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn several_messages_in_one_chunk_are_not_copied() {
        let wire = Bytes::from(framed(&[b"one", b"two", b""]));
        let mut d = Decoder::new(1024);
        d.push(wire.clone());
        let got = drain(&mut d);
        assert_eq!(got, [&b"one"[..], b"two", b""]);
        // The first message is a view into the chunk we pushed.
        assert_eq!(got[0].as_ptr(), wire[5..].as_ptr());
    }

    #[test]
    fn zero_length_messages() {
        let mut d = Decoder::new(0);
        d.push(Bytes::from_static(
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ));
        assert_eq!(drain(&mut d).len(), 2);
        d.finish().unwrap();
    }

    #[test]
    fn length_over_the_limit_fails_before_the_body_arrives() {
        let mut d = Decoder::new(10);
        d.push(Bytes::from_static(b"\x00\x00\x00\x00\x0b"));
        assert_eq!(
            d.decode().unwrap_err(),
            FrameError::TooLarge { len: 11, limit: 10 }
        );
        let mut d = Decoder::new(4 << 20);
        d.push(Bytes::from_static(b"\x00\xff\xff\xff\xff"));
        assert!(matches!(d.decode(), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn prefix_promising_more_than_arrives() {
        let mut d = Decoder::new(100);
        d.push(Bytes::from_static(b"\x00\x00\x00\x00\x0aabc"));
        assert_eq!(d.decode().unwrap(), None);
        assert_eq!(
            d.finish().unwrap_err(),
            FrameError::Truncated {
                buffered: 8,
                expected: 15
            }
        );
        let mut d = Decoder::new(100);
        d.push(Bytes::from_static(b"\x00\x00"));
        assert_eq!(
            d.finish().unwrap_err(),
            FrameError::Truncated {
                buffered: 2,
                expected: 5
            }
        );
    }

    #[test]
    fn bad_flag() {
        let mut d = Decoder::new(100);
        d.push(Bytes::from_static(b"\x02\x00\x00\x00\x00"));
        assert_eq!(d.decode().unwrap_err(), FrameError::BadFlag(2));
    }

    #[test]
    fn compressed_flag_is_reported() {
        let mut d = Decoder::new(100);
        d.push(Bytes::from_static(b"\x01\x00\x00\x00\x01z"));
        let f = d.decode().unwrap().unwrap();
        assert!(f.compressed);
        assert_eq!(&f.data[..], b"z");
    }

    /// A small deterministic generator, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[test]
    fn random_messages_in_random_chunks_come_out_whole() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..300 {
            let msgs: Vec<Vec<u8>> = (0..rng.below(8))
                .map(|_| (0..rng.below(3000)).map(|_| rng.next() as u8).collect())
                .collect();
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let wire = framed(&refs);
            let mut d = Decoder::new(4096);
            let mut got = Vec::new();
            let mut at = 0;
            while at < wire.len() {
                let n = 1 + rng.below(700) as usize;
                let end = (at + n).min(wire.len());
                d.push(Bytes::copy_from_slice(&wire[at..end]));
                got.extend(drain(&mut d));
                at = end;
            }
            assert_eq!(got, refs);
            d.finish().unwrap();
        }
    }

    /// Bytes that look like frames often enough to get past the flag: a flag that is usually
    /// valid, a length around the limit (or anything), a body that may be cut short, and now and
    /// then pure noise.
    fn hostile_bytes(rng: &mut Rng, limit: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..1 + rng.below(4) {
            if rng.below(8) == 0 {
                out.extend((0..rng.below(40)).map(|_| rng.next() as u8));
                continue;
            }
            let flag = match rng.below(10) {
                0 => rng.next() as u8,
                1..=3 => 1,
                _ => 0,
            };
            let len = match rng.below(6) {
                0 => limit as u64,
                1 => limit as u64 + 1,
                2 => rng.next() as u32 as u64,
                _ => rng.below(limit as u64 + 1),
            };
            out.push(flag);
            out.extend_from_slice(&(len as u32).to_be_bytes());
            let body = if rng.below(4) == 0 {
                rng.below(len.min(4096) + 1)
            } else {
                len.min(4096)
            };
            out.extend((0..body).map(|_| rng.next() as u8));
        }
        out
    }

    #[test]
    fn hostile_input_never_panics_and_stays_bounded() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut frames, mut too_large, mut bad_flag, mut truncated) = (0, 0, 0, 0);
        for _ in 0..3000 {
            let limit = rng.below(1024) as usize;
            let wire = hostile_bytes(&mut rng, limit);
            let mut d = Decoder::new(limit);
            let mut failed = false;
            // Callers stop feeding a stream at its first error, as Streaming does.
            let mut at = 0;
            'feed: while at < wire.len() {
                let end = (at + 1 + rng.below(300) as usize).min(wire.len());
                d.push(Bytes::copy_from_slice(&wire[at..end]));
                at = end;
                loop {
                    match d.decode() {
                        Ok(Some(f)) => {
                            assert!(f.data.len() <= limit);
                            frames += 1;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            match e {
                                FrameError::TooLarge { .. } => too_large += 1,
                                FrameError::BadFlag(_) => bad_flag += 1,
                                FrameError::Truncated { .. } => unreachable!("only at finish"),
                            }
                            failed = true;
                            break 'feed;
                        }
                    }
                }
                // What waits is at most one prefix and part of a message within the limit.
                assert!(d.buffered() < HEADER_LEN + limit.max(1));
            }
            if !failed && matches!(d.finish(), Err(FrameError::Truncated { .. })) {
                truncated += 1;
            }
        }
        // Every path was reached many times, not just the first byte's check.
        for (path, n) in [
            ("whole frames", frames),
            ("over the limit", too_large),
            ("bad flag", bad_flag),
            ("truncated", truncated),
        ] {
            assert!(n >= 100, "{path} reached only {n} times");
        }
    }
}
