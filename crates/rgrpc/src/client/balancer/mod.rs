//! Load balancing: a [`Balancer`] turns the resolver's endpoints into subchannels and publishes a
//! [`Picker`]; every call asks the current picker for a subchannel.
//!
//! Balancers run on the channel's control task, one event at a time, so they need no locks. The
//! picker is swapped atomically and read without a lock on every call. Built in: `pick_first`
//! (the default, with Happy Eyeballs) and `round_robin`. Write your own by implementing
//! [`Balancer`] and [`BalancerBuilder`] and registering it with `Channel::builder(..)?.balancer(..)`;
//! a service config then selects it by name in `loadBalancingConfig`.
//!
//! This module does not open connections (subchannels do) or retry calls (the call layer does).

mod outlier_detection;
mod pick_first;
mod round_robin;

pub use outlier_detection::OutlierDetectionBuilder;
pub use pick_first::PickFirstBuilder;
pub use round_robin::RoundRobinBuilder;

use std::fmt;
use std::sync::{Arc, RwLock};

use tokio::time::Instant;

use super::resolver::Endpoint;
pub use super::subchannel::{ConnectivityState, Subchannel, SubchannelState};
use crate::metadata::MetadataMap;
use crate::status::{Code, Status};
pub use crate::transport::connect::Address;

/// How a balancer wants a subchannel made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubchannelOptions {
    health_check: bool,
}

impl SubchannelOptions {
    /// The defaults: no health checking.
    pub fn new() -> SubchannelOptions {
        SubchannelOptions::default()
    }

    /// Checks the server's health (gRFC A17) when the service config names a
    /// `healthCheckConfig.serviceName`: the subchannel is READY only while the server reports
    /// SERVING. `round_robin` asks for it; `pick_first` does not.
    pub fn health_check(mut self, yes: bool) -> SubchannelOptions {
        self.health_check = yes;
        self
    }

    pub(crate) fn wants_health_check(&self) -> bool {
        self.health_check
    }
}

/// A balancer's view of its channel: how it makes subchannels and publishes pickers.
pub trait Controller {
    /// A new subchannel for `address`, IDLE until [`Subchannel::connect`] is called. Its state
    /// changes arrive in [`Balancer::subchannel_update`]. Call [`Subchannel::shutdown`] when it
    /// is no longer wanted.
    fn new_subchannel(&mut self, address: &Address, options: SubchannelOptions) -> Subchannel;
    /// Publishes the balancer's aggregate state and the picker calls use from now on.
    fn update_picker(&mut self, state: ConnectivityState, picker: Arc<dyn Picker>);
    /// Asks the resolver to look again (it may wait for its minimum interval).
    fn request_resolution(&mut self);
    /// Calls [`Balancer::wake`] at `at` (or soon after). A later request replaces an earlier
    /// one only if it is sooner.
    fn wake_at(&mut self, at: Instant);
}

/// A load-balancing policy for one channel.
pub trait Balancer: Send + 'static {
    /// The resolver's new endpoints, with this policy's config from the service config (the
    /// JSON object under its name in `loadBalancingConfig`, or `null`). An `Err` says the
    /// update is unusable (no addresses, say); the channel then asks the resolver again.
    fn resolved(
        &mut self,
        endpoints: &[Endpoint],
        config: &serde_json::Value,
        ctl: &mut dyn Controller,
    ) -> Result<(), Status>;

    /// The resolver failed. A policy that has endpoints keeps using them.
    fn resolver_error(&mut self, error: &Status, ctl: &mut dyn Controller);

    /// One of this policy's subchannels changed state.
    fn subchannel_update(
        &mut self,
        subchannel: &Subchannel,
        state: &SubchannelState,
        ctl: &mut dyn Controller,
    );

    /// A call arrived while the policy reported IDLE: start connecting.
    fn exit_idle(&mut self, ctl: &mut dyn Controller);

    /// The time asked for with [`Controller::wake_at`] has come.
    fn wake(&mut self, _ctl: &mut dyn Controller) {}
}

/// Makes balancers of one policy.
pub trait BalancerBuilder: Send + Sync + 'static {
    /// The policy's name in `loadBalancingConfig`, e.g. `"round_robin"`.
    fn name(&self) -> &str;
    /// A new balancer.
    fn build(&self) -> Box<dyn Balancer>;
    /// Checks the policy's config when a service config is parsed, so that a bad one is refused
    /// before it replaces a good one (gRFC A21). The default accepts anything.
    fn check_config(&self, _config: &serde_json::Value) -> Result<(), String> {
        Ok(())
    }
}

/// What a picker knows about the call it picks for.
#[derive(Debug)]
pub struct PickRequest<'a> {
    path: &'a str,
    metadata: &'a MetadataMap,
    cluster: Option<&'a str>,
}

impl<'a> PickRequest<'a> {
    /// A request for a call on `path` (`/package.Service/Method`) with `metadata`, for no
    /// cluster in particular. The channel makes these; tests of a balancer make their own.
    pub fn new(path: &'a str, metadata: &'a MetadataMap) -> PickRequest<'a> {
        PickRequest {
            path,
            metadata,
            cluster: None,
        }
    }

    /// The same request for the cluster `cluster` (see [`PickRequest::cluster`]).
    pub fn with_cluster(mut self, cluster: Option<&'a str>) -> PickRequest<'a> {
        self.cluster = cluster;
        self
    }

    /// The cluster the channel's [`ConfigSelector`] chose for this call, if it has one: a
    /// balancer over several clusters (xDS's) sends the call to that cluster's balancer.
    ///
    /// [`ConfigSelector`]: crate::client::resolver::ConfigSelector
    pub fn cluster(&self) -> Option<&str> {
        self.cluster
    }

    /// The method, as `/package.Service/Method`.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The call's request metadata (for consistent hashing on a header, say).
    pub fn metadata(&self) -> &MetadataMap {
        self.metadata
    }
}

