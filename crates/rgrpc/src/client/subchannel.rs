//! A subchannel: one address and the connection to it, with the connectivity states of grpc/grpc
//! `doc/connectivity-semantics-and-api.md` (IDLE, CONNECTING, READY, TRANSIENT_FAILURE,
//! SHUTDOWN) and the reconnection backoff of `doc/connection-backoff.md`.
//!
//! A subchannel connects only when its balancer asks ([`Subchannel::connect`]). After a failed
//! attempt it reports TRANSIENT_FAILURE, waits out its backoff, and goes back to IDLE; a lost
//! connection takes it from READY to IDLE. It never reconnects by itself: that is the balancer's
//! choice. Calls reach its connection without a lock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use h2::client::SendRequest;
use tokio::sync::{mpsc, oneshot};

use super::backoff::{Backoff, BackoffConfig};
use super::control::Event;
use super::health::{Health, HealthCheck};
use crate::error::{Error, Kind};
use crate::transport::connect::Address;

/// The connectivity state of a channel or a subchannel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectivityState {
    /// No connection, and none being made; a call (or `connect`) starts one.
    Idle,
    /// A connection is being made.
    Connecting,
    /// Connected: calls go out now.
    Ready,
    /// The last attempt failed; the next waits for the backoff.
    TransientFailure,
    /// Closed for good.
    Shutdown,
}

impl fmt::Display for ConnectivityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectivityState::Idle => "IDLE",
            ConnectivityState::Connecting => "CONNECTING",
            ConnectivityState::Ready => "READY",
            ConnectivityState::TransientFailure => "TRANSIENT_FAILURE",
            ConnectivityState::Shutdown => "SHUTDOWN",
        })
    }
}

/// A subchannel's new state, with the error that caused a TRANSIENT_FAILURE.
#[derive(Debug, Clone)]
pub struct SubchannelState {
    state: ConnectivityState,
    error: Option<Error>,
}

impl SubchannelState {
    pub(crate) fn new(state: ConnectivityState, error: Option<Error>) -> SubchannelState {
        SubchannelState { state, error }
    }

    /// The state.
    pub fn state(&self) -> ConnectivityState {
        self.state
    }

    /// Why the last connection attempt failed (TRANSIENT_FAILURE only).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<Connected, Error>> + Send>>;

/// A connection just made: its request sender, and a receiver that completes when it ends.
pub(crate) struct Connected {
    pub(crate) send: SendRequest<Bytes>,
    pub(crate) ended: oneshot::Receiver<String>,
}

/// Opens connections to addresses: sockets, TLS and the HTTP/2 handshake in production, an
/// in-memory pipe in tests.
pub(crate) trait Connect: Send + Sync + 'static {
    fn connect(&self, address: &Address) -> ConnectFuture;
    /// How long one attempt may take, given connection-backoff.md's choice.
    fn timeout(&self, backoff: Duration) -> Duration;
}

/// The ready connection calls use.
#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) send: SendRequest<Bytes>,
    /// Which connection of its subchannel this is.
    connection: u64,
}

/// One address a balancer connects to. Cheap to clone; clones are the same subchannel.
#[derive(Clone)]
pub struct Subchannel {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    address: Address,
    connector: Arc<dyn Connect>,
    events: mpsc::UnboundedSender<Event>,
    /// The connection calls may use: set while READY (and healthy), empty otherwise.
    transport: ArcSwapOption<Transport>,
    health: Option<Arc<HealthCheck>>,
    state: Mutex<State>,
}

