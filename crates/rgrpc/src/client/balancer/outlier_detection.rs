//! `outlier_detection_experimental` (gRFC A50): wraps a child policy and ejects, for a while,
//! the endpoints whose calls fail far more than the others' (success-rate ejection) or more than
//! a threshold (failure-percentage ejection).
//!
//! The picker counts each call's outcome per address, without a lock. Every `interval` the
//! counts are judged: an ejected address looks TRANSIENT_FAILURE to the child policy, which
//! routes around it, until `baseEjectionTime` × (times ejected) has passed. This module decides
//! ejections; it does not connect or pick (the child does).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::{
    Address, Balancer, BalancerBuilder, ConnectivityState, Controller, Pick, PickFirstBuilder,
    PickRequest, Picker, RoundRobinBuilder, Subchannel, SubchannelOptions, SubchannelState,
};
use crate::client::resolver::Endpoint;
use crate::client::rng::Rng;
use crate::client::service_config::parse_duration;
use crate::error::{Error, Kind};
use crate::status::{Code, Status};

/// Builds `outlier_detection_experimental` balancers; the child policy is `pick_first` or
/// `round_robin`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutlierDetectionBuilder;

impl BalancerBuilder for OutlierDetectionBuilder {
    fn name(&self) -> &str {
        "outlier_detection_experimental"
    }

    fn build(&self) -> Box<dyn Balancer> {
        Box::new(OutlierDetection::new(Rng::from_entropy()))
    }

    fn check_config(&self, config: &Value) -> Result<(), String> {
        Config::parse(config).map(|_| ())
    }
}

/// The settings of A50, with its defaults.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    interval: Duration,
    base_ejection: Duration,
    max_ejection: Duration,
    max_ejection_percent: u64,
    success_rate: Option<SuccessRate>,
    failure_percentage: Option<FailurePercentage>,
    child: (String, Value),
}

#[derive(Debug, Clone, PartialEq)]
struct SuccessRate {
    stdev_factor: u64,
    enforcement_percentage: u64,
    minimum_hosts: u64,
    request_volume: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct FailurePercentage {
    threshold: u64,
    enforcement_percentage: u64,
    minimum_hosts: u64,
    request_volume: u64,
}

fn field_u64(o: &Value, name: &str, default: u64, at: &str) -> Result<u64, String> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("{at}.{name}: must be a whole number")),
    }
}

fn field_duration(o: &Value, name: &str, default: Duration, at: &str) -> Result<Duration, String> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => {
            parse_duration(s).ok_or_else(|| format!("{at}.{name}: {s:?} is not a duration"))
        }
        Some(_) => Err(format!(
            "{at}.{name}: must be a duration string like \"10s\""
        )),
    }
}

fn percent(o: &Value, name: &str, default: u64, at: &str) -> Result<u64, String> {
    let v = field_u64(o, name, default, at)?;
    if v > 100 {
        return Err(format!("{at}.{name}: must be at most 100"));
    }
    Ok(v)
}

