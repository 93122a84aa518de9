//! The channel's control task, the glue between resolver, balancer and calls: it starts the
//! resolver when the channel leaves IDLE, applies each resolution and service config, hands
//! subchannel state changes to the balancer, and publishes the balancer's picker.
//!
//! Everything here runs one event at a time on one task, so resolvers and balancers need no
//! locks. Calls never wait on this task: they read the published picker and service config,
//! each swapped atomically, and are woken when a new picker arrives.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use arc_swap::ArcSwap;
use http::uri::{Authority, Scheme};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ChannelConfig;
use super::backoff::BackoffConfig;
use super::balancer::{
    self, Always, Balancer, ConnectivityState, Controller, Pick, PickRequest, Picked, Picker,
    SubchannelOptions,
};
use super::call::retry::{ReplayBudget, Throttle};
use super::health::HealthCheck;
use super::resolver::{
    Address, ConfigSelector, Resolution, Resolver, ResolverBuilder, ResolverSink,
};
use super::service_config::ServiceConfig;
use super::subchannel::{Connect, Subchannel, SubchannelState, Transport};
use super::target::Target;
use crate::error::{Error, Kind};
use crate::metadata::MetadataMap;
use crate::status::{Code, Status};

/// What reaches the control task.
pub(crate) enum Event {
    Resolved(Result<Resolution, Status>),
    Subchannel(Subchannel, SubchannelState),
    ExitIdle,
}

/// The picker calls use, with the state it was published in.
struct Published {
    picker: Arc<dyn Picker>,
    state: ConnectivityState,
    version: u64,
}

/// The service config in force, with its throttle, and the resolver's config selector.
#[derive(Default)]
pub(crate) struct Applied {
    pub(crate) config: ServiceConfig,
    pub(crate) throttle: Option<Arc<Throttle>>,
    pub(crate) selector: Option<Arc<dyn ConfigSelector>>,
}

/// What calls and the control task share.
pub(crate) struct Shared {
    pub(crate) config: ChannelConfig,
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    pub(crate) target: Target,
    /// `config.user_agent` as a header value, made once: every call sends it.
    pub(crate) user_agent: Option<http::HeaderValue>,
    picker: ArcSwap<Published>,
    changed: Notify,
    applied: ArcSwap<Applied>,
    events: mpsc::UnboundedSender<Event>,
    exit_idle_pending: AtomicBool,
    state: watch::Sender<ConnectivityState>,
    last_error: Mutex<Option<Error>>,
    start: Mutex<Option<Start>>,
    /// The channel-wide bound on request bytes kept for retries.
    pub(crate) replay: Arc<ReplayBudget>,
    /// Calls in progress, and calls ever started: the channel goes idle when neither moves for
    /// its idle timeout.
    active: AtomicUsize,
    started: AtomicU64,
    /// Set once the resolver has answered (with a resolution or an error).
    resolved: AtomicBool,
    resolved_notify: Notify,
}

/// Counts a call as in progress while it lives.
pub(crate) struct ActiveCall(Arc<Shared>);

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the control task needs, kept until the channel first leaves IDLE.
pub(crate) struct Start {
    pub(crate) events: mpsc::UnboundedReceiver<Event>,
    pub(crate) resolver: Arc<dyn ResolverBuilder>,
    pub(crate) balancers: balancer::Registry,
    pub(crate) connector: Arc<dyn Connect>,
    pub(crate) default_config: Option<ServiceConfig>,
    pub(crate) stop: CancellationToken,
}

