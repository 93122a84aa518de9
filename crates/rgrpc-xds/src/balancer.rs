//! `rgrpc_xds_clusters`: the balancer of an xDS channel. Its config, made by the xDS resolver,
//! holds every cluster the routes name, each with its endpoints by priority and locality (what
//! grpc-go spreads over its cds, priority, weighted-target and round_robin policies).
//!
//! For each cluster, the priorities are started in order (gRFC A27's priority policy): the next
//! one only when the ones before are in TRANSIENT_FAILURE or still not READY after the failover
//! timeout of 10 s; calls go to the most preferred READY priority. Within it, a call goes to a
//! READY locality chosen by locality weight, and there to the locality's `round_robin` (wrapped
//! in `outlier_detection_experimental` when the cluster has an outlier detection, gRFC A50).
//! Calls are dropped first by the assignment's drop categories. The cluster a call goes to is the
//! one the xDS config selector chose for it ([`PickRequest::cluster`]).
//!
//! This module does not watch xDS resources (the resolver does) or connect (the subchannels do).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rgrpc::Status;
use rgrpc::client::balancer::{
    Address, Balancer, BalancerBuilder, ConnectivityState, Controller, OutlierDetectionBuilder,
    Pick, PickRequest, Picker, RoundRobinBuilder, Subchannel, SubchannelOptions, SubchannelState,
};
use rgrpc::client::resolver::Endpoint;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::rng::AtomicRng;

/// The policy's name in the service config the resolver makes.
pub(crate) const NAME: &str = "rgrpc_xds_clusters";

/// How long a priority may stay CONNECTING before the next one is started.
const FAILOVER: Duration = Duration::from_secs(10);

/// How long a cluster that left the config keeps serving the calls routed to it before.
const RETIRE_AFTER: Duration = Duration::from_secs(10);

/// Builds the xDS channel's balancer.
#[derive(Debug, Clone, Copy, Default)]
pub struct XdsClustersBuilder;

impl BalancerBuilder for XdsClustersBuilder {
    fn name(&self) -> &str {
        NAME
    }

    fn build(&self) -> Box<dyn Balancer> {
        Box::new(XdsClusters::default())
    }

    fn check_config(&self, config: &Value) -> Result<(), String> {
        Config::parse(config).map(|_| ())
    }
}

/// One locality of a cluster's config.
#[derive(Debug, Clone, PartialEq)]
struct LocalityConfig {
    name: String,
    weight: u32,
    endpoints: Vec<Vec<SocketAddr>>,
}

/// One cluster of the config.
#[derive(Debug, Clone, PartialEq)]
struct ClusterConfig {
    /// Set when the cluster cannot serve (it does not exist, or was refused before any version
    /// arrived): calls to it fail with this.
    error: Option<String>,
    priorities: Vec<Vec<LocalityConfig>>,
    drops: Vec<(String, u32)>,
    /// The locality children's policy: `round_robin`, or outlier detection around it.
    child_policy: (String, Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Config {
    clusters: BTreeMap<String, ClusterConfig>,
}

impl Config {
    fn parse(v: &Value) -> Result<Config, String> {
        let at = NAME;
        let clusters = v
            .get("clusters")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("{at}.clusters: missing"))?;
        let mut out = BTreeMap::new();
        for (name, c) in clusters {
            let at = format!("{at}.clusters[{name:?}]");
            let error = c.get("error").and_then(Value::as_str).map(str::to_owned);
            let mut priorities = Vec::new();
            for (p, list) in c
                .get("priorities")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let mut localities = Vec::new();
                for (i, l) in list
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let at = format!("{at}.priorities[{p}][{i}]");
                    let mut endpoints = Vec::new();
                    for e in l
                        .get("endpoints")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                    {
                        let mut addresses = Vec::new();
                        for a in e.as_array().map(Vec::as_slice).unwrap_or_default() {
                            let a: SocketAddr = a
                                .as_str()
                                .and_then(|s| s.parse().ok())
                                .ok_or_else(|| format!("{at}.endpoints: {a} is not an address"))?;
                            addresses.push(a);
                        }
                        endpoints.push(addresses);
                    }
                    localities.push(LocalityConfig {
                        name: l
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        weight: l
                            .get("weight")
                            .and_then(Value::as_u64)
                            .and_then(|w| u32::try_from(w).ok())
                            .filter(|w| *w > 0)
                            .ok_or_else(|| format!("{at}.weight: must be a positive integer"))?,
                        endpoints,
                    });
                }
                priorities.push(localities);
            }
            let drops = c
                .get("drops")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|d| {
                    Some((
                        d.get(0)?.as_str()?.to_owned(),
                        u32::try_from(d.get(1)?.as_u64()?).ok()?,
                    ))
                })
                .collect();
            let child_policy = match c.get("outlierDetection").filter(|v| !v.is_null()) {
                Some(od) => {
                    let mut od = od.clone();
                    od["childPolicy"] = json!([{"round_robin": {}}]);
                    OutlierDetectionBuilder
                        .check_config(&od)
                        .map_err(|e| format!("{at}.outlierDetection: {e}"))?;
                    ("outlier_detection_experimental".to_owned(), od)
                }
                None => ("round_robin".to_owned(), json!({})),
            };
            out.insert(
                name.clone(),
                ClusterConfig {
                    error,
                    priorities,
                    drops,
                    child_policy,
                },
            );
        }
        Ok(Config { clusters: out })
    }
}

