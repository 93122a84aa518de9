//! The four resource types of gRFC A27, decoded from their protos and checked as A27, A28, A31,
//! A44 and A50 require, into what the resolver and balancer use. A resource that fails a check
//! is refused with a message naming the field; the xDS client NACKs it and keeps the previous
//! one. Fields and extensions that a client may ignore are ignored.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use prost::Message;
use regex::Regex;
use rgrpc::Code;
use serde_json::{Value, json};

use crate::pb::envoy::config::cluster::v3 as cluster_pb;
use crate::pb::envoy::config::core::v3 as core_pb;
use crate::pb::envoy::config::endpoint::v3 as endpoint_pb;
use crate::pb::envoy::config::listener::v3 as listener_pb;
use crate::pb::envoy::config::route::v3 as route_pb;
use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm_pb;
use crate::pb::envoy::r#type::matcher::v3 as matcher_pb;

/// The type URL of each resource type.
pub(crate) const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub(crate) const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub(crate) const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub(crate) const ENDPOINTS: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const ROUND_ROBIN: &str =
    "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin";
const WRR_LOCALITY: &str =
    "type.googleapis.com/envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality";

/// A decoded, checked resource of any type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resource {
    Listener(Listener),
    Route(RouteConfig),
    Cluster(Cluster),
    Endpoints(Endpoints),
}

/// Decodes one resource of `type_url`: its name, and the resource or why it was refused. A
/// resource that cannot even be decoded has no name to report (`None`).
pub(crate) fn decode(type_url: &str, bytes: &[u8]) -> (Option<String>, Result<Resource, String>) {
    fn named<T>(
        name: String,
        r: Result<T, String>,
        wrap: fn(T) -> Resource,
    ) -> (Option<String>, Result<Resource, String>) {
        let r = r.map(wrap).map_err(|e| format!("{name:?}: {e}"));
        (Some(name), r)
    }
    let undecodable = |e: prost::DecodeError| (None, Err(format!("cannot decode: {e}")));
    match type_url {
        LISTENER => match listener_pb::Listener::decode(bytes) {
            Ok(l) => {
                let name = l.name.clone();
                named(name, Listener::from_proto(l), Resource::Listener)
            }
            Err(e) => undecodable(e),
        },
        ROUTE => match route_pb::RouteConfiguration::decode(bytes) {
            Ok(r) => {
                let name = r.name.clone();
                named(name, RouteConfig::from_proto(r), Resource::Route)
            }
            Err(e) => undecodable(e),
        },
        CLUSTER => match cluster_pb::Cluster::decode(bytes) {
            Ok(c) => {
                let name = c.name.clone();
                named(name, Cluster::from_proto(c), Resource::Cluster)
            }
            Err(e) => undecodable(e),
        },
        ENDPOINTS => match endpoint_pb::ClusterLoadAssignment::decode(bytes) {
            Ok(e) => {
                let name = e.cluster_name.clone();
                named(name, Endpoints::from_proto(e), Resource::Endpoints)
            }
            Err(e) => undecodable(e),
        },
        other => (None, Err(format!("unknown resource type {other:?}"))),
    }
}

fn duration(d: &prost_types::Duration, at: &str) -> Result<Duration, String> {
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(format!("{at}: not a valid non-negative duration"));
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

/// The config source of a dependent resource must be this ADS stream (`ads` or `self`).
fn check_source(source: Option<&core_pb::ConfigSource>, at: &str) -> Result<(), String> {
    use core_pb::config_source::ConfigSourceSpecifier as S;
    match source.and_then(|s| s.config_source_specifier.as_ref()) {
        Some(S::Ads(_) | S::Self_(_)) => Ok(()),
        _ => Err(format!("{at}: must be ads or self")),
    }
}

// ---------------------------------------------------------------------------------------------
// Listener

/// An API listener's HTTP connection manager, as far as a client uses it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listener {
    pub(crate) routes: RouteSource,
    /// `common_http_protocol_options.max_stream_duration` (A31).
    pub(crate) max_stream_duration: Option<Duration>,
}

