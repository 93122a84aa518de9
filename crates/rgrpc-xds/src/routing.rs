//! Routing per call (gRFC A28): the config selector an xDS channel publishes. For each call it
//! walks the virtual host's routes in order, takes the first that matches the path, headers and
//! runtime fraction, picks one of its clusters by weight, and hands the call the route's method
//! settings (A31's stream duration as a timeout, A44's retry policy).

use std::sync::Arc;
use std::time::Duration;

use rgrpc::Status;
use rgrpc::client::resolver::{ConfigSelector, Selection};
use rgrpc::client::service_config::{CallPolicy, CodeSet, MethodConfig, RetryPolicy};
use rgrpc::metadata::MetadataMap;

use crate::resource::{Action, HeaderMatcher, HeaderTest, PathMatcher, Route, VirtualHost};
use crate::rng::AtomicRng;

/// A6's cap on attempts, which A44 keeps.
const MAX_ATTEMPTS: u32 = 5;

/// One route, ready for calls: its matcher, and per cluster the selection calls get.
struct Ready {
    route: Route,
    /// The clusters with their cumulative weights, and the selection each gives.
    clusters: Vec<(u64, Selection)>,
    total: u64,
}

/// The config selector of one xDS channel: a virtual host's routes.
pub(crate) struct Router {
    routes: Vec<Ready>,
    rng: AtomicRng,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes.len())
            .finish()
    }
}

impl Router {
    /// The router for `vh`, with the listener's stream duration cap as the default timeout.
    pub(crate) fn new(
        vh: &VirtualHost,
        listener_max_duration: Option<Duration>,
        seed: u64,
    ) -> Router {
        let routes = vh
            .routes
            .iter()
            .map(|route| {
                let mut clusters = Vec::new();
                let mut total = 0u64;
                if let Action::Forward(f) = &route.action {
                    let method = Arc::new(MethodConfig {
                        timeout: f.max_stream_duration.or(listener_max_duration),
                        policy: f.retry.as_ref().map(|r| {
                            CallPolicy::Retry(RetryPolicy {
                                max_attempts: r.max_attempts.min(MAX_ATTEMPTS),
                                initial_backoff: r.base,
                                max_backoff: r.max,
                                backoff_multiplier: 2.0,
                                retryable_codes: r.codes.iter().copied().collect::<CodeSet>(),
                            })
                        }),
                        ..MethodConfig::default()
                    });
                    for (name, weight) in &f.clusters {
                        total += u64::from(*weight);
                        let selection = Selection::new()
                            .with_method_config(method.clone())
                            .with_cluster(Arc::from(name.as_str()));
                        clusters.push((total, selection));
                    }
                }
                Ready {
                    route: route.clone(),
                    clusters,
                    total,
                }
            })
            .collect();
        Router {
            routes,
            rng: AtomicRng::new(seed),
        }
    }
}

impl ConfigSelector for Router {
    fn select(&self, path: &str, metadata: &MetadataMap) -> Result<Selection, Status> {
        for ready in &self.routes {
            let m = &ready.route.matcher;
            if !path_matches(&m.path, m.case_sensitive, path) {
                continue;
            }
            if !m.headers.iter().all(|h| header_matches(h, metadata)) {
                continue;
            }
            if let Some(per_million) = m.fraction_per_million
                && self.rng.below(1_000_000) >= u64::from(per_million)
            {
                continue;
            }
            if ready.total == 0 {
                return Err(Status::unavailable(format!(
                    "{path}: the matching xDS route does not forward calls"
                )));
            }
            let roll = self.rng.below(ready.total);
            let chosen = ready
                .clusters
                .iter()
                .find(|(upto, _)| roll < *upto)
                .map(|(_, s)| s)
                .unwrap_or(&ready.clusters[0].1);
            return Ok(chosen.clone());
        }
        Err(Status::unavailable(format!(
            "{path}: no xDS route matches the call"
        )))
    }
}

fn path_matches(m: &PathMatcher, case_sensitive: bool, path: &str) -> bool {
    match m {
        PathMatcher::Prefix(p) if case_sensitive => path.starts_with(p.as_str()),
        PathMatcher::Prefix(p) => path
            .get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p)),
        PathMatcher::Path(p) if case_sensitive => path == p,
        PathMatcher::Path(p) => path.eq_ignore_ascii_case(p),
        PathMatcher::Regex(re) => re.is_match(path),
    }
}