/// A child: one locality of one priority of one cluster.
type Key = (String, usize, String);

struct Child {
    policy: String,
    balancer: Box<dyn Balancer>,
    state: ConnectivityState,
    picker: Arc<dyn Picker>,
    weight: u32,
    wake: Option<Instant>,
}

/// A cluster's children and priority state.
struct ClusterState {
    config: ClusterConfig,
    /// Priorities `0..=started` have children.
    started: usize,
    /// When the started priority gives up waiting for READY.
    failover_at: Option<Instant>,
    /// Set once the cluster left the config: it goes at this time.
    retire_at: Option<Instant>,
}

/// The balancer.
#[derive(Default)]
pub(crate) struct XdsClusters {
    clusters: BTreeMap<String, ClusterState>,
    children: BTreeMap<Key, Child>,
    /// Each subchannel's child.
    owners: HashMap<u64, (Subchannel, Key)>,
    seed: u64,
}

/// What a child sees.
struct ChildCtl<'a> {
    parent: &'a mut dyn Controller,
    owners: &'a mut HashMap<u64, (Subchannel, Key)>,
    key: &'a Key,
    published: Option<(ConnectivityState, Arc<dyn Picker>)>,
    wake: Option<Instant>,
}

impl Controller for ChildCtl<'_> {
    fn new_subchannel(&mut self, address: &Address, options: SubchannelOptions) -> Subchannel {
        let sc = self.parent.new_subchannel(address, options);
        self.owners.insert(sc.id(), (sc.clone(), self.key.clone()));
        sc
    }

    fn update_picker(&mut self, state: ConnectivityState, picker: Arc<dyn Picker>) {
        self.published = Some((state, picker));
    }

    fn request_resolution(&mut self) {
        self.parent.request_resolution();
    }

    fn wake_at(&mut self, at: Instant) {
        if self.wake.is_none_or(|w| at < w) {
            self.wake = Some(at);
        }
        self.parent.wake_at(at);
    }
}

/// A picker that always fails or always queues.
struct Fixed(Option<Status>);

impl Picker for Fixed {
    fn pick(&self, _: &PickRequest<'_>) -> Pick {
        match &self.0 {
            Some(s) => Pick::Fail(s.clone()),
            None => Pick::Queue,
        }
    }
}

impl XdsClusters {
    /// Runs `f` on one child with its controller, then takes in what it published.
    fn with_child(
        &mut self,
        key: &Key,
        ctl: &mut dyn Controller,
        f: impl FnOnce(&mut dyn Balancer, &mut dyn Controller),
    ) {
        let Some(child) = self.children.get_mut(key) else {
            return;
        };
        let mut child_ctl = ChildCtl {
            parent: ctl,
            owners: &mut self.owners,
            key,
            published: None,
            wake: None,
        };
        f(child.balancer.as_mut(), &mut child_ctl);
        let (published, wake) = (child_ctl.published, child_ctl.wake);
        if let Some((state, picker)) = published {
            child.state = state;
            child.picker = picker;
        }
        if let Some(at) = wake
            && child.wake.is_none_or(|w| at < w)
        {
            child.wake = Some(at);
        }
    }

