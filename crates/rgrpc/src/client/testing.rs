//! Test doubles for load-balancing policies (feature `test-util`): a connector whose outcome per
//! address the test chooses (HTTP/2 over an in-memory pipe when it accepts), and a controller
//! that records what a balancer publishes and delivers its subchannel events and wake-ups. Meant
//! for tokio's paused clock (`#[tokio::test(start_paused = true)]`), so that backoffs and
//! timeouts of minutes pass in no real time.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use std::time::Duration;
//! use rgrpc::client::balancer::{Balancer, BalancerBuilder, ConnectivityState, RoundRobinBuilder};
//! use rgrpc::client::resolver::Endpoint;
//! use rgrpc::client::testing::{Outcome, TestController, addr};
//!
//! let mut ctl = TestController::new();
//! ctl.connector.set(&addr("10.0.0.1:1"), Outcome::AcceptAfter(Duration::from_millis(5)));
//! let mut rr = RoundRobinBuilder.build();
//! rr.resolved(&[Endpoint::from(addr("10.0.0.1:1"))], &serde_json::Value::Null, &mut ctl)
//!     .unwrap();
//! let ready = ctl
//!     .run_until(rr.as_mut(), Duration::from_secs(1), |c| {
//!         c.state() == Some(ConnectivityState::Ready)
//!     })
//!     .await;
//! assert!(ready);
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backoff::BackoffConfig;
use super::balancer::{
    Balancer, ConnectivityState, Controller, Pick, PickRequest, Picker, SubchannelOptions,
};
use super::control::Event;
use super::subchannel::{Connect, Connected, Subchannel};
use crate::error::{Error, Kind};
use crate::http2::handshake::{self, ClientSettings};
use crate::metadata::MetadataMap;
use crate::transport::connect::Address;

/// What a connection attempt to an address does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Fails at once, as a refused TCP connection.
    Refuse,
    /// Never completes.
    Hang,
    /// Connects after this long.
    AcceptAfter(Duration),
}

/// The connector: outcomes per address, a log of attempts, and the server ends of connections.
#[derive(Default)]
pub struct FakeConnector {
    outcomes: Mutex<HashMap<Address, Outcome>>,
    /// Every connection attempt, with its address and time.
    pub attempts: Mutex<Vec<(Address, Instant)>>,
    servers: Mutex<HashMap<Address, Vec<tokio::task::JoinHandle<()>>>>,
}

impl FakeConnector {
    /// What attempts to `address` do from now on (refused when never set).
    pub fn set(&self, address: &Address, outcome: Outcome) {
        self.outcomes
            .lock()
            .unwrap()
            .insert(address.clone(), outcome);
    }

    /// Closes every connection to `address` from the server side.
    pub fn drop_connections(&self, address: &Address) {
        for task in self
            .servers
            .lock()
            .unwrap()
            .remove(address)
            .unwrap_or_default()
        {
            task.abort();
        }
    }

    /// When attempts to `address` were made.
    pub fn attempts_to(&self, address: &Address) -> Vec<Instant> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| a == address)
            .map(|(_, t)| *t)
            .collect()
    }
}

