//! Messages to bytes and back with `prost`, inside the gRPC frame, compressed or not.
//!
//! No I/O and no HTTP/2 here: the callers hand in and take out framed `Bytes`. Uncompressed message
//! bodies are encoded straight into the frame buffer and decoded from slices of the received bytes.

mod compression;

pub use compression::Encoding;
pub(crate) use compression::RecvEncoding;

use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::framing::{Frame, FrameError, FrameWriter};
use crate::status::Status;

/// A message to send, with its own compression choice.
///
/// Streams of requests or responses may carry plain messages or `Outgoing` ones; a plain message is
/// compressed when its call compresses (see `client::Request::set_compression` and the server's
/// `send_compressed`), and `Outgoing::compressed(false)` sends one message uncompressed anyway.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing<T> {
    message: T,
    compress: Option<bool>,
}

impl<T> Outgoing<T> {
    /// A message that follows its call's compression.
    pub fn new(message: T) -> Outgoing<T> {
        Outgoing {
            message,
            compress: None,
        }
    }

    /// Compresses this message (with the call's encoding, or one the peer accepts) or not.
    pub fn compressed(mut self, yes: bool) -> Outgoing<T> {
        self.compress = Some(yes);
        self
    }

    pub(crate) fn into_parts(self) -> (T, Option<bool>) {
        (self.message, self.compress)
    }
}

/// A message, or an [`Outgoing`] message with send options.
pub trait IntoOutgoing {
    /// The message type.
    type Message: Message;
    /// Wraps the message.
    fn into_outgoing(self) -> Outgoing<Self::Message>;
}

impl<T: Message> IntoOutgoing for T {
    type Message = T;
    fn into_outgoing(self) -> Outgoing<T> {
        Outgoing::new(self)
    }
}

impl<T: Message> IntoOutgoing for Outgoing<T> {
    type Message = T;
    fn into_outgoing(self) -> Outgoing<T> {
        self
    }
}

/// How one side of a call sends messages: with which encoding, compressing by default or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendCompression {
    pub(crate) encoding: Encoding,
    pub(crate) by_default: bool,
}

impl SendCompression {
    /// Whether a message with the given choice is compressed.
    pub(crate) fn applies(self, choice: Option<bool>) -> bool {
        self.encoding != Encoding::Identity && choice.unwrap_or(self.by_default)
    }
}

/// Encodes one message into a frame, compressed with `encoding` unless it is identity. The send
/// limit applies to the message as the receiver will see it, uncompressed, and is checked before
/// anything is written.
pub(crate) fn encode<M: Message>(
    writer: &mut FrameWriter,
    message: &M,
    limit: usize,
    encoding: Encoding,
) -> Result<Bytes, Status> {
    if encoding == Encoding::Identity {
        // A frame on its own: a vector of exactly its size becomes `Bytes` without a second
        // allocation, where a frame split off the writer's buffer would share it through one.
        let len = message.encoded_len();
        if len > limit || len > u32::MAX as usize {
            return Err(too_large(len as u64, limit));
        }
        let mut out = Vec::with_capacity(crate::framing::HEADER_LEN + len);
        out.push(0);
        out.extend_from_slice(&(len as u32).to_be_bytes());
        message.encode_raw(&mut out);
        return Ok(Bytes::from(out));
    }
    encode_mut(writer, message, limit, encoding).map(BytesMut::freeze)
}

/// [`encode`], into a frame that can still be joined to the next (see
/// `FrameWriter::frame_mut`).
pub(crate) fn encode_mut<M: Message>(
    writer: &mut FrameWriter,
    message: &M,
    limit: usize,
    encoding: Encoding,
) -> Result<BytesMut, Status> {
    let len = message.encoded_len();
    if len > limit {
        return Err(too_large(len as u64, limit));
    }
    let framed = if encoding == Encoding::Identity {
        writer.frame(len, limit, false, |buf| message.encode_raw(buf))
    } else {
        let mut raw = BytesMut::with_capacity(len);
        message.encode_raw(&mut raw);
        let mut failure = None;
        let framed = writer.frame(len / 2, usize::MAX, true, |buf| {
            if let Err(status) = encoding.compress(&raw, buf) {
                failure = Some(status);
            }
        });
        if let Some(status) = failure {
            return Err(status);
        }
        framed
    };
    framed.map_err(|err| match err {
        FrameError::TooLarge { len, limit } => too_large(len, limit),
        other => Status::internal(other.to_string()),
    })
}

fn too_large(len: u64, limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "message to send is {len} bytes, larger than the send limit of {limit} bytes"
    ))
}

/// Decodes one received frame, given the stream's `grpc-encoding` and the receive limit (which
/// bounds the decompressed size too).
pub(crate) fn decode<M: Message + Default>(
    frame: Frame,
    encoding: &RecvEncoding,
    limit: usize,
) -> Result<M, Status> {
    let data = if frame.compressed {
        encoding.decompress(frame.data, limit)?
    } else {
        frame.data
    };
    M::decode(data).map_err(Status::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::Decoder;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Hello {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(int64, tag = "2")]
        n: i64,
    }

    #[test]
    fn round_trip_through_frames_in_every_encoding() {
        let msg = Hello {
            name: "world ".repeat(100),
            n: -5,
        };
        for encoding in Encoding::SUPPORTED {
            let mut w = FrameWriter::new();
            let wire = encode(&mut w, &msg, 1024, *encoding).unwrap();
            assert_eq!(wire[0] == 1, *encoding != Encoding::Identity);
            let mut d = Decoder::new(1024);
            d.push(wire);
            let recv = RecvEncoding::from_header(Some(encoding.name().as_bytes()));
            let back: Hello = decode(d.decode().unwrap().unwrap(), &recv, 1024).unwrap();
            assert_eq!(back, msg);
        }
    }

    #[test]
    fn send_limit_is_resource_exhausted() {
        let mut w = FrameWriter::new();
        let msg = Hello {
            name: "x".repeat(100),
            n: 0,
        };
        let err = encode(&mut w, &msg, 10, Encoding::Identity).unwrap_err();
        assert_eq!(err.code(), crate::Code::ResourceExhausted);
    }

    #[test]
    fn garbage_is_internal_not_a_panic() {
        let frame = Frame {
            compressed: false,
            data: Bytes::from_static(b"\x0a\xff\xff\xff\xff\x0f"),
        };
        let err = decode::<Hello>(frame, &RecvEncoding::Identity, 100).unwrap_err();
        assert_eq!(err.code(), crate::Code::Internal);
    }
}