    /// Creates or updates the children of priority `p` of `cluster`.
    fn start_priority(&mut self, cluster: &str, p: usize, ctl: &mut dyn Controller) {
        let Some(state) = self.clusters.get(cluster) else {
            return;
        };
        let Some(localities) = state.config.priorities.get(p).cloned() else {
            return;
        };
        let (policy, config) = state.config.child_policy.clone();
        for l in localities {
            let key: Key = (cluster.to_owned(), p, l.name.clone());
            let fresh_policy = self.children.get(&key).is_none_or(|c| c.policy != policy);
            if fresh_policy {
                self.remove_child(&key);
                let balancer: Box<dyn Balancer> = if policy == "round_robin" {
                    RoundRobinBuilder.build()
                } else {
                    OutlierDetectionBuilder.build()
                };
                self.children.insert(
                    key.clone(),
                    Child {
                        policy: policy.clone(),
                        balancer,
                        state: ConnectivityState::Connecting,
                        picker: Arc::new(Fixed(None)),
                        weight: l.weight,
                        wake: None,
                    },
                );
            }
            if let Some(c) = self.children.get_mut(&key) {
                c.weight = l.weight;
            }
            let endpoints: Vec<Endpoint> = l
                .endpoints
                .iter()
                .map(|addrs| Endpoint::new(addrs.iter().map(|a| Address::Tcp(*a)).collect()))
                .collect();
            let mut refused = None;
            self.with_child(&key, ctl, |b, ctl| {
                if let Err(s) = b.resolved(&endpoints, &config, ctl) {
                    refused = Some(s);
                }
            });
            if let Some(status) = refused
                && let Some(c) = self.children.get_mut(&key)
            {
                // No endpoints (all unhealthy, say): the locality cannot serve.
                c.state = ConnectivityState::TransientFailure;
                c.picker = Arc::new(Fixed(Some(status)));
            }
        }
    }

    fn remove_child(&mut self, key: &Key) {
        if self.children.remove(key).is_some() {
            self.owners.retain(|_, (sc, k)| {
                if k == key {
                    sc.shutdown();
                    false
                } else {
                    true
                }
            });
        }
    }

    /// The state of priority `p` of `cluster`: READY if a locality is, CONNECTING while one
    /// tries, else TRANSIENT_FAILURE.
    fn priority_state(&self, cluster: &str, p: usize) -> ConnectivityState {
        let mut any_connecting = false;
        for (_, child) in self.children_of(cluster, p) {
            match child.state {
                ConnectivityState::Ready => return ConnectivityState::Ready,
                ConnectivityState::Connecting | ConnectivityState::Idle => any_connecting = true,
                _ => {}
            }
        }
        if any_connecting {
            ConnectivityState::Connecting
        } else {
            ConnectivityState::TransientFailure
        }
    }

