//! Messages whose schema is known only at run time: `RawMessage` keeps the bytes as they came, to
//! decode later with a descriptor (prost decodes field by field; each field is written back as it
//! was read); `Encoded` sends bytes encoded once, cheaply cloned for every call of a benchmark;
//! `Skipped` reads a reply and keeps nothing of it.

use prost::DecodeError;
use prost::bytes::Bytes;
use prost::bytes::{Buf, BufMut};
use prost::encoding::{
    DecodeContext, WireType, decode_varint, encode_key, encode_varint, skip_field,
};

/// The encoded bytes of a message.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RawMessage(pub(crate) Vec<u8>);

/// prost offers no other constructor for a decode error; this one is deprecated for outside use
/// but still the only way to say why a field cannot be read.
#[allow(deprecated)]
fn error(why: &'static str) -> DecodeError {
    DecodeError::new(why)
}

impl prost::Message for RawMessage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        _ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        encode_key(tag, wire_type, &mut self.0);
        let take = |n: usize, buf: &mut dyn Buf, out: &mut Vec<u8>| {
            if buf.remaining() < n {
                return Err(error("field runs past the end of the message"));
            }
            let mut rest = n;
            while rest > 0 {
                let chunk = buf.chunk();
                let k = chunk.len().min(rest);
                out.extend_from_slice(&chunk[..k]);
                buf.advance(k);
                rest -= k;
            }
            Ok(())
        };
        match wire_type {
            WireType::Varint => {
                let value = decode_varint(buf)?;
                encode_varint(value, &mut self.0);
                Ok(())
            }
            WireType::SixtyFourBit => take(8, buf, &mut self.0),
            WireType::ThirtyTwoBit => take(4, buf, &mut self.0),
            WireType::LengthDelimited => {
                let len = decode_varint(buf)?;
                encode_varint(len, &mut self.0);
                take(len as usize, buf, &mut self.0)
            }
            WireType::StartGroup | WireType::EndGroup => {
                Err(error("groups (proto2) are not supported"))
            }
        }
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// A message encoded once; cloning it shares the bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Encoded(pub(crate) Bytes);

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        // Only ever sent; a decode keeps nothing.
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

/// A reply read and dropped: its fields are checked to be well formed (a benchmark still sees a
/// server that sends garbage fail) and nothing is kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Skipped;

impl prost::Message for Skipped {
    fn encode_raw(&self, _: &mut impl BufMut) {}

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        0
    }

    fn clear(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn bytes_survive_a_round_trip() {
        let original = prost_types::Duration {
            seconds: -5,
            nanos: 17,
        }
        .encode_to_vec();
        let mut with_strings = original.clone();
        // A length-delimited field 9 and a fixed64 field 10 after it.
        with_strings.extend_from_slice(&[0x4a, 3, b'a', b'b', b'c', 0x51, 1, 2, 3, 4, 5, 6, 7, 8]);
        let raw = RawMessage::decode(with_strings.as_slice()).unwrap();
        assert_eq!(raw.0, with_strings);
        assert!(RawMessage::decode(&[0x4a, 9, 1][..]).is_err());
    }

    #[test]
    fn skipped_reads_well_formed_messages_and_refuses_broken_ones() {
        let bytes = [0x08, 0x96, 0x01, 0x4a, 3, b'a', b'b', b'c'];
        assert_eq!(Skipped::decode(&bytes[..]).unwrap(), Skipped);
        assert!(Skipped::decode(&[0x4a, 9, 1][..]).is_err());
        let encoded = Encoded(Bytes::copy_from_slice(&bytes));
        assert_eq!(encoded.encode_to_vec(), bytes);
    }
}
