//! `Code` and `Status`: the one error that crosses the wire, and its encoding in trailers.
//!
//! This module turns a status into `grpc-status`, `grpc-message` (percent-encoded) and
//! `grpc-status-details-bin` headers and back. It does not decide *when* a call fails; the server and
//! client layers do.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderValue;

use crate::metadata::MetadataMap;
use crate::metadata::base64;
use crate::metadata::names::{self, GRPC_MESSAGE, GRPC_STATUS, GRPC_STATUS_DETAILS};

/// A gRPC status code, as listed in grpc/grpc `doc/statuscodes.md`.
///
/// `Ok` is a code like the others on the wire, but a [`Status`] carrying it is never returned as an
/// error by this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// Not an error; returned on success.
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, e.g. a status from another address space with an unknown code.
    Unknown = 2,
    /// The client specified an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// The entity the client tried to create already exists.
    AlreadyExists = 6,
    /// The caller does not have permission to execute the operation.
    PermissionDenied = 7,
    /// Some resource has been exhausted (a quota, a message size limit).
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted, typically due to a concurrency issue.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or not supported.
    Unimplemented = 12,
    /// An invariant expected by the underlying system was broken.
    Internal = 13,
    /// The service is currently unavailable; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request does not have valid authentication credentials.
    Unauthenticated = 16,
}

