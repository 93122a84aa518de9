//! `round_robin`: calls spread evenly over every endpoint that is READY, each endpoint kept
//! connected by a `pick_first` child of its own (gRFC A61's endpoint sharding).
//!
//! A child whose connection is lost reconnects at once. The aggregate state is READY when any
//! child is, CONNECTING while one is trying and none is ready, and TRANSIENT_FAILURE when all
//! have failed; it stays in TRANSIENT_FAILURE until a child becomes READY again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use super::pick_first::PickFirst;
use super::{
    Address, Always, Balancer, BalancerBuilder, ConnectivityState, Controller, Pick, PickRequest,
    Picker, Subchannel, SubchannelOptions, SubchannelState, publish_failure,
};
use crate::client::resolver::Endpoint;
use crate::client::rng::Rng;
use crate::status::Status;

/// Builds `round_robin` balancers. Config: `{}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinBuilder;

impl BalancerBuilder for RoundRobinBuilder {
    fn name(&self) -> &str {
        "round_robin"
    }

    fn build(&self) -> Box<dyn Balancer> {
        Box::new(RoundRobin::default())
    }
}

struct Child {
    key: Vec<Address>,
    balancer: PickFirst,
    state: ConnectivityState,
    picker: Arc<dyn Picker>,
}

/// The `round_robin` balancer.
#[derive(Default)]
pub(crate) struct RoundRobin {
    children: Vec<Child>,
    /// Which child made each subchannel.
    owner: HashMap<u64, usize>,
    state: Option<ConnectivityState>,
    last_failure: Option<Status>,
    rng: Option<Rng>,
}

/// The controller a child sees: its subchannels are recorded, its picker is kept for the
/// aggregate.
struct ChildCtl<'a> {
    parent: &'a mut dyn Controller,
    owner: &'a mut HashMap<u64, usize>,
    index: usize,
    published: Option<(ConnectivityState, Arc<dyn Picker>)>,
}

impl Controller for ChildCtl<'_> {
    fn new_subchannel(&mut self, address: &Address, options: SubchannelOptions) -> Subchannel {
        // Endpoints are health-checked when the service config asks for it (gRFC A17).
        let sc = self
            .parent
            .new_subchannel(address, options.health_check(true));
        self.owner.insert(sc.id(), self.index);
        sc
    }

    fn update_picker(&mut self, state: ConnectivityState, picker: Arc<dyn Picker>) {
        self.published = Some((state, picker));
    }

    fn request_resolution(&mut self) {
        self.parent.request_resolution();
    }

    fn wake_at(&mut self, at: Instant) {
        self.parent.wake_at(at);
    }
}

impl RoundRobin {
    /// Runs `f` on child `i` with its own controller, then takes in what it published.
    fn with_child(
        &mut self,
        i: usize,
        ctl: &mut dyn Controller,
        f: impl FnOnce(&mut PickFirst, &mut dyn Controller),
    ) {
        let mut child_ctl = ChildCtl {
            parent: ctl,
            owner: &mut self.owner,
            index: i,
            published: None,
        };
        f(&mut self.children[i].balancer, &mut child_ctl);
        if let Some((state, picker)) = child_ctl.published {
            let child = &mut self.children[i];
            child.state = state;
            child.picker = picker;
            if state == ConnectivityState::TransientFailure {
                let picked = child
                    .picker
                    .pick(&PickRequest::new("", &Default::default()));
                if let Pick::Fail(status) = picked {
                    self.last_failure = Some(status);
                }
            }
        }
        // Endpoints stay connected: an idle child reconnects at once.
        if self.children[i].state == ConnectivityState::Idle && !self.children[i].key.is_empty() {
            let mut child_ctl = ChildCtl {
                parent: ctl,
                owner: &mut self.owner,
                index: i,
                published: None,
            };
            self.children[i].balancer.exit_idle(&mut child_ctl);
            if let Some((state, picker)) = child_ctl.published {
                self.children[i].state = state;
                self.children[i].picker = picker;
            }
        }
    }