struct State {
    state: ConnectivityState,
    backoff: Backoff,
    /// Counts state changes, so that a timer or attempt from an earlier state is ignored.
    generation: u64,
    /// The live connection, READY or not (while its health is unknown or bad).
    connection: Option<Arc<Transport>>,
    connections: u64,
    task: Option<tokio::task::JoinHandle<()>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How often a connection is checked for a GOAWAY from the server.
const GOAWAY_PROBE: Duration = Duration::from_millis(500);

impl Subchannel {
    pub(crate) fn new(
        address: Address,
        connector: Arc<dyn Connect>,
        events: mpsc::UnboundedSender<Event>,
        backoff: BackoffConfig,
        health: Option<Arc<HealthCheck>>,
    ) -> Subchannel {
        Subchannel {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                address,
                connector,
                events,
                transport: ArcSwapOption::empty(),
                health,
                state: Mutex::new(State {
                    state: ConnectivityState::Idle,
                    backoff: Backoff::new(backoff),
                    generation: 0,
                    connection: None,
                    connections: 0,
                    task: None,
                }),
            }),
        }
    }

    /// The address.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// A number that tells subchannels apart, unique in the process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The current state.
    pub fn state(&self) -> ConnectivityState {
        self.inner.lock().state
    }

    /// Starts connecting if IDLE; does nothing in any other state.
    pub fn connect(&self) {
        let mut state = self.inner.lock();
        if state.state != ConnectivityState::Idle {
            return;
        }
        let timeout = self
            .inner
            .connector
            .timeout(state.backoff.connect_timeout());
        Inner::set_arc(&self.inner, &mut state, ConnectivityState::Connecting, None);
        let generation = state.generation;
        let weak = Arc::downgrade(&self.inner);
        let attempt = self.inner.connector.connect(&self.inner.address);
        let address = self.inner.address.clone();
        state.task = Some(tokio::spawn(async move {
            let result = match tokio::time::timeout(timeout, attempt).await {
                Ok(result) => result,
                Err(_) => Err(Error::new(
                    Kind::Timeout,
                    format!("connecting to {address} timed out after {timeout:?}"),
                )),
            };
            let Some(inner) = weak.upgrade() else { return };
            Inner::attempted(&inner, generation, result);
        }));
    }

    /// Closes the subchannel for good: an attempt in progress is abandoned, and a connection is
    /// closed once the calls on it finish.
    pub fn shutdown(&self) {
        let mut state = self.inner.lock();
        if state.state == ConnectivityState::Shutdown {
            return;
        }
        // An attempt, a backoff or a connection's watcher is abandoned. The connection itself
        // is not cut: it closes once the calls already on it finish, since nothing can start
        // new ones.
        if let Some(task) = state.task.take() {
            task.abort();
        }
        state.state = ConnectivityState::Shutdown;
        state.generation += 1;
        state.connection = None;
        self.inner.transport.store(None);
    }

    /// The connection, if READY. Lock-free: this is on every call's path.
    pub(crate) fn transport(&self) -> Option<Arc<Transport>> {
        self.inner.transport.load_full()
    }

    /// A call found `transport` unusable (the server sent GOAWAY): the subchannel goes IDLE at
    /// once instead of when the connection finally closes.
    pub(crate) fn transport_failed(&self, transport: &Transport) {
        let mut state = self.inner.lock();
        if state.connection.as_ref().map(|c| c.connection) == Some(transport.connection) {
            Inner::lost(&self.inner, &mut state, "the server is going away (GOAWAY)");
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state whole, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn attempted(inner: &Arc<Inner>, generation: u64, result: Result<Connected, Error>) {
        let mut state = inner.lock();
        if state.generation != generation || state.state != ConnectivityState::Connecting {
            return;
        }
        match result {
            Ok(connected) => {
                state.backoff.reset();
                state.connections += 1;
                let id = state.connections;
                let transport = Arc::new(Transport {
                    send: connected.send,
                    connection: id,
                });
                state.connection = Some(transport.clone());
                let health = inner.health.clone();
                if health.is_none() {
                    // The connection is in place before anyone hears of READY: a picker built
                    // on the event must find it.
                    inner.transport.store(Some(transport.clone()));
                    Inner::set_arc(inner, &mut state, ConnectivityState::Ready, None);
                }
                // With health checking, the subchannel stays CONNECTING until the server says
                // SERVING (gRFC A17).
                let weak = Arc::downgrade(inner);
                let mut ended = connected.ended;
                let send = transport.send.clone();
                let probe = Arc::downgrade(&transport);
                state.task = Some(tokio::spawn(async move {
                    let watching = async {
                        match &health {
                            Some(check) => {
                                let weak = weak.clone();
                                super::health::watch(send, check, move |h| {
                                    if let Some(inner) = weak.upgrade() {
                                        Inner::health(&inner, id, h);
                                    }
                                })
                                .await;
                            }
                            None => {
                                drop(send);
                                std::future::pending().await
                            }
                        }
                    };
                    tokio::pin!(watching);
                    // h2 tells of a GOAWAY only when a new stream is refused: look twice a
                    // second, so that the subchannel moves on while long calls finish here.
                    let mut look = tokio::time::interval(GOAWAY_PROBE);
                    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let why = loop {
                        tokio::select! {
                            why = &mut ended => {
                                break why.unwrap_or_else(|_| "the connection closed".to_owned());
                            }
                            () = &mut watching => return,
                            _ = look.tick() => {
                                let Some(transport) = probe.upgrade() else { return };
                                let mut send = transport.send.clone();
                                drop(transport);
                                let ready = std::future::poll_fn(|cx| {
                                    std::task::Poll::Ready(send.poll_ready(cx))
                                });
                                if let std::task::Poll::Ready(Err(err)) = ready.await {
                                    break format!("the server is going away: {err}");
                                }
                            }
                        }
                    };
                    let Some(inner) = weak.upgrade() else { return };
                    let mut state = inner.lock();
                    if state.connection.as_ref().map(|c| c.connection) == Some(id) {
                        Inner::lost(&inner, &mut state, &why);
                    }
                }));
            }
            Err(error) => {
                tracing::debug!(address = %inner.address, %error, "connection attempt failed");
                let delay = state.backoff.next_delay();
                Inner::set_arc(
                    inner,
                    &mut state,
                    ConnectivityState::TransientFailure,
                    Some(error),
                );
                let generation = state.generation;
                let weak = Arc::downgrade(inner);
                state.task = Some(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let Some(inner) = weak.upgrade() else { return };
                    let mut state = inner.lock();
                    if state.generation == generation {
                        Inner::set_arc(&inner, &mut state, ConnectivityState::Idle, None);
                    }
                }));
            }
        }
    }

    /// The connection is gone or going: back to IDLE.
    fn lost(inner: &Arc<Inner>, state: &mut State, why: &str) {
        tracing::debug!(address = %inner.address, reason = %why, "connection lost");
        inner.transport.store(None);
        state.connection = None;
        state.task = None;
        Inner::set_arc(inner, state, ConnectivityState::Idle, None);
    }

    /// A health answer for connection `id`: SERVING makes it READY, anything else takes it out
    /// of the picker as TRANSIENT_FAILURE while the connection stays open.
    fn health(inner: &Arc<Inner>, id: u64, health: Health) {
        let mut state = inner.lock();
        let Some(connection) = state.connection.clone().filter(|c| c.connection == id) else {
            return;
        };
        match health {
            Health::Serving if state.state != ConnectivityState::Ready => {
                inner.transport.store(Some(connection));
                Inner::set_arc(inner, &mut state, ConnectivityState::Ready, None);
            }
            Health::NotServing(why) if state.state != ConnectivityState::TransientFailure => {
                inner.transport.store(None);
                let error = Error::new(Kind::Unhealthy, format!("{}: {why}", inner.address));
                Inner::set_arc(
                    inner,
                    &mut state,
                    ConnectivityState::TransientFailure,
                    Some(error),
                );
            }
            _ => {}
        }
    }

    /// Moves to `to` and tells the channel.
    fn set_arc(inner: &Arc<Inner>, state: &mut State, to: ConnectivityState, error: Option<Error>) {
        state.state = to;
        state.generation += 1;
        let _ = inner.events.send(Event::Subchannel(
            Subchannel {
                inner: inner.clone(),
            },
            SubchannelState::new(to, error),
        ));
    }
}