impl Shared {
    pub(crate) fn new(
        config: ChannelConfig,
        scheme: Scheme,
        authority: Authority,
        target: Target,
        events: mpsc::UnboundedSender<Event>,
        start: Start,
    ) -> Shared {
        let applied =
            Applied::from_config(start.default_config.clone().unwrap_or_default(), None, None);
        Shared {
            user_agent: http::HeaderValue::from_str(&config.user_agent).ok(),
            replay: Arc::new(ReplayBudget::new(config.channel_buffer)),
            active: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            resolved: AtomicBool::new(false),
            resolved_notify: Notify::new(),
            config,
            scheme,
            authority,
            target,
            picker: ArcSwap::from_pointee(Published {
                picker: Arc::new(Always(None)),
                state: ConnectivityState::Idle,
                version: 0,
            }),
            changed: Notify::new(),
            applied: ArcSwap::from_pointee(applied),
            events,
            exit_idle_pending: AtomicBool::new(false),
            state: watch::channel(ConnectivityState::Idle).0,
            last_error: Mutex::new(None),
            start: Mutex::new(Some(start)),
        }
    }

    /// Marks the start of a call; it counts as in progress until the guard is dropped.
    pub(crate) fn call_started(self: &Arc<Self>) -> ActiveCall {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::Relaxed);
        ActiveCall(self.clone())
    }

    /// Waits (at most `bound`) for the resolver's first answer, so that the call's method
    /// settings come from the config in force (a config selector's route, say) rather than
    /// from none. One load once the channel has resolved.
    pub(crate) async fn first_resolution(self: &Arc<Self>, bound: Option<Duration>) {
        if self.resolved.load(Ordering::Acquire) {
            return;
        }
        let notified = self.resolved_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.resolved.load(Ordering::Acquire) {
            return;
        }
        self.exit_idle();
        match bound {
            Some(bound) => drop(tokio::time::timeout(bound, notified).await),
            None => notified.await,
        }
    }

    fn mark_resolved(&self) {
        if !self.resolved.swap(true, Ordering::AcqRel) {
            self.resolved_notify.notify_waiters();
        }
    }

    /// The service config in force.
    pub(crate) fn applied(&self) -> arc_swap::Guard<Arc<Applied>> {
        self.applied.load()
    }

    /// The channel's state; with `connect`, leaves IDLE.
    pub(crate) fn state(self: &Arc<Self>, connect: bool) -> ConnectivityState {
        let state = *self.state.borrow();
        if connect && state == ConnectivityState::Idle {
            self.exit_idle();
        }
        state
    }

    /// Waits until the state is no longer `from`, and returns the new one.
    pub(crate) async fn changed_from(&self, from: ConnectivityState) -> ConnectivityState {
        let mut rx = self.state.subscribe();
        match rx.wait_for(|s| *s != from).await {
            Ok(s) => *s,
            Err(_) => ConnectivityState::Shutdown,
        }
    }

    /// The error behind a TRANSIENT_FAILURE: the one the picker fails calls with (every
    /// address and why, from pick_first), else the newest resolution or connection error.
    pub(crate) fn last_error(&self) -> Option<Error> {
        let published = self.picker.load();
        if let Pick::Fail(status) = published
            .picker
            .pick(&PickRequest::new("", &MetadataMap::new()))
            && let Some(e) =
                std::error::Error::source(&status).and_then(|s| s.downcast_ref::<Error>())
        {
            return Some(e.clone());
        }
        self.last_error.lock().ok()?.clone()
    }

    fn set_last_error(&self, error: Error) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = Some(error);
        }
    }

    /// Asks the control task to leave IDLE, starting it first if this is the first time.
    pub(crate) fn exit_idle(self: &Arc<Self>) {
        if self.exit_idle_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let start = self.start.lock().ok().and_then(|mut s| s.take());
        if let Some(start) = start {
            // On the caller's runtime; outside any (a synchronous program asking for the
            // state), on rgrpc's own.
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => drop(handle.spawn(run(self.clone(), start))),
                Err(_) => match super::blocking::runtime() {
                    Ok(rt) => drop(rt.spawn(run(self.clone(), start))),
                    Err(why) => tracing::error!(%why, "the channel cannot start"),
                },
            }
        }
        let _ = self.events.send(Event::ExitIdle);
    }

    /// Only the control task publishes, so versions only grow.
    fn publish(&self, state: ConnectivityState, picker: Arc<dyn Picker>) {
        let version = self.picker.load().version + 1;
        self.picker.store(Arc::new(Published {
            picker,
            state,
            version,
        }));
        self.state.send_replace(state);
        self.changed.notify_waiters();
    }

    /// A subchannel with a connection for one attempt, waiting for the picker to offer one.
    /// Without wait-for-ready a TRANSIENT_FAILURE fails the call at once; the caller bounds the
    /// wait with the call's deadline.
    pub(crate) async fn pick(
        self: &Arc<Self>,
        path: &str,
        metadata: &MetadataMap,
        cluster: Option<&str>,
        wait_for_ready: bool,
    ) -> Result<(Picked, Arc<Transport>), Status> {
        let request = PickRequest::new(path, metadata).with_cluster(cluster);
        loop {
            let seen = {
                let published = self.picker.load();
                if let Some(result) = self.try_pick(&published, &request, wait_for_ready) {
                    return result;
                }
                published.version
            };
            // A call made before the first resolution has no cluster; once a config selector
            // is in force, it routes the call (the route's method settings came too late for
            // this call, as they do in grpc-go for calls started before resolution).
            if cluster.is_none()
                && let Some(selector) = self.applied().selector.clone()
            {
                let selection = selector.select(path, metadata)?;
                if let Some(late) = selection.cluster() {
                    return Box::pin(self.pick(path, metadata, Some(late), wait_for_ready)).await;
                }
            }
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.picker.load().version != seen {
                continue;
            }
            notified.await;
        }
    }

    fn try_pick(
        self: &Arc<Self>,
        published: &Published,
        request: &PickRequest<'_>,
        wait_for_ready: bool,
    ) -> Option<Result<(Picked, Arc<Transport>), Status>> {
        if published.state == ConnectivityState::Idle {
            self.exit_idle();
        }
        match published.picker.pick(request) {
            Pick::Ready(picked) => match picked.subchannel.transport() {
                Some(transport) => Some(Ok((picked, transport))),
                // Lost its connection since the picker was made; a new picker is on its way.
                None => {
                    if let Some(on_end) = picked.on_end {
                        on_end(&balancer::CallEnd::new(Code::Unavailable));
                    }
                    None
                }
            },
            Pick::Queue => None,
            Pick::Fail(status) if wait_for_ready && status.code() == Code::Unavailable => None,
            Pick::Fail(status) => Some(Err(status)),
        }
    }
}

