//! Base64 for `-bin` metadata and `grpc-status-details-bin`: we send the standard alphabet without
//! padding and accept it with or without padding, as `doc/PROTOCOL-HTTP2.md` requires.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Encodes bytes for the wire (standard alphabet, no padding).
pub(crate) fn encode(bytes: &[u8]) -> String {
    general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Decodes a wire value, padded or not. Surrounding spaces are ignored.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    LENIENT.decode(text.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_and_unpadded_are_both_accepted() {
        for (plain, padded) in [
            (&b""[..], ""),
            (b"a", "YQ=="),
            (b"ab", "YWI="),
            (b"abc", "YWJj"),
            (b"\x00\xff\xfe\x80", "AP/+gA=="),
        ] {
            assert_eq!(decode(padded.as_bytes()).unwrap(), plain);
            let unpadded = padded.trim_end_matches('=');
            assert_eq!(decode(unpadded.as_bytes()).unwrap(), plain);
            assert_eq!(encode(plain), unpadded);
        }
        assert!(decode(b"!!!!").is_err());
        assert!(decode(b"Y").is_err());
    }
}
