//! `pick_first`, the default policy: one connection, to the first address that answers, with
//! Happy Eyeballs (gRFC A61 and A62).
//!
//! Addresses are tried in order, IPv6 and IPv4 interleaved, a new attempt starting every 250 ms
//! or as soon as the previous one fails, without cancelling earlier attempts; the first to
//! connect wins and the others are shut down. Once every address has failed, the policy stays
//! in TRANSIENT_FAILURE (sticky) and reconnects each address as its backoff ends, until one
//! connects. `shuffleAddressList` shuffles endpoints first, to spread clients over servers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    Address, Always, Balancer, BalancerBuilder, ConnectivityState, Controller, One, Subchannel,
    SubchannelOptions, SubchannelState, publish_failure, unavailable,
};
use crate::client::resolver::Endpoint;
use crate::client::rng::Rng;
use crate::status::Status;

/// The delay between starting two connection attempts (A62's "Connection Attempt Delay").
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Builds `pick_first` balancers. Config: `{"shuffleAddressList": bool}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickFirstBuilder;

impl BalancerBuilder for PickFirstBuilder {
    fn name(&self) -> &str {
        "pick_first"
    }

    fn build(&self) -> Box<dyn Balancer> {
        Box::new(PickFirst::new(Rng::from_entropy()))
    }

    fn check_config(&self, config: &serde_json::Value) -> Result<(), String> {
        shuffle_option(config).map(|_| ())
    }
}

fn shuffle_option(config: &serde_json::Value) -> Result<bool, String> {
    match config.get("shuffleAddressList") {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(_) => Err("pick_first.shuffleAddressList must be true or false".into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not connecting until a call (or the parent) asks.
    Idle,
    /// Happy Eyeballs in progress.
    Connecting,
    Ready,
    /// Every address failed; reconnecting each as its backoff ends.
    TransientFailure,
}

/// The `pick_first` balancer.
pub(crate) struct PickFirst {
    addresses: Vec<Address>,
    subchannels: Vec<Option<Subchannel>>,
    /// Which addresses failed during the current pass.
    failed: Vec<bool>,
    /// The next address to start in this pass.
    next: usize,
    next_at: Option<Instant>,
    selected: Option<usize>,
    mode: Mode,
    /// The newest connection error of each address.
    errors: Vec<Option<crate::Error>>,
    rng: Rng,
    /// What was last published, so that a parent can read it.
    pub(crate) published: ConnectivityState,
}

impl PickFirst {
    pub(crate) fn new(rng: Rng) -> PickFirst {
        PickFirst {
            addresses: Vec::new(),
            subchannels: Vec::new(),
            failed: Vec::new(),
            next: 0,
            next_at: None,
            selected: None,
            mode: Mode::Idle,
            errors: Vec::new(),
            rng,
            published: ConnectivityState::Idle,
        }
    }

    /// Shuts down every subchannel (the parent is dropping this child).
    pub(crate) fn shutdown(&mut self) {
        for sc in self.subchannels.iter().flatten() {
            sc.shutdown();
        }
        self.subchannels.clear();
        self.addresses.clear();
    }

    fn publish(&mut self, ctl: &mut dyn Controller) {
        let (state, picker): (_, Arc<dyn super::Picker>) = match self.mode {
            Mode::Idle => (ConnectivityState::Idle, Arc::new(Always(None))),
            Mode::Connecting => (ConnectivityState::Connecting, Arc::new(Always(None))),
            Mode::Ready => {
                let i = self.selected.expect("READY has a selected subchannel");
                let sc = self.subchannels[i]
                    .clone()
                    .expect("the selected subchannel exists");
                (ConnectivityState::Ready, Arc::new(One(sc)))
            }
            Mode::TransientFailure => (
                ConnectivityState::TransientFailure,
                Arc::new(Always(Some(unavailable(
                    combined_error(&self.addresses, &self.errors).as_ref(),
                    "every address failed",
                )))),
            ),
        };
        self.published = state;
        ctl.update_picker(state, picker);
    }

    /// The subchannel of address `i`, made anew if it was shut down.
    fn subchannel(&mut self, i: usize, ctl: &mut dyn Controller) -> Subchannel {
        match &self.subchannels[i] {
            Some(sc) if sc.state() != ConnectivityState::Shutdown => sc.clone(),
            _ => {
                let sc = ctl.new_subchannel(&self.addresses[i], SubchannelOptions::new());
                self.subchannels[i] = Some(sc.clone());
                sc
            }
        }
    }

    /// Starts a new pass over the addresses.
    fn start_pass(&mut self, ctl: &mut dyn Controller) {
        self.failed = vec![false; self.addresses.len()];
        self.next = 0;
        self.selected = None;
        if self.mode != Mode::TransientFailure {
            self.mode = Mode::Connecting;
            self.publish(ctl);
        }
        self.advance(ctl);
    }

    /// Starts the next address of the pass that can be tried now.
    fn advance(&mut self, ctl: &mut dyn Controller) {
        while self.next < self.addresses.len() {
            let i = self.next;
            self.next += 1;
            let sc = self.subchannel(i, ctl);
            match sc.state() {
                ConnectivityState::Idle => {
                    sc.connect();
                }
                // Still in backoff from an earlier failure: counts as failed, try the next.
                ConnectivityState::TransientFailure => {
                    self.failed[i] = true;
                    continue;
                }
                ConnectivityState::Connecting | ConnectivityState::Ready => {}
                ConnectivityState::Shutdown => continue,
            }
            let at = Instant::now() + ATTEMPT_DELAY;
            self.next_at = Some(at);
            ctl.wake_at(at);
            return;
        }
        self.next_at = None;
        self.check_exhausted(ctl);
    }

    /// Every address failed in this pass: sticky TRANSIENT_FAILURE.
    fn check_exhausted(&mut self, ctl: &mut dyn Controller) {
        if self.mode == Mode::Connecting
            && self.next >= self.addresses.len()
            && self.failed.iter().all(|f| *f)
        {
            self.mode = Mode::TransientFailure;
            self.publish(ctl);
            ctl.request_resolution();
            // Reconnect whatever has already finished its backoff.
            for i in 0..self.addresses.len() {
                if let Some(sc) = &self.subchannels[i]
                    && sc.state() == ConnectivityState::Idle
                {
                    sc.connect();
                }
            }
        }
    }
}

/// One error that names every address and why it failed, with the most telling failure (a
/// handshake over a timeout over a refused connection) as its kind and source.
pub(crate) fn combined_error(
    addresses: &[Address],
    errors: &[Option<crate::Error>],
) -> Option<crate::Error> {
    let failed: Vec<(&Address, &crate::Error)> = addresses
        .iter()
        .zip(errors)
        .filter_map(|(a, e)| Some((a, e.as_ref()?)))
        .collect();
    let rank = |e: &crate::Error| {
        if e.is_handshake() {
            3
        } else if e.is_timeout() {
            2
        } else if e.is_connect() {
            1
        } else {
            0
        }
    };
    let primary = failed
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, e))| (rank(e), *i))
        .map(|(_, (_, e))| *e)?;
    if failed.len() == 1 {
        return Some(primary.clone());
    }
    let all: Vec<String> = failed.iter().map(|(a, e)| format!("{a}: {e}")).collect();
    Some(primary.summarize(format!(
        "all {} addresses failed: {}",
        failed.len(),
        all.join("; ")
    )))
}

/// Addresses of every endpoint in order, without duplicates, IPv6 and IPv4 interleaved starting
/// with the family of the first (A61).
pub(crate) fn happy_eyeballs_order(endpoints: &[Endpoint]) -> Vec<Address> {
    let mut seen = std::collections::HashSet::new();
    let all: Vec<Address> = endpoints
        .iter()
        .flat_map(|e| e.addresses().iter().cloned())
        .filter(|a| seen.insert(a.clone()))
        .collect();
    let Some(first) = all.first() else {
        return all;
    };
    let first_v6 = first.is_ipv6();
    let (mut a, mut b): (Vec<_>, Vec<_>) =
        all.iter().cloned().partition(|x| x.is_ipv6() == first_v6);
    a.reverse();
    b.reverse();
    let mut out = Vec::with_capacity(all.len());
    loop {
        match (a.pop(), b.pop()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

impl Balancer for PickFirst {
    fn resolved(
        &mut self,
        endpoints: &[Endpoint],
        config: &serde_json::Value,
        ctl: &mut dyn Controller,
    ) -> Result<(), Status> {
        let mut endpoints = endpoints.to_vec();
        if shuffle_option(config).unwrap_or(false) {
            for i in (1..endpoints.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                endpoints.swap(i, j);
            }
        }
        let addresses = happy_eyeballs_order(&endpoints);
        if addresses.is_empty() {
            self.shutdown();
            self.mode = Mode::TransientFailure;
            let status = Status::unavailable("the resolver returned no addresses");
            self.errors.clear();
            publish_failure(ctl, status.clone());
            self.published = ConnectivityState::TransientFailure;
            return Err(status);
        }
        let had_addresses = !self.addresses.is_empty();
        let selected_sc = match (self.mode, self.selected.take()) {
            (Mode::Ready, Some(i)) => self.subchannels.get(i).cloned().flatten(),
            _ => None,
        };
        // Keep the subchannels of addresses that stay.
        let mut old: HashMap<Address, Subchannel> = HashMap::new();
        for (addr, sc) in self.addresses.drain(..).zip(self.subchannels.drain(..)) {
            if let Some(sc) = sc {
                old.insert(addr, sc);
            }
        }
        self.subchannels = addresses.iter().map(|a| old.remove(a)).collect();
        self.errors = vec![None; addresses.len()];
        self.addresses = addresses;
        for sc in old.into_values() {
            sc.shutdown();
        }
        if let Some(sc) = selected_sc
            && let Some(i) = self
                .subchannels
                .iter()
                .position(|s| s.as_ref() == Some(&sc))
        {
            // Still connected to an address that remains: stay READY.
            self.selected = Some(i);
            self.publish(ctl);
            return Ok(());
        }
        if self.mode == Mode::Ready {
            self.mode = Mode::Connecting;
        }
        if self.mode == Mode::Idle && had_addresses {
            // Went idle after a connection was lost; stays idle until a call comes.
            return Ok(());
        }
        self.start_pass(ctl);
        Ok(())
    }

    fn resolver_error(&mut self, error: &Status, ctl: &mut dyn Controller) {
        if self.addresses.is_empty() {
            self.mode = Mode::TransientFailure;
            self.published = ConnectivityState::TransientFailure;
            publish_failure(ctl, error.clone());
        }
    }

    fn subchannel_update(
        &mut self,
        subchannel: &Subchannel,
        state: &SubchannelState,
        ctl: &mut dyn Controller,
    ) {
        let Some(i) = self
            .subchannels
            .iter()
            .position(|s| s.as_ref() == Some(subchannel))
        else {
            return;
        };
        match state.state() {
            ConnectivityState::Ready => {
                if self.selected == Some(i) {
                    // Healthy again (gRFC A17).
                    if self.mode != Mode::Ready {
                        self.mode = Mode::Ready;
                        self.publish(ctl);
                    }
                    return;
                }
                for (j, sc) in self.subchannels.iter_mut().enumerate() {
                    if j != i
                        && let Some(sc) = sc.take()
                    {
                        sc.shutdown();
                    }
                }
                self.selected = Some(i);
                self.next_at = None;
                self.mode = Mode::Ready;
                self.publish(ctl);
            }
            ConnectivityState::Idle if self.selected == Some(i) => {
                // The connection was lost: idle until the next call, and look again.
                self.selected = None;
                self.mode = Mode::Idle;
                self.publish(ctl);
                ctl.request_resolution();
            }
            ConnectivityState::Idle => {
                if self.mode == Mode::TransientFailure {
                    subchannel.connect();
                }
            }
            ConnectivityState::TransientFailure if self.selected == Some(i) => {
                // Connected, but its health check says it cannot serve: fail calls until it
                // recovers or the connection goes.
                if let Some(slot) = self.errors.get_mut(i) {
                    *slot = state.error().cloned();
                }
                self.mode = Mode::TransientFailure;
                self.publish(ctl);
            }
            ConnectivityState::TransientFailure => {
                if let Some(slot) = self.errors.get_mut(i) {
                    *slot = state.error().cloned();
                }
                match self.mode {
                    Mode::Connecting => {
                        self.failed[i] = true;
                        if self.next == i + 1 {
                            // The newest attempt failed: start the next one now.
                            self.advance(ctl);
                        } else {
                            self.check_exhausted(ctl);
                        }
                    }
                    // Sticky: show the newest reason.
                    Mode::TransientFailure => self.publish(ctl),
                    _ => {}
                }
            }
            ConnectivityState::Connecting | ConnectivityState::Shutdown => {}
        }
    }

    fn exit_idle(&mut self, ctl: &mut dyn Controller) {
        if self.mode == Mode::Idle && !self.addresses.is_empty() {
            self.start_pass(ctl);
        }
    }

    fn wake(&mut self, ctl: &mut dyn Controller) {
        if self.mode == Mode::Connecting && self.next_at.is_some_and(|at| Instant::now() >= at) {
            self.advance(ctl);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::balancer::Pick;
    use crate::client::testing::{Outcome, TestController, addr};

    const MS: Duration = Duration::from_millis(1);

    fn endpoints(list: &[&str]) -> Vec<Endpoint> {
        list.iter().map(|s| Endpoint::from(addr(s))).collect()
    }

    fn since(t0: Instant, t: Instant) -> Duration {
        t.duration_since(t0)
    }

    #[tokio::test(start_paused = true)]
    async fn happy_eyeballs_starts_an_attempt_every_250ms_without_cancelling() {
        let mut ctl = TestController::new();
        let (a, b, c) = (addr("[::1]:1"), addr("10.0.0.1:1"), addr("[::2]:1"));
        ctl.connector.set(&a, Outcome::Hang);
        ctl.connector.set(&b, Outcome::AcceptAfter(400 * MS));
        ctl.connector.set(&c, Outcome::AcceptAfter(10 * MS));
        let mut pf = PickFirst::new(Rng::new(1));
        let t0 = Instant::now();
        pf.resolved(
            &endpoints(&["[::1]:1", "[::2]:1", "10.0.0.1:1"]),
            &serde_json::Value::Null,
            &mut ctl,
        )
        .unwrap();
        assert_eq!(ctl.state(), Some(ConnectivityState::Connecting));
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(5), |c| c.state()
                == Some(ConnectivityState::Ready))
                .await
        );
        // Interleaved: [::1] at 0, 10.0.0.1 at 250 ms, [::2] at 500 ms. [::2] answers at
        // 510 ms, before 10.0.0.1 would (650 ms).
        let at = |x| {
            ctl.connector
                .attempts_to(x)
                .iter()
                .map(|t| since(t0, *t))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(&a), [Duration::ZERO]);
        assert_eq!(at(&b), [250 * MS]);
        assert_eq!(at(&c), [500 * MS]);
        assert_eq!(ctl.picked_address(), Some(c.clone()));
        assert_eq!(since(t0, Instant::now()), 510 * MS);
        // The others were shut down once one won.
        assert!(pf.subchannels.iter().flatten().all(|s| s.address() == &c));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_attempt_may_still_win() {
        let mut ctl = TestController::new();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:1"));
        ctl.connector.set(&a, Outcome::AcceptAfter(400 * MS));
        ctl.connector.set(&b, Outcome::Hang);
        let mut pf = PickFirst::new(Rng::new(1));
        pf.resolved(
            &endpoints(&["10.0.0.1:1", "10.0.0.2:1"]),
            &serde_json::Value::Null,
            &mut ctl,
        )
        .unwrap();
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(5), |c| c.state()
                == Some(ConnectivityState::Ready))
                .await
        );
        assert_eq!(ctl.picked_address(), Some(a));
        assert_eq!(
            ctl.connector.attempts_to(&b).len(),
            1,
            "b was started at 250 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_starts_the_next_attempt_at_once() {
        let mut ctl = TestController::new();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:1"));
        ctl.connector.set(&a, Outcome::Refuse);
        ctl.connector.set(&b, Outcome::AcceptAfter(MS));
        let mut pf = PickFirst::new(Rng::new(1));
        let t0 = Instant::now();
        pf.resolved(
            &endpoints(&["10.0.0.1:1", "10.0.0.2:1"]),
            &serde_json::Value::Null,
            &mut ctl,
        )
        .unwrap();
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(5), |c| c.state()
                == Some(ConnectivityState::Ready))
                .await
        );
        assert_eq!(ctl.connector.attempts_to(&b), [t0]);
        assert_eq!(ctl.picked_address(), Some(b));
    }

    #[tokio::test(start_paused = true)]
    async fn sticky_transient_failure_names_every_address_and_recovers() {
        let mut ctl = TestController::new();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:1"));
        let mut pf = PickFirst::new(Rng::new(1));
        pf.resolved(
            &endpoints(&["10.0.0.1:1", "10.0.0.2:1"]),
            &serde_json::Value::Null,
            &mut ctl,
        )
        .unwrap();
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(1), |c| c.state()
                == Some(ConnectivityState::TransientFailure))
                .await
        );
        assert_eq!(ctl.resolutions, 1, "every address failed: look again");
        let Pick::Fail(status) = ctl.pick() else {
            panic!("fails calls")
        };
        assert_eq!(status.code(), crate::Code::Unavailable);
        assert!(
            status.message().contains("10.0.0.1:1") && status.message().contains("10.0.0.2:1"),
            "{status}"
        );
        // Each address comes out of its backoff (1 s ± 20%) and is tried again; the policy
        // stays in TRANSIENT_FAILURE meanwhile instead of flapping to CONNECTING.
        let published = ctl.published.len();
        let both_retried = ctl
            .run_until(&mut pf, Duration::from_millis(1300), |c| {
                c.connector.attempts_to(&a).len() == 2 && c.connector.attempts_to(&b).len() == 2
            })
            .await;
        assert!(both_retried, "both addresses are tried again within 1.2 s");
        assert!(
            ctl.published[published..]
                .iter()
                .all(|(s, _)| *s == ConnectivityState::TransientFailure)
        );
        ctl.connector.set(&b, Outcome::AcceptAfter(MS));
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(10), |c| c.state()
                == Some(ConnectivityState::Ready))
                .await
        );
        assert_eq!(ctl.picked_address(), Some(b));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_connection_goes_idle_and_asks_for_resolution() {
        let mut ctl = TestController::new();
        let a = addr("10.0.0.1:1");
        ctl.connector.set(&a, Outcome::AcceptAfter(MS));
        let mut pf = PickFirst::new(Rng::new(1));
        pf.resolved(
            &endpoints(&["10.0.0.1:1"]),
            &serde_json::Value::Null,
            &mut ctl,
        )
        .unwrap();
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(1), |c| c.state()
                == Some(ConnectivityState::Ready))
                .await
        );
        ctl.connector.drop_connections(&a);
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(1), |c| c.state()
                == Some(ConnectivityState::Idle))
                .await
        );
        assert_eq!(ctl.resolutions, 1);
        assert!(matches!(ctl.pick(), Pick::Queue));
        // A call (exit_idle) reconnects.
        pf.exit_idle(&mut ctl);
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(1), |c| c.state()
                == Some(ConnectivityState::Ready))
                .await
        );
        assert_eq!(ctl.connector.attempts_to(&a).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_update_that_keeps_the_connected_address_stays_ready() {
        let mut ctl = TestController::new();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:1"));
        ctl.connector.set(&a, Outcome::AcceptAfter(MS));
        let mut pf = PickFirst::new(Rng::new(1));
        pf.resolved(
            &endpoints(&["10.0.0.1:1"]),
            &serde_json::Value::Null,
            &mut ctl,
        )
        .unwrap();
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(1), |c| c.state()
                == Some(ConnectivityState::Ready))
                .await
        );
        pf.resolved(
            &endpoints(&["10.0.0.2:1", "10.0.0.1:1"]),
            &serde_json::Value::Null,
            &mut ctl,
        )
        .unwrap();
        assert_eq!(ctl.state(), Some(ConnectivityState::Ready));
        assert_eq!(ctl.picked_address(), Some(a.clone()));
        assert!(ctl.connector.attempts_to(&b).is_empty());
        // An update without it reconnects elsewhere.
        ctl.connector.set(&b, Outcome::AcceptAfter(MS));
        pf.resolved(
            &endpoints(&["10.0.0.2:1"]),
            &serde_json::Value::Null,
            &mut ctl,
        )
        .unwrap();
        assert!(
            ctl.run_until(&mut pf, Duration::from_secs(1), |c| c.picked_address()
                == Some(b.clone()))
                .await
        );
    }

    #[test]
    fn no_addresses_is_refused() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut ctl = TestController::new();
            let mut pf = PickFirst::new(Rng::new(1));
            assert!(
                pf.resolved(&[], &serde_json::Value::Null, &mut ctl)
                    .is_err()
            );
            assert_eq!(ctl.state(), Some(ConnectivityState::TransientFailure));
        });
    }

    #[test]
    fn shuffle_spreads_the_first_address() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let list = endpoints(&["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"]);
            let config = serde_json::json!({"shuffleAddressList": true});
            let mut firsts = std::collections::HashSet::new();
            for seed in 0..40 {
                let mut ctl = TestController::new();
                for e in &list {
                    ctl.connector.set(&e.addresses()[0], Outcome::Hang);
                }
                let mut pf = PickFirst::new(Rng::new(seed));
                pf.resolved(&list, &config, &mut ctl).unwrap();
                firsts.insert(pf.addresses[0].clone());
                // Without the option, the order is kept.
                let mut pf = PickFirst::new(Rng::new(seed));
                pf.resolved(&list, &serde_json::Value::Null, &mut ctl)
                    .unwrap();
                assert_eq!(pf.addresses[0], list[0].addresses()[0]);
            }
            assert_eq!(firsts.len(), 4, "every address came first for some client");
        });
    }

    fn ep(s: &str) -> Endpoint {
        Endpoint::from(s.parse::<std::net::SocketAddr>().unwrap())
    }

    #[test]
    fn families_interleave_starting_with_the_first() {
        let order = happy_eyeballs_order(&[
            ep("[::1]:1"),
            ep("[::2]:1"),
            ep("[::3]:1"),
            ep("10.0.0.1:1"),
            ep("10.0.0.2:1"),
            ep("[::1]:1"),
        ]);
        let s: Vec<String> = order.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            ["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"]
        );
    }
}
