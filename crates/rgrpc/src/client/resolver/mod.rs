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
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use super::control::Event;
use super::service_config::MethodConfig;
use super::target::Target;
use crate::metadata::MetadataMap;
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

/// What a resolver found: the endpoints, the service config (gRFC A2 JSON) if it has one, and a
/// [`ConfigSelector`] if calls are routed one by one.
#[derive(Clone, Default)]
pub struct Resolution {
    endpoints: Vec<Endpoint>,
    service_config: Option<String>,
    selector: Option<Arc<dyn ConfigSelector>>,
}

impl PartialEq for Resolution {
    fn eq(&self, other: &Resolution) -> bool {
        self.endpoints == other.endpoints
            && self.service_config == other.service_config
            && match (&self.selector, &other.selector) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for Resolution {}

impl fmt::Debug for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolution")
            .field("endpoints", &self.endpoints)
            .field("service_config", &self.service_config)
            .field("selector", &self.selector.is_some())
            .finish()
    }
}

/// What a [`ConfigSelector`] chose for one call: the method settings that apply to it in place
/// of the service config's, and the cluster its picks go to ([`PickRequest::cluster`]).
///
/// [`PickRequest::cluster`]: crate::client::balancer::PickRequest::cluster
#[derive(Debug, Clone, Default)]
pub struct Selection {
    method: Option<Arc<MethodConfig>>,
    cluster: Option<Arc<str>>,
}

impl Selection {
    /// A selection with no method settings and no cluster.
    pub fn new() -> Selection {
        Selection::default()
    }

    /// The call's method settings (timeout, retry policy, ...), replacing the service config's.
    pub fn with_method_config(mut self, method: Arc<MethodConfig>) -> Selection {
        self.method = Some(method);
        self
    }

    /// The cluster whose balancer the call's picks go to.
    pub fn with_cluster(mut self, cluster: Arc<str>) -> Selection {
        self.cluster = Some(cluster);
        self
    }

    /// The method settings, if any.
    pub fn method_config(&self) -> Option<&Arc<MethodConfig>> {
        self.method.as_ref()
    }

    /// The cluster, if any.
    pub fn cluster(&self) -> Option<&Arc<str>> {
        self.cluster.as_ref()
    }
}

/// Routes calls one by one: run once per call, before its first pick, with the method path
/// and the request metadata. An xDS resolver publishes one made from its route configuration
/// (gRFC A28); a channel without one uses the service config's method settings.
pub trait ConfigSelector: Send + Sync + 'static {
    /// Chooses for one call; an `Err` fails the call with that status (a route whose action
    /// is not to forward, say).
    fn select(&self, path: &str, metadata: &MetadataMap) -> Result<Selection, Status>;
}

impl Resolution {
    /// A resolution of these endpoints, without a service config.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<Endpoint>>) -> Resolution {
        Resolution {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            service_config: None,
            selector: None,
        }
    }

    /// Adds a config selector that routes each call (see [`ConfigSelector`]); it replaces the
    /// previous resolution's, and a resolution without one removes it.
    pub fn with_config_selector(mut self, selector: Arc<dyn ConfigSelector>) -> Resolution {
        self.selector = Some(selector);
        self
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

    pub(crate) fn into_parts(
        self,
    ) -> (
        Vec<Endpoint>,
        Option<String>,
        Option<Arc<dyn ConfigSelector>>,
    ) {
        (self.endpoints, self.service_config, self.selector)
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

/// Resolvers every channel of the process knows, after its own.
static GLOBAL: RwLock<Vec<Arc<dyn ResolverBuilder>>> = RwLock::new(Vec::new());

/// Makes `builder`'s scheme known to every channel built from now on, as a crate that brings a
/// resolver does (`rgrpc-xds` registers `xds`). A channel's own
/// [`Builder::resolver`](crate::client::Builder::resolver) takes precedence; a later global one
/// of the same scheme replaces an earlier one.
pub fn register(builder: Arc<dyn ResolverBuilder>) {
    if let Ok(mut global) = GLOBAL.write() {
        global.retain(|b| b.scheme() != builder.scheme());
        global.push(builder);
    }
}

/// The resolvers a channel knows by scheme: the built-in ones and the user's.
#[derive(Clone)]
pub(crate) struct Registry {
    custom: Vec<Arc<dyn ResolverBuilder>>,
    pub(crate) dns: DnsOptions,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            custom: GLOBAL.read().map(|g| g.clone()).unwrap_or_default(),
            dns: DnsOptions::default(),
        }
    }
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