impl Config {
    fn parse(config: &Value) -> Result<Config, String> {
        let at = "outlier_detection_experimental";
        if !config.is_object() {
            return Err(format!("{at}: must be an object"));
        }
        let base_ejection =
            field_duration(config, "baseEjectionTime", Duration::from_secs(30), at)?;
        let success_rate = match config.get("successRateEjection") {
            None | Some(Value::Null) => None,
            Some(s) => {
                let at = &format!("{at}.successRateEjection");
                Some(SuccessRate {
                    stdev_factor: field_u64(s, "stdevFactor", 1900, at)?,
                    enforcement_percentage: percent(s, "enforcementPercentage", 100, at)?,
                    minimum_hosts: field_u64(s, "minimumHosts", 5, at)?,
                    request_volume: field_u64(s, "requestVolume", 100, at)?,
                })
            }
        };
        let failure_percentage = match config.get("failurePercentageEjection") {
            None | Some(Value::Null) => None,
            Some(f) => {
                let at = &format!("{at}.failurePercentageEjection");
                Some(FailurePercentage {
                    threshold: percent(f, "threshold", 85, at)?,
                    enforcement_percentage: percent(f, "enforcementPercentage", 100, at)?,
                    minimum_hosts: field_u64(f, "minimumHosts", 5, at)?,
                    request_volume: field_u64(f, "requestVolume", 50, at)?,
                })
            }
        };
        let children = config
            .get("childPolicy")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{at}.childPolicy: missing (a list of policies)"))?;
        let child = children
            .iter()
            .filter_map(|entry| entry.as_object()?.iter().next())
            .find(|(name, _)| matches!(name.as_str(), "pick_first" | "round_robin"))
            .map(|(name, c)| (name.clone(), c.clone()))
            .ok_or_else(|| {
                format!("{at}.childPolicy: no supported policy (pick_first, round_robin)")
            })?;
        Ok(Config {
            interval: field_duration(config, "interval", Duration::from_secs(10), at)?,
            max_ejection: field_duration(config, "maxEjectionTime", Duration::from_secs(300), at)?
                .max(base_ejection),
            base_ejection,
            max_ejection_percent: percent(config, "maxEjectionPercent", 10, at)?,
            success_rate,
            failure_percentage,
            child,
        })
    }
}

/// Outcomes of the calls to one address since the last judgement.
#[derive(Debug, Default)]
struct Counts {
    success: AtomicU64,
    failure: AtomicU64,
}

/// What is known of one address.
#[derive(Debug, Default)]
struct Host {
    counts: Arc<Counts>,
    ejected_at: Option<Instant>,
    /// How many times in a row it was ejected (grows with each ejection, shrinks each interval
    /// it is not).
    multiplier: u32,
}

/// The `outlier_detection_experimental` balancer.
pub(crate) struct OutlierDetection {
    config: Option<Config>,
    child: Option<(String, Box<dyn Balancer>)>,
    hosts: HashMap<Address, Host>,
    /// The subchannels the child made, by id, with their address and real state.
    subchannels: HashMap<u64, (Subchannel, SubchannelState)>,
    next_judgement: Option<Instant>,
    rng: Rng,
}

/// What the child sees: our controller, which counts its picks and hides ejected addresses.
struct ChildCtl<'a> {
    parent: &'a mut dyn Controller,
    hosts: &'a HashMap<Address, Host>,
    subchannels: &'a mut HashMap<u64, (Subchannel, SubchannelState)>,
}

impl Controller for ChildCtl<'_> {
    fn new_subchannel(&mut self, address: &Address, options: SubchannelOptions) -> Subchannel {
        let sc = self.parent.new_subchannel(address, options);
        let state = SubchannelState::new(ConnectivityState::Idle, None);
        self.subchannels.insert(sc.id(), (sc.clone(), state));
        sc
    }

    fn update_picker(&mut self, state: ConnectivityState, picker: Arc<dyn Picker>) {
        let counts = self
            .hosts
            .iter()
            .map(|(a, h)| (a.clone(), h.counts.clone()))
            .collect();
        let picker = Arc::new(CountingPicker {
            child: picker,
            counts,
        });
        self.parent.update_picker(state, picker);
    }

    fn request_resolution(&mut self) {
        self.parent.request_resolution();
    }

    fn wake_at(&mut self, at: Instant) {
        self.parent.wake_at(at);
    }
}

/// The child's picker, with each call's outcome counted for its address.
struct CountingPicker {
    child: Arc<dyn Picker>,
    counts: HashMap<Address, Arc<Counts>>,
}

impl Picker for CountingPicker {
    fn pick(&self, request: &PickRequest<'_>) -> Pick {
        match self.child.pick(request) {
            Pick::Ready(picked) => match self.counts.get(picked.subchannel.address()) {
                Some(counts) => {
                    let counts = counts.clone();
                    let inner = picked.on_end;
                    let mut picked = super::Picked::new(picked.subchannel);
                    picked.on_end = Some(Box::new(move |end: &super::CallEnd| {
                        if end.code() == Code::Ok {
                            counts.success.fetch_add(1, Ordering::Relaxed);
                        } else {
                            counts.failure.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(inner) = inner {
                            inner(end);
                        }
                    }));
                    Pick::Ready(picked)
                }
                None => Pick::Ready(picked),
            },
            other => other,
        }
    }
}

impl OutlierDetection {
    pub(crate) fn new(rng: Rng) -> OutlierDetection {
        OutlierDetection {
            config: None,
            child: None,
            hosts: HashMap::new(),
            subchannels: HashMap::new(),
            next_judgement: None,
            rng,
        }
    }