impl Code {
    /// The code for a wire value; values outside 0..=16 map to `Unknown`, as the spec asks.
    pub fn from_i32(value: i32) -> Code {
        match value {
            0 => Code::Ok,
            1 => Code::Cancelled,
            2 => Code::Unknown,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }

    /// The code's name in `doc/statuscodes.md`, e.g. `DEADLINE_EXCEEDED`.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The code for a name of `doc/statuscodes.md` (`"NOT_FOUND"`), if it is one.
    pub fn from_name(name: &str) -> Option<Code> {
        (0..=16).map(Code::from_i32).find(|c| c.name() == name)
    }

    /// The code that a non-200 HTTP status maps to, per `doc/http-grpc-status-mapping.md`.
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    fn header_value(self) -> HeaderValue {
        const VALUES: [&str; 17] = [
            "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
            "16",
        ];
        HeaderValue::from_static(VALUES[self as usize])
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of a failed call: a code, a message, optional binary details and trailing metadata.
///
/// The fields live behind one box, so `Result<T, Status>` stays small on the hot path.
#[derive(Clone)]
pub struct Status(Box<Inner>);

#[derive(Clone)]
struct Inner {
    code: Code,
    message: String,
    details: Bytes,
    metadata: MetadataMap,
    source: Option<std::sync::Arc<dyn StdError + Send + Sync + 'static>>,
    /// `grpc-retry-pushback-ms` as received, for the retry layer.
    pushback: Option<HeaderValue>,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<String>) -> Status {
                Status::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with a code and a message.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status(Box::new(Inner {
            code,
            message: message.into(),
            details: Bytes::new(),
            metadata: MetadataMap::new(),
            source: None,
            pushback: None,
        }))
    }

    /// A status with binary details (usually an encoded `google.rpc.Status`).
    pub fn with_details(code: Code, message: impl Into<String>, details: Bytes) -> Status {
        let mut status = Status::new(code, message);
        status.0.details = details;
        status
    }

    constructors! {
        /// `CANCELLED` with a message.
        cancelled => Cancelled,
        /// `UNKNOWN` with a message.
        unknown => Unknown,
        /// `INVALID_ARGUMENT` with a message.
        invalid_argument => InvalidArgument,
        /// `DEADLINE_EXCEEDED` with a message.
        deadline_exceeded => DeadlineExceeded,
        /// `NOT_FOUND` with a message.
        not_found => NotFound,
        /// `ALREADY_EXISTS` with a message.
        already_exists => AlreadyExists,
        /// `PERMISSION_DENIED` with a message.
        permission_denied => PermissionDenied,
        /// `RESOURCE_EXHAUSTED` with a message.
        resource_exhausted => ResourceExhausted,
        /// `FAILED_PRECONDITION` with a message.
        failed_precondition => FailedPrecondition,
        /// `ABORTED` with a message.
        aborted => Aborted,
        /// `OUT_OF_RANGE` with a message.
        out_of_range => OutOfRange,
        /// `UNIMPLEMENTED` with a message.
        unimplemented => Unimplemented,
        /// `INTERNAL` with a message.
        internal => Internal,
        /// `UNAVAILABLE` with a message.
        unavailable => Unavailable,
        /// `DATA_LOSS` with a message.
        data_loss => DataLoss,
        /// `UNAUTHENTICATED` with a message.
        unauthenticated => Unauthenticated,
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.0.code
    }

    /// The message, already percent-decoded.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The binary details (`grpc-status-details-bin`), empty when there are none.
    pub fn details(&self) -> &Bytes {
        &self.0.details
    }

    /// Trailing metadata sent or received with this status. On the client, a unary or
    /// client-streaming call that fails after the server sent its response headers has those
    /// headers here too, ahead of the trailers.
    pub fn metadata(&self) -> &MetadataMap {
        &self.0.metadata
    }

    /// Trailing metadata to send with this status.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        &mut self.0.metadata
    }

    /// Attaches the error that caused this status, for logging; it never crosses the wire.
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Status {
        self.0.source = Some(std::sync::Arc::from(source.into()));
        self
    }

    /// Server side: tells a retrying client when to try again (`grpc-retry-pushback-ms`, gRFC
    /// A6): after `delay`, or, with `None`, not at all.
    pub fn with_retry_pushback(mut self, delay: Option<std::time::Duration>) -> Status {
        let value = match delay {
            Some(d) => HeaderValue::from(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => HeaderValue::from_static("-1"),
        };
        self.0.pushback = Some(value);
        self
    }

    /// The server's `grpc-retry-pushback-ms`, as it arrived with this status.
    pub(crate) fn retry_pushback(&self) -> Option<&HeaderValue> {
        self.0.pushback.as_ref()
    }

    /// Maps an `h2` error to a status: a stream reset by the peer with CANCEL is `CANCELLED`,
    /// a refused stream is `UNAVAILABLE` (safe to retry), anything else about the connection is
    /// `UNAVAILABLE`, and a protocol violation is `INTERNAL`.
    pub(crate) fn from_h2(err: h2::Error) -> Status {
        let status =
            if let (true, true, Some(reason)) = (err.is_go_away(), err.is_remote(), err.reason()) {
                // The peer sent the whole connection away (its keepalive policy, its shutdown, its
                // error): the call may succeed on another one. A GOAWAY of ours, for the peer's
                // protocol error, is INTERNAL below.
                Status::unavailable(format!("connection closed by the peer (GOAWAY {reason:?})"))
            } else if let Some(reason) = err.reason() {
                match reason {
                    h2::Reason::CANCEL => Status::cancelled("stream cancelled by the peer"),
                    h2::Reason::REFUSED_STREAM => Status::unavailable("stream refused by the peer"),
                    h2::Reason::ENHANCE_YOUR_CALM => {
                        Status::resource_exhausted("peer asked to slow down (ENHANCE_YOUR_CALM)")
                    }
                    h2::Reason::INADEQUATE_SECURITY => {
                        Status::permission_denied("peer requires better transport security")
                    }
                    r => Status::internal(format!("HTTP/2 error from the peer: {r}")),
                }
            } else if err.is_io() {
                Status::unavailable(format!("connection lost: {err}"))
            } else {
                Status::internal(format!("HTTP/2 error: {err}"))
            };
        status.with_source(err)
    }

    /// Reads a status from trailers (or a Trailers-Only header block). `None` when there is no
    /// `grpc-status` at all.
    pub(crate) fn from_trailers(headers: &HeaderMap) -> Option<Result<(), Status>> {
        let code = headers.get(GRPC_STATUS)?;
        // 1*DIGIT: `+0` or ` 0`, which a lenient parse would take for OK, are not codes.
        let digits = code.as_bytes();
        let numeric =
            !digits.is_empty() && digits.len() <= 9 && digits.iter().all(u8::is_ascii_digit);
        let code = match numeric
            .then(|| std::str::from_utf8(digits).ok()?.parse::<i32>().ok())
            .flatten()
        {
            Some(n) => Code::from_i32(n),
            None => {
                return Some(Err(Status::unknown(format!(
                    "peer sent an unparseable grpc-status {:?}",
                    code
                ))));
            }
        };
        if code == Code::Ok {
            return Some(Ok(()));
        }
        let message = headers
            .get(GRPC_MESSAGE)
            .map(|v| percent_decode(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let details = headers
            .get(GRPC_STATUS_DETAILS)
            .and_then(|v| base64::decode(v.as_bytes()).ok())
            .map(Bytes::from)
            .unwrap_or_default();
        let mut status = Status::with_details(code, message, details);
        status.0.pushback = headers.get(names::GRPC_RETRY_PUSHBACK_MS).cloned();
        status.0.metadata = MetadataMap::from_headers(headers.clone());
        Some(Err(status))
    }

    /// Writes this status, with its trailing metadata, into a header block.
    pub(crate) fn write_trailers(&self, headers: &mut HeaderMap) {
        self.0.metadata.write_to(headers);
        Status::write_code(self.0.code, headers);
        if let Some(pushback) = &self.0.pushback {
            headers.insert(names::GRPC_RETRY_PUSHBACK_MS, pushback.clone());
        }
        if !self.0.message.is_empty() {
            let encoded = percent_encode(&self.0.message);
            // percent_encode leaves only visible ASCII, which is always a valid header value.
            if let Ok(v) = HeaderValue::from_str(&encoded) {
                headers.insert(GRPC_MESSAGE, v);
            }
        }
        if !self.0.details.is_empty() {
            let encoded = base64::encode(&self.0.details);
            if let Ok(v) = HeaderValue::from_str(&encoded) {
                headers.insert(GRPC_STATUS_DETAILS, v);
            }
        }
    }

    pub(crate) fn write_code(code: Code, headers: &mut HeaderMap) {
        headers.insert(GRPC_STATUS, code.header_value());
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Status");
        d.field("code", &self.0.code)
            .field("message", &self.0.message);
        if !self.0.details.is_empty() {
            d.field("details", &self.0.details);
        }
        if !self.0.metadata.is_empty() {
            d.field("metadata", &self.0.metadata);
        }
        if let Some(source) = &self.0.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.message.is_empty() {
            write!(f, "{}", self.0.code)
        } else {
            write!(f, "{}: {}", self.0.code, self.0.message)
        }
    }
}

impl StdError for Status {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<std::io::Error> for Status {
    fn from(err: std::io::Error) -> Status {
        use std::io::ErrorKind::*;
        let code = match err.kind() {
            NotFound => Code::NotFound,
            PermissionDenied => Code::PermissionDenied,
            AlreadyExists => Code::AlreadyExists,
            TimedOut => Code::DeadlineExceeded,
            InvalidInput | InvalidData => Code::InvalidArgument,
            ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe
            | AddrNotAvailable | UnexpectedEof => Code::Unavailable,
            OutOfMemory => Code::ResourceExhausted,
            Unsupported => Code::Unimplemented,
            Interrupted => Code::Cancelled,
            _ => Code::Unknown,
        };
        Status::new(code, err.to_string()).with_source(err)
    }
}

impl From<h2::Error> for Status {
    fn from(err: h2::Error) -> Status {
        Status::from_h2(err)
    }
}

impl From<prost::DecodeError> for Status {
    fn from(err: prost::DecodeError) -> Status {
        Status::internal(format!("failed to decode the message: {err}")).with_source(err)
    }
}

/// Percent-encodes a `grpc-message`: bytes outside visible ASCII (0x20..=0x7E) and `%` itself.
pub(crate) fn percent_encode(message: &str) -> Cow<'_, str> {
    let needs = |b: u8| !(0x20..=0x7e).contains(&b) || b == b'%';
    if !message.bytes().any(needs) {
        return Cow::Borrowed(message);
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(message.len() * 3);
    for b in message.bytes() {
        if needs(b) {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push(b as char);
        }
    }
    Cow::Owned(out)
}

/// Decodes a percent-encoded `grpc-message`. A malformed escape is kept as it is, and invalid UTF-8
/// is replaced, as the spec asks receivers to be tolerant here.
pub(crate) fn percent_decode(raw: &[u8]) -> Cow<'_, str> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    if !raw.contains(&b'%') {
        return String::from_utf8_lossy(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && i + 2 < raw.len()
            && let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_by_number_and_name() {
        for n in 0..=16 {
            let code = Code::from_i32(n);
            assert_eq!(code as i32, n);
            assert_eq!(Code::from_name(code.name()), Some(code));
        }
        assert_eq!(Code::from_i32(17), Code::Unknown);
        assert_eq!(Code::from_i32(-1), Code::Unknown);
        assert_eq!(Code::DeadlineExceeded.name(), "DEADLINE_EXCEEDED");
    }

    #[test]
    fn message_percent_encoding_matches_the_spec() {
        assert_eq!(percent_encode("plain text"), "plain text");
        assert_eq!(percent_encode("50%"), "50%25");
        assert_eq!(percent_encode("\t\ntab"), "%09%0Atab");
        assert_eq!(percent_encode("ü"), "%C3%BC");
        for s in [
            "",
            "a%b",
            "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n",
        ] {
            assert_eq!(percent_decode(percent_encode(s).as_bytes()), s);
        }
        // Tolerant decoding: a broken escape stays as it is.
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%zz%4"), "%zz%4");
        assert_eq!(percent_decode(b"%41%42"), "AB");
    }

    #[test]
    fn trailers_round_trip() {
        let mut status = Status::with_details(
            Code::InvalidArgument,
            "bad \u{1F600} input",
            Bytes::from_static(b"\x00\x01\xff"),
        );
        status.metadata_mut().insert("x-extra", "1").unwrap();
        let mut headers = HeaderMap::new();
        status.write_trailers(&mut headers);
        assert_eq!(headers["grpc-status"], "3");
        assert_eq!(headers["grpc-message"], "bad %F0%9F%98%80 input");
        assert_eq!(headers["grpc-status-details-bin"], "AAH/");
        let back = Status::from_trailers(&headers).unwrap().unwrap_err();
        assert_eq!(back.code(), Code::InvalidArgument);
        assert_eq!(back.message(), "bad \u{1F600} input");
        assert_eq!(&back.details()[..], b"\x00\x01\xff");
        assert_eq!(back.metadata().get("x-extra"), Some("1"));
        assert!(back.metadata().get("grpc-status").is_none());
    }

    #[test]
    fn ok_and_missing_and_garbage_status() {
        let mut headers = HeaderMap::new();
        assert!(Status::from_trailers(&headers).is_none());
        headers.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(Status::from_trailers(&headers).unwrap().is_ok());
        headers.insert("grpc-status", HeaderValue::from_static("x1"));
        let err = Status::from_trailers(&headers).unwrap().unwrap_err();
        assert_eq!(err.code(), Code::Unknown);
        headers.insert("grpc-status", HeaderValue::from_static("99"));
        assert_eq!(
            Status::from_trailers(&headers).unwrap().unwrap_err().code(),
            Code::Unknown
        );
    }

    #[test]
    fn http_status_mapping() {
        assert_eq!(Code::from_http_status(400), Code::Internal);
        assert_eq!(Code::from_http_status(401), Code::Unauthenticated);
        assert_eq!(Code::from_http_status(403), Code::PermissionDenied);
        assert_eq!(Code::from_http_status(404), Code::Unimplemented);
        for s in [429, 502, 503, 504] {
            assert_eq!(Code::from_http_status(s), Code::Unavailable);
        }
        assert_eq!(Code::from_http_status(500), Code::Unknown);
    }

    #[test]
    fn status_is_small() {
        assert_eq!(std::mem::size_of::<Status>(), std::mem::size_of::<usize>());
    }
}