impl PartialEq for Subchannel {
    fn eq(&self, other: &Subchannel) -> bool {
        self.inner.id == other.inner.id
    }
}

impl Eq for Subchannel {}

impl std::hash::Hash for Subchannel {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.inner.id.hash(h);
    }
}

impl fmt::Debug for Subchannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subchannel")
            .field("id", &self.inner.id)
            .field("address", &self.inner.address)
            .field("state", &self.state())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::{FakeConnector, Outcome, addr};
    use tokio::time::Instant;

    async fn next_state(rx: &mut mpsc::UnboundedReceiver<Event>) -> SubchannelState {
        match rx.recv().await {
            Some(Event::Subchannel(_, state)) => state,
            _ => panic!("expected a subchannel event"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_per_connection_backoff_and_reset_on_ready() {
        let connector = Arc::new(FakeConnector::default());
        let a = addr("10.0.0.1:1");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sc = Subchannel::new(
            a.clone(),
            Arc::new(connector.clone()),
            tx,
            BackoffConfig::default(),
            None,
        );
        assert_eq!(sc.state(), ConnectivityState::Idle);
        let mut base = 1.0f64;
        for _ in 0..6 {
            sc.connect();
            assert_eq!(
                next_state(&mut rx).await.state(),
                ConnectivityState::Connecting
            );
            let failed = next_state(&mut rx).await;
            assert_eq!(failed.state(), ConnectivityState::TransientFailure);
            assert!(failed.error().unwrap().is_connect());
            // connect() in TRANSIENT_FAILURE does nothing: the backoff is not cut short.
            sc.connect();
            let t = Instant::now();
            assert_eq!(next_state(&mut rx).await.state(), ConnectivityState::Idle);
            let waited = t.elapsed().as_secs_f64();
            assert!(
                waited >= base * 0.8 - 1e-3 && waited <= base * 1.2 + 1e-3,
                "{waited} vs {base}"
            );
            base = (base * 1.6).min(120.0);
        }
        assert_eq!(connector.attempts_to(&a).len(), 6);
        // A success resets the backoff: the next failure waits about 1 s again.
        connector.set(&a, Outcome::AcceptAfter(Duration::from_millis(1)));
        sc.connect();
        assert_eq!(
            next_state(&mut rx).await.state(),
            ConnectivityState::Connecting
        );
        assert_eq!(next_state(&mut rx).await.state(), ConnectivityState::Ready);
        assert!(sc.transport().is_some());
        connector.set(&a, Outcome::Refuse);
        connector.drop_connections(&a);
        assert_eq!(next_state(&mut rx).await.state(), ConnectivityState::Idle);
        assert!(sc.transport().is_none());
        sc.connect();
        next_state(&mut rx).await;
        next_state(&mut rx).await;
        let t = Instant::now();
        assert_eq!(next_state(&mut rx).await.state(), ConnectivityState::Idle);
        assert!(
            t.elapsed() <= Duration::from_millis(1200),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_hangs_times_out() {
        let connector = Arc::new(FakeConnector::default());
        let a = addr("10.0.0.1:1");
        connector.set(&a, Outcome::Hang);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sc = Subchannel::new(a, Arc::new(connector), tx, BackoffConfig::default(), None);
        let t = Instant::now();
        sc.connect();
        next_state(&mut rx).await;
        let failed = next_state(&mut rx).await;
        assert!(failed.error().unwrap().is_timeout());
        // connection-backoff.md: MIN_CONNECT_TIMEOUT is 20 s.
        assert_eq!(t.elapsed(), Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_is_final() {
        let connector = Arc::new(FakeConnector::default());
        let a = addr("10.0.0.1:1");
        connector.set(&a, Outcome::AcceptAfter(Duration::from_millis(5)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sc = Subchannel::new(a, Arc::new(connector), tx, BackoffConfig::default(), None);
        sc.connect();
        next_state(&mut rx).await;
        sc.shutdown();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(sc.state(), ConnectivityState::Shutdown);
        assert!(sc.transport().is_none());
        sc.connect();
        assert_eq!(sc.state(), ConnectivityState::Shutdown);
        assert!(rx.try_recv().is_err(), "no event after shutdown");
    }
}