    fn with_child(
        &mut self,
        ctl: &mut dyn Controller,
        f: impl FnOnce(&mut dyn Balancer, &mut dyn Controller),
    ) {
        let Some((_, child)) = self.child.as_mut() else {
            return;
        };
        let mut child_ctl = ChildCtl {
            parent: ctl,
            hosts: &self.hosts,
            subchannels: &mut self.subchannels,
        };
        f(child.as_mut(), &mut child_ctl);
    }

    fn ejected_state(address: &Address) -> SubchannelState {
        SubchannelState::new(
            ConnectivityState::TransientFailure,
            Some(Error::new(
                Kind::Unhealthy,
                format!("{address}: ejected by outlier detection"),
            )),
        )
    }

    /// Tells the child the state of every subchannel of `address`: ejected, or its real one.
    fn show(&mut self, address: &Address, ejected: bool, ctl: &mut dyn Controller) {
        let subchannels: Vec<(Subchannel, SubchannelState)> = self
            .subchannels
            .values()
            .filter(|(sc, _)| sc.address() == address)
            .cloned()
            .collect();
        for (sc, real) in subchannels {
            let shown = if ejected {
                Self::ejected_state(address)
            } else {
                real
            };
            self.with_child(ctl, |child, ctl| child.subchannel_update(&sc, &shown, ctl));
        }
    }