/// Where a listener's routes are.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RouteSource {
    Rds(String),
    Inline(RouteConfig),
}

impl Listener {
    fn from_proto(l: listener_pb::Listener) -> Result<Listener, String> {
        let api = l
            .api_listener
            .and_then(|a| a.api_listener)
            .ok_or("api_listener: missing (a client needs an API listener)")?;
        if api.type_url != HCM {
            return Err(format!(
                "api_listener: {:?} is not an HttpConnectionManager",
                api.type_url
            ));
        }
        let hcm = hcm_pb::HttpConnectionManager::decode(api.value.as_slice())
            .map_err(|e| format!("api_listener: cannot decode: {e}"))?;
        check_filters(&hcm.http_filters)?;
        use hcm_pb::http_connection_manager::RouteSpecifier as R;
        let routes = match hcm.route_specifier {
            Some(R::Rds(rds)) => {
                check_source(rds.config_source.as_ref(), "rds.config_source")?;
                if rds.route_config_name.is_empty() {
                    return Err("rds.route_config_name: missing".into());
                }
                RouteSource::Rds(rds.route_config_name)
            }
            Some(R::RouteConfig(rc)) => RouteSource::Inline(
                RouteConfig::from_proto(rc).map_err(|e| format!("route_config: {e}"))?,
            ),
            Some(R::ScopedRoutes(_)) => return Err("scoped_routes: not supported".into()),
            None => return Err("neither rds nor route_config is set".into()),
        };
        let max_stream_duration = hcm
            .common_http_protocol_options
            .and_then(|o| o.max_stream_duration)
            .map(|d| duration(&d, "common_http_protocol_options.max_stream_duration"))
            .transpose()?
            .filter(|d| !d.is_zero());
        Ok(Listener {
            routes,
            max_stream_duration,
        })
    }
}

/// gRFC A39: every filter has a typed config of a known type (or is optional), names are
/// unique, and the router comes last. We know only the router.
fn check_filters(filters: &[hcm_pb::HttpFilter]) -> Result<(), String> {
    use hcm_pb::http_filter::ConfigType;
    let mut names = std::collections::HashSet::new();
    let mut router_at = None;
    for (i, f) in filters.iter().enumerate() {
        let at = format!("http_filters[{i}] ({:?})", f.name);
        if !names.insert(f.name.as_str()) {
            return Err(format!("{at}: the name is used twice"));
        }
        let type_url = match &f.config_type {
            Some(ConfigType::TypedConfig(any)) => typed_struct_type(any),
            Some(ConfigType::ConfigDiscovery(_)) if f.is_optional => continue,
            Some(ConfigType::ConfigDiscovery(_)) => {
                return Err(format!("{at}: config_discovery is not supported"));
            }
            None if f.is_optional => continue,
            None => return Err(format!("{at}: typed_config: missing")),
        };
        if type_url == ROUTER {
            router_at = Some(i);
        } else if !f.is_optional {
            return Err(format!("{at}: filter type {type_url:?} is not supported"));
        }
    }
    match router_at {
        Some(i) if i + 1 == filters.len() => Ok(()),
        Some(_) => Err("http_filters: the router must be the last filter".into()),
        None => Err("http_filters: no router filter".into()),
    }
}

/// The type a filter config names, looking into the `TypedStruct` wrappers of udpa and xds.
fn typed_struct_type(any: &prost_types::Any) -> String {
    const WRAPPERS: [&str; 2] = [
        "type.googleapis.com/udpa.type.v1.TypedStruct",
        "type.googleapis.com/xds.type.v3.TypedStruct",
    ];
    if WRAPPERS.contains(&any.type_url.as_str()) {
        // TypedStruct { string type_url = 1; Struct value = 2; }
        #[derive(Clone, PartialEq, prost::Message)]
        struct TypedStruct {
            #[prost(string, tag = "1")]
            type_url: String,
        }
        if let Ok(t) = TypedStruct::decode(any.value.as_slice()) {
            return t.type_url;
        }
    }
    any.type_url.clone()
}

