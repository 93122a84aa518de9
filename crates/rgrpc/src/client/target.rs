//! Targets as grpc/grpc `doc/naming.md` defines them: which resolver a channel uses, what it
//! resolves, and the `:authority` its calls carry.
//!
//! Parsing only: this module opens no socket and asks no DNS server.

use std::fmt;

use crate::error::{Error, Kind};

/// A parsed channel target: `scheme:[//authority/]endpoint`.
///
/// `host:port` and `http://host:port` are DNS targets; `https://host:port` is a DNS target over
/// TLS. A scheme the channel has no resolver for is an error at build time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    scheme: String,
    authority: String,
    endpoint: String,
    tls: bool,
}

impl Target {
    /// Parses a target string.
    pub fn parse(target: &str) -> Result<Target, Error> {
        let bad = |why: &str| invalid_target(target, why);
        if target.is_empty() {
            return Err(bad("the target is empty"));
        }
        for (prefix, tls) in [("http://", false), ("https://", true)] {
            if let Some(rest) = target.strip_prefix(prefix) {
                if tls && !cfg!(feature = "tls") {
                    return Err(bad(
                        "https needs rgrpc's `tls` feature; build with it or use http://",
                    ));
                }
                let endpoint = rest.trim_end_matches('/');
                let parsed = Target {
                    scheme: "dns".into(),
                    authority: String::new(),
                    endpoint: endpoint.into(),
                    tls,
                };
                parsed.check_builtin(target)?;
                return Ok(parsed);
            }
        }
        let Some((scheme, rest)) = split_scheme(target) else {
            // No scheme: a plain host:port, resolved by DNS.
            let parsed = Target {
                scheme: "dns".into(),
                authority: String::new(),
                endpoint: target.into(),
                tls: false,
            };
            parsed.check_builtin(target)?;
            return Ok(parsed);
        };
        let (authority, endpoint) = match rest.strip_prefix("//") {
            Some(after) => match after.split_once('/') {
                Some((authority, endpoint)) => (authority, endpoint),
                None => (after, ""),
            },
            None => ("", rest),
        };
        let parsed = Target {
            scheme: scheme.to_ascii_lowercase(),
            authority: authority.into(),
            // `unix:///abs` keeps its leading slash: the endpoint of unix is a path.
            endpoint: if scheme == "unix" && rest.starts_with("//") {
                format!("/{endpoint}")
            } else {
                endpoint.into()
            },
            tls: false,
        };
        parsed.check_builtin(target)?;
        Ok(parsed)
    }

    /// The scheme naming the resolver: `dns`, `unix`, `unix-abstract`, `ipv4`, `ipv6`, or a
    /// custom resolver's.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The authority part of the URI (for `dns:`, the DNS server to ask); often empty.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// What the resolver resolves: `host:port`, a socket path, an address list.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the target asked for TLS (`https://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The `:authority` of calls on this target: `host:port` for DNS targets, `localhost` for
    /// Unix sockets, the first address of an address list.
    pub(crate) fn default_authority(&self) -> String {
        match self.scheme.as_str() {
            "unix" | "unix-abstract" => "localhost".into(),
            "ipv4" | "ipv6" => self.endpoint.split(',').next().unwrap_or("").into(),
            "dns" => {
                let (host, port) = split_host_port(&self.endpoint).unwrap_or_default();
                let port = port.unwrap_or(if self.tls { 443 } else { 80 });
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            _ => self.endpoint.clone(),
        }
    }

    fn check_builtin(&self, original: &str) -> Result<(), Error> {
        let bad = |why: &str| invalid_target(original, why);
        match self.scheme.as_str() {
            "dns" => {
                let (host, port) = split_host_port(&self.endpoint).map_err(&bad)?;
                if host.is_empty() {
                    return Err(bad("the host is missing"));
                }
                // A URI-form dns target may leave the port to its default (443); a bare
                // `host` or `http://host` without a port is almost always a mistake.
                if port.is_none() && !original.starts_with("dns:") {
                    return Err(bad("the port is missing (host:port)"));
                }
                Ok(())
            }
            "unix" | "unix-abstract" => {
                if self.endpoint.is_empty() {
                    return Err(bad("the socket path is empty"));
                }
                Ok(())
            }
            "ipv4" | "ipv6" => crate::client::resolver::parse_ip_list(&self.scheme, &self.endpoint)
                .map(|_| ())
                .map_err(|why| bad(&why)),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.authority.is_empty() {
            write!(
                f,
                "{}:///{}",
                self.scheme,
                self.endpoint.trim_start_matches('/')
            )
        } else {
            write!(f, "{}://{}/{}", self.scheme, self.authority, self.endpoint)
        }
    }
}

/// `scheme:rest` when `target` starts with a URI scheme other than a host name followed by a
/// port (`localhost:50051` has no scheme; `dns:host` has).
fn split_scheme(target: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = target.split_once(':')?;
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid {
        return None;
    }
    // `host:port`: all digits after the colon, no slashes.
    if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((scheme, rest))
}

/// `host[:port]` with `[v6]` brackets: the host without brackets and the port if given.
pub(crate) fn split_host_port(s: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address lacks its ']'")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or("expected ':' after ']'")?),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            // A bare IPv6 address without brackets has several colons and no port.
            Some((h, _)) if h.contains(':') => (s, None),
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| "the port is not a number from 0 to 65535")?,
        ),
    };
    Ok((host.to_owned(), port))
}