    fn children_of<'a>(
        &'a self,
        cluster: &'a str,
        p: usize,
    ) -> impl Iterator<Item = (&'a Key, &'a Child)> + 'a {
        let from = (cluster.to_owned(), p, String::new());
        self.children
            .range(from..)
            .take_while(move |(k, _)| k.0 == cluster && k.1 == p)
    }

    /// Moves failover along: starts the next priority when the started one failed or timed out.
    fn failover(&mut self, ctl: &mut dyn Controller) {
        let now = Instant::now();
        let names: Vec<String> = self.clusters.keys().cloned().collect();
        for name in names {
            while let Some(state) = self.clusters.get(&name) {
                let (started, n, failover_at) = (
                    state.started,
                    state.config.priorities.len(),
                    state.failover_at,
                );
                if (0..=started).any(|p| self.priority_state(&name, p) == ConnectivityState::Ready)
                {
                    if let Some(s) = self.clusters.get_mut(&name) {
                        s.failover_at = None;
                    }
                    break;
                }
                let current = self.priority_state(&name, started);
                let timed_out = failover_at.is_some_and(|at| at <= now);
                if started + 1 < n && (current == ConnectivityState::TransientFailure || timed_out)
                {
                    if let Some(s) = self.clusters.get_mut(&name) {
                        s.started += 1;
                        s.failover_at = Some(now + FAILOVER);
                    }
                    ctl.wake_at(now + FAILOVER);
                    self.start_priority(&name, started + 1, ctl);
                    continue;
                }
                if current == ConnectivityState::Connecting
                    && failover_at.is_none()
                    && started + 1 < n
                {
                    if let Some(s) = self.clusters.get_mut(&name) {
                        s.failover_at = Some(now + FAILOVER);
                    }
                    ctl.wake_at(now + FAILOVER);
                }
                break;
            }
        }
    }

    /// Publishes the picker over every cluster, and the channel's aggregate state.
    fn publish(&mut self, ctl: &mut dyn Controller) {
        self.failover(ctl);
        let mut pickers = HashMap::new();
        let mut aggregate = ConnectivityState::TransientFailure;
        for (name, state) in &self.clusters {
            let (cluster_state, picker) = self.cluster_picker(name, state);
            aggregate = match (aggregate, cluster_state) {
                (ConnectivityState::Ready, _) | (_, ConnectivityState::Ready) => {
                    ConnectivityState::Ready
                }
                (ConnectivityState::Connecting, _) | (_, ConnectivityState::Connecting) => {
                    ConnectivityState::Connecting
                }
                _ => ConnectivityState::TransientFailure,
            };
            pickers.insert(name.clone(), picker);
        }
        self.seed = self.seed.wrapping_add(1);
        ctl.update_picker(aggregate, Arc::new(ClustersPicker { clusters: pickers }));
    }

    fn cluster_picker(
        &self,
        name: &str,
        state: &ClusterState,
    ) -> (ConnectivityState, ClusterPicker) {
        let drops = state.config.drops.clone();
        let rng = AtomicRng::new(self.seed);
        if let Some(e) = &state.config.error {
            let status = Status::unavailable(format!("xDS cluster {name:?}: {e}"));
            return (
                ConnectivityState::TransientFailure,
                ClusterPicker {
                    drops,
                    rng,
                    choice: Choice::Fixed(Fixed(Some(status))),
                },
            );
        }
        for p in 0..=state.started {
            if self.priority_state(name, p) != ConnectivityState::Ready {
                continue;
            }
            let mut total = 0u64;
            let mut localities = Vec::new();
            for (_, child) in self.children_of(name, p) {
                if child.state == ConnectivityState::Ready {
                    total += u64::from(child.weight);
                    localities.push((total, child.picker.clone()));
                }
            }
            return (
                ConnectivityState::Ready,
                ClusterPicker {
                    drops,
                    rng,
                    choice: Choice::Weighted(localities, total),
                },
            );
        }
        let current = self.priority_state(name, state.started);
        if current == ConnectivityState::Connecting {
            return (
                ConnectivityState::Connecting,
                ClusterPicker {
                    drops,
                    rng,
                    choice: Choice::Fixed(Fixed(None)),
                },
            );
        }
        // Every started priority failed: the last failure of a locality says why.
        let picker = self
            .children_of(name, state.started)
            .map(|(_, c)| c.picker.clone())
            .next();
        let choice = match picker {
            Some(p) => Choice::Weighted(vec![(1, p)], 1),
            None => Choice::Fixed(Fixed(Some(Status::unavailable(format!(
                "xDS cluster {name:?} has no endpoints"
            ))))),
        };
        (
            ConnectivityState::TransientFailure,
            ClusterPicker { drops, rng, choice },
        )
    }
}

enum Choice {
    Fixed(Fixed),
    Weighted(Vec<(u64, Arc<dyn Picker>)>, u64),
}

/// One cluster's picker: drops, then a READY locality by weight.
struct ClusterPicker {
    drops: Vec<(String, u32)>,
    rng: AtomicRng,
    choice: Choice,
}

impl ClusterPicker {
    fn pick(&self, request: &PickRequest<'_>) -> Pick {
        for (category, per_million) in &self.drops {
            if self.rng.below(1_000_000) < u64::from(*per_million) {
                return Pick::Fail(Status::unavailable(format!(
                    "dropped by the control plane's drop policy ({category})"
                )));
            }
        }
        match &self.choice {
            Choice::Fixed(f) => f.pick(request),
            Choice::Weighted(list, total) => {
                let roll = self.rng.below(*total);
                let picker = list
                    .iter()
                    .find(|(upto, _)| roll < *upto)
                    .or(list.first())
                    .map(|(_, p)| p);
                match picker {
                    Some(p) => p.pick(request),
                    None => Pick::Queue,
                }
            }
        }
    }
}