/// How a call ended, for a picker that tracks its subchannels (least-request, outlier ejection).
#[derive(Debug, Clone)]
pub struct CallEnd {
    code: Code,
}

impl CallEnd {
    /// An end with `code` (the channel makes these; a test of a picker makes its own).
    pub fn new(code: Code) -> CallEnd {
        CallEnd { code }
    }

    /// The status code the attempt ended with (`Cancelled` when the caller gave up).
    pub fn code(&self) -> Code {
        self.code
    }
}

/// The hook a picker attaches to a pick, run when the attempt ends.
pub(crate) type OnEnd = Box<dyn FnOnce(&CallEnd) + Send>;

/// A subchannel a picker chose, with an optional hook run when the attempt on it ends.
pub struct Picked {
    pub(crate) subchannel: Subchannel,
    pub(crate) on_end: Option<OnEnd>,
}

impl Picked {
    /// The call goes to `subchannel`.
    pub fn new(subchannel: Subchannel) -> Picked {
        Picked {
            subchannel,
            on_end: None,
        }
    }

    /// Runs `f` once the attempt on this subchannel ends.
    pub fn on_end(mut self, f: impl FnOnce(&CallEnd) + Send + 'static) -> Picked {
        self.on_end = Some(Box::new(f));
        self
    }

    /// The subchannel the call goes to.
    pub fn subchannel(&self) -> &Subchannel {
        &self.subchannel
    }

    /// Tells the picker the attempt ended with `code`: runs the hook, if any. The channel does
    /// this for every attempt; a test of a picker calls it itself.
    pub fn end(self, code: Code) {
        if let Some(on_end) = self.on_end {
            on_end(&CallEnd::new(code));
        }
    }
}

impl fmt::Debug for Picked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Picked")
            .field("subchannel", &self.subchannel)
            .finish_non_exhaustive()
    }
}

/// A picker's answer.
#[derive(Debug)]
pub enum Pick {
    /// Send the call on this subchannel.
    Ready(Picked),
    /// No subchannel yet: wait for the next picker.
    Queue,
    /// Fail the call with this status (calls with wait-for-ready wait instead when it is
    /// UNAVAILABLE).
    Fail(Status),
}

/// Chooses a subchannel for each call. Called concurrently from every call, without a lock:
/// keep it cheap (an atomic counter, not a mutex).
pub trait Picker: Send + Sync + 'static {
    /// Chooses for one call.
    fn pick(&self, request: &PickRequest<'_>) -> Pick;
}

/// A picker that always answers the same way (queue, or fail).
#[derive(Debug)]
pub(crate) struct Always(pub(crate) Option<Status>);

impl Picker for Always {
    fn pick(&self, _: &PickRequest<'_>) -> Pick {
        match &self.0 {
            Some(status) => Pick::Fail(status.clone()),
            None => Pick::Queue,
        }
    }
}

/// Publishes TRANSIENT_FAILURE with a picker that fails every call with `status`.
pub(crate) fn publish_failure(ctl: &mut dyn Controller, status: Status) {
    ctl.update_picker(
        ConnectivityState::TransientFailure,
        Arc::new(Always(Some(status))),
    );
}

/// A picker that sends every call to one subchannel.
#[derive(Debug)]
pub(crate) struct One(pub(crate) Subchannel);

impl Picker for One {
    fn pick(&self, _: &PickRequest<'_>) -> Pick {
        Pick::Ready(Picked::new(self.0.clone()))
    }
}

/// The UNAVAILABLE status for a subchannel's connection error.
pub(crate) fn unavailable(error: Option<&crate::Error>, fallback: &str) -> Status {
    match error {
        Some(e) => Status::unavailable(e.to_string()).with_source(e.clone()),
        None => Status::unavailable(fallback),
    }
}

/// Balancers every channel of the process knows, besides the built-in ones.
static GLOBAL: RwLock<Vec<Arc<dyn BalancerBuilder>>> = RwLock::new(Vec::new());

/// Makes `builder`'s policy known to every channel built from now on, as a crate that brings a
/// policy does (`rgrpc-xds` registers its cluster manager). A channel's own
/// [`Builder::balancer`](crate::client::Builder::balancer) takes precedence; a later global
/// one of the same name replaces an earlier one.
pub fn register(builder: Arc<dyn BalancerBuilder>) {
    if let Ok(mut global) = GLOBAL.write() {
        global.retain(|b| b.name() != builder.name());
        global.push(builder);
    }
}

/// The balancers a channel knows by name.
#[derive(Clone)]
pub(crate) struct Registry {
    builders: Vec<Arc<dyn BalancerBuilder>>,
}

impl Default for Registry {
    fn default() -> Registry {
        let mut registry = Registry {
            builders: vec![
                Arc::new(PickFirstBuilder),
                Arc::new(RoundRobinBuilder),
                Arc::new(OutlierDetectionBuilder),
            ],
        };
        for builder in GLOBAL.read().map(|g| g.clone()).unwrap_or_default() {
            registry.add(builder);
        }
        registry
    }
}

impl Registry {
    pub(crate) fn add(&mut self, builder: Arc<dyn BalancerBuilder>) {
        self.builders.retain(|b| b.name() != builder.name());
        self.builders.push(builder);
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn BalancerBuilder>> {
        self.builders.iter().find(|b| b.name() == name)
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.builders.iter().map(|b| b.name()).collect();
        f.debug_list().entries(names).finish()
    }
}