    /// One interval's judgement (A50's algorithm).
    fn judge(&mut self, ctl: &mut dyn Controller) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let now = Instant::now();
        // The counts of the interval that just ended.
        let mut volumes: Vec<(Address, u64, u64)> = self
            .hosts
            .iter()
            .map(|(a, h)| {
                let s = h.counts.success.swap(0, Ordering::Relaxed);
                let f = h.counts.failure.swap(0, Ordering::Relaxed);
                (a.clone(), s, f)
            })
            .collect();
        volumes.sort_by(|a, b| a.0.cmp(&b.0));
        let total = self.hosts.len() as u64;
        let ejected_share = |hosts: &HashMap<Address, Host>| {
            let ejected = hosts.values().filter(|h| h.ejected_at.is_some()).count() as u64;
            ejected * 100 / total.max(1)
        };
        let mut to_eject = Vec::new();
        if let Some(sr) = &config.success_rate {
            let candidates: Vec<(&Address, f64)> = volumes
                .iter()
                .filter(|(_, s, f)| s + f >= sr.request_volume.max(1))
                .map(|(a, s, f)| (a, *s as f64 / (s + f) as f64))
                .collect();
            if candidates.len() as u64 >= sr.minimum_hosts {
                let n = candidates.len() as f64;
                let mean = candidates.iter().map(|(_, r)| r).sum::<f64>() / n;
                let variance = candidates
                    .iter()
                    .map(|(_, r)| (r - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let threshold = mean - variance.sqrt() * (sr.stdev_factor as f64 / 1000.0);
                for (a, rate) in candidates {
                    if rate < threshold {
                        to_eject.push((a.clone(), sr.enforcement_percentage));
                    }
                }
            }
        }
        if let Some(fp) = &config.failure_percentage {
            let candidates: Vec<&(Address, u64, u64)> = volumes
                .iter()
                .filter(|(_, s, f)| s + f >= fp.request_volume.max(1))
                .collect();
            if candidates.len() as u64 >= fp.minimum_hosts {
                for (a, s, f) in candidates {
                    if f * 100 > fp.threshold * (s + f) {
                        to_eject.push((a.clone(), fp.enforcement_percentage));
                    }
                }
            }
        }
        for (address, enforcement) in to_eject {
            if ejected_share(&self.hosts) >= config.max_ejection_percent
                && self.hosts.values().any(|h| h.ejected_at.is_some())
            {
                break;
            }
            let roll = self.rng.below(100);
            let Some(host) = self.hosts.get_mut(&address) else {
                continue;
            };
            if host.ejected_at.is_some() || roll >= enforcement {
                continue;
            }
            host.ejected_at = Some(now);
            host.multiplier += 1;
            tracing::debug!(%address, times = host.multiplier, "outlier detection ejects");
            self.show(&address, true, ctl);
        }
        // Ejections that have served their time end; hosts left alone forget past ejections.
        let mut released = Vec::new();
        for (address, host) in &mut self.hosts {
            match host.ejected_at {
                None => host.multiplier = host.multiplier.saturating_sub(1),
                Some(at) => {
                    let time = config
                        .base_ejection
                        .saturating_mul(host.multiplier)
                        .min(config.max_ejection);
                    if now >= at + time {
                        host.ejected_at = None;
                        released.push(address.clone());
                    }
                }
            }
        }
        for address in released {
            self.show(&address, false, ctl);
        }
    }
}

impl Balancer for OutlierDetection {
    fn resolved(
        &mut self,
        endpoints: &[Endpoint],
        config: &Value,
        ctl: &mut dyn Controller,
    ) -> Result<(), Status> {
        let config = Config::parse(config).map_err(Status::unavailable)?;
        if self
            .child
            .as_ref()
            .is_none_or(|(name, _)| *name != config.child.0)
        {
            let child: Box<dyn Balancer> = match config.child.0.as_str() {
                "round_robin" => RoundRobinBuilder.build(),
                _ => PickFirstBuilder.build(),
            };
            for (sc, _) in self.subchannels.drain().map(|(_, v)| v) {
                sc.shutdown();
            }
            self.child = Some((config.child.0.clone(), child));
        }
        // Track every address; forget those no longer resolved.
        let addresses: Vec<Address> = endpoints
            .iter()
            .flat_map(|e| e.addresses().iter().cloned())
            .collect();
        self.hosts.retain(|a, _| addresses.contains(a));
        for a in addresses {
            self.hosts.entry(a).or_default();
        }
        let interval = config.interval;
        let child_config = config.child.1.clone();
        self.config = Some(config);
        if self.next_judgement.is_none() {
            let at = Instant::now() + interval;
            self.next_judgement = Some(at);
            ctl.wake_at(at);
        }
        let mut result = Ok(());
        self.with_child(ctl, |child, ctl| {
            result = child.resolved(endpoints, &child_config, ctl);
        });
        result
    }

    fn resolver_error(&mut self, error: &Status, ctl: &mut dyn Controller) {
        self.with_child(ctl, |child, ctl| child.resolver_error(error, ctl));
    }

    fn subchannel_update(
        &mut self,
        subchannel: &Subchannel,
        state: &SubchannelState,
        ctl: &mut dyn Controller,
    ) {
        let Some(entry) = self.subchannels.get_mut(&subchannel.id()) else {
            return;
        };
        entry.1 = state.clone();
        if state.state() == ConnectivityState::Shutdown {
            self.subchannels.remove(&subchannel.id());
        }
        let ejected = self
            .hosts
            .get(subchannel.address())
            .is_some_and(|h| h.ejected_at.is_some());
        let shown = if ejected {
            Self::ejected_state(subchannel.address())
        } else {
            state.clone()
        };
        self.with_child(ctl, |child, ctl| {
            child.subchannel_update(subchannel, &shown, ctl)
        });
    }

    fn exit_idle(&mut self, ctl: &mut dyn Controller) {
        self.with_child(ctl, |child, ctl| child.exit_idle(ctl));
    }