// ---------------------------------------------------------------------------------------------
// Routes

/// A route configuration: virtual hosts in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteConfig {
    pub(crate) virtual_hosts: Vec<VirtualHost>,
}

/// One virtual host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VirtualHost {
    pub(crate) domains: Vec<String>,
    pub(crate) routes: Vec<Route>,
}

/// One route: what it matches and where it sends.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) matcher: RouteMatcher,
    pub(crate) action: Action,
}

impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// What a route matches.
#[derive(Debug, Clone)]
pub(crate) struct RouteMatcher {
    pub(crate) path: PathMatcher,
    pub(crate) case_sensitive: bool,
    pub(crate) headers: Vec<HeaderMatcher>,
    /// The share of calls that match, per million (`None`: all).
    pub(crate) fraction_per_million: Option<u32>,
}

/// The path part of a route's match.
#[derive(Debug, Clone)]
pub(crate) enum PathMatcher {
    Prefix(String),
    Path(String),
    Regex(Regex),
}

/// A condition on one header.
#[derive(Debug, Clone)]
pub(crate) struct HeaderMatcher {
    pub(crate) name: String,
    pub(crate) test: HeaderTest,
    pub(crate) invert: bool,
}

/// The test a header matcher makes of the value.
#[derive(Debug, Clone)]
pub(crate) enum HeaderTest {
    Exact(String, bool),
    Prefix(String, bool),
    Suffix(String, bool),
    Contains(String, bool),
    Regex(Regex),
    Range(i64, i64),
    Present(bool),
}

/// What a route does with the calls it matches.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Send to one of these clusters, chosen by weight.
    Forward(Forward),
    /// Fail the call: the route's action is not one a client carries out.
    NonForwarding,
}

/// A forwarding route's clusters and call settings.
#[derive(Debug, Clone)]
pub(crate) struct Forward {
    /// The clusters and their weights (one cluster: weight 1).
    pub(crate) clusters: Vec<(String, u32)>,
    /// A31: the route's stream duration cap.
    pub(crate) max_stream_duration: Option<Duration>,
    /// A44: the route's retry policy, or the virtual host's.
    pub(crate) retry: Option<RetryPolicy>,
}

/// A44's reading of Envoy's retry policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    pub(crate) codes: Vec<Code>,
    /// Attempts in all (`num_retries + 1`).
    pub(crate) max_attempts: u32,
    pub(crate) base: Duration,
    pub(crate) max: Duration,
}

fn regex(pattern: &str, at: &str) -> Result<Regex, String> {
    // Envoy's regexes match whole values.
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("{at}: {pattern:?} is not a valid regex: {e}"))
}

impl RouteConfig {
    fn from_proto(rc: route_pb::RouteConfiguration) -> Result<RouteConfig, String> {
        let mut virtual_hosts = Vec::new();
        for (i, vh) in rc.virtual_hosts.into_iter().enumerate() {
            let at = format!("virtual_hosts[{i}]");
            let vh_retry = vh
                .retry_policy
                .as_ref()
                .map(|r| RetryPolicy::from_proto(r, &format!("{at}.retry_policy")))
                .transpose()?
                .flatten();
            let mut routes = Vec::new();
            for (j, r) in vh.routes.into_iter().enumerate() {
                if let Some(route) =
                    Route::from_proto(r, vh_retry.as_ref(), &format!("{at}.routes[{j}]"))?
                {
                    routes.push(route);
                }
            }
            virtual_hosts.push(VirtualHost {
                domains: vh.domains,
                routes,
            });
        }
        Ok(RouteConfig { virtual_hosts })
    }

