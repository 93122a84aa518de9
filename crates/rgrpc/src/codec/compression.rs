//! Message compression named by `grpc-encoding`, as grpc/grpc `doc/compression.md` defines it:
//! `gzip`, `deflate` (zlib) and `zstd`, each behind a feature of the same name.
//!
//! Decompression is bounded: output past the receive limit stops the codec and fails the message
//! with RESOURCE_EXHAUSTED, so a small compressed message cannot make us allocate without bound.
//! This module does not negotiate; the call layers pick an encoding from what the peer accepts.

// Built with no codec, only identity remains and the codec plumbing goes unused.
#![cfg_attr(
    not(any(feature = "gzip", feature = "deflate", feature = "zstd")),
    allow(unused_imports, unused_variables)
)]

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};

use crate::status::Status;

/// A message compression algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952).
    #[cfg(feature = "gzip")]
    Gzip,
    /// zlib-wrapped deflate (RFC 1950), which gRPC calls `deflate`.
    #[cfg(feature = "deflate")]
    Deflate,
    /// Zstandard (RFC 8878).
    #[cfg(feature = "zstd")]
    Zstd,
}

impl Encoding {
    /// Every encoding this build can compress and decompress, preferred first.
    pub const SUPPORTED: &'static [Encoding] = &[
        #[cfg(feature = "gzip")]
        Encoding::Gzip,
        #[cfg(feature = "zstd")]
        Encoding::Zstd,
        #[cfg(feature = "deflate")]
        Encoding::Deflate,
        Encoding::Identity,
    ];

    /// Its name in `grpc-encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            #[cfg(feature = "gzip")]
            Encoding::Gzip => "gzip",
            #[cfg(feature = "deflate")]
            Encoding::Deflate => "deflate",
            #[cfg(feature = "zstd")]
            Encoding::Zstd => "zstd",
        }
    }

    /// The encoding of a `grpc-encoding` name, if this build supports it.
    pub fn from_name(name: &[u8]) -> Option<Encoding> {
        Encoding::SUPPORTED
            .iter()
            .copied()
            .find(|e| e.name().as_bytes() == name)
    }

    /// The `grpc-accept-encoding` value this build advertises.
    pub(crate) fn accept_header() -> &'static str {
        // The list is fixed at compile time; its order is SUPPORTED's.
        const fn pick() -> &'static str {
            match (
                cfg!(feature = "gzip"),
                cfg!(feature = "zstd"),
                cfg!(feature = "deflate"),
            ) {
                (true, true, true) => "gzip,zstd,deflate,identity",
                (true, true, false) => "gzip,zstd,identity",
                (true, false, true) => "gzip,deflate,identity",
                (true, false, false) => "gzip,identity",
                (false, true, true) => "zstd,deflate,identity",
                (false, true, false) => "zstd,identity",
                (false, false, true) => "deflate,identity",
                (false, false, false) => "identity",
            }
        }
        pick()
    }

    /// The encoding to send with, given our preference and the peer's `grpc-accept-encoding`:
    /// the preferred one if the peer accepts it, else the first we support that it accepts.
    pub(crate) fn negotiate(preferred: Option<Encoding>, accepted: Option<&[u8]>) -> Encoding {
        let accepts = |e: Encoding| {
            e == Encoding::Identity
                || accepted.is_some_and(|list| {
                    list.split(|b| *b == b',')
                        .any(|item| item.trim_ascii() == e.name().as_bytes())
                })
        };
        if let Some(p) = preferred.filter(|p| accepts(*p)) {
            return p;
        }
        Encoding::SUPPORTED
            .iter()
            .copied()
            .find(|e| *e != Encoding::Identity && accepts(*e))
            .unwrap_or(Encoding::Identity)
    }

    /// Compresses `data`, appending to `out`.
    pub(crate) fn compress(self, data: &[u8], out: &mut BytesMut) -> Result<(), Status> {
        let fail = |e: std::io::Error| {
            Status::internal(format!("{} compression failed: {e}", self.name()))
        };
        let mut writer = out.writer();
        match self {
            Encoding::Identity => writer.write_all(data).map_err(fail),
            #[cfg(feature = "gzip")]
            Encoding::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
                enc.write_all(data)
                    .and_then(|()| enc.finish().map(drop))
                    .map_err(fail)
            }
            #[cfg(feature = "deflate")]
            Encoding::Deflate => {
                let mut enc = flate2::write::ZlibEncoder::new(writer, flate2::Compression::fast());
                enc.write_all(data)
                    .and_then(|()| enc.finish().map(drop))
                    .map_err(fail)
            }
            #[cfg(feature = "zstd")]
            Encoding::Zstd => zstd::stream::copy_encode(data, writer, 1).map_err(fail),
        }
    }

    /// Decompresses `data`, failing with RESOURCE_EXHAUSTED once the output would pass `limit`.
    pub(crate) fn decompress(self, data: &[u8], limit: usize) -> Result<Bytes, Status> {
        let fail = |e: std::io::Error| {
            Status::internal(format!("{} decompression failed: {e}", self.name()))
        };
        let mut out = Vec::with_capacity(data.len().saturating_mul(2).min(limit));
        // One byte past the limit tells "exactly at the limit" from "over it".
        let bound = limit as u64 + 1;
        match self {
            Encoding::Identity => out.extend_from_slice(data),
            #[cfg(feature = "gzip")]
            Encoding::Gzip => {
                flate2::read::GzDecoder::new(data)
                    .take(bound)
                    .read_to_end(&mut out)
                    .map_err(fail)?;
            }
            #[cfg(feature = "deflate")]
            Encoding::Deflate => {
                flate2::read::ZlibDecoder::new(data)
                    .take(bound)
                    .read_to_end(&mut out)
                    .map_err(fail)?;
            }
            #[cfg(feature = "zstd")]
            Encoding::Zstd => {
                zstd::stream::read::Decoder::new(data)
                    .map_err(fail)?
                    .take(bound)
                    .read_to_end(&mut out)
                    .map_err(fail)?;
            }
        }
        if out.len() > limit {
            return Err(Status::resource_exhausted(format!(
                "decompressed message is larger than the limit of {limit} bytes"
            )));
        }
        Ok(Bytes::from(out))
    }
}