/// The channel's picker: the call's cluster's picker.
struct ClustersPicker {
    clusters: HashMap<String, ClusterPicker>,
}

impl Picker for ClustersPicker {
    fn pick(&self, request: &PickRequest<'_>) -> Pick {
        let Some(name) = request.cluster() else {
            return Pick::Fail(Status::unavailable(
                "the xDS channel routed the call to no cluster",
            ));
        };
        match self.clusters.get(name) {
            Some(c) => c.pick(request),
            None => Pick::Fail(Status::unavailable(format!(
                "xDS cluster {name:?} is not in the channel's config"
            ))),
        }
    }
}

impl Balancer for XdsClusters {
    fn resolved(
        &mut self,
        _endpoints: &[Endpoint],
        config: &Value,
        ctl: &mut dyn Controller,
    ) -> Result<(), Status> {
        let config = Config::parse(config).map_err(Status::unavailable)?;
        let now = Instant::now();
        // Clusters that left: kept a while for the calls already routed to them.
        for (name, state) in &mut self.clusters {
            if !config.clusters.contains_key(name) && state.retire_at.is_none() {
                state.retire_at = Some(now + RETIRE_AFTER);
                ctl.wake_at(now + RETIRE_AFTER);
            }
        }
        for (name, c) in config.clusters {
            let changed_shape = self.clusters.get(&name).is_none_or(|s| {
                s.config.priorities.len() != c.priorities.len()
                    || s.config.child_policy != c.child_policy
            });
            let state = self.clusters.entry(name.clone()).or_insert(ClusterState {
                config: c.clone(),
                started: 0,
                failover_at: None,
                retire_at: None,
            });
            state.retire_at = None;
            state.config = c;
            if changed_shape {
                state.started = 0;
                state.failover_at = None;
            }
            let started = state.started;
            // Localities that went away, or priorities beyond the started ones.
            let wanted: Vec<Key> = state
                .config
                .priorities
                .iter()
                .enumerate()
                .take(started + 1)
                .flat_map(|(p, ls)| {
                    let name = &name;
                    ls.iter().map(move |l| (name.clone(), p, l.name.clone()))
                })
                .collect();
            let stale: Vec<Key> = self
                .children
                .keys()
                .filter(|k| k.0 == name && !wanted.contains(k))
                .cloned()
                .collect();
            for k in stale {
                self.remove_child(&k);
            }
            for p in 0..=started {
                self.start_priority(&name, p, ctl);
            }
        }
        self.publish(ctl);
        Ok(())
    }

    fn resolver_error(&mut self, error: &Status, ctl: &mut dyn Controller) {
        if self.clusters.is_empty() {
            ctl.update_picker(
                ConnectivityState::TransientFailure,
                Arc::new(Fixed(Some(error.clone()))),
            );
        }
    }

    fn subchannel_update(
        &mut self,
        subchannel: &Subchannel,
        state: &SubchannelState,
        ctl: &mut dyn Controller,
    ) {
        let Some((_, key)) = self.owners.get(&subchannel.id()).cloned() else {
            return;
        };
        self.with_child(&key, ctl, |b, ctl| {
            b.subchannel_update(subchannel, state, ctl)
        });
        if state.state() == ConnectivityState::Shutdown {
            self.owners.remove(&subchannel.id());
        }
        self.publish(ctl);
    }

    fn exit_idle(&mut self, ctl: &mut dyn Controller) {
        let keys: Vec<Key> = self.children.keys().cloned().collect();
        for key in keys {
            self.with_child(&key, ctl, |b, ctl| b.exit_idle(ctl));
        }
        self.publish(ctl);
    }