    /// The virtual host for `authority` (A28): an exact domain, then the longest `*.suffix`,
    /// then the longest `prefix.*`, then `*`.
    pub(crate) fn virtual_host(&self, authority: &str) -> Option<&VirtualHost> {
        let host = authority.to_ascii_lowercase();
        let mut best: Option<(u8, usize, &VirtualHost)> = None;
        for vh in &self.virtual_hosts {
            for d in &vh.domains {
                let d = d.to_ascii_lowercase();
                let score = if d == host {
                    Some((4, d.len()))
                } else if d == "*" {
                    Some((1, 0))
                } else if let Some(suffix) = d.strip_prefix('*') {
                    (host.ends_with(suffix) && host.len() > suffix.len()).then_some((3, d.len()))
                } else if let Some(prefix) = d.strip_suffix('*') {
                    (host.starts_with(prefix) && host.len() > prefix.len()).then_some((2, d.len()))
                } else {
                    None
                };
                if let Some((kind, len)) = score
                    && best.is_none_or(|(k, l, _)| (kind, len) > (k, l))
                {
                    best = Some((kind, len, vh));
                }
            }
        }
        best.map(|(_, _, vh)| vh)
    }
}

impl Route {
    /// A route, or `None` for one a gRPC call can never match (it needs query parameters) or
    /// one whose cluster comes from a header (A28 skips those).
    fn from_proto(
        r: route_pb::Route,
        vh_retry: Option<&RetryPolicy>,
        at: &str,
    ) -> Result<Option<Route>, String> {
        use route_pb::route::Action as A;
        use route_pb::route_match::PathSpecifier as P;
        let m = r.r#match.ok_or_else(|| format!("{at}.match: missing"))?;
        if !m.query_parameters.is_empty() {
            return Ok(None);
        }
        let case_sensitive = m.case_sensitive.unwrap_or(true);
        let path = match m.path_specifier {
            Some(P::Prefix(p)) => PathMatcher::Prefix(p),
            Some(P::Path(p)) => PathMatcher::Path(p),
            Some(P::SafeRegex(re)) => {
                PathMatcher::Regex(regex(&re.regex, &format!("{at}.match.safe_regex"))?)
            }
            Some(_) => return Err(format!("{at}.match: the path specifier is not supported")),
            None => return Err(format!("{at}.match: no path specifier")),
        };
        let mut headers = Vec::new();
        for (k, h) in m.headers.into_iter().enumerate() {
            headers.push(HeaderMatcher::from_proto(
                h,
                &format!("{at}.match.headers[{k}]"),
            )?);
        }
        let fraction_per_million = m
            .runtime_fraction
            .and_then(|f| f.default_value)
            .map(|f| {
                use crate::pb::envoy::r#type::v3::fractional_percent::DenominatorType as D;
                let scale = match D::try_from(f.denominator) {
                    Ok(D::Hundred) => 10_000,
                    Ok(D::TenThousand) => 100,
                    Ok(D::Million) => 1,
                    Err(_) => return Err(format!("{at}.match.runtime_fraction: bad denominator")),
                };
                Ok(f.numerator.saturating_mul(scale).min(1_000_000))
            })
            .transpose()?;
        let matcher = RouteMatcher {
            path,
            case_sensitive,
            headers,
            fraction_per_million,
        };
        let action = match r.action {
            Some(A::Route(ra)) => {
                use route_pb::route_action::ClusterSpecifier as C;
                let clusters = match ra.cluster_specifier {
                    Some(C::Cluster(c)) if !c.is_empty() => vec![(c, 1)],
                    Some(C::Cluster(_)) => return Err(format!("{at}.route.cluster: empty")),
                    Some(C::WeightedClusters(w)) => {
                        let at = format!("{at}.route.weighted_clusters");
                        let mut list = Vec::new();
                        let mut total = 0u64;
                        for (k, c) in w.clusters.into_iter().enumerate() {
                            if c.name.is_empty() {
                                return Err(format!("{at}.clusters[{k}].name: empty"));
                            }
                            let weight = c.weight.unwrap_or(0);
                            total += u64::from(weight);
                            if weight > 0 {
                                list.push((c.name, weight));
                            }
                        }
                        if total == 0 {
                            return Err(format!("{at}: the weights add up to zero"));
                        }
                        if total > u64::from(u32::MAX) {
                            return Err(format!("{at}: the weights add up to more than 2^32-1"));
                        }
                        list
                    }
                    Some(C::ClusterHeader(_)) => return Ok(None),
                    Some(_) => {
                        return Err(format!(
                            "{at}.route: cluster specifier plugins are not supported"
                        ));
                    }
                    None => return Err(format!("{at}.route: no cluster")),
                };
                let max_stream_duration = ra
                    .max_stream_duration
                    .map(|m| {
                        let at = format!("{at}.route.max_stream_duration");
                        // The header cap takes precedence over the plain one (A31).
                        match (m.grpc_timeout_header_max, m.max_stream_duration) {
                            (Some(d), _) => duration(&d, &at),
                            (None, Some(d)) => duration(&d, &at),
                            (None, None) => Ok(Duration::ZERO),
                        }
                    })
                    .transpose()?
                    .filter(|d| !d.is_zero());
                let retry = match &ra.retry_policy {
                    Some(r) => RetryPolicy::from_proto(r, &format!("{at}.route.retry_policy"))?,
                    None => vh_retry.cloned(),
                };
                Action::Forward(Forward {
                    clusters,
                    max_stream_duration,
                    retry,
                })
            }
            Some(_) => Action::NonForwarding,
            None => return Err(format!("{at}: no action")),
        };
        Ok(Some(Route { matcher, action }))
    }
}

