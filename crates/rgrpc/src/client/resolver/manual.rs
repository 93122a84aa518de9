//! A resolver fed by hand: a program (or a test) pushes address lists and service configs into
//! the channel at run time.

use std::fmt;
use std::sync::{Arc, Mutex};

use super::{Resolution, Resolver, ResolverBuilder, ResolverSink};
use crate::client::target::Target;
use crate::status::Status;

/// A resolver whose results you push: register it on a channel builder with
/// `.resolver(manual.clone())` and a target of its scheme (`manual:///anything` by default), then
/// call [`ManualResolver::update`] whenever the servers change. Clones share one state.
///
/// ```
/// # use rgrpc::client::resolver::{ManualResolver, Resolution};
/// let manual = ManualResolver::new();
/// manual.update(Resolution::new(["127.0.0.1:50051".parse::<std::net::SocketAddr>().unwrap()]));
/// let channel = rgrpc::Channel::builder("manual:///backends")?
///     .resolver(manual.clone())
///     .connect_lazy()?;
/// # Ok::<(), rgrpc::Error>(())
/// ```
#[derive(Clone)]
pub struct ManualResolver {
    scheme: Arc<str>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    last: Option<Result<Resolution, Status>>,
    sinks: Vec<ResolverSink>,
    resolve_now: usize,
}

impl ManualResolver {
    /// A manual resolver for the scheme `manual`.
    pub fn new() -> ManualResolver {
        ManualResolver::with_scheme("manual")
    }

    /// A manual resolver for another scheme.
    pub fn with_scheme(scheme: &str) -> ManualResolver {
        ManualResolver {
            scheme: scheme.into(),
            state: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pushes a new resolution to every channel using this resolver (and to channels that start
    /// later).
    pub fn update(&self, resolution: Resolution) {
        let mut state = self.lock();
        state.last = Some(Ok(resolution.clone()));
        state.sinks.retain(|s| s.update(resolution.clone()));
    }

    /// Pushes a resolution failure.
    pub fn error(&self, status: Status) {
        let mut state = self.lock();
        state.last = Some(Err(status.clone()));
        state.sinks.retain(|s| s.error(status.clone()));
    }

    /// How many times a channel asked this resolver to resolve again.
    pub fn resolve_now_count(&self) -> usize {
        self.lock().resolve_now
    }
}

impl Default for ManualResolver {
    fn default() -> ManualResolver {
        ManualResolver::new()
    }
}

impl fmt::Debug for ManualResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualResolver")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

struct Running(ManualResolver);

impl Resolver for Running {
    fn resolve_now(&mut self) {
        self.0.lock().resolve_now += 1;
    }
}

impl ResolverBuilder for ManualResolver {
    fn scheme(&self) -> &str {
        &self.scheme
    }

    fn build(&self, _target: &Target, sink: ResolverSink) -> Box<dyn Resolver> {
        let mut state = self.lock();
        match &state.last {
            Some(Ok(r)) => {
                sink.update(r.clone());
            }
            Some(Err(s)) => {
                sink.error(s.clone());
            }
            None => {}
        }
        state.sinks.push(sink);
        Box::new(Running(self.clone()))
    }
}
