//! Writing the 5-byte prefix around a message encoded in place, so the body is never copied.

use bytes::{BufMut, BytesMut};

use super::FrameError;

/// Length of the message prefix.
pub(crate) const HEADER_LEN: usize = 5;

/// Frames messages into one reusable buffer: reserve the prefix, let the caller write the body
/// straight after it, then fill the prefix in.
#[derive(Debug, Default)]
pub(crate) struct FrameWriter {
    buf: BytesMut,
}

impl FrameWriter {
    pub(crate) fn new() -> FrameWriter {
        FrameWriter::default()
    }

    /// Frames one message whose body `write` appends to the buffer it is given. `size_hint` sizes
    /// the buffer up front. Fails, without sending anything, past `limit`. Frames made one after
    /// another sit side by side in one allocation, so `BytesMut::unsplit` joins them without
    /// copying.
    pub(crate) fn frame(
        &mut self,
        size_hint: usize,
        limit: usize,
        compressed: bool,
        write: impl FnOnce(&mut BytesMut),
    ) -> Result<BytesMut, FrameError> {
        self.buf.reserve(HEADER_LEN + size_hint);
        self.buf.put_bytes(0, HEADER_LEN);
        write(&mut self.buf);
        let len = self.buf.len() - HEADER_LEN;
        if len > limit || len > u32::MAX as usize {
            self.buf.clear();
            return Err(FrameError::TooLarge {
                len: len as u64,
                limit: limit.min(u32::MAX as usize),
            });
        }
        self.buf[0] = u8::from(compressed);
        self.buf[1..HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(self.buf.split())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_flag_then_big_endian_length() {
        let mut w = FrameWriter::new();
        let f = w.frame(3, 100, false, |b| b.put_slice(b"abc")).unwrap();
        assert_eq!(&f[..], b"\x00\x00\x00\x00\x03abc");
        let f = w.frame(0, 100, true, |_| {}).unwrap();
        assert_eq!(&f[..], b"\x01\x00\x00\x00\x00");
        let big = vec![7u8; 0x0001_0203];
        let f = w
            .frame(big.len(), usize::MAX, false, |b| b.put_slice(&big))
            .unwrap();
        assert_eq!(&f[..5], b"\x00\x00\x01\x02\x03");
    }

    #[test]
    fn over_the_limit_is_refused_and_the_buffer_stays_clean() {
        let mut w = FrameWriter::new();
        let err = w.frame(0, 2, false, |b| b.put_slice(b"abc")).unwrap_err();
        assert_eq!(err, FrameError::TooLarge { len: 3, limit: 2 });
        let f = w.frame(0, 2, false, |b| b.put_slice(b"ab")).unwrap();
        assert_eq!(&f[..], b"\x00\x00\x00\x00\x02ab");
    }
}