impl HeaderMatcher {
    fn from_proto(h: route_pb::HeaderMatcher, at: &str) -> Result<HeaderMatcher, String> {
        use matcher_pb::string_matcher::MatchPattern as S;
        use route_pb::header_matcher::HeaderMatchSpecifier as H;
        let test = match h.header_match_specifier {
            Some(H::ExactMatch(s)) => HeaderTest::Exact(s, false),
            Some(H::PrefixMatch(s)) => HeaderTest::Prefix(s, false),
            Some(H::SuffixMatch(s)) => HeaderTest::Suffix(s, false),
            Some(H::ContainsMatch(s)) => HeaderTest::Contains(s, false),
            Some(H::SafeRegexMatch(re)) => {
                HeaderTest::Regex(regex(&re.regex, &format!("{at}.safe_regex_match"))?)
            }
            Some(H::RangeMatch(r)) => HeaderTest::Range(r.start, r.end),
            Some(H::PresentMatch(p)) => HeaderTest::Present(p),
            Some(H::StringMatch(s)) => {
                let ic = s.ignore_case;
                match s.match_pattern {
                    Some(S::Exact(v)) => HeaderTest::Exact(v, ic),
                    Some(S::Prefix(v)) => HeaderTest::Prefix(v, ic),
                    Some(S::Suffix(v)) => HeaderTest::Suffix(v, ic),
                    Some(S::Contains(v)) => HeaderTest::Contains(v, ic),
                    Some(S::SafeRegex(re)) => {
                        HeaderTest::Regex(regex(&re.regex, &format!("{at}.string_match"))?)
                    }
                    Some(S::Custom(_)) | None => {
                        return Err(format!("{at}.string_match: no supported pattern"));
                    }
                }
            }
            None => return Err(format!("{at}: no match specifier")),
        };
        if h.name.ends_with("-bin") {
            // A28: binary headers never match, whatever the test.
        }
        Ok(HeaderMatcher {
            name: h.name.to_ascii_lowercase(),
            test,
            invert: h.invert_match,
        })
    }
}