    fn publish(&mut self, ctl: &mut dyn Controller) {
        let ready: Vec<Arc<dyn Picker>> = self
            .children
            .iter()
            .filter(|c| c.state == ConnectivityState::Ready)
            .map(|c| c.picker.clone())
            .collect();
        let connecting = self.children.iter().any(|c| {
            matches!(
                c.state,
                ConnectivityState::Connecting | ConnectivityState::Idle
            )
        });
        let (state, picker): (_, Arc<dyn Picker>) = if !ready.is_empty() {
            // Start each picker at a different place, so that clients do not all begin with
            // the same server.
            let rng = self.rng.get_or_insert_with(Rng::from_entropy);
            let start = rng.below(ready.len() as u64) as usize;
            (
                ConnectivityState::Ready,
                Arc::new(RoundRobinPicker {
                    children: ready,
                    next: AtomicUsize::new(start),
                }),
            )
        } else if connecting && self.state != Some(ConnectivityState::TransientFailure) {
            (ConnectivityState::Connecting, Arc::new(Always(None)))
        } else {
            let status = self
                .last_failure
                .clone()
                .unwrap_or_else(|| Status::unavailable("no endpoint is reachable"));
            (
                ConnectivityState::TransientFailure,
                Arc::new(Always(Some(status))),
            )
        };
        self.state = Some(state);
        ctl.update_picker(state, picker);
    }
}

impl Balancer for RoundRobin {
    fn resolved(
        &mut self,
        endpoints: &[Endpoint],
        _config: &serde_json::Value,
        ctl: &mut dyn Controller,
    ) -> Result<(), Status> {
        if endpoints.iter().all(|e| e.addresses().is_empty()) {
            for child in &mut self.children {
                child.balancer.shutdown();
            }
            self.children.clear();
            self.owner.clear();
            let status = Status::unavailable("the resolver returned no addresses");
            self.last_failure = Some(status.clone());
            self.state = Some(ConnectivityState::TransientFailure);
            publish_failure(ctl, status.clone());
            return Err(status);
        }
        let mut old: HashMap<Vec<Address>, Child> = self
            .children
            .drain(..)
            .map(|c| (c.key.clone(), c))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for endpoint in endpoints {
            let key = endpoint.addresses().to_vec();
            if key.is_empty() || !seen.insert(key.clone()) {
                continue;
            }
            let child = old.remove(&key).unwrap_or_else(|| Child {
                key,
                balancer: PickFirst::new(Rng::from_entropy()),
                state: ConnectivityState::Idle,
                picker: Arc::new(Always(None)),
            });
            self.children.push(child);
        }
        for mut child in old.into_values() {
            child.balancer.shutdown();
        }
        // Children moved: rebuild who owns which subchannel.
        self.owner.clear();
        let null = serde_json::Value::Null;
        for i in 0..self.children.len() {
            let endpoint = Endpoint::new(self.children[i].key.clone());
            self.with_child(i, ctl, |child, ctl| {
                let _ = child.resolved(std::slice::from_ref(&endpoint), &null, ctl);
            });
        }
        self.publish(ctl);
        Ok(())
    }

    fn resolver_error(&mut self, error: &Status, ctl: &mut dyn Controller) {
        if self.children.is_empty() {
            self.last_failure = Some(error.clone());
            self.state = Some(ConnectivityState::TransientFailure);
            publish_failure(ctl, error.clone());
        }
    }

    fn subchannel_update(
        &mut self,
        subchannel: &Subchannel,
        state: &SubchannelState,
        ctl: &mut dyn Controller,
    ) {
        let Some(&i) = self.owner.get(&subchannel.id()) else {
            return;
        };
        if i >= self.children.len() {
            return;
        }
        self.with_child(i, ctl, |child, ctl| {
            child.subchannel_update(subchannel, state, ctl)
        });
        self.publish(ctl);
    }

    fn exit_idle(&mut self, ctl: &mut dyn Controller) {
        for i in 0..self.children.len() {
            self.with_child(i, ctl, |child, ctl| child.exit_idle(ctl));
        }
        self.publish(ctl);
    }