    fn wake(&mut self, ctl: &mut dyn Controller) {
        if let Some(at) = self.next_judgement
            && Instant::now() >= at
        {
            self.judge(ctl);
            let interval = self
                .config
                .as_ref()
                .map_or(Duration::from_secs(10), |c| c.interval);
            let next = Instant::now() + interval;
            self.next_judgement = Some(next);
            ctl.wake_at(next);
        } else if let Some(at) = self.next_judgement {
            ctl.wake_at(at);
        }
        self.with_child(ctl, |child, ctl| child.wake(ctl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::balancer::CallEnd;
    use crate::client::testing::{Outcome, TestController, addr};

    fn config(extra: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"interval":"10s","baseEjectionTime":"30s","maxEjectionPercent":50,
                "childPolicy":[{{"round_robin":{{}}}}]{extra}}}"#
        ))
        .unwrap()
    }

    /// Sends `n` calls through the current picker; calls to `bad` fail.
    fn calls(ctl: &TestController, n: usize, bad: &[Address]) -> HashMap<Address, usize> {
        let mut seen = HashMap::new();
        for _ in 0..n {
            let Pick::Ready(picked) = ctl.pick() else {
                panic!("no ready pick")
            };
            let address = picked.subchannel.address().clone();
            let code = if bad.contains(&address) {
                Code::Unavailable
            } else {
                Code::Ok
            };
            if let Some(on_end) = picked.on_end {
                on_end(&CallEnd::new(code));
            }
            *seen.entry(address).or_default() += 1;
        }
        seen
    }

    async fn ready(od: &mut OutlierDetection, ctl: &mut TestController, n: usize) {
        let ok = ctl
            .run_until(od, Duration::from_secs(1), |c| {
                c.state() == Some(ConnectivityState::Ready) && calls(c, 30, &[]).len() == n
            })
            .await;
        assert!(ok, "all {n} endpoints ready");
    }

    #[tokio::test(start_paused = true)]
    async fn failure_percentage_ejects_then_lets_back() {
        let mut ctl = TestController::new();
        let list = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"];
        for s in list {
            ctl.connector
                .set(&addr(s), Outcome::AcceptAfter(Duration::from_millis(1)));
        }
        let endpoints: Vec<Endpoint> = list.iter().map(|s| Endpoint::from(addr(s))).collect();
        let cfg = config(
            r#","failurePercentageEjection":{"threshold":50,"minimumHosts":3,"requestVolume":10}"#,
        );
        let mut od = OutlierDetection::new(Rng::new(7));
        od.resolved(&endpoints, &cfg, &mut ctl).unwrap();
        ready(&mut od, &mut ctl, 3).await;
        let bad = addr("10.0.0.3:1");
        calls(&ctl, 90, std::slice::from_ref(&bad));
        // The judgement at 10 s ejects the failing endpoint; the child routes around it.
        ctl.run_until(&mut od, Duration::from_secs(11), |_| false)
            .await;
        let seen = calls(&ctl, 60, &[]);
        assert!(!seen.contains_key(&bad), "{seen:?}");
        assert_eq!(seen.len(), 2);
        // 30 s later (base ejection time × 1) it is back.
        ctl.run_until(&mut od, Duration::from_secs(31), |_| false)
            .await;
        let seen = calls(&ctl, 60, &[]);
        assert_eq!(seen.len(), 3, "{seen:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn success_rate_ejects_the_outlier_only() {
        let mut ctl = TestController::new();
        let list = [
            "10.0.0.1:1",
            "10.0.0.2:1",
            "10.0.0.3:1",
            "10.0.0.4:1",
            "10.0.0.5:1",
        ];
        for s in list {
            ctl.connector
                .set(&addr(s), Outcome::AcceptAfter(Duration::from_millis(1)));
        }
        let endpoints: Vec<Endpoint> = list.iter().map(|s| Endpoint::from(addr(s))).collect();
        let cfg = config(
            r#","successRateEjection":{"stdevFactor":1000,"minimumHosts":5,"requestVolume":20}"#,
        );
        let mut od = OutlierDetection::new(Rng::new(7));
        od.resolved(&endpoints, &cfg, &mut ctl).unwrap();
        ready(&mut od, &mut ctl, 5).await;
        let bad = addr("10.0.0.5:1");
        calls(&ctl, 200, std::slice::from_ref(&bad));
        ctl.run_until(&mut od, Duration::from_secs(11), |_| false)
            .await;
        let seen = calls(&ctl, 100, &[]);
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(!seen.contains_key(&bad));
    }

    #[tokio::test(start_paused = true)]
    async fn max_ejection_percent_and_too_few_hosts() {
        let mut ctl = TestController::new();
        let list = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"];
        for s in list {
            ctl.connector
                .set(&addr(s), Outcome::AcceptAfter(Duration::from_millis(1)));
        }
        let endpoints: Vec<Endpoint> = list.iter().map(|s| Endpoint::from(addr(s))).collect();
        // Three of four fail, but at most 25% may be ejected: one.
        let cfg: Value = serde_json::from_str(
            r#"{"maxEjectionPercent":25,"childPolicy":[{"round_robin":{}}],
                "failurePercentageEjection":{"threshold":50,"minimumHosts":4,"requestVolume":10}}"#,
        )
        .unwrap();
        let mut od = OutlierDetection::new(Rng::new(7));
        od.resolved(&endpoints, &cfg, &mut ctl).unwrap();
        ready(&mut od, &mut ctl, 4).await;
        let bad: Vec<Address> = list[1..].iter().map(|s| addr(s)).collect();
        calls(&ctl, 120, &bad);
        ctl.run_until(&mut od, Duration::from_secs(11), |_| false)
            .await;
        assert_eq!(calls(&ctl, 80, &[]).len(), 3, "exactly one ejected");
        // minimumHosts above the host count: nothing is judged.
        let cfg: Value = serde_json::from_str(
            r#"{"childPolicy":[{"round_robin":{}}],
                "failurePercentageEjection":{"threshold":50,"minimumHosts":9,"requestVolume":10}}"#,
        )
        .unwrap();
        let mut ctl = TestController::new();
        for s in list {
            ctl.connector
                .set(&addr(s), Outcome::AcceptAfter(Duration::from_millis(1)));
        }
        let mut od = OutlierDetection::new(Rng::new(7));
        od.resolved(&endpoints, &cfg, &mut ctl).unwrap();
        ready(&mut od, &mut ctl, 4).await;
        calls(&ctl, 120, &bad);
        ctl.run_until(&mut od, Duration::from_secs(11), |_| false)
            .await;
        assert_eq!(calls(&ctl, 80, &[]).len(), 4);
    }

