//! Name resolution: the [`Resolver`] trait a channel asks for addresses (and optionally a service
//! config), and the resolvers built in: DNS (`dns.rs`), fixed lists for `ipv4:`, `ipv6:`,
//! `unix:` and `unix-abstract:` targets, and a [`ManualResolver`] that a program or test feeds.
//!
//! A resolver pushes its results whenever it has them, through the [`ResolverSink`] it was built
//! with; the channel asks it to look again with [`Resolver::resolve_now`] when a connection is
//! lost. Resolvers do not connect or balance; they only say where the servers are.

mod dns;
mod manual;

pub use dns::DnsOptions;
pub(crate) use dns::DnsResolverBuilder;
pub use manual::ManualResolver;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::control::Event;
use super::target::Target;
use crate::status::Status;
pub use crate::transport::connect::Address;

/// One server, reachable at one or more addresses (an IPv4 and an IPv6 one, say).
/// `round_robin` balances over endpoints; `pick_first` takes the addresses of all of them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    addresses: Vec<Address>,
}

impl Endpoint {
    /// An endpoint with these addresses, tried in order.
    pub fn new(addresses: Vec<Address>) -> Endpoint {
        Endpoint { addresses }
    }

    /// Its addresses.
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }
}

impl From<Address> for Endpoint {
    fn from(address: Address) -> Endpoint {
        Endpoint::new(vec![address])
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(address: SocketAddr) -> Endpoint {
        Endpoint::new(vec![Address::Tcp(address)])
    }
}

/// What a resolver found: the endpoints, and the service config (gRFC A2 JSON) if it has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    endpoints: Vec<Endpoint>,
    service_config: Option<String>,
}

impl Resolution {
    /// A resolution of these endpoints, without a service config.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<Endpoint>>) -> Resolution {
        Resolution {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            service_config: None,
        }
    }

    /// Adds a service config in JSON (gRFC A2). The channel parses it; an invalid one is
    /// reported and the previous valid config stays in force (gRFC A21).
    pub fn with_service_config(mut self, json: impl Into<String>) -> Resolution {
        self.service_config = Some(json.into());
        self
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The service config JSON, if any.
    pub fn service_config(&self) -> Option<&str> {
        self.service_config.as_deref()
    }

    pub(crate) fn into_parts(self) -> (Vec<Endpoint>, Option<String>) {
        (self.endpoints, self.service_config)
    }
}

/// Where a resolver sends its results: a handle into its channel. Cheap to clone.
#[derive(Clone)]
pub struct ResolverSink {
    tx: mpsc::UnboundedSender<Event>,
}

impl ResolverSink {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Event>) -> ResolverSink {
        ResolverSink { tx }
    }

    /// Publishes a new resolution, replacing the previous one. Returns false once the channel
    /// is gone, when the resolver should stop.
    pub fn update(&self, resolution: Resolution) -> bool {
        self.tx.send(Event::Resolved(Ok(resolution))).is_ok()
    }

    /// Reports that resolution failed (UNAVAILABLE, usually). The channel keeps using the
    /// addresses it has, if any; otherwise calls fail with this status.
    pub fn error(&self, status: Status) -> bool {
        self.tx.send(Event::Resolved(Err(status))).is_ok()
    }

    /// True once the channel is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl fmt::Debug for ResolverSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolverSink")
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

/// A running resolver. Dropping it stops it.
pub trait Resolver: Send + 'static {
    /// A hint to resolve again soon (a connection was lost, or every address failed). Resolvers
    /// rate-limit it as they see fit; the default ignores it.
    fn resolve_now(&mut self) {}
}

/// Makes resolvers for the targets of one URI scheme. Register custom ones with
/// `Channel::builder(..)?.resolver(..)`.
pub trait ResolverBuilder: Send + Sync + 'static {
    /// The scheme this builder serves, e.g. `"dns"` or `"myregistry"`.
    fn scheme(&self) -> &str;

    /// Starts resolving `target`, pushing results into `sink`. Called when the channel leaves
    /// IDLE; the resolver is dropped when the channel goes idle or closes.
    fn build(&self, target: &Target, sink: ResolverSink) -> Box<dyn Resolver>;
}

