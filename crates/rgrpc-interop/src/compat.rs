//! What the two Connect conformance programs share: the length-prefixed messages they exchange
//! with the suite's runner, headers in the suite's form, `Any` packing, and errors as the suite
//! describes them.

use std::io::{self, Read, Write};

use prost::Message;
use prost_types::Any;
use rgrpc::{Code, MetadataMap, Status};

use crate::conformance as pb;
use crate::rpc;

/// The type URL prefix the suite packs its messages with.
const TYPE_PREFIX: &str = "type.googleapis.com/";

/// Reads one message preceded by its length (four bytes, big-endian); `None` at a clean end of
/// input.
pub fn read_delimited<M: Message + Default>(input: &mut impl Read) -> io::Result<Option<M>> {
    let mut prefix = [0u8; 4];
    match input.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    input.read_exact(&mut body)?;
    M::decode(body.as_slice())
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes one message preceded by its length, and flushes.
pub fn write_delimited(output: &mut impl Write, message: &impl Message) -> io::Result<()> {
    let body = message.encode_to_vec();
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message over 4 GiB"))?;
    output.write_all(&len.to_be_bytes())?;
    output.write_all(&body)?;
    output.flush()
}

/// Packs a message of the suite's package as an `Any`.
pub fn pack(name: &str, message: &impl Message) -> Any {
    Any {
        type_url: format!("{TYPE_PREFIX}connectrpc.conformance.v1.{name}"),
        value: message.encode_to_vec(),
    }
}

/// Unpacks an `Any` that should hold the suite's message `name`.
pub fn unpack<M: Message + Default>(any: &Any, name: &str) -> Result<M, String> {
    let want = format!("{TYPE_PREFIX}connectrpc.conformance.v1.{name}");
    if any.type_url != want {
        return Err(format!("expected a {want}, got a {}", any.type_url));
    }
    M::decode(any.value.as_slice()).map_err(|e| format!("cannot decode {name}: {e}"))
}

/// Metadata as the suite lists it: one entry per name, its values in order, in wire form
/// (`-bin` values base64-encoded).
pub fn headers_of(metadata: &MetadataMap) -> Vec<pb::Header> {
    let mut out: Vec<pb::Header> = Vec::new();
    for (name, value) in metadata.iter() {
        let value = String::from_utf8_lossy(value).into_owned();
        match out.iter_mut().find(|h| h.name == name) {
            Some(header) => header.value.push(value),
            None => out.push(pb::Header {
                name: name.to_owned(),
                value: vec![value],
            }),
        }
    }
    out
}

/// Adds the suite's headers to `metadata`. Values are in wire form, so a `-bin` value is
/// decoded from base64 first. Names the framework reserves for itself are refused.
pub fn add_headers(metadata: &mut MetadataMap, headers: &[pb::Header]) -> Result<(), String> {
    for header in headers {
        let name = header.name.to_ascii_lowercase();
        for value in &header.value {
            let added = if name.ends_with("-bin") {
                let bytes = decode_base64(value)
                    .ok_or_else(|| format!("{name}: {value:?} is not base64"))?;
                metadata.append_bin(&name, &bytes)
            } else {
                metadata.append(&name, value)
            };
            added.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Decodes standard base64, padded or not (the forms gRPC peers send).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let six = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(six);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits beyond a whole byte must be zero padding, at most four of them.
    (bits < 6 && acc == 0).then_some(out)
}

/// The status the suite's `Error` describes, with its details in `grpc-status-details-bin` (a
/// `google.rpc.Status`) and, after them, `extra` (the request info a server echoes).
pub fn status_of(error: &pb::Error, extra: Option<Any>) -> Status {
    let code = match Code::from_i32(error.code) {
        // The suite never asks for OK as an error; an unknown number is UNKNOWN.
        Code::Ok => Code::Unknown,
        code => code,
    };
    let message = error.message.clone().unwrap_or_default();
    let mut details = error.details.clone();
    details.extend(extra);
    if details.is_empty() {
        return Status::new(code, message);
    }
    let encoded = rpc::Status {
        code: code as i32,
        message: message.clone(),
        details,
    }
    .encode_to_vec();
    Status::with_details(code, message, encoded.into())
}

/// The suite's `Error` for a status a call ended with, its details read from
/// `grpc-status-details-bin`.
pub fn error_of(status: &Status) -> pb::Error {
    let details = if status.details().is_empty() {
        Vec::new()
    } else {
        rpc::Status::decode(status.details().as_ref())
            .map(|s| s.details)
            .unwrap_or_default()
    };
    pb::Error {
        code: status.code() as i32,
        message: Some(status.message().to_owned()).filter(|m| !m.is_empty()),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_both_forms() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64("AAEC/w").unwrap(), [0, 1, 2, 255]);
        assert!(decode_base64("a*").is_none());
        assert!(decode_base64("aGl").is_none());
    }

    #[test]
    fn delimited_messages_round_trip() {
        let header = pb::Header {
            name: "x".into(),
            value: vec!["1".into()],
        };
        let mut wire = Vec::new();
        write_delimited(&mut wire, &header).unwrap();
        write_delimited(&mut wire, &header).unwrap();
        let mut input = wire.as_slice();
        assert_eq!(
            read_delimited::<pb::Header>(&mut input).unwrap(),
            Some(header.clone())
        );
        assert_eq!(
            read_delimited::<pb::Header>(&mut input).unwrap(),
            Some(header)
        );
        assert_eq!(read_delimited::<pb::Header>(&mut input).unwrap(), None);
    }

    #[test]
    fn errors_carry_their_details_both_ways() {
        let info = pack("Header", &pb::Header::default());
        let error = pb::Error {
            code: Code::Internal as i32,
            message: Some("boom".into()),
            details: vec![],
        };
        let status = status_of(&error, Some(info.clone()));
        assert_eq!(status.code(), Code::Internal);
        let back = error_of(&status);
        assert_eq!(back.details, vec![info]);
        assert_eq!(back.message.as_deref(), Some("boom"));
    }
}
