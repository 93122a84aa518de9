//! gRPC length-prefixed messages: a 1-byte compressed flag, a 4-byte big-endian length, the bytes.
//!
//! Plain functions over bytes: no socket, no clock, no knowledge of protobuf. Messages may arrive
//! split across DATA frames at any byte or packed several to a frame; the decoder accepts both and
//! checks every length against the receive limit before it buffers a byte of the message.
//! Compression of the message bytes is decided above this layer.

mod decode;
mod encode;

pub(crate) use decode::Decoder;
pub(crate) use encode::{FrameWriter, HEADER_LEN};

use std::fmt;

use bytes::Bytes;

use crate::status::Status;

/// One message as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The compressed flag of the prefix.
    pub(crate) compressed: bool,
    /// The message bytes, without the prefix.
    pub(crate) data: Bytes,
}

/// What can be wrong with framed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A prefix announced more bytes than the limit allows.
    TooLarge { len: u64, limit: usize },
    /// The flag byte was neither 0 nor 1.
    BadFlag(u8),
    /// The stream ended inside a message.
    Truncated { buffered: usize, expected: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, limit } => write!(
                f,
                "message of {len} bytes is larger than the limit of {limit} bytes"
            ),
            FrameError::BadFlag(b) => write!(f, "invalid compressed flag {b} in message prefix"),
            FrameError::Truncated { buffered, expected } => write!(
                f,
                "stream ended inside a message: {buffered} of {expected} bytes received"
            ),
        }
    }
}

impl From<FrameError> for Status {
    fn from(err: FrameError) -> Status {
        match err {
            FrameError::TooLarge { .. } => Status::resource_exhausted(err.to_string()),
            FrameError::BadFlag(_) | FrameError::Truncated { .. } => {
                Status::internal(err.to_string())
            }
        }
    }
}