/// The `grpc-encoding` of a received stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum RecvEncoding {
    /// No header, or `identity`.
    #[default]
    Identity,
    /// An encoding we support.
    Known(Encoding),
    /// An encoding this build does not support.
    Unsupported(Box<str>),
}

impl RecvEncoding {
    /// Reads a `grpc-encoding` header value.
    pub(crate) fn from_header(value: Option<&[u8]>) -> RecvEncoding {
        match value {
            None | Some(b"identity") => RecvEncoding::Identity,
            Some(name) => match Encoding::from_name(name) {
                Some(e) => RecvEncoding::Known(e),
                None => RecvEncoding::Unsupported(String::from_utf8_lossy(name).into()),
            },
        }
    }

    /// The bytes of a message whose compressed flag is set.
    pub(crate) fn decompress(&self, data: Bytes, limit: usize) -> Result<Bytes, Status> {
        match self {
            RecvEncoding::Known(e) => e.decompress(&data, limit),
            RecvEncoding::Identity => Err(Status::internal(
                "message has the compressed flag set but the stream names no grpc-encoding",
            )),
            // Only a client gets here (a server refuses the encoding before reading): the server
            // broke the protocol by using an encoding the client never offered, so INTERNAL.
            RecvEncoding::Unsupported(name) => Err(Status::internal(format!(
                "message compressed with {name:?}, which is not supported; supported: {}",
                Encoding::accept_header()
            ))),
        }
    }
}

#[cfg(all(test, feature = "gzip", feature = "deflate", feature = "zstd"))]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for e in Encoding::SUPPORTED {
            let mut out = BytesMut::new();
            e.compress(&data, &mut out).unwrap();
            if *e != Encoding::Identity {
                assert!(out.len() < data.len() / 2, "{e:?} compresses");
            }
            assert_eq!(e.decompress(&out, data.len()).unwrap(), data, "{e:?}");
        }
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 64 << 20];
        for e in Encoding::SUPPORTED
            .iter()
            .filter(|e| **e != Encoding::Identity)
        {
            let mut bomb = BytesMut::new();
            e.compress(&zeros, &mut bomb).unwrap();
            assert!(bomb.len() < 1 << 20, "{e:?}: {}", bomb.len());
            let err = e.decompress(&bomb, 4 << 20).unwrap_err();
            assert_eq!(err.code(), crate::Code::ResourceExhausted, "{e:?}");
        }
    }

    #[test]
    fn exactly_at_the_limit_passes() {
        let data = vec![7u8; 1000];
        for e in Encoding::SUPPORTED {
            let mut out = BytesMut::new();
            e.compress(&data, &mut out).unwrap();
            assert!(e.decompress(&out, 1000).is_ok());
            assert!(e.decompress(&out, 999).is_err());
        }
    }

    #[test]
    fn garbage_is_internal() {
        for e in Encoding::SUPPORTED
            .iter()
            .filter(|e| **e != Encoding::Identity)
        {
            let err = e
                .decompress(b"definitely not compressed", 1000)
                .unwrap_err();
            assert_eq!(err.code(), crate::Code::Internal, "{e:?}");
        }
    }

    #[test]
    fn negotiation() {
        let gzip = Encoding::from_name(b"gzip").unwrap();
        let zstd = Encoding::from_name(b"zstd").unwrap();
        assert_eq!(Encoding::negotiate(Some(zstd), Some(b"gzip, zstd")), zstd);
        assert_eq!(Encoding::negotiate(Some(zstd), Some(b"gzip")), gzip);
        assert_eq!(Encoding::negotiate(None, Some(b"deflate,gzip")), gzip);
        assert_eq!(Encoding::negotiate(Some(gzip), None), Encoding::Identity);
        assert_eq!(
            Encoding::negotiate(Some(gzip), Some(b"br")),
            Encoding::Identity
        );
    }

    #[test]
    fn received_encodings() {
        assert_eq!(RecvEncoding::from_header(None), RecvEncoding::Identity);
        assert_eq!(
            RecvEncoding::from_header(Some(b"identity")),
            RecvEncoding::Identity
        );
        assert!(matches!(
            RecvEncoding::from_header(Some(b"gzip")),
            RecvEncoding::Known(_)
        ));
        let unknown = RecvEncoding::from_header(Some(b"snappy"));
        let err = unknown
            .decompress(Bytes::from_static(b"x"), 10)
            .unwrap_err();
        // A client hearing an encoding it never offered: the server broke the protocol.
        assert_eq!(err.code(), crate::Code::Internal);
        assert!(err.message().contains("gzip"));
        let err = RecvEncoding::Identity
            .decompress(Bytes::from_static(b"x"), 10)
            .unwrap_err();
        assert_eq!(err.code(), crate::Code::Internal);
    }
}