impl Applied {
    fn from_config(
        config: ServiceConfig,
        selector: Option<Arc<dyn ConfigSelector>>,
        previous: Option<&Applied>,
    ) -> Applied {
        let throttle = config.retry_throttling().map(|t| {
            // The same settings keep their bucket: a new resolution is no reason to forget
            // recent failures.
            match previous.and_then(|p| p.throttle.as_ref()) {
                Some(old) if old.settings() == t => old.clone(),
                _ => Arc::new(Throttle::new(t)),
            }
        });
        Applied {
            config,
            throttle,
            selector,
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("target", &self.target.to_string())
            .field("authority", &self.authority)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

/// The control task's own state.
struct Control {
    shared: Arc<Shared>,
    resolver_builder: Arc<dyn ResolverBuilder>,
    resolver: Option<Box<dyn Resolver>>,
    balancers: balancer::Registry,
    balancer: Option<(String, Box<dyn Balancer>)>,
    connector: Arc<dyn Connect>,
    default_config: Option<ServiceConfig>,
    /// A valid config came from the resolver (A21: then an invalid one is ignored).
    resolver_config: bool,
    subchannels: Vec<Subchannel>,
    wake: Option<Instant>,
    resolve_now: bool,
}

/// The controller balancers see.
struct Ctl<'a> {
    shared: &'a Shared,
    connector: &'a Arc<dyn Connect>,
    subchannels: &'a mut Vec<Subchannel>,
    wake: &'a mut Option<Instant>,
    resolve_now: &'a mut bool,
}

impl Controller for Ctl<'_> {
    fn new_subchannel(&mut self, address: &Address, options: SubchannelOptions) -> Subchannel {
        let health = if options.wants_health_check() {
            let applied = self.shared.applied();
            applied.config.health_check_service().map(|service| {
                Arc::new(HealthCheck {
                    service: service.to_owned(),
                    scheme: self.shared.scheme.clone(),
                    authority: self.shared.authority.clone(),
                    user_agent: self.shared.config.user_agent.clone(),
                })
            })
        } else {
            None
        };
        let sc = Subchannel::new(
            address.clone(),
            self.connector.clone(),
            self.shared.events.clone(),
            BackoffConfig::default(),
            health,
        );
        if self.subchannels.len() >= 64 {
            self.subchannels
                .retain(|s| s.state() != ConnectivityState::Shutdown);
        }
        self.subchannels.push(sc.clone());
        sc
    }

    fn update_picker(&mut self, state: ConnectivityState, picker: Arc<dyn Picker>) {
        self.shared.publish(state, picker);
    }

    fn request_resolution(&mut self) {
        *self.resolve_now = true;
    }

    fn wake_at(&mut self, at: Instant) {
        if self.wake.is_none_or(|w| at < w) {
            *self.wake = Some(at);
        }
    }
}

impl Control {
    fn with_balancer(&mut self, f: impl FnOnce(&mut dyn Balancer, &mut dyn Controller)) {
        let Some((_, balancer)) = self.balancer.as_mut() else {
            return;
        };
        let mut ctl = Ctl {
            shared: &self.shared,
            connector: &self.connector,
            subchannels: &mut self.subchannels,
            wake: &mut self.wake,
            resolve_now: &mut self.resolve_now,
        };
        f(balancer.as_mut(), &mut ctl);
        if std::mem::take(&mut self.resolve_now)
            && let Some(r) = self.resolver.as_mut()
        {
            r.resolve_now();
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::ExitIdle => {
                self.shared
                    .exit_idle_pending
                    .store(false, Ordering::Release);
                if self.resolver.is_none() {
                    self.shared
                        .publish(ConnectivityState::Connecting, Arc::new(Always(None)));
                    let sink = ResolverSink::new(self.shared.events.clone());
                    self.resolver = Some(self.resolver_builder.build(&self.shared.target, sink));
                } else {
                    self.with_balancer(|b, ctl| b.exit_idle(ctl));
                }
            }
            Event::Resolved(Ok(resolution)) => {
                self.resolved(resolution);
                self.shared.mark_resolved();
            }
            Event::Resolved(Err(status)) => {
                self.shared.mark_resolved();
                tracing::debug!(target = %self.shared.target, %status, "resolution failed");
                self.shared
                    .set_last_error(Error::new(Kind::Resolve, status.message().to_owned()));
                if self.balancer.is_some() {
                    self.with_balancer(|b, ctl| b.resolver_error(&status, ctl));
                } else {
                    self.shared.publish(
                        ConnectivityState::TransientFailure,
                        Arc::new(Always(Some(status))),
                    );
                }
            }
            Event::Subchannel(sc, state) => {
                if let Some(error) = state.error() {
                    self.shared.set_last_error(error.clone());
                }
                self.with_balancer(|b, ctl| b.subchannel_update(&sc, &state, ctl));
            }
        }
    }

