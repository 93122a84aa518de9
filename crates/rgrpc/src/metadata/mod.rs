//! Call metadata: the user's headers and trailers, ASCII values and `-bin` binary values.
//!
//! A [`MetadataMap`] holds only what belongs to the application. Headers that the protocol owns
//! (pseudo-headers, `content-type`, `te`, `grpc-*`, connection headers) are kept out of it on receipt
//! and refused on insertion, so a handler can never spoof or lose them. Binary values are base64 on
//! the wire and plain bytes here. This module does no I/O.

pub(crate) mod base64;
mod timeout;

use std::fmt;

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

pub use timeout::{InvalidTimeout, format_timeout, parse_timeout};

/// Header names the protocol uses, built once: a name parsed from a string on every call shows
/// up in profiles.
pub(crate) mod names {
    use http::header::HeaderName;

    pub(crate) const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
    pub(crate) const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
    pub(crate) const GRPC_STATUS_DETAILS: HeaderName =
        HeaderName::from_static("grpc-status-details-bin");
    pub(crate) const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
    pub(crate) const GRPC_PREVIOUS_RPC_ATTEMPTS: HeaderName =
        HeaderName::from_static("grpc-previous-rpc-attempts");
    pub(crate) const GRPC_RETRY_PUSHBACK_MS: HeaderName =
        HeaderName::from_static("grpc-retry-pushback-ms");
    pub(crate) const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
    pub(crate) const GRPC_ACCEPT_ENCODING: HeaderName =
        HeaderName::from_static("grpc-accept-encoding");
}

/// A metadata key or value that cannot be sent.
#[derive(Debug, Clone)]
pub struct InvalidMetadata {
    kind: InvalidKind,
    key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvalidKind {
    Key,
    Reserved,
    AsciiValue,
    BinaryKeyForAscii,
    AsciiKeyForBinary,
    Base64,
}

impl InvalidMetadata {
    fn new(kind: InvalidKind, key: &str) -> InvalidMetadata {
        InvalidMetadata {
            kind,
            key: key.to_owned(),
        }
    }

    /// The key is reserved for the protocol (`grpc-*`, `content-type`, `te`, pseudo-headers…).
    pub fn is_reserved(&self) -> bool {
        self.kind == InvalidKind::Reserved
    }
}

impl fmt::Display for InvalidMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        match self.kind {
            InvalidKind::Key => write!(
                f,
                "invalid metadata key {key:?}: keys use only 0-9 a-z _ - . and are not empty"
            ),
            InvalidKind::Reserved => {
                write!(f, "metadata key {key:?} is reserved for the gRPC protocol")
            }
            InvalidKind::AsciiValue => write!(
                f,
                "invalid value for metadata key {key:?}: ASCII values hold printable ASCII only \
                 (use a key ending in -bin for binary data)"
            ),
            InvalidKind::BinaryKeyForAscii => write!(
                f,
                "metadata key {key:?} ends in -bin: give its value as bytes (insert_bin)"
            ),
            InvalidKind::AsciiKeyForBinary => write!(
                f,
                "metadata key {key:?} does not end in -bin: binary values need a -bin key"
            ),
            InvalidKind::Base64 => write!(f, "metadata value for {key:?} is not valid base64"),
        }
    }
}

impl std::error::Error for InvalidMetadata {}

/// Headers or trailers of a call, as the application sees them.
#[derive(Clone, Default)]
pub struct MetadataMap {
    headers: HeaderMap,
    /// The map is a received header block that may still hold names the protocol owns. They are
    /// not taken out (that would cost a hash and a removal each, on every call); every accessor
    /// hides them instead.
    received: bool,
}

impl MetadataMap {
    /// An empty map.
    pub fn new() -> MetadataMap {
        MetadataMap::default()
    }

    /// Number of values (a key with two values counts twice).
    pub fn len(&self) -> usize {
        if self.received {
            return self.iter().count();
        }
        self.headers.len()
    }