    fn wake(&mut self, ctl: &mut dyn Controller) {
        let now = Instant::now();
        let due: Vec<Key> = self
            .children
            .iter()
            .filter(|(_, c)| c.wake.is_some_and(|w| w <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(c) = self.children.get_mut(&key) {
                c.wake = None;
            }
            self.with_child(&key, ctl, |b, ctl| b.wake(ctl));
        }
        // Children still waiting get their time asked for again (the parent keeps one).
        for c in self.children.values() {
            if let Some(w) = c.wake {
                ctl.wake_at(w);
            }
        }
        let retired: Vec<String> = self
            .clusters
            .iter()
            .filter(|(_, s)| s.retire_at.is_some_and(|at| at <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in retired {
            self.clusters.remove(&name);
            let keys: Vec<Key> = self
                .children
                .keys()
                .filter(|k| k.0 == name)
                .cloned()
                .collect();
            for k in keys {
                self.remove_child(&k);
            }
        }
        for s in self.clusters.values() {
            if let Some(at) = s.retire_at.into_iter().chain(s.failover_at).min() {
                ctl.wake_at(at);
            }
        }
        self.publish(ctl);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use rgrpc::client::balancer::{Address, Balancer, ConnectivityState, Pick, PickRequest};
    use rgrpc::client::testing::{Outcome, TestController, addr};
    use rgrpc::{Code, MetadataMap};
    use serde_json::{Value, json};

    use super::XdsClusters;

    /// One cluster `c` whose priorities hold the given localities as (name, weight, address).
    fn config(priorities: &[&[(&str, u32, &str)]], extra: Value) -> Value {
        let priorities: Vec<Value> = priorities
            .iter()
            .map(|ls| {
                ls.iter()
                    .map(|(name, weight, a)| {
                        json!({"name": name, "weight": weight, "endpoints": [[a]]})
                    })
                    .collect()
            })
            .collect();
        let mut c = json!({"priorities": priorities});
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                c[k] = v;
            }
        }
        json!({"clusters": {"c": c}})
    }

    fn pick(ctl: &TestController, cluster: &str) -> Pick {
        let md = MetadataMap::new();
        let (_, picker) = ctl.published.last().expect("a picker was published");
        picker.pick(&PickRequest::new("/p.S/M", &md).with_cluster(Some(cluster)))
    }

    fn picked(ctl: &TestController) -> Option<Address> {
        match pick(ctl, "c") {
            Pick::Ready(p) => Some(p.subchannel().address().clone()),
            _ => None,
        }
    }

    async fn ready(ctl: &mut TestController, b: &mut XdsClusters, limit: Duration) -> bool {
        ctl.run_until(b, limit, |c| c.state() == Some(ConnectivityState::Ready))
            .await
    }

    const FAST: Outcome = Outcome::AcceptAfter(Duration::from_millis(1));

    #[tokio::test(start_paused = true)]
    async fn a_hanging_priority_fails_over_after_ten_seconds_and_back_when_it_is_ready() {
        let mut ctl = TestController::new();
        let (p0, p1) = (addr("10.0.0.1:1"), addr("10.0.1.1:1"));
        ctl.connector.set(&p0, Outcome::Hang);
        ctl.connector.set(&p1, FAST);
        let mut b = XdsClusters::default();
        let cfg = config(
            &[&[("a", 1, "10.0.0.1:1")], &[("b", 1, "10.0.1.1:1")]],
            json!({}),
        );
        b.resolved(&[], &cfg, &mut ctl).unwrap();
        let start = tokio::time::Instant::now();
        // Nine seconds in, the second priority has not even been tried.
        assert!(!ready(&mut ctl, &mut b, Duration::from_secs(9)).await);
        assert!(ctl.connector.attempts_to(&p1).is_empty());
        assert!(matches!(pick(&ctl, "c"), Pick::Queue));
        assert!(ready(&mut ctl, &mut b, Duration::from_secs(2)).await);
        let waited = start.elapsed();
        assert!(
            (Duration::from_secs(10)..Duration::from_millis(10_100)).contains(&waited),
            "{waited:?}"
        );
        assert_eq!(picked(&ctl), Some(p1.clone()));

        // The first priority comes up (its next attempt accepts; the backoff after the hung
        // attempt's timeout decides when): calls go back to it.
        ctl.connector.set(&p0, FAST);
        let back = ctl
            .run_until(&mut b, Duration::from_secs(180), |c| {
                picked(c) == Some(p0.clone())
            })
            .await;
        assert!(back, "calls never went back to priority 0");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_priority_fails_over_at_once() {
        let mut ctl = TestController::new();
        let p1 = addr("10.0.1.1:1");
        ctl.connector.set(&p1, FAST);
        let mut b = XdsClusters::default();
        let cfg = config(
            &[&[("a", 1, "10.0.0.1:1")], &[("b", 1, "10.0.1.1:1")]],
            json!({}),
        );
        b.resolved(&[], &cfg, &mut ctl).unwrap();
        assert!(ready(&mut ctl, &mut b, Duration::from_millis(100)).await);
        assert_eq!(picked(&ctl), Some(p1));
    }

    #[tokio::test(start_paused = true)]
    async fn every_priority_failed_fails_calls_with_the_reason() {
        let mut ctl = TestController::new();
        let mut b = XdsClusters::default();
        let cfg = config(
            &[&[("a", 1, "10.0.0.1:1")], &[("b", 1, "10.0.1.1:1")]],
            json!({}),
        );
        b.resolved(&[], &cfg, &mut ctl).unwrap();
        let failed = ctl
            .run_until(&mut b, Duration::from_secs(1), |c| {
                c.state() == Some(ConnectivityState::TransientFailure)
            })
            .await;
        assert!(failed);
        match pick(&ctl, "c") {
            Pick::Fail(s) => {
                assert_eq!(s.code(), Code::Unavailable);
                assert!(s.message().contains("refused"), "{}", s.message());
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_spread_over_localities_by_weight() {
        let mut ctl = TestController::new();
        let (a, b_addr) = (addr("10.0.0.1:1"), addr("10.0.0.2:1"));
        ctl.connector.set(&a, FAST);
        ctl.connector.set(&b_addr, FAST);
        let mut b = XdsClusters::default();
        let cfg = config(
            &[&[("a", 3, "10.0.0.1:1"), ("b", 1, "10.0.0.2:1")]],
            json!({}),
        );
        b.resolved(&[], &cfg, &mut ctl).unwrap();
        let both = ctl
            .run_until(&mut b, Duration::from_secs(1), |c| {
                // Both localities READY: some of the picks land on each.
                let mut seen = HashMap::new();
                for _ in 0..64 {
                    if let Some(x) = picked(c) {
                        *seen.entry(x).or_insert(0) += 1;
                    }
                }
                seen.len() == 2
            })
            .await;
        assert!(both);
        let mut counts: HashMap<Address, u32> = HashMap::new();
        for _ in 0..4000 {
            *counts.entry(picked(&ctl).unwrap()).or_default() += 1;
        }
        let share = f64::from(counts[&a]) / 4000.0;
        assert!((0.70..0.80).contains(&share), "locality a got {share}");
    }

    #[tokio::test(start_paused = true)]
    async fn drops_fail_their_share_of_calls() {
        let mut ctl = TestController::new();
        ctl.connector.set(&addr("10.0.0.1:1"), FAST);
        let mut b = XdsClusters::default();
        let cfg = config(
            &[&[("a", 1, "10.0.0.1:1")]],
            json!({"drops": [["throttle", 250_000]]}),
        );
        b.resolved(&[], &cfg, &mut ctl).unwrap();
        assert!(ready(&mut ctl, &mut b, Duration::from_secs(1)).await);
        let mut dropped = 0;
        for _ in 0..4000 {
            match pick(&ctl, "c") {
                Pick::Fail(s) => {
                    assert_eq!(s.code(), Code::Unavailable);
                    assert!(s.message().contains("throttle"), "{}", s.message());
                    dropped += 1;
                }
                Pick::Ready(_) => {}
                Pick::Queue => panic!("queued on a READY cluster"),
            }
        }
        let share = f64::from(dropped) / 4000.0;
        assert!((0.21..0.29).contains(&share), "dropped {share}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cluster_that_left_serves_ten_seconds_more_then_goes() {
        let mut ctl = TestController::new();
        let a = addr("10.0.0.1:1");
        ctl.connector.set(&a, FAST);
        let mut b = XdsClusters::default();
        b.resolved(
            &[],
            &config(&[&[("a", 1, "10.0.0.1:1")]], json!({})),
            &mut ctl,
        )
        .unwrap();
        assert!(ready(&mut ctl, &mut b, Duration::from_secs(1)).await);
        // The routes now name only `d`, which has no endpoints yet.
        let next = json!({"clusters": {"d": {"priorities": []}}});
        b.resolved(&[], &next, &mut ctl).unwrap();
        assert_eq!(picked(&ctl), Some(a.clone()));
        assert!(matches!(pick(&ctl, "d"), Pick::Fail(_)));
        let gone_early = ctl
            .run_until(&mut b, Duration::from_secs(9), |c| {
                matches!(pick(c, "c"), Pick::Fail(_))
            })
            .await;
        assert!(!gone_early, "the cluster went before its ten seconds");
        assert_eq!(picked(&ctl), Some(a.clone()));
        let gone = ctl
            .run_until(&mut b, Duration::from_secs(2), |c| {
                matches!(pick(c, "c"), Pick::Fail(_))
            })
            .await;
        assert!(gone);
        match pick(&ctl, "c") {
            Pick::Fail(s) => assert!(s.message().contains("not in the channel's config")),
            other => panic!("{other:?}"),
        }
        // And a cluster that comes back before its time is kept, not rebuilt.
        let mut ctl = TestController::new();
        ctl.connector.set(&a, FAST);
        let mut b = XdsClusters::default();
        let cfg = config(&[&[("a", 1, "10.0.0.1:1")]], json!({}));
        b.resolved(&[], &cfg, &mut ctl).unwrap();
        assert!(ready(&mut ctl, &mut b, Duration::from_secs(1)).await);
        b.resolved(&[], &next, &mut ctl).unwrap();
        tokio::time::advance(Duration::from_secs(5)).await;
        b.resolved(&[], &cfg, &mut ctl).unwrap();
        ctl.run_until(&mut b, Duration::from_secs(20), |_| false)
            .await;
        assert_eq!(picked(&ctl), Some(a.clone()));
        assert_eq!(ctl.connector.attempts_to(&a).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cluster_with_an_error_fails_its_calls_and_not_the_others() {
        let mut ctl = TestController::new();
        ctl.connector.set(&addr("10.0.0.1:1"), FAST);
        let mut b = XdsClusters::default();
        let mut cfg = config(&[&[("a", 1, "10.0.0.1:1")]], json!({}));
        cfg["clusters"]["bad"] = json!({"error": "does not exist"});
        b.resolved(&[], &cfg, &mut ctl).unwrap();
        assert!(ready(&mut ctl, &mut b, Duration::from_secs(1)).await);
        assert!(picked(&ctl).is_some());
        match pick(&ctl, "bad") {
            Pick::Fail(s) => {
                assert_eq!(s.code(), Code::Unavailable);
                assert!(s.message().contains("does not exist"), "{}", s.message());
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn outlier_detection_ejects_a_failing_endpoint() {
        let mut ctl = TestController::new();
        let (a, c) = (addr("10.0.0.1:1"), addr("10.0.0.2:1"));
        ctl.connector.set(&a, FAST);
        ctl.connector.set(&c, FAST);
        let mut b = XdsClusters::default();
        let od = json!({
            "interval": "1s",
            "baseEjectionTime": "30s",
            "maxEjectionPercent": 50,
            "failurePercentageEjection": {
                "threshold": 50, "enforcementPercentage": 100,
                "minimumHosts": 2, "requestVolume": 10
            }
        });
        let cfg = json!({"clusters": {"c": {
            "priorities": [[{"name": "l", "weight": 1,
                             "endpoints": [["10.0.0.1:1"], ["10.0.0.2:1"]]}]],
            "outlierDetection": od,
        }}});
        b.resolved(&[], &cfg, &mut ctl).unwrap();
        let both = ctl
            .run_until(&mut b, Duration::from_secs(1), |ctl| {
                let mut seen = std::collections::HashSet::new();
                for _ in 0..8 {
                    seen.extend(picked(ctl));
                }
                seen.len() == 2
            })
            .await;
        assert!(both);
        // Calls to `a` fail, calls to `c` succeed; after the next interval `a` is ejected.
        for _ in 0..100 {
            if let Pick::Ready(p) = pick(&ctl, "c") {
                let ok = p.subchannel().address() != &a;
                p.end(if ok { Code::Ok } else { Code::Unavailable });
            }
        }
        ctl.run_until(&mut b, Duration::from_millis(1500), |_| false)
            .await;
        for _ in 0..20 {
            assert_eq!(picked(&ctl), Some(c.clone()));
        }
    }
}