/// The resolver of `ipv4:`, `ipv6:`, `unix:` and `unix-abstract:` targets: their addresses,
/// once, each its own endpoint.
#[derive(Debug)]
pub(crate) struct StaticResolverBuilder;

struct Fixed;
impl Resolver for Fixed {}

impl ResolverBuilder for StaticResolverBuilder {
    fn scheme(&self) -> &str {
        "static"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Box<dyn Resolver> {
        let addresses = match target.scheme() {
            "unix" => Ok(vec![Address::Unix(PathBuf::from(target.endpoint()))]),
            "unix-abstract" => Ok(vec![Address::UnixAbstract(
                target.endpoint().as_bytes().to_vec(),
            )]),
            scheme => parse_ip_list(scheme, target.endpoint())
                .map(|list| list.into_iter().map(Address::Tcp).collect()),
        };
        match addresses {
            Ok(list) => sink.update(Resolution::new(list)),
            Err(why) => sink.error(Status::unavailable(why)),
        };
        Box::new(Fixed)
    }
}

/// The addresses of an `ipv4:` or `ipv6:` endpoint: `a:port,b:port` (IPv6 in brackets).
pub(crate) fn parse_ip_list(scheme: &str, list: &str) -> Result<Vec<SocketAddr>, String> {
    let v6 = match scheme {
        "ipv4" => false,
        "ipv6" => true,
        other => return Err(format!("no address list for scheme {other:?}")),
    };
    let family = if v6 { "IPv6" } else { "IPv4" };
    let mut out = Vec::new();
    for item in list.split(',') {
        let (host, port) =
            super::target::split_host_port(item).map_err(|why| format!("{item:?}: {why}"))?;
        let port = port.ok_or_else(|| format!("{item:?}: the port is missing"))?;
        let ip: std::net::IpAddr = host
            .parse()
            .map_err(|_| format!("{item:?} is not an {family} address with a port"))?;
        if ip.is_ipv6() != v6 {
            return Err(format!("{item:?} is not an {family} address"));
        }
        out.push(SocketAddr::new(ip, port));
    }
    Ok(out)
}

/// The resolvers a channel knows by scheme: the built-in ones and the user's.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    custom: Vec<Arc<dyn ResolverBuilder>>,
    pub(crate) dns: DnsOptions,
}

impl Registry {
    pub(crate) fn add(&mut self, builder: Arc<dyn ResolverBuilder>) {
        self.custom.retain(|b| b.scheme() != builder.scheme());
        self.custom.push(builder);
    }

    pub(crate) fn builder(&self, scheme: &str) -> Option<Arc<dyn ResolverBuilder>> {
        if let Some(b) = self.custom.iter().find(|b| b.scheme() == scheme) {
            return Some(b.clone());
        }
        match scheme {
            "dns" => Some(Arc::new(DnsResolverBuilder::new(self.dns.clone()))),
            "unix" | "unix-abstract" | "ipv4" | "ipv6" => Some(Arc::new(StaticResolverBuilder)),
            _ => None,
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schemes: Vec<&str> = self.custom.iter().map(|b| b.scheme()).collect();
        f.debug_struct("Registry")
            .field("custom", &schemes)
            .field("dns", &self.dns)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_lists() {
        let l = parse_ip_list("ipv4", "127.0.0.1:1,10.0.0.2:2").unwrap();
        assert_eq!(
            l,
            vec![
                "127.0.0.1:1".parse().unwrap(),
                "10.0.0.2:2".parse().unwrap()
            ]
        );
        let l = parse_ip_list("ipv6", "[::1]:1,[fe80::1]:2").unwrap();
        assert_eq!(l.len(), 2);
        assert!(
            parse_ip_list("ipv4", "[::1]:1")
                .unwrap_err()
                .contains("IPv4")
        );
        assert!(
            parse_ip_list("ipv6", "127.0.0.1:1")
                .unwrap_err()
                .contains("IPv6")
        );
        assert!(
            parse_ip_list("ipv4", "127.0.0.1")
                .unwrap_err()
                .contains("port")
        );
        assert!(parse_ip_list("ipv4", "a.b:1").is_err());
    }
}