    /// True when the map holds no value.
    pub fn is_empty(&self) -> bool {
        if self.received {
            return self.iter().next().is_none();
        }
        self.headers.is_empty()
    }

    /// Sets an ASCII value, replacing any earlier values of the key.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), InvalidMetadata> {
        let (name, value) = ascii_entry(key, value)?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Adds an ASCII value, keeping earlier values of the key.
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), InvalidMetadata> {
        let (name, value) = ascii_entry(key, value)?;
        self.headers.append(name, value);
        Ok(())
    }

    /// Sets a binary value under a key ending in `-bin`, replacing earlier values.
    pub fn insert_bin(&mut self, key: &str, value: &[u8]) -> Result<(), InvalidMetadata> {
        let (name, value) = binary_entry(key, value)?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Adds a binary value under a key ending in `-bin`, keeping earlier values.
    pub fn append_bin(&mut self, key: &str, value: &[u8]) -> Result<(), InvalidMetadata> {
        let (name, value) = binary_entry(key, value)?;
        self.headers.append(name, value);
        Ok(())
    }

    /// The first ASCII value of a key. `None` for a missing key, a `-bin` key, or a value that is
    /// not printable ASCII.
    pub fn get(&self, key: &str) -> Option<&str> {
        if is_binary_key(key) || self.hides(key) {
            return None;
        }
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }

    /// Every ASCII value of a key, in order.
    pub fn get_all<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> + 'a {
        let values = if is_binary_key(key) || self.hides(key) {
            None
        } else {
            Some(self.headers.get_all(key).iter())
        };
        values.into_iter().flatten().filter_map(|v| v.to_str().ok())
    }

    /// The first binary value of a `-bin` key, decoded from base64.
    pub fn get_bin(&self, key: &str) -> Option<Result<Vec<u8>, InvalidMetadata>> {
        if !is_binary_key(key) || self.hides(key) {
            return None;
        }
        let raw = self.headers.get(key)?;
        Some(
            base64::decode(raw.as_bytes())
                .map_err(|_| InvalidMetadata::new(InvalidKind::Base64, key)),
        )
    }

    /// Every binary value of a `-bin` key, decoded. A peer may send several values in one header,
    /// separated by commas; each is decoded on its own.
    pub fn get_all_bin(&self, key: &str) -> Result<Vec<Vec<u8>>, InvalidMetadata> {
        if !is_binary_key(key) || self.hides(key) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for raw in self.headers.get_all(key) {
            for part in raw.as_bytes().split(|b| *b == b',') {
                out.push(
                    base64::decode(part)
                        .map_err(|_| InvalidMetadata::new(InvalidKind::Base64, key))?,
                );
            }
        }
        Ok(out)
    }

    /// True when the key has at least one value.
    pub fn contains_key(&self, key: &str) -> bool {
        !self.hides(key) && self.headers.contains_key(key)
    }

    /// Removes every value of a key; true if there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        !self.hides(key) && self.headers.remove(key).is_some()
    }

    /// The keys, each once.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let received = self.received;
        self.headers
            .keys()
            .map(HeaderName::as_str)
            .filter(move |k| !(received && is_reserved(k)))
    }

    /// Every entry in wire form: `-bin` values still base64-encoded.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries().map(|(k, v)| (k.as_str(), v.as_bytes()))
    }

    /// The entries the application sees, as header names and values.
    fn entries(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        let received = self.received;
        self.headers
            .iter()
            .filter(move |(k, _)| !(received && is_reserved(k.as_str())))
    }

    /// True when `key` is a protocol-owned name this map keeps out of sight.
    fn hides(&self, key: &str) -> bool {
        self.received && is_reserved(key)
    }

    /// Adds every entry of `other` to this map.
    pub fn extend(&mut self, other: MetadataMap) {
        // The first item of each run carries the name; HeaderMap yields None for the values
        // after it, which belong to the same name.
        let mut current = None;
        for (name, value) in other.headers {
            if let Some(name) = name {
                current = (!(other.received && is_reserved(name.as_str()))).then_some(name);
            }
            if let Some(name) = &current {
                self.headers.append(name.clone(), value);
            }
        }
    }

    /// A map of received headers, without what the protocol owns: those entries stay in the
    /// block, unseen by every accessor, so that building the map costs nothing per call.
    pub(crate) fn from_headers(headers: HeaderMap) -> MetadataMap {
        MetadataMap {
            headers,
            received: true,
        }
    }

    /// Appends every entry to an outgoing header block.
    pub(crate) fn write_to(&self, out: &mut HeaderMap) {
        for (name, value) in self.entries() {
            out.append(name.clone(), value.clone());
        }
    }

    /// The raw header map, for tests.
    #[cfg(test)]
    pub(crate) fn as_headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl fmt::Debug for MetadataMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries()
                    .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v.as_bytes()))),
            )
            .finish()
    }
}