    /// No call for a whole idle timeout: close the connections and stop resolving, until the
    /// next call leaves IDLE again.
    fn go_idle(&mut self) {
        if self.resolver.is_none() {
            return;
        }
        tracing::debug!(target = %self.shared.target, "channel idle; closing its connections");
        self.resolver = None;
        self.balancer = None;
        self.wake = None;
        for sc in self.subchannels.drain(..) {
            sc.shutdown();
        }
        self.shared
            .publish(ConnectivityState::Idle, Arc::new(Always(None)));
    }

    fn resolved(&mut self, resolution: Resolution) {
        let (endpoints, json, selector) = resolution.into_parts();
        let config = match json {
            Some(json) => {
                let parsed = match json.strip_prefix("!invalid: ") {
                    Some(why) => Err(why.to_owned()),
                    None => ServiceConfig::parse(&json, &self.balancers),
                };
                match parsed {
                    Ok(config) => {
                        self.resolver_config = true;
                        Some(config)
                    }
                    Err(why) if self.resolver_config => {
                        tracing::warn!(target = %self.shared.target, error = %why,
                            "invalid service config from the resolver; keeping the previous one");
                        None
                    }
                    Err(why) => {
                        let status = Status::unavailable(format!("invalid service config: {why}"));
                        self.shared.set_last_error(Error::new(
                            Kind::InvalidAddress,
                            status.message().to_owned(),
                        ));
                        self.shared.publish(
                            ConnectivityState::TransientFailure,
                            Arc::new(Always(Some(status))),
                        );
                        return;
                    }
                }
            }
            None => Some(self.default_config.clone().unwrap_or_default()),
        };
        let previous = self.shared.applied();
        // A refused config keeps the one in force; the selector is the resolution's either way.
        let config = config.unwrap_or_else(|| previous.config.clone());
        // The new selector is put in force only after the balancer has taken the resolution,
        // so that no call is routed to a cluster the picker does not know yet.
        let applied = Applied::from_config(config, previous.selector.clone(), Some(&previous));
        drop(previous);
        self.shared.applied.store(Arc::new(applied));
        let applied = self.shared.applied();
        let (name, lb_config) = applied
            .config
            .load_balancing()
            .map(|(n, c)| (n.to_owned(), c.clone()))
            .unwrap_or_else(|| ("pick_first".to_owned(), serde_json::Value::Null));
        if self
            .balancer
            .as_ref()
            .is_none_or(|(current, _)| *current != name)
            && let Some(builder) = self.balancers.get(&name)
        {
            // The old policy's subchannels go with it.
            for sc in self.subchannels.drain(..) {
                sc.shutdown();
            }
            self.balancer = Some((name, builder.build()));
        }
        let mut rejected = false;
        self.with_balancer(|b, ctl| {
            if let Err(status) = b.resolved(&endpoints, &lb_config, ctl) {
                tracing::debug!(%status, "balancer refused the resolution");
                rejected = true;
                ctl.request_resolution();
            }
        });
        if rejected && let Some(r) = self.resolver.as_mut() {
            r.resolve_now();
        }
        let current = self.shared.applied();
        let same = match (&current.selector, &selector) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same {
            let next = Applied {
                config: current.config.clone(),
                throttle: current.throttle.clone(),
                selector,
            };
            drop(current);
            self.shared.applied.store(Arc::new(next));
        }
    }
}

async fn run(shared: Arc<Shared>, start: Start) {
    let Start {
        mut events,
        resolver,
        balancers,
        connector,
        default_config,
        stop,
    } = start;
    let mut control = Control {
        shared: shared.clone(),
        resolver_builder: resolver,
        resolver: None,
        balancers,
        balancer: None,
        connector,
        default_config,
        resolver_config: false,
        subchannels: Vec::new(),
        wake: None,
        resolve_now: false,
    };
    // The idle timeout: a look every period; idle when no call ran during a whole one.
    let idle_after = shared.config.idle_timeout.filter(|d| !d.is_zero());
    let mut idle_look = tokio::time::interval(idle_after.unwrap_or(Duration::from_secs(3600)));
    idle_look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    idle_look.tick().await;
    let mut seen_started = shared.started.load(Ordering::Relaxed);
    loop {
        let wake = control.wake;
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = idle_look.tick(), if idle_after.is_some() => {
                let started = shared.started.load(Ordering::Relaxed);
                if started == seen_started && shared.active.load(Ordering::Acquire) == 0 {
                    control.go_idle();
                }
                seen_started = started;
            }
            event = events.recv() => match event {
                Some(event) => control.handle(event),
                None => break,
            },
            () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                control.wake = None;
                control.with_balancer(|b, ctl| b.wake(ctl));
            }
        }
    }
    for sc in control.subchannels.drain(..) {
        sc.shutdown();
    }
    shared.publish(
        ConnectivityState::Shutdown,
        Arc::new(Always(Some(Status::unavailable("the channel is closed")))),
    );
}