pub(crate) fn invalid_target(target: &str, why: &str) -> Error {
    Error::new(
        Kind::InvalidAddress,
        format!("invalid target {target:?}: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (String, String, String) {
        let t = Target::parse(s).unwrap();
        (t.scheme, t.authority, t.endpoint)
    }

    #[test]
    fn naming_doc_forms() {
        let p = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(parts("localhost:50051"), p("dns", "", "localhost:50051"));
        assert_eq!(parts("[::1]:80"), p("dns", "", "[::1]:80"));
        assert_eq!(parts("http://h:1/"), p("dns", "", "h:1"));
        assert_eq!(parts("dns:h:1"), p("dns", "", "h:1"));
        assert_eq!(parts("dns:///h:1"), p("dns", "", "h:1"));
        assert_eq!(parts("dns://8.8.8.8:53/h:1"), p("dns", "8.8.8.8:53", "h:1"));
        assert_eq!(parts("dns:///h"), p("dns", "", "h"));
        assert_eq!(parts("unix:rel.sock"), p("unix", "", "rel.sock"));
        assert_eq!(parts("unix:/abs.sock"), p("unix", "", "/abs.sock"));
        assert_eq!(parts("unix:///abs.sock"), p("unix", "", "/abs.sock"));
        assert_eq!(parts("unix-abstract:name"), p("unix-abstract", "", "name"));
        assert_eq!(
            parts("ipv4:127.0.0.1:1,127.0.0.2:2"),
            p("ipv4", "", "127.0.0.1:1,127.0.0.2:2")
        );
        assert_eq!(
            parts("ipv6:[::1]:1,[::2]:2"),
            p("ipv6", "", "[::1]:1,[::2]:2")
        );
        assert_eq!(parts("custom:///svc"), p("custom", "", "svc"));
        assert!(
            Target::parse("https://h:1")
                .map(|t| t.is_tls())
                .unwrap_or(true)
        );
    }

    #[test]
    fn authorities() {
        let a = |s: &str| Target::parse(s).unwrap().default_authority();
        assert_eq!(a("localhost:50051"), "localhost:50051");
        assert_eq!(a("dns:///[::1]:5"), "[::1]:5");
        assert_eq!(a("dns:///example.com"), "example.com:80");
        assert_eq!(a("unix:/x"), "localhost");
        assert_eq!(a("ipv4:127.0.0.1:1,127.0.0.2:2"), "127.0.0.1:1");
    }

    #[test]
    fn bad_targets_name_the_problem() {
        for (bad, why) in [
            ("", "empty"),
            ("http://nohost", "port"),
            ("http://:80", "host"),
            ("unix:", "path"),
            ("ipv4:1.2.3.4", "port"),
            ("ipv4:[::1]:80", "IPv4"),
            ("ipv6:127.0.0.1:80", "IPv6"),
            ("h:99999", "port"),
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert!(err.is_invalid_address(), "{bad}: {err}");
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }
}