fn is_binary_key(key: &str) -> bool {
    key.ends_with("-bin")
}

/// Keys the protocol owns; user metadata may not carry them.
pub(crate) fn is_reserved(key: &str) -> bool {
    key.starts_with(':')
        || key.starts_with("grpc-")
        || matches!(
            key,
            "content-type"
                | "te"
                | "host"
                | "connection"
                | "keep-alive"
                | "proxy-connection"
                | "transfer-encoding"
                | "upgrade"
                | "content-length"
        )
}

fn check_key(key: &str) -> Result<HeaderName, InvalidMetadata> {
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'_' | b'-' | b'.'));
    if !valid {
        return Err(InvalidMetadata::new(InvalidKind::Key, key));
    }
    if is_reserved(key) {
        return Err(InvalidMetadata::new(InvalidKind::Reserved, key));
    }
    HeaderName::from_bytes(key.as_bytes()).map_err(|_| InvalidMetadata::new(InvalidKind::Key, key))
}

fn ascii_entry(key: &str, value: &str) -> Result<(HeaderName, HeaderValue), InvalidMetadata> {
    let name = check_key(key)?;
    if is_binary_key(key) {
        return Err(InvalidMetadata::new(InvalidKind::BinaryKeyForAscii, key));
    }
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(InvalidMetadata::new(InvalidKind::AsciiValue, key));
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| InvalidMetadata::new(InvalidKind::AsciiValue, key))?;
    Ok((name, value))
}