impl RetryPolicy {
    /// A44: the status names of `retry_on`, `num_retries + 1` attempts, and the backoff
    /// (defaults 25 ms and ten times that). `None` when no code of `retry_on` is one gRPC
    /// retries.
    fn from_proto(r: &route_pb::RetryPolicy, at: &str) -> Result<Option<RetryPolicy>, String> {
        let mut codes = Vec::new();
        for word in r.retry_on.split(',').map(str::trim) {
            let code = match word {
                "cancelled" => Code::Cancelled,
                "deadline-exceeded" => Code::DeadlineExceeded,
                "internal" => Code::Internal,
                "resource-exhausted" => Code::ResourceExhausted,
                "unavailable" => Code::Unavailable,
                _ => continue,
            };
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        let (base, max) = match &r.retry_back_off {
            Some(b) => {
                let base = b
                    .base_interval
                    .as_ref()
                    .ok_or_else(|| format!("{at}.retry_back_off.base_interval: missing"))?;
                let base = duration(base, &format!("{at}.retry_back_off.base_interval"))?;
                if base.is_zero() {
                    return Err(format!(
                        "{at}.retry_back_off.base_interval: must be positive"
                    ));
                }
                let max = match &b.max_interval {
                    Some(m) => duration(m, &format!("{at}.retry_back_off.max_interval"))?,
                    None => base * 10,
                };
                if max < base {
                    return Err(format!(
                        "{at}.retry_back_off.max_interval: below base_interval"
                    ));
                }
                (base, max)
            }
            None => (Duration::from_millis(25), Duration::from_millis(250)),
        };
        if codes.is_empty() {
            return Ok(None);
        }
        let retries = r.num_retries.unwrap_or(1);
        if retries == 0 {
            return Ok(None);
        }
        Ok(Some(RetryPolicy {
            codes,
            max_attempts: retries.saturating_add(1),
            base,
            max,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Clusters

/// An EDS cluster.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cluster {
    /// The endpoint resource to watch.
    pub(crate) eds_name: String,
    /// A50's `outlier_detection_experimental` config without its child policy, if set.
    pub(crate) outlier_detection: Option<Value>,
}

impl Cluster {
    fn from_proto(c: cluster_pb::Cluster) -> Result<Cluster, String> {
        use cluster_pb::cluster::ClusterDiscoveryType as T;
        match c.cluster_discovery_type {
            Some(T::Type(t)) if t == cluster_pb::cluster::DiscoveryType::Eds as i32 => {}
            Some(T::Type(t)) => {
                let name = cluster_pb::cluster::DiscoveryType::try_from(t)
                    .map(|d| d.as_str_name().to_owned())
                    .unwrap_or_else(|_| t.to_string());
                return Err(format!("type: {name} is not supported (EDS is)"));
            }
            Some(T::ClusterType(custom)) => {
                return Err(format!(
                    "cluster_type: {:?} is not supported (EDS clusters are)",
                    custom.name
                ));
            }
            None => return Err("type: missing".into()),
        }
        let eds = c.eds_cluster_config.unwrap_or_default();
        check_source(eds.eds_config.as_ref(), "eds_cluster_config.eds_config")?;
        let eds_name = if eds.service_name.is_empty() {
            if c.name.starts_with("xdstp:") {
                return Err("eds_cluster_config.service_name: needed for an xdstp: cluster".into());
            }
            c.name.clone()
        } else {
            eds.service_name
        };
        match c.load_balancing_policy {
            Some(p) => {
                let supported = p.policies.iter().any(|p| {
                    p.typed_extension_config
                        .as_ref()
                        .and_then(|t| t.typed_config.as_ref())
                        .is_some_and(|any| {
                            let t = typed_struct_type(any);
                            t == ROUND_ROBIN || t == WRR_LOCALITY
                        })
                });
                if !supported {
                    return Err("load_balancing_policy: no supported policy (round_robin)".into());
                }
            }
            None => {
                if c.lb_policy != cluster_pb::cluster::LbPolicy::RoundRobin as i32 {
                    return Err(format!(
                        "lb_policy: {} is not supported (ROUND_ROBIN is)",
                        cluster_pb::cluster::LbPolicy::try_from(c.lb_policy)
                            .map(|p| p.as_str_name().to_owned())
                            .unwrap_or_else(|_| c.lb_policy.to_string())
                    ));
                }
            }
        }
        let outlier_detection = c
            .outlier_detection
            .map(|o| outlier_config(&o))
            .transpose()?;
        Ok(Cluster {
            eds_name,
            outlier_detection,
        })
    }
}

/// A50: Envoy's outlier detection as the JSON config of `outlier_detection_experimental`.
fn outlier_config(o: &cluster_pb::OutlierDetection) -> Result<Value, String> {
    let at = "outlier_detection";
    let pct = |v: Option<u32>, default: u32, name: &str| -> Result<u32, String> {
        let v = v.unwrap_or(default);
        if v > 100 {
            return Err(format!("{at}.{name}: must be at most 100"));
        }
        Ok(v)
    };
    let dur = |d: &Option<prost_types::Duration>, default: Duration, name: &str| {
        d.as_ref()
            .map(|d| duration(d, &format!("{at}.{name}")))
            .transpose()
            .map(|d| d.unwrap_or(default))
    };
    let text = |d: Duration| format!("{}.{:09}s", d.as_secs(), d.subsec_nanos());
    let interval = dur(&o.interval, Duration::from_secs(10), "interval")?;
    let base = dur(
        &o.base_ejection_time,
        Duration::from_secs(30),
        "base_ejection_time",
    )?;
    let max = dur(
        &o.max_ejection_time,
        Duration::from_secs(300),
        "max_ejection_time",
    )?;
    let mut config = json!({
        "interval": text(interval),
        "baseEjectionTime": text(base),
        "maxEjectionTime": text(max),
        "maxEjectionPercent": pct(o.max_ejection_percent, 10, "max_ejection_percent")?,
    });
    let success = pct(o.enforcing_success_rate, 100, "enforcing_success_rate")?;
    if success > 0 {
        config["successRateEjection"] = json!({
            "stdevFactor": o.success_rate_stdev_factor.unwrap_or(1900),
            "enforcementPercentage": success,
            "minimumHosts": o.success_rate_minimum_hosts.unwrap_or(5),
            "requestVolume": o.success_rate_request_volume.unwrap_or(100),
        });
    }
    let failure = pct(
        o.enforcing_failure_percentage,
        0,
        "enforcing_failure_percentage",
    )?;
    if failure > 0 {
        config["failurePercentageEjection"] = json!({
            "threshold": pct(o.failure_percentage_threshold, 85, "failure_percentage_threshold")?,
            "enforcementPercentage": failure,
            "minimumHosts": o.failure_percentage_minimum_hosts.unwrap_or(5),
            "requestVolume": o.failure_percentage_request_volume.unwrap_or(50),
        });
    }
    Ok(config)
}

// ---------------------------------------------------------------------------------------------
// Endpoints

/// A cluster's endpoints by priority (index 0 first), each priority's localities.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Endpoints {
    pub(crate) priorities: Vec<Vec<Locality>>,
    /// Calls to drop on purpose: category and share per million.
    pub(crate) drops: Vec<(String, u32)>,
}

/// One locality: its name, weight, and its usable endpoints (each with its addresses).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Locality {
    pub(crate) name: String,
    pub(crate) weight: u32,
    pub(crate) endpoints: Vec<Vec<SocketAddr>>,
}

fn socket_address(a: Option<&core_pb::Address>, at: &str) -> Result<SocketAddr, String> {
    use core_pb::address::Address as A;
    use core_pb::socket_address::PortSpecifier as P;
    let Some(A::SocketAddress(s)) = a.and_then(|a| a.address.as_ref()) else {
        return Err(format!("{at}: not a socket address"));
    };
    let port = match s.port_specifier {
        Some(P::PortValue(p)) if p <= 65535 => p as u16,
        Some(P::PortValue(p)) => return Err(format!("{at}.port_value: {p} is not a port")),
        _ => return Err(format!("{at}: no port_value")),
    };
    let ip: IpAddr = s
        .address
        .parse()
        .map_err(|_| format!("{at}.address: {:?} is not an IP address", s.address))?;
    Ok(SocketAddr::new(ip, port))
}

impl Endpoints {
    fn from_proto(e: endpoint_pb::ClusterLoadAssignment) -> Result<Endpoints, String> {
        use core_pb::HealthStatus as H;
        let mut priorities: Vec<Vec<Locality>> = Vec::new();
        let mut seen_localities = std::collections::HashSet::new();
        for (i, l) in e.endpoints.into_iter().enumerate() {
            let at = format!("endpoints[{i}]");
            // A locality without a weight gets no calls (as in grpc-go).
            let weight = match l.load_balancing_weight {
                Some(w) if w > 0 => w,
                _ => continue,
            };
            let name = l
                .locality
                .as_ref()
                .map(|l| format!("{}/{}/{}", l.region, l.zone, l.sub_zone))
                .unwrap_or_default();
            if !seen_localities.insert((l.priority, name.clone())) {
                return Err(format!(
                    "{at}: locality {name:?} appears twice in priority {}",
                    l.priority
                ));
            }
            let mut endpoints = Vec::new();
            for (j, lb) in l.lb_endpoints.into_iter().enumerate() {
                let at = format!("{at}.lb_endpoints[{j}]");
                let health = H::try_from(lb.health_status).unwrap_or(H::Unknown);
                if !matches!(health, H::Unknown | H::Healthy) {
                    continue;
                }
                use endpoint_pb::lb_endpoint::HostIdentifier;
                let ep = match lb.host_identifier {
                    Some(HostIdentifier::Endpoint(ep)) => ep,
                    _ => return Err(format!("{at}.endpoint: missing")),
                };
                let mut addresses = vec![socket_address(
                    ep.address.as_ref(),
                    &format!("{at}.endpoint.address"),
                )?];
                for (k, extra) in ep.additional_addresses.iter().enumerate() {
                    addresses.push(socket_address(
                        extra.address.as_ref(),
                        &format!("{at}.endpoint.additional_addresses[{k}]"),
                    )?);
                }
                endpoints.push(addresses);
            }
            let p = l.priority as usize;
            if p > 1000 {
                return Err(format!("{at}.priority: {p} is too large"));
            }
            if priorities.len() <= p {
                priorities.resize(p + 1, Vec::new());
            }
            priorities[p].push(Locality {
                name,
                weight,
                endpoints,
            });
        }
        if let Some(gap) = priorities.iter().position(Vec::is_empty) {
            return Err(format!(
                "endpoints: priority {gap} has no locality (priorities must not have gaps)"
            ));
        }
        let mut drops = Vec::new();
        for (i, d) in e
            .policy
            .iter()
            .flat_map(|p| p.drop_overloads.iter())
            .enumerate()
        {
            use crate::pb::envoy::r#type::v3::fractional_percent::DenominatorType as D;
            let Some(f) = &d.drop_percentage else {
                continue;
            };
            let scale = match D::try_from(f.denominator) {
                Ok(D::Hundred) => 10_000,
                Ok(D::TenThousand) => 100,
                Ok(D::Million) => 1,
                Err(_) => return Err(format!("policy.drop_overloads[{i}]: bad denominator")),
            };
            drops.push((
                d.category.clone(),
                f.numerator.saturating_mul(scale).min(1_000_000),
            ));
        }
        Ok(Endpoints { priorities, drops })
    }
}
