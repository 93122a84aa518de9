//! `grpc-timeout`: at most eight ASCII digits followed by a unit (`H M S m u n`).
//!
//! Parsing is strict (the spec's grammar), formatting picks the finest unit that fits eight
//! digits, rounding up so that a deadline is never shortened on the wire.

use std::fmt;
use std::time::Duration;

const MAX_DIGITS: usize = 8;
const MAX_VALUE: u64 = 99_999_999;

/// A `grpc-timeout` value that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTimeout(String);

impl fmt::Display for InvalidTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid grpc-timeout {:?}: expected 1 to 8 digits and one of H M S m u n",
            self.0
        )
    }
}

impl std::error::Error for InvalidTimeout {}

/// Parses a `grpc-timeout` header value.
pub fn parse_timeout(raw: &[u8]) -> Result<Duration, InvalidTimeout> {
    let invalid = || InvalidTimeout(String::from_utf8_lossy(raw).into_owned());
    let (unit, digits) = raw.split_last().ok_or_else(invalid)?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let value = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Ok(match unit {
        b'H' => Duration::from_secs(value * 3600),
        b'M' => Duration::from_secs(value * 60),
        b'S' => Duration::from_secs(value),
        b'm' => Duration::from_millis(value),
        b'u' => Duration::from_micros(value),
        b'n' => Duration::from_nanos(value),
        _ => return Err(invalid()),
    })
}

/// Formats a duration as a `grpc-timeout` value, in the finest unit whose value fits eight digits.
pub fn format_timeout(timeout: Duration) -> String {
    const UNITS: [(u64, u8); 6] = [
        (1, b'n'),
        (1_000, b'u'),
        (1_000_000, b'm'),
        (1_000_000_000, b'S'),
        (60_000_000_000, b'M'),
        (3_600_000_000_000, b'H'),
    ];
    let (value, unit) = match u64::try_from(timeout.as_nanos()) {
        Ok(nanos) => UNITS
            .iter()
            .map(|&(scale, unit)| (nanos.div_ceil(scale), unit))
            .find(|&(value, _)| value <= MAX_VALUE)
            .unwrap_or((MAX_VALUE, b'H')),
        // Beyond u64 nanoseconds (584 years) only hours fit.
        Err(_) => {
            let secs = timeout
                .as_secs()
                .saturating_add(u64::from(timeout.subsec_nanos() > 0));
            (secs.div_ceil(3600).min(MAX_VALUE), b'H')
        }
    };
    // Written by hand: this runs on every call with a deadline, and `format!` costs several
    // times more.
    let mut text = [0u8; MAX_DIGITS + 1];
    let mut start = MAX_DIGITS;
    text[MAX_DIGITS] = unit;
    let mut rest = value;
    loop {
        start -= 1;
        text[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    text[start..].iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_timeout(b"1H").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_timeout(b"2M").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_timeout(b"3S").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_timeout(b"4m").unwrap(), Duration::from_millis(4));
        assert_eq!(parse_timeout(b"5u").unwrap(), Duration::from_micros(5));
        assert_eq!(parse_timeout(b"6n").unwrap(), Duration::from_nanos(6));
        assert_eq!(parse_timeout(b"0m").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_timeout(b"99999999H").unwrap(),
            Duration::from_secs(99_999_999 * 3600)
        );
    }

    #[test]
    fn rejects_what_the_grammar_does_not_allow() {
        for bad in [
            &b""[..],
            b"S",
            b"1",
            b"100x",
            b"123456789S",
            b"-1S",
            b"1.5S",
            b" 1S",
            b"1s",
        ] {
            assert!(
                parse_timeout(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn formats_in_the_finest_unit_and_never_shortens() {
        assert_eq!(format_timeout(Duration::from_nanos(5)), "5n");
        assert_eq!(format_timeout(Duration::from_millis(100)), "100000u");
        assert_eq!(format_timeout(Duration::from_millis(99)), "99000000n");
        assert_eq!(format_timeout(Duration::from_secs(1)), "1000000u");
        assert_eq!(format_timeout(Duration::from_secs(100)), "100000m");
        assert_eq!(format_timeout(Duration::from_secs(200_000)), "200000S");
        assert_eq!(format_timeout(Duration::from_nanos(100_000_001)), "100001u");
        assert_eq!(format_timeout(Duration::from_secs(u64::MAX)), "99999999H");
        // Past u64 nanoseconds, in hours rounded up.
        assert_eq!(
            format_timeout(Duration::new(600 * 365 * 86_400, 1)),
            "5256001H"
        );
        for d in [
            Duration::from_nanos(1),
            Duration::from_micros(1234),
            Duration::from_millis(98765),
            Duration::from_secs(86_400 * 365),
        ] {
            let back = parse_timeout(format_timeout(d).as_bytes()).unwrap();
            assert!(back >= d);
        }
    }
}
