//! The xDS client: one ADS stream per xDS server (state of the world), shared by every channel
//! of the process that names that server.
//!
//! Watchers subscribe to resources by type and name; the client keeps the set of names per type
//! in its requests, ACKs each response with its version and nonce, and NACKs a response that
//! holds an invalid resource with the reason, while the valid resources of the same response
//! are used and the invalid one's previous version stays in force (gRFC A46). When the stream
//! breaks, the client opens it again after a backoff and re-subscribes; watchers keep what they
//! have meanwhile. A listener or cluster missing from a response is deleted (unless the server
//! has `ignore_resource_deletion`); a resource that never arrives is reported as not existing
//! after 15 seconds (A27).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rgrpc::Channel;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::bootstrap::{ChannelCreds, NodeConfig, ServerConfig};
use crate::pb::envoy::config::core::v3 as core_pb;
use crate::pb::envoy::service::discovery::v3::{
    AggregatedDiscoveryServiceClient, DiscoveryRequest, DiscoveryResponse,
};
use crate::resource::{self, Resource};

/// How long a subscribed resource may take to arrive before it counts as not existing.
const DOES_NOT_EXIST_AFTER: Duration = Duration::from_secs(15);

/// What a watcher hears about one resource.
#[derive(Debug, Clone)]
pub(crate) enum Update {
    /// A new version of the resource.
    Changed(Arc<Resource>),
    /// The newest version was refused (the previous stays in force), or the server cannot be
    /// reached and nothing has arrived yet.
    Error(String),
    /// The server says the resource does not exist (or it did not arrive in time).
    DoesNotExist,
}

/// An update, with the resource it is about.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) type_url: &'static str,
    pub(crate) name: String,
    pub(crate) update: Update,
}

/// One resource in the client's cache, for dumps (what CSDS would report).
#[derive(Debug, Clone)]
pub struct CachedResource {
    /// The resource's type URL.
    pub type_url: String,
    /// Its name.
    pub name: String,
    /// The version of the response it came in.
    pub version: String,
    /// `requested`, `acked`, `nacked` or `does_not_exist`.
    pub status: &'static str,
    /// Why the newest version was refused, if it was.
    pub error: Option<String>,
    /// What we took from it, for people.
    pub summary: String,
}

enum Command {
    Watch {
        type_url: &'static str,
        name: String,
        id: u64,
        tx: mpsc::UnboundedSender<Event>,
    },
    Unwatch {
        type_url: &'static str,
        name: String,
        id: u64,
    },
    Dump(oneshot::Sender<Vec<CachedResource>>),
}

/// A handle on the shared client of one xDS server. Dropping the last handle ends its stream.
pub(crate) struct XdsClient {
    commands: mpsc::UnboundedSender<Command>,
    next_id: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for XdsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdsClient").finish_non_exhaustive()
    }
}

type Pool = Mutex<HashMap<(ServerConfig, String), Weak<XdsClient>>>;

fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Mutex::new(HashMap::new()))
}