    #[test]
    fn config_defaults_and_errors() {
        let c = Config::parse(&serde_json::json!({"childPolicy":[{"x":{}},{"round_robin":{}}]}))
            .unwrap();
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.base_ejection, Duration::from_secs(30));
        assert_eq!(c.max_ejection, Duration::from_secs(300));
        assert_eq!(c.max_ejection_percent, 10);
        assert!(c.success_rate.is_none() && c.failure_percentage.is_none());
        assert_eq!(c.child.0, "round_robin");
        let sr = Config::parse(
            &serde_json::json!({"childPolicy":[{"pick_first":{}}],"successRateEjection":{}}),
        )
        .unwrap()
        .success_rate
        .unwrap();
        assert_eq!(
            (
                sr.stdev_factor,
                sr.enforcement_percentage,
                sr.minimum_hosts,
                sr.request_volume
            ),
            (1900, 100, 5, 100)
        );
        for (bad, field) in [
            (serde_json::json!({}), "childPolicy"),
            (
                serde_json::json!({"childPolicy":[{"nope":{}}]}),
                "childPolicy",
            ),
            (
                serde_json::json!({"childPolicy":[{"round_robin":{}}],"interval":"x"}),
                "interval",
            ),
            (
                serde_json::json!({"childPolicy":[{"round_robin":{}}],"maxEjectionPercent":101}),
                "maxEjectionPercent",
            ),
            (
                serde_json::json!({"childPolicy":[{"round_robin":{}}],"failurePercentageEjection":{"threshold":120}}),
                "failurePercentageEjection.threshold",
            ),
        ] {
            let e = Config::parse(&bad).unwrap_err();
            assert!(e.contains(field), "{bad} -> {e}");
        }
    }
}