/// A28: the value of a header is every value of the key joined by commas; `content-type` is
/// gRPC's; `-bin` headers and the ones gRPC itself sets are invisible to matchers.
fn header_matches(h: &HeaderMatcher, metadata: &MetadataMap) -> bool {
    let value: Option<String> = if h.name.ends_with("-bin") || h.name.starts_with("grpc-") {
        None
    } else if h.name == "content-type" {
        Some("application/grpc".into())
    } else {
        let all: Vec<&str> = metadata.get_all(&h.name).collect();
        (!all.is_empty()).then(|| all.join(","))
    };
    let result = match (&h.test, value.as_deref()) {
        (HeaderTest::Present(want), v) => v.is_some() == *want,
        (_, None) => return false,
        (HeaderTest::Exact(s, ic), Some(v)) => cmp(v, s, *ic, |v, s| v == s),
        (HeaderTest::Prefix(s, ic), Some(v)) => cmp(v, s, *ic, |v, s| v.starts_with(s)),
        (HeaderTest::Suffix(s, ic), Some(v)) => cmp(v, s, *ic, |v, s| v.ends_with(s)),
        (HeaderTest::Contains(s, ic), Some(v)) => cmp(v, s, *ic, |v, s| v.contains(s)),
        (HeaderTest::Regex(re), Some(v)) => re.is_match(v),
        (HeaderTest::Range(start, end), Some(v)) => {
            v.parse::<i64>().is_ok_and(|n| *start <= n && n < *end)
        }
    };
    result != h.invert
}

fn cmp(value: &str, pattern: &str, ignore_case: bool, f: fn(&str, &str) -> bool) -> bool {
    if ignore_case {
        f(&value.to_ascii_lowercase(), &pattern.to_ascii_lowercase())
    } else {
        f(value, pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{Forward, RouteMatcher};

    fn route(path: PathMatcher, headers: Vec<HeaderMatcher>, clusters: &[(&str, u32)]) -> Route {
        Route {
            matcher: RouteMatcher {
                path,
                case_sensitive: true,
                headers,
                fraction_per_million: None,
            },
            action: Action::Forward(Forward {
                clusters: clusters.iter().map(|(n, w)| (n.to_string(), *w)).collect(),
                max_stream_duration: None,
                retry: None,
            }),
        }
    }

    fn cluster_of(r: &Router, path: &str, md: &MetadataMap) -> String {
        r.select(path, md).unwrap().cluster().unwrap().to_string()
    }

    #[test]
    fn first_matching_route_wins_and_headers_count() {
        let vh = VirtualHost {
            domains: vec!["*".into()],
            routes: vec![
                route(
                    PathMatcher::Prefix("/".into()),
                    vec![HeaderMatcher {
                        name: "x-canary".into(),
                        test: HeaderTest::Exact("yes".into(), false),
                        invert: false,
                    }],
                    &[("canary", 1)],
                ),
                route(PathMatcher::Path("/a.B/C".into()), vec![], &[("exact", 1)]),
                route(PathMatcher::Prefix("/a.".into()), vec![], &[("prefix", 1)]),
            ],
        };
        let r = Router::new(&vh, None, 7);
        let mut md = MetadataMap::new();
        assert_eq!(cluster_of(&r, "/a.B/C", &md), "exact");
        assert_eq!(cluster_of(&r, "/a.B/D", &md), "prefix");
        assert_eq!(
            r.select("/z.Y/X", &md).unwrap_err().code(),
            rgrpc::Code::Unavailable
        );
        md.insert("x-canary", "yes").unwrap();
        assert_eq!(cluster_of(&r, "/a.B/C", &md), "canary");
    }

    #[test]
    fn weights_split_the_calls() {
        let vh = VirtualHost {
            domains: vec!["*".into()],
            routes: vec![route(
                PathMatcher::Prefix(String::new()),
                vec![],
                &[("a", 80), ("b", 20)],
            )],
        };
        let r = Router::new(&vh, None, 12345);
        let md = MetadataMap::new();
        let a = (0..10_000)
            .filter(|_| cluster_of(&r, "/x.Y/Z", &md) == "a")
            .count();
        assert!((7_700..8_300).contains(&a), "{a} of 10000 went to a");
    }

    #[test]
    fn header_tests() {
        let mut md = MetadataMap::new();
        md.append("k", "1").unwrap();
        md.append("k", "2").unwrap();
        let h = |test, invert| HeaderMatcher {
            name: "k".into(),
            test,
            invert,
        };
        assert!(header_matches(
            &h(HeaderTest::Exact("1,2".into(), false), false),
            &md
        ));
        assert!(header_matches(&h(HeaderTest::Present(true), false), &md));
        assert!(!header_matches(&h(HeaderTest::Present(true), true), &md));
        assert!(header_matches(
            &h(HeaderTest::Prefix("1,".into(), false), false),
            &md
        ));
        let one = {
            let mut m = MetadataMap::new();
            m.insert("k", "15").unwrap();
            m
        };
        assert!(header_matches(&h(HeaderTest::Range(10, 20), false), &one));
        assert!(!header_matches(&h(HeaderTest::Range(16, 20), false), &one));
        let ct = HeaderMatcher {
            name: "content-type".into(),
            test: HeaderTest::Prefix("application/grpc".into(), false),
            invert: false,
        };
        assert!(header_matches(&ct, &md));
    }
}