impl Connect for Arc<FakeConnector> {
    fn connect(
        &self,
        address: &Address,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Connected, Error>> + Send>> {
        let this = self.clone();
        let address = address.clone();
        this.attempts
            .lock()
            .unwrap()
            .push((address.clone(), Instant::now()));
        let outcome = this
            .outcomes
            .lock()
            .unwrap()
            .get(&address)
            .copied()
            .unwrap_or(Outcome::Refuse);
        Box::pin(async move {
            match outcome {
                Outcome::Refuse => Err(Error::new(
                    Kind::Connect,
                    format!("TCP connect to {address} failed: refused"),
                )),
                Outcome::Hang => std::future::pending().await,
                Outcome::AcceptAfter(delay) => {
                    tokio::time::sleep(delay).await;
                    let (client, server) = tokio::io::duplex(64 * 1024);
                    let task = tokio::spawn(async move {
                        let Ok(mut conn) = h2::server::handshake(server).await else {
                            return;
                        };
                        while let Some(Ok(_)) = conn.accept().await {}
                    });
                    this.servers
                        .lock()
                        .unwrap()
                        .entry(address.clone())
                        .or_default()
                        .push(task);
                    let settings = ClientSettings {
                        stream_window: 65_535,
                        connection_window: 65_535,
                        max_header_list_size: 16 * 1024,
                        keepalive: None,
                    };
                    let (send, ended) = handshake::client(client, &settings, &address).await?;
                    Ok(Connected { send, ended })
                }
            }
        })
    }

    fn timeout(&self, backoff: Duration) -> Duration {
        backoff
    }
}

/// A controller that records what the balancer publishes.
pub struct TestController {
    /// The connector of the subchannels this controller creates.
    pub connector: Arc<FakeConnector>,
    events: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    /// Every state and picker the balancer published, oldest first.
    pub published: Vec<(ConnectivityState, Arc<dyn Picker>)>,
    /// How many times the balancer asked for a new resolution.
    pub resolutions: usize,
    /// The earliest wake-up the balancer asked for and has not had yet.
    pub wake: Option<Instant>,
}

impl std::fmt::Debug for FakeConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeConnector")
            .field("outcomes", &self.outcomes.lock().unwrap())
            .field("attempts", &self.attempts.lock().unwrap().len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TestController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestController")
            .field("state", &self.state())
            .field("published", &self.published.len())
            .field("resolutions", &self.resolutions)
            .field("wake", &self.wake)
            .finish_non_exhaustive()
    }
}

impl Default for TestController {
    fn default() -> TestController {
        TestController::new()
    }
}

impl TestController {
    /// A controller with a connector that refuses every address.
    pub fn new() -> TestController {
        let (events, rx) = mpsc::unbounded_channel();
        TestController {
            connector: Arc::default(),
            events,
            rx,
            published: Vec::new(),
            resolutions: 0,
            wake: None,
        }
    }

    /// The newest published state.
    pub fn state(&self) -> Option<ConnectivityState> {
        self.published.last().map(|(s, _)| *s)
    }

    /// What the newest picker answers.
    pub fn pick(&self) -> Pick {
        let (_, picker) = self.published.last().expect("a picker was published");
        picker.pick(&PickRequest::new("/p.S/M", &MetadataMap::new()))
    }

    /// The address the newest picker sends a call to, if any.
    pub fn picked_address(&self) -> Option<Address> {
        match self.pick() {
            Pick::Ready(p) => Some(p.subchannel.address().clone()),
            _ => None,
        }
    }

    /// Delivers the next subchannel event or wake-up to `balancer`; false when neither comes
    /// within `limit`.
    pub async fn step(&mut self, balancer: &mut dyn Balancer, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let wake = self.wake.filter(|w| *w <= deadline);
        tokio::select! {
            biased;
            event = self.rx.recv() => {
                if let Some(Event::Subchannel(sc, state)) = event {
                    balancer.subchannel_update(&sc, &state, self);
                }
                true
            }
            () = tokio::time::sleep_until(wake.unwrap_or(deadline)), if wake.is_some() => {
                self.wake = None;
                balancer.wake(self);
                true
            }
            () = tokio::time::sleep_until(deadline), if wake.is_none() => false,
        }
    }

    /// Steps until `done` holds, for at most `limit` of (paused) time.
    pub async fn run_until(
        &mut self,
        balancer: &mut dyn Balancer,
        limit: Duration,
        mut done: impl FnMut(&TestController) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.step(balancer, left).await {
                return done(self);
            }
        }
        true
    }
}

impl Controller for TestController {
    fn new_subchannel(&mut self, address: &Address, _: SubchannelOptions) -> Subchannel {
        Subchannel::new(
            address.clone(),
            Arc::new(self.connector.clone()),
            self.events.clone(),
            BackoffConfig::default(),
            None,
        )
    }

    fn update_picker(&mut self, state: ConnectivityState, picker: Arc<dyn Picker>) {
        self.published.push((state, picker));
    }

    fn request_resolution(&mut self) {
        self.resolutions += 1;
    }

    fn wake_at(&mut self, at: Instant) {
        if self.wake.is_none_or(|w| at < w) {
            self.wake = Some(at);
        }
    }
}

/// A TCP address from text such as `10.0.0.1:1`; panics on anything else (tests only).
pub fn addr(s: &str) -> Address {
    Address::Tcp(s.parse().unwrap())
}
