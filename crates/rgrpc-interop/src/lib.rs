//! The gRPC interop test programs (grpc/grpc `doc/interop-test-descriptions.md`): the generated
//! `grpc.testing` code and the flag parsing both binaries share; and the Connect conformance
//! suite's programs, with the generated `connectrpc.conformance.v1` code.

#![deny(missing_docs)]

use std::collections::HashMap;

/// Code generated from our `grpc.testing` protos.
#[allow(missing_docs)]
pub mod pb {
    rgrpc::include_proto!("grpc.testing");
}

/// Code generated from our copy of the Connect conformance suite's protos.
#[allow(missing_docs)]
pub mod conformance {
    rgrpc::include_proto!("connectrpc.conformance.v1");
}

pub mod compat;

/// `google.rpc.Status`, the message in `grpc-status-details-bin`.
#[allow(missing_docs)]
pub mod rpc {
    rgrpc::include_proto!("google.rpc");
}

/// Command-line flags in the official programs' forms: `--name=value` and `--name value`.
#[derive(Debug, Default)]
pub struct Flags {
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses `args`, accepting only the flags in `known`.
    pub fn parse(args: impl IntoIterator<Item = String>, known: &[&str]) -> Result<Flags, String> {
        let mut values = HashMap::new();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => {
                    let value = match args.peek() {
                        Some(next) if !next.starts_with('-') => args.next().unwrap_or_default(),
                        // A bare flag is a boolean set to true.
                        _ => "true".to_owned(),
                    };
                    (flag.to_owned(), value)
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(format!(
                    "unknown flag --{name}; known: --{}",
                    known.join(", --")
                ));
            }
            values.insert(name, value);
        }
        Ok(Flags { values })
    }

    /// A flag's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A boolean flag (`true`/`false`), or `default` when absent.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(format!("--{name} takes true or false, not {other:?}")),
        }
    }

    /// A numeric flag, or `default` when absent.
    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name} takes a number, not {v:?}")),
        }
    }
}

/// A payload of `size` zero bytes, as the tests ask for.
pub fn payload(size: usize) -> pb::Payload {
    pb::Payload {
        r#type: pb::PayloadType::Compressable as i32,
        body: vec![0; size],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, String> {
        Flags::parse(
            args.iter().map(|s| s.to_string()),
            &["port", "use_tls", "test_case"],
        )
    }

    #[test]
    fn both_flag_forms() {
        let f = parse(&["--port=8080", "--test_case", "all", "--use_tls=false"]).unwrap();
        assert_eq!(f.get("port"), Some("8080"));
        assert_eq!(f.get("test_case"), Some("all"));
        assert!(!f.bool("use_tls", true).unwrap());
        let f = parse(&["--use_tls", "--port", "1"]).unwrap();
        assert!(f.bool("use_tls", false).unwrap());
        assert_eq!(f.number("port", 0u16).unwrap(), 1);
        assert!(parse(&["--bogus=1"]).is_err());
        assert!(parse(&["stray"]).is_err());
        assert!(
            parse(&["--use_tls=maybe"])
                .unwrap()
                .bool("use_tls", false)
                .is_err()
        );
    }
}