fn binary_entry(key: &str, value: &[u8]) -> Result<(HeaderName, HeaderValue), InvalidMetadata> {
    let name = check_key(key)?;
    if !is_binary_key(key) {
        return Err(InvalidMetadata::new(InvalidKind::AsciiKeyForBinary, key));
    }
    // base64 output is always a valid header value.
    let value = HeaderValue::from_str(&base64::encode(value))
        .map_err(|_| InvalidMetadata::new(InvalidKind::Base64, key))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extending_keeps_every_value_of_a_repeated_key() {
        let mut other = MetadataMap::new();
        other.append("x-trailer", "bing").unwrap();
        other.append("x-trailer", "quux").unwrap();
        other.append("x-other", "1").unwrap();
        let mut md = MetadataMap::new();
        md.append("x-trailer", "first").unwrap();
        md.extend(other);
        assert_eq!(
            md.get_all("x-trailer").collect::<Vec<_>>(),
            ["first", "bing", "quux"]
        );
        assert_eq!(md.get("x-other"), Some("1"));
    }

    #[test]
    fn ascii_and_binary_values() {
        let mut md = MetadataMap::new();
        md.insert("x-user", "alice").unwrap();
        md.append("x-user", "bob").unwrap();
        md.insert_bin("x-blob-bin", b"\x00\x01\xfe\xff").unwrap();
        assert_eq!(md.get("x-user"), Some("alice"));
        assert_eq!(md.get_all("x-user").collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(
            md.get_bin("x-blob-bin").unwrap().unwrap(),
            b"\x00\x01\xfe\xff"
        );
        assert_eq!(md.as_headers()["x-blob-bin"], "AAH+/w");
        assert!(md.get("x-blob-bin").is_none());
        assert!(md.get_bin("x-user").is_none());
        assert_eq!(md.len(), 3);
        assert!(md.remove("x-user"));
        assert_eq!(md.len(), 1);
    }

    #[test]
    fn binary_values_accept_padding_and_comma_lists() {
        let mut headers = HeaderMap::new();
        headers.insert("a-bin", HeaderValue::from_static("YQ=="));
        headers.insert("b-bin", HeaderValue::from_static("YQ,YWI="));
        let md = MetadataMap::from_headers(headers);
        assert_eq!(md.get_bin("a-bin").unwrap().unwrap(), b"a");
        assert_eq!(
            md.get_all_bin("b-bin").unwrap(),
            vec![b"a".to_vec(), b"ab".to_vec()]
        );
    }

    #[test]
    fn invalid_keys_and_values_are_refused_with_reasons() {
        let mut md = MetadataMap::new();
        assert!(md.insert("", "x").is_err());
        assert!(md.insert("Upper", "x").is_err());
        assert!(md.insert("sp ace", "x").is_err());
        assert!(md.insert("grpc-status", "0").unwrap_err().is_reserved());
        assert!(md.insert("content-type", "x").unwrap_err().is_reserved());
        assert!(md.insert("te", "trailers").unwrap_err().is_reserved());
        assert!(md.insert("x-ok", "tab\there").is_err());
        assert!(md.insert("x-ok", "é").is_err());
        let err = md.insert("x-data-bin", "text").unwrap_err();
        assert!(err.to_string().contains("insert_bin"));
        assert!(md.insert_bin("x-data", b"\0").is_err());
        assert!(md.is_empty());
    }

    #[test]
    fn reserved_headers_are_kept_out_of_received_metadata() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "1S"),
            ("grpc-encoding", "gzip"),
            ("user-agent", "grpc-go/1.0"),
            ("x-custom", "yes"),
        ] {
            headers.insert(k, HeaderValue::from_static(v));
        }
        headers.append("x-custom", HeaderValue::from_static("again"));
        let mut md = MetadataMap::from_headers(headers);
        let mut keys: Vec<_> = md.keys().collect();
        keys.sort();
        assert_eq!(keys, ["user-agent", "x-custom"]);
        // Every accessor agrees: the protocol's entries are not there.
        assert_eq!(md.len(), 3);
        assert!(!md.is_empty());
        assert_eq!(md.iter().count(), 3);
        assert_eq!(md.get("content-type"), None);
        assert_eq!(md.get_all("te").count(), 0);
        assert!(!md.contains_key("grpc-timeout"));
        assert!(!md.remove("grpc-encoding"));
        assert!(!format!("{md:?}").contains("grpc-timeout"));
        let mut out = HeaderMap::new();
        md.write_to(&mut out);
        assert_eq!(out.len(), 3);
        assert!(!out.contains_key("te"));
        let mut merged = MetadataMap::new();
        merged.extend(md.clone());
        assert_eq!(merged.len(), 3);
        assert_eq!(
            merged.get_all("x-custom").collect::<Vec<_>>(),
            ["yes", "again"]
        );
        // The map stays writable as usual.
        md.insert("x-added", "1").unwrap();
        assert!(md.remove("x-custom"));
        assert_eq!(md.len(), 2);

        let mut protocol_only = HeaderMap::new();
        protocol_only.insert("content-type", HeaderValue::from_static("application/grpc"));
        protocol_only.insert("grpc-status", HeaderValue::from_static("0"));
        let md = MetadataMap::from_headers(protocol_only);
        assert!(md.is_empty());
        assert_eq!(md.len(), 0);
        assert_eq!(md.keys().count(), 0);
    }
}
