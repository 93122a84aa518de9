//! Messages to bytes and back with `prost`, inside the gRPC frame.
//!
//! No I/O and no HTTP/2 here: the callers hand in and take out framed `Bytes`. Message bodies are
//! encoded straight into the frame buffer and decoded from slices of the received bytes.

mod compression;

pub use compression::Encoding;

use bytes::Bytes;
use prost::Message;

use crate::framing::{Frame, FrameError, FrameWriter};
use crate::status::Status;

/// Encodes one message into a frame. Past `limit` the message is refused before it is written.
pub(crate) fn encode<M: Message>(
    writer: &mut FrameWriter,
    message: &M,
    limit: usize,
) -> Result<Bytes, Status> {
    let len = message.encoded_len();
    if len > limit {
        return Err(Status::resource_exhausted(format!(
            "message to send is {len} bytes, larger than the send limit of {limit} bytes"
        )));
    }
    writer
        .frame(len, limit, false, |buf| message.encode_raw(buf))
        .map_err(|err| match err {
            FrameError::TooLarge { len, limit } => Status::resource_exhausted(format!(
                "message to send is {len} bytes, larger than the send limit of {limit} bytes"
            )),
            other => Status::internal(other.to_string()),
        })
}

/// Decodes one received frame, given the stream's `grpc-encoding`.
pub(crate) fn decode<M: Message + Default>(frame: Frame, encoding: &Encoding) -> Result<M, Status> {
    let data = if frame.compressed {
        encoding.decompress(frame.data)?
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
    fn round_trip_through_frames() {
        let mut w = FrameWriter::new();
        let msg = Hello {
            name: "world".into(),
            n: -5,
        };
        let wire = encode(&mut w, &msg, 1024).unwrap();
        let mut d = Decoder::new(1024);
        d.push(wire);
        let back: Hello = decode(d.decode().unwrap().unwrap(), &Encoding::Identity).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn send_limit_is_resource_exhausted() {
        let mut w = FrameWriter::new();
        let msg = Hello {
            name: "x".repeat(100),
            n: 0,
        };
        let err = encode(&mut w, &msg, 10).unwrap_err();
        assert_eq!(err.code(), crate::Code::ResourceExhausted);
    }

    #[test]
    fn garbage_is_internal_not_a_panic() {
        let frame = Frame {
            compressed: false,
            data: Bytes::from_static(b"\x0a\xff\xff\xff\xff\x0f"),
        };
        let err = decode::<Hello>(frame, &Encoding::Identity).unwrap_err();
        assert_eq!(err.code(), crate::Code::Internal);
    }
}
