//! Message compression named by `grpc-encoding`.
//!
//! Only `identity` is built in today; a compressed message in any other encoding is refused with
//! the statuses `doc/compression.md` asks for. This module does not negotiate; the call layers do.

use bytes::Bytes;

use crate::status::Status;

/// The `grpc-encoding` of a stream, as the receiver sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Encoding {
    /// No compression (`identity`, or no `grpc-encoding` header).
    #[default]
    Identity,
    /// An encoding this build does not support.
    Unsupported(Box<str>),
}

impl Encoding {
    /// The encodings this build can decompress, for `grpc-accept-encoding`.
    pub const ACCEPTED: &'static str = "identity";

    /// Reads a `grpc-encoding` header value.
    pub fn from_header(value: Option<&[u8]>) -> Encoding {
        match value {
            None | Some(b"identity") => Encoding::Identity,
            Some(other) => Encoding::Unsupported(String::from_utf8_lossy(other).into()),
        }
    }

    pub(crate) fn decompress(&self, _data: Bytes) -> Result<Bytes, Status> {
        match self {
            Encoding::Identity => Err(Status::internal(
                "message has the compressed flag set but the stream names no grpc-encoding",
            )),
            Encoding::Unsupported(name) => Err(Status::unimplemented(format!(
                "message compressed with {name:?}, which is not supported; supported: {}",
                Encoding::ACCEPTED
            ))),
        }
    }
}