    fn wake(&mut self, ctl: &mut dyn Controller) {
        for i in 0..self.children.len() {
            self.with_child(i, ctl, |child, ctl| child.wake(ctl));
        }
        self.publish(ctl);
    }
}

/// Picks the READY children in turn.
struct RoundRobinPicker {
    children: Vec<Arc<dyn Picker>>,
    next: AtomicUsize,
}

impl Picker for RoundRobinPicker {
    fn pick(&self, request: &PickRequest<'_>) -> Pick {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.children.len();
        self.children[i].pick(request)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::client::testing::{Outcome, TestController, addr};

    const MS: Duration = Duration::from_millis(1);

    fn spread(ctl: &TestController, n: usize) -> HashMap<Address, usize> {
        let mut counts = HashMap::new();
        for _ in 0..n {
            *counts
                .entry(ctl.picked_address().expect("a ready pick"))
                .or_default() += 1;
        }
        counts
    }

    #[tokio::test(start_paused = true)]
    async fn spreads_evenly_and_routes_around_a_lost_endpoint() {
        let mut ctl = TestController::new();
        let list = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"];
        let eps: Vec<Endpoint> = list.iter().map(|s| Endpoint::from(addr(s))).collect();
        for s in list {
            ctl.connector.set(&addr(s), Outcome::AcceptAfter(MS));
        }
        let mut rr = RoundRobin::default();
        rr.resolved(&eps, &serde_json::Value::Null, &mut ctl)
            .unwrap();
        assert_eq!(ctl.state(), Some(ConnectivityState::Connecting));
        let all_ready = |c: &TestController| {
            c.state() == Some(ConnectivityState::Ready) && spread(c, 3).len() == 3
        };
        assert!(
            ctl.run_until(&mut rr, Duration::from_secs(1), all_ready)
                .await
        );
        let counts = spread(&ctl, 300);
        assert!(counts.values().all(|n| *n == 100), "{counts:?}");

        // One endpoint drops: calls go to the other two while it reconnects at once.
        let lost = addr("10.0.0.2:1");
        ctl.connector.set(&lost, Outcome::Hang);
        ctl.connector.drop_connections(&lost);
        assert!(
            ctl.run_until(&mut rr, Duration::from_secs(1), |c| spread(c, 10).len()
                == 2)
                .await
        );
        assert!(!spread(&ctl, 30).contains_key(&lost));
        assert_eq!(
            ctl.connector.attempts_to(&lost).len(),
            2,
            "reconnecting without waiting for a call"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failure_only_when_every_endpoint_failed() {
        let mut ctl = TestController::new();
        let eps = vec![
            Endpoint::from(addr("10.0.0.1:1")),
            Endpoint::from(addr("10.0.0.2:1")),
        ];
        ctl.connector.set(&addr("10.0.0.2:1"), Outcome::Hang);
        let mut rr = RoundRobin::default();
        rr.resolved(&eps, &serde_json::Value::Null, &mut ctl)
            .unwrap();
        // One refused, one still connecting: CONNECTING.
        ctl.run_until(&mut rr, Duration::from_millis(100), |_| false)
            .await;
        assert_eq!(ctl.state(), Some(ConnectivityState::Connecting));
        let mut rr = RoundRobin::default();
        let mut ctl = TestController::new();
        rr.resolved(&eps, &serde_json::Value::Null, &mut ctl)
            .unwrap();
        assert!(
            ctl.run_until(&mut rr, Duration::from_millis(100), |c| c.state()
                == Some(ConnectivityState::TransientFailure))
                .await
        );
        let Pick::Fail(status) = ctl.pick() else {
            panic!()
        };
        assert!(status.message().contains("refused"), "{status}");
        // Sticky: the reconnection attempts after the backoff do not flip it to CONNECTING.
        let published = ctl.published.len();
        ctl.run_until(&mut rr, Duration::from_secs(2), |_| false)
            .await;
        assert!(ctl.published.len() > published);
        assert!(
            ctl.published[published..]
                .iter()
                .all(|(s, _)| *s == ConnectivityState::TransientFailure)
        );
        assert!(
            rr.resolved(&[], &serde_json::Value::Null, &mut ctl)
                .is_err()
        );
    }
}