impl XdsClient {
    /// The client of `server` for this node, started on the current runtime if none runs.
    pub(crate) fn get(server: &ServerConfig, node: &NodeConfig) -> Result<Arc<XdsClient>, String> {
        let key = (
            server.clone(),
            serde_json::to_string(&node_key(node)).unwrap_or_default(),
        );
        let mut pool = pool()
            .lock()
            .map_err(|_| "the xDS client pool is poisoned")?;
        if let Some(client) = pool.get(&key).and_then(Weak::upgrade) {
            return Ok(client);
        }
        let channel = ads_channel(server)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let client = Arc::new(XdsClient {
            commands: tx,
            next_id: std::sync::atomic::AtomicU64::new(1),
        });
        let task = Ads::new(server.clone(), node.clone(), channel);
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "xDS needs a tokio runtime".to_string())?;
        handle.spawn(task.run(rx));
        pool.retain(|_, w| w.strong_count() > 0);
        pool.insert(key, Arc::downgrade(&client));
        Ok(client)
    }

    /// Starts watching a resource; events arrive on `tx` until [`XdsClient::unwatch`].
    pub(crate) fn watch(
        &self,
        type_url: &'static str,
        name: &str,
        tx: mpsc::UnboundedSender<Event>,
    ) -> u64 {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = self.commands.send(Command::Watch {
            type_url,
            name: name.to_owned(),
            id,
            tx,
        });
        id
    }

    /// Stops a watch.
    pub(crate) fn unwatch(&self, type_url: &'static str, name: &str, id: u64) {
        let _ = self.commands.send(Command::Unwatch {
            type_url,
            name: name.to_owned(),
            id,
        });
    }

    /// What the client holds now.
    pub(crate) async fn dump(&self) -> Vec<CachedResource> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Dump(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

fn node_key(node: &NodeConfig) -> serde_json::Value {
    serde_json::json!([node.id, node.cluster, node.locality, node.metadata])
}

fn ads_channel(server: &ServerConfig) -> Result<Channel, String> {
    let builder = Channel::builder(&server.uri)
        .map_err(|e| format!("xds_servers: server_uri {:?}: {e}", server.uri))?;
    let builder = match &server.creds {
        ChannelCreds::Insecure => builder,
        #[allow(unused_variables)]
        ChannelCreds::Tls {
            ca_certificate_file,
            certificate_file,
            private_key_file,
        } => {
            #[cfg(feature = "tls")]
            {
                let read = |f: &str| {
                    std::fs::read(f).map_err(|e| format!("xds_servers: channel_creds: {f}: {e}"))
                };
                let mut tls = rgrpc::ClientTlsConfig::new();
                if let Some(ca) = ca_certificate_file {
                    tls = tls.ca_certificate(
                        rgrpc::Certificate::from_pem(read(ca)?).map_err(|e| e.to_string())?,
                    );
                }
                if let (Some(c), Some(k)) = (certificate_file, private_key_file) {
                    tls = tls.identity(
                        rgrpc::Identity::from_pem(read(c)?, read(k)?).map_err(|e| e.to_string())?,
                    );
                }
                builder.tls_config(tls).map_err(|e| e.to_string())?
            }
            #[cfg(not(feature = "tls"))]
            return Err("xds_servers: channel_creds tls needs rgrpc-xds's `tls` feature".into());
        }
    };
    builder
        .connect_lazy()
        .map_err(|e| format!("xds_servers: server_uri {:?}: {e}", server.uri))
}

/// One subscribed resource.
#[derive(Default)]
struct Entry {
    watchers: Vec<(u64, mpsc::UnboundedSender<Event>)>,
    cached: Option<Arc<Resource>>,
    version: String,
    error: Option<String>,
    does_not_exist: bool,
    /// When it was asked for on the current stream, while it has not arrived.
    requested: Option<Instant>,
}

/// The state of one resource type.
#[derive(Default)]
struct TypeState {
    version: String,
    nonce: String,
    names: BTreeMap<String, Entry>,
}

/// The ADS stream's task.
struct Ads {
    server: ServerConfig,
    node: NodeConfig,
    channel: Channel,
    types: BTreeMap<&'static str, TypeState>,
}

/// Why a stream ended.
enum Ended {
    /// Every handle is gone.
    Closed,
    /// The stream failed (after receiving something, or not).
    Failed { received: bool, why: String },
}

const TYPES: [&str; 4] = [
    resource::LISTENER,
    resource::ROUTE,
    resource::CLUSTER,
    resource::ENDPOINTS,
];

impl Ads {
    fn new(server: ServerConfig, node: NodeConfig, channel: Channel) -> Ads {
        Ads {
            server,
            node,
            channel,
            types: BTreeMap::new(),
        }
    }

    fn node_proto(&self) -> core_pb::Node {
        let n = &self.node;
        core_pb::Node {
            id: n.id.clone(),
            cluster: n.cluster.clone(),
            metadata: Some(struct_of(&n.metadata)),
            locality: n.locality.as_ref().map(|(r, z, s)| core_pb::Locality {
                region: r.clone(),
                zone: z.clone(),
                sub_zone: s.clone(),
            }),
            user_agent_name: "rgrpc".into(),
            user_agent_version_type: Some(core_pb::node::UserAgentVersionType::UserAgentVersion(
                env!("CARGO_PKG_VERSION").into(),
            )),
            client_features: vec![
                "envoy.lb.does_not_support_overprovisioning".into(),
                "xds.config.resource-in-sotw".into(),
            ],
        }
    }

    fn request(&self, type_url: &str, error: Option<String>) -> DiscoveryRequest {
        let state = self.types.get(type_url);
        DiscoveryRequest {
            version_info: state.map(|s| s.version.clone()).unwrap_or_default(),
            node: None,
            resource_names: state
                .map(|s| s.names.keys().cloned().collect())
                .unwrap_or_default(),
            type_url: type_url.to_owned(),
            response_nonce: state.map(|s| s.nonce.clone()).unwrap_or_default(),
            error_detail: error.map(|message| crate::pb::google::rpc::Status {
                code: rgrpc::Code::InvalidArgument as i32,
                message,
                details: Vec::new(),
            }),
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.stream(&mut commands).await {
                Ended::Closed => return,
                Ended::Failed { received, why } => {
                    tracing::debug!(server = %self.server.uri, %why, "ADS stream ended");
                    if received {
                        backoff = Duration::from_secs(1);
                    }
                    self.tell_unreached(&why);
                }
            }
            // Backoff with jitter (doc/connection-backoff.md), serving commands meanwhile.
            let jitter =
                0.8 + 0.4 * (Instant::now().elapsed().subsec_nanos() % 1000) as f64 / 1000.0;
            let until = Instant::now() + backoff.mul_f64(jitter);
            backoff = (backoff * 8 / 5).min(Duration::from_secs(120));
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    cmd = commands.recv() => match cmd {
                        None => return,
                        Some(cmd) => { self.command(cmd); }
                    },
                }
            }
        }
    }

    /// Tells watchers that have nothing yet that the server cannot be reached.
    fn tell_unreached(&mut self, why: &str) {
        for (type_url, state) in &mut self.types {
            for (name, entry) in &mut state.names {
                entry.requested = None;
                if entry.cached.is_none() && !entry.does_not_exist {
                    let update = Update::Error(format!("xDS server {}: {why}", self.server.uri));
                    send(&entry.watchers, type_url, name, update);
                }
            }
        }
    }

    /// Applies a command; returns the type whose subscription changed.
    fn command(&mut self, cmd: Command) -> Option<&'static str> {
        match cmd {
            Command::Watch {
                type_url,
                name,
                id,
                tx,
            } => {
                let state = self.types.entry(type_url).or_default();
                let new = !state.names.contains_key(&name);
                let entry = state.names.entry(name.clone()).or_default();
                if let Some(cached) = &entry.cached {
                    let _ = tx.send(Event {
                        type_url,
                        name: name.clone(),
                        update: Update::Changed(cached.clone()),
                    });
                } else if entry.does_not_exist {
                    let _ = tx.send(Event {
                        type_url,
                        name: name.clone(),
                        update: Update::DoesNotExist,
                    });
                }
                entry.watchers.push((id, tx));
                new.then_some(type_url)
            }
            Command::Unwatch { type_url, name, id } => {
                let state = self.types.get_mut(type_url)?;
                let entry = state.names.get_mut(&name)?;
                entry.watchers.retain(|(i, _)| *i != id);
                if entry.watchers.is_empty() {
                    state.names.remove(&name);
                    return Some(type_url);
                }
                None
            }
            Command::Dump(tx) => {
                let _ = tx.send(self.dump());
                None
            }
        }
    }

    fn dump(&self) -> Vec<CachedResource> {
        let mut out = Vec::new();
        for (type_url, state) in &self.types {
            for (name, e) in &state.names {
                let status = if e.does_not_exist {
                    "does_not_exist"
                } else if e.error.is_some() {
                    "nacked"
                } else if e.cached.is_some() {
                    "acked"
                } else {
                    "requested"
                };
                out.push(CachedResource {
                    type_url: (*type_url).to_owned(),
                    name: name.clone(),
                    version: e.version.clone(),
                    status,
                    error: e.error.clone(),
                    summary: e
                        .cached
                        .as_ref()
                        .map(|r| format!("{r:?}"))
                        .unwrap_or_default(),
                });
            }
        }
        out
    }

    async fn stream(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> Ended {
        let (tx, rx) = mpsc::unbounded_channel::<DiscoveryRequest>();
        let outgoing =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
            );
        let mut first = true;
        let mut send_request = |ads: &mut Ads, type_url: &str, error: Option<String>| {
            let mut req = ads.request(type_url, error);
            if std::mem::take(&mut first) {
                req.node = Some(ads.node_proto());
            }
            let now = Instant::now();
            if let Some(state) = ads.types.get_mut(type_url) {
                for e in state.names.values_mut() {
                    if e.cached.is_none() && !e.does_not_exist && e.requested.is_none() {
                        e.requested = Some(now);
                    }
                }
            }
            let _ = tx.send(req);
        };
        // Resubscribe to everything: the last accepted versions, no nonce (a new stream).
        for state in self.types.values_mut() {
            state.nonce.clear();
        }
        for type_url in TYPES {
            if self
                .types
                .get(type_url)
                .is_some_and(|s| !s.names.is_empty())
            {
                send_request(self, type_url, None);
            }
        }
        let client = AggregatedDiscoveryServiceClient::new(self.channel.clone());
        let call = client.stream_aggregated_resources(rgrpc::client::Request::new(outgoing));
        tokio::pin!(call);
        // Until the response headers come, commands still change subscriptions.
        let mut responses = loop {
            tokio::select! {
                r = &mut call => match r {
                    Ok(r) => break r.into_inner(),
                    Err(status) => return Ended::Failed { received: false, why: status.to_string() },
                },
                cmd = commands.recv() => match cmd {
                    None => return Ended::Closed,
                    Some(cmd) => if let Some(t) = self.command(cmd) { send_request(self, t, None); },
                },
            }
        };
        let mut received = false;
        // go-control-plane, like other snapshot servers, answers a NACK at once with the same
        // version: the NACK of a version refused before waits, doubling from 1 s up to 30 s,
        // so that a bad snapshot costs both sides a few messages, not a busy loop.
        let mut nacked: HashMap<&'static str, (String, Duration)> = HashMap::new();
        let mut held: Option<(Instant, &'static str, String)> = None;
        loop {
            let timer = self.next_timeout();
            let held_at = held.as_ref().map(|h| h.0);
            tokio::select! {
                msg = responses.message() => match msg {
                    Ok(Some(resp)) => {
                        received = true;
                        let version = resp.version_info.clone();
                        match self.response(resp) {
                            Some((type_url, Some(error))) => {
                                let delay = match nacked.get(type_url) {
                                    Some((v, d)) if *v == version => Some((*d * 2).min(Duration::from_secs(30))),
                                    _ => None,
                                };
                                match delay {
                                    Some(d) => {
                                        nacked.insert(type_url, (version, d));
                                        held = Some((Instant::now() + d, type_url, error));
                                    }
                                    None => {
                                        nacked.insert(type_url, (version, Duration::from_millis(500)));
                                        send_request(self, type_url, Some(error));
                                    }
                                }
                            }
                            Some((type_url, None)) => {
                                nacked.remove(type_url);
                                if held.as_ref().is_some_and(|h| h.1 == type_url) {
                                    held = None;
                                }
                                send_request(self, type_url, None);
                            }
                            None => {}
                        }
                    }
                    Ok(None) => return Ended::Failed { received, why: "the server ended the stream".into() },
                    Err(status) => return Ended::Failed { received, why: status.to_string() },
                },
                cmd = commands.recv() => match cmd {
                    None => return Ended::Closed,
                    Some(cmd) => if let Some(t) = self.command(cmd) {
                        if held.as_ref().is_some_and(|h| h.1 == t) {
                            held = None;
                        }
                        send_request(self, t, None);
                    },
                },
                () = tokio::time::sleep_until(held_at.unwrap_or_else(Instant::now)), if held_at.is_some() => {
                    if let Some((_, type_url, error)) = held.take() {
                        send_request(self, type_url, Some(error));
                    }
                }
                () = tokio::time::sleep_until(timer.unwrap_or_else(Instant::now)), if timer.is_some() => {
                    self.expire();
                }
            }
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.types
            .values()
            .flat_map(|s| s.names.values())
            .filter_map(|e| e.requested)
            .min()
            .map(|at| at + DOES_NOT_EXIST_AFTER)
    }

    fn expire(&mut self) {
        let now = Instant::now();
        for (type_url, state) in &mut self.types {
            for (name, e) in &mut state.names {
                if e.requested
                    .is_some_and(|at| at + DOES_NOT_EXIST_AFTER <= now)
                {
                    e.requested = None;
                    e.does_not_exist = true;
                    send(&e.watchers, type_url, name, Update::DoesNotExist);
                }
            }
        }
    }

    /// Handles one response; returns the ACK or NACK to send.
    fn response(&mut self, resp: DiscoveryResponse) -> Option<(&'static str, Option<String>)> {
        let type_url = *TYPES.iter().find(|t| **t == resp.type_url)?;
        let mut errors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut accepted = Vec::new();
        for (i, any) in resp.resources.iter().enumerate() {
            if any.type_url != type_url {
                errors.push(format!(
                    "resources[{i}]: type {:?} in a {type_url} response",
                    any.type_url
                ));
                continue;
            }
            match resource::decode(type_url, &any.value) {
                (Some(name), result) => {
                    seen.insert(name.clone());
                    accepted.push((name, result));
                }
                (None, Err(e)) => errors.push(format!("resources[{i}]: {e}")),
                (None, Ok(_)) => {}
            }
        }
        let state = self.types.entry(type_url).or_default();
        state.nonce = resp.nonce.clone();
        for (name, result) in accepted {
            let Some(entry) = state.names.get_mut(&name) else {
                continue; // not asked for
            };
            entry.requested = None;
            match result {
                Ok(r) => {
                    let r = Arc::new(r);
                    entry.error = None;
                    entry.does_not_exist = false;
                    entry.version = resp.version_info.clone();
                    if entry.cached.as_deref() != Some(&*r) {
                        entry.cached = Some(r.clone());
                        send(&entry.watchers, type_url, &name, Update::Changed(r));
                    }
                }
                Err(e) => {
                    let e = e.split_whitespace().collect::<Vec<_>>().join(" ");
                    tracing::warn!(type_url, %e, "xDS resource refused");
                    entry.error = Some(e.clone());
                    send(&entry.watchers, type_url, &name, Update::Error(e.clone()));
                    errors.push(e);
                }
            }
        }
        // State of the world: a listener or cluster left out no longer exists.
        if type_url == resource::LISTENER || type_url == resource::CLUSTER {
            for (name, entry) in &mut state.names {
                if seen.contains(name) || entry.does_not_exist {
                    continue;
                }
                if entry.cached.is_some() && self.server.ignore_resource_deletion {
                    tracing::warn!(
                        type_url,
                        name,
                        "resource deleted by the server; keeping it (ignore_resource_deletion)"
                    );
                    continue;
                }
                entry.requested = None;
                entry.cached = None;
                entry.does_not_exist = true;
                send(&entry.watchers, type_url, name, Update::DoesNotExist);
            }
        }
        if errors.is_empty() {
            state.version = resp.version_info;
            Some((type_url, None))
        } else {
            Some((type_url, Some(errors.join("; "))))
        }
    }
}

fn send(
    watchers: &[(u64, mpsc::UnboundedSender<Event>)],
    type_url: &'static str,
    name: &str,
    update: Update,
) {
    for (_, tx) in watchers {
        let _ = tx.send(Event {
            type_url,
            name: name.to_owned(),
            update: update.clone(),
        });
    }
}

/// A JSON object as a `google.protobuf.Struct`.
fn struct_of(map: &serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), value_of(v))).collect(),
    }
}

fn value_of(v: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(value_of).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(struct_of(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// What every live client of the pool holds.
pub(crate) async fn dump_all() -> Vec<CachedResource> {
    let clients: Vec<Arc<XdsClient>> = match pool().lock() {
        Ok(p) => p.values().filter_map(Weak::upgrade).collect(),
        Err(_) => Vec::new(),
    };
    let mut out = Vec::new();
    for c in clients {
        out.extend(c.dump().await);
    }
    out
}
