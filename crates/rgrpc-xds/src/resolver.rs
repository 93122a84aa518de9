//! The `xds` resolver: follows the chain of gRFC A27 for one target, listener → route
//! configuration → clusters → endpoints, and publishes, whenever the whole chain is known, the
//! routes as a config selector and the clusters' endpoints as the config of the
//! `rgrpc_xds_clusters` balancer (the resolver holds every dependency, as in gRFC A74).
//!
//! While a changed chain is incomplete (a new cluster's endpoints have not arrived), the last
//! complete one stays in force, so that traffic never sees a half-known config.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rgrpc::Status;
use rgrpc::client::Target;
use rgrpc::client::resolver::{
    ConfigSelector, Endpoint, Resolution, Resolver, ResolverBuilder, ResolverSink, Selection,
};
use rgrpc::metadata::MetadataMap;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::balancer;
use crate::bootstrap::{self, Bootstrap};
use crate::client::{Event, Update, XdsClient};
use crate::resource::{self, Action, Resource, RouteSource};
use crate::routing::Router;

/// Builds `xds:` resolvers, reading the bootstrap from the environment for each channel.
#[derive(Debug, Clone, Default)]
pub struct XdsResolverBuilder {
    bootstrap: Option<Arc<Bootstrap>>,
}

impl XdsResolverBuilder {
    /// A builder that reads the bootstrap from `GRPC_XDS_BOOTSTRAP` or
    /// `GRPC_XDS_BOOTSTRAP_CONFIG` when a channel starts.
    pub fn new() -> XdsResolverBuilder {
        XdsResolverBuilder::default()
    }

    /// A builder with this bootstrap, whatever the environment says.
    pub fn with_bootstrap(bootstrap: Bootstrap) -> XdsResolverBuilder {
        XdsResolverBuilder {
            bootstrap: Some(Arc::new(bootstrap)),
        }
    }
}

/// Fails every call with one status.
struct FailAll(Status);

impl ConfigSelector for FailAll {
    fn select(&self, _: &str, _: &MetadataMap) -> Result<Selection, Status> {
        Err(self.0.clone())
    }
}

struct Running {
    _stop: oneshot::Sender<()>,
}

impl Resolver for Running {}

struct Nothing;
impl Resolver for Nothing {}

impl ResolverBuilder for XdsResolverBuilder {
    fn scheme(&self) -> &str {
        "xds"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Box<dyn Resolver> {
        let started = (|| {
            let bootstrap = match &self.bootstrap {
                Some(b) => b.clone(),
                None => Arc::new(bootstrap::from_env()?),
            };
            let name = target.endpoint().trim_start_matches('/').to_owned();
            if name.is_empty() {
                return Err("the xds target names no service (xds:///name)".to_string());
            }
            let listener = bootstrap.listener_name(target.authority(), &name)?;
            let server = bootstrap
                .servers_for(&listener)?
                .first()
                .ok_or("xds_servers: empty")?
                .clone();
            let client = XdsClient::get(&server, &bootstrap.node)?;
            Ok((name, listener, client))
        })();
        match started {
            Ok((authority, listener, client)) => {
                let (stop_tx, stop_rx) = oneshot::channel();
                tokio::spawn(run(authority, listener, client, sink, stop_rx));
                Box::new(Running { _stop: stop_tx })
            }
            Err(why) => {
                sink.error(Status::unavailable(format!("xDS: {why}")));
                Box::new(Nothing)
            }
        }
    }
}

/// What is known of one watched resource.
#[derive(Clone, Default)]
enum Known {
    #[default]
    Waiting,
    Have(Arc<Resource>),
    Missing,
    Failed(String),
}

struct ClusterDeps {
    cluster: Known,
    eds: Option<(String, Known)>,
}

struct Deps {
    authority: String,
    listener_name: String,
    client: Arc<XdsClient>,
    tx: mpsc::UnboundedSender<Event>,
    watches: HashMap<(&'static str, String), u64>,
    known: HashMap<(&'static str, String), Known>,
    rds: Option<String>,
    clusters: BTreeMap<String, ClusterDeps>,
    published: Option<String>,
    seed: u64,
}

async fn run(
    authority: String,
    listener: String,
    client: Arc<XdsClient>,
    sink: ResolverSink,
    mut stop: oneshot::Receiver<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut deps = Deps {
        authority,
        listener_name: listener.clone(),
        client,
        tx,
        watches: HashMap::new(),
        known: HashMap::new(),
        rds: None,
        clusters: BTreeMap::new(),
        published: None,
        seed,
    };
    deps.watch(resource::LISTENER, &listener);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            event = rx.recv() => {
                let Some(event) = event else { break };
                deps.apply(event);
                // Take in everything that is already queued before publishing once.
                while let Ok(event) = rx.try_recv() {
                    deps.apply(event);
                }
                if !deps.update(&sink) {
                    break;
                }
            }
        }
    }
    let watches: Vec<_> = deps.watches.drain().collect();
    for ((type_url, name), id) in watches {
        deps.client.unwatch(type_url, &name, id);
    }
}

impl Deps {
    fn watch(&mut self, type_url: &'static str, name: &str) {
        let key = (type_url, name.to_owned());
        if !self.watches.contains_key(&key) {
            let id = self.client.watch(type_url, name, self.tx.clone());
            self.watches.insert(key.clone(), id);
            self.known.insert(key, Known::Waiting);
        }
    }

    fn unwatch(&mut self, type_url: &'static str, name: &str) {
        let key = (type_url, name.to_owned());
        if let Some(id) = self.watches.remove(&key) {
            self.client.unwatch(type_url, name, id);
        }
        self.known.remove(&key);
    }

    fn apply(&mut self, event: Event) {
        let key = (event.type_url, event.name);
        let Some(known) = self.known.get_mut(&key) else {
            return;
        };
        *known = match (event.update, &*known) {
            (Update::Changed(r), _) => Known::Have(r),
            // A refused update leaves the version in force.
            (Update::Error(e), Known::Have(_)) => {
                tracing::warn!(name = %key.1, error = %e, "xDS update refused; keeping the previous version");
                return;
            }
            (Update::Error(e), _) => Known::Failed(e),
            (Update::DoesNotExist, _) => Known::Missing,
        };
    }

    fn get(&self, type_url: &'static str, name: &str) -> Known {
        self.known
            .get(&(type_url, name.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn fail(&mut self, sink: &ResolverSink, why: String) -> bool {
        let json = json!({"loadBalancingConfig": [{balancer::NAME: {"clusters": {}}}]}).to_string();
        let key = format!("fail:{why}");
        if self.published.as_deref() == Some(&key) {
            return true;
        }
        self.published = Some(key);
        sink.update(
            Resolution::new(Vec::<Endpoint>::new())
                .with_service_config(json)
                .with_config_selector(Arc::new(FailAll(Status::unavailable(why)))),
        )
    }

    /// Follows the chain as far as it is known; publishes when it is complete. Returns false
    /// once the channel is gone.
    fn update(&mut self, sink: &ResolverSink) -> bool {
        let listener_name = self.listener_name.clone();
        let listener = match self.get(resource::LISTENER, &listener_name) {
            Known::Waiting => return !sink.is_closed(),
            Known::Failed(e) => {
                return sink.error(Status::unavailable(format!(
                    "xDS listener {listener_name:?}: {e}"
                )));
            }
            Known::Missing => {
                self.set_rds(None);
                self.set_clusters(BTreeSet::new());
                return self.fail(
                    sink,
                    format!("xDS listener {listener_name:?} does not exist"),
                );
            }
            Known::Have(r) => match &*r {
                Resource::Listener(l) => l.clone(),
                _ => return true,
            },
        };
        let routes = match &listener.routes {
            RouteSource::Inline(rc) => {
                self.set_rds(None);
                rc.clone()
            }
            RouteSource::Rds(name) => {
                self.set_rds(Some(name.clone()));
                match self.get(resource::ROUTE, name) {
                    Known::Waiting => return true,
                    Known::Failed(e) => {
                        return sink.error(Status::unavailable(format!(
                            "xDS route configuration {name:?}: {e}"
                        )));
                    }
                    Known::Missing => {
                        self.set_clusters(BTreeSet::new());
                        return self.fail(
                            sink,
                            format!("xDS route configuration {name:?} does not exist"),
                        );
                    }
                    Known::Have(r) => match &*r {
                        Resource::Route(rc) => rc.clone(),
                        _ => return true,
                    },
                }
            }
        };
        let Some(vh) = routes.virtual_host(&self.authority).cloned() else {
            self.set_clusters(BTreeSet::new());
            return self.fail(
                sink,
                format!("no xDS virtual host matches {:?}", self.authority),
            );
        };
        let wanted: BTreeSet<String> = vh
            .routes
            .iter()
            .filter_map(|r| match &r.action {
                Action::Forward(f) => Some(f.clusters.iter().map(|(n, _)| n.clone())),
                Action::NonForwarding => None,
            })
            .flatten()
            .collect();
        self.set_clusters(wanted);
        // The endpoints of each cluster, once its resource is known.
        let names: Vec<String> = self.clusters.keys().cloned().collect();
        for name in &names {
            let known = self.get(resource::CLUSTER, name);
            let eds = match &known {
                Known::Have(r) => match &**r {
                    Resource::Cluster(c) => Some(c.eds_name.clone()),
                    _ => None,
                },
                _ => None,
            };
            let old = self
                .clusters
                .get(name)
                .and_then(|c| c.eds.as_ref().map(|e| e.0.clone()));
            if old != eds {
                if let Some(old) = &old
                    && !self
                        .clusters
                        .iter()
                        .any(|(n, c)| n != name && c.eds.as_ref().is_some_and(|e| &e.0 == old))
                {
                    self.unwatch(resource::ENDPOINTS, old);
                }
                if let Some(new) = &eds {
                    self.watch(resource::ENDPOINTS, new);
                }
            }
            let eds_known = eds
                .as_ref()
                .map(|e| (e.clone(), self.get(resource::ENDPOINTS, e)));
            if let Some(c) = self.clusters.get_mut(name) {
                c.cluster = known;
                c.eds = eds_known;
            }
        }
        // Complete?
        let mut config = serde_json::Map::new();
        for (name, deps) in &self.clusters {
            let entry = match (&deps.cluster, &deps.eds) {
                (Known::Waiting, _) | (Known::Have(_), Some((_, Known::Waiting))) => return true,
                (Known::Missing, _) => json!({"error": "the cluster does not exist"}),
                (Known::Failed(e), _) => json!({"error": e}),
                (Known::Have(r), Some((eds_name, eds))) => {
                    let Resource::Cluster(c) = &**r else {
                        return true;
                    };
                    match eds {
                        Known::Have(e) => {
                            let Resource::Endpoints(e) = &**e else {
                                return true;
                            };
                            cluster_json(c.outlier_detection.as_ref(), e)
                        }
                        Known::Missing => {
                            json!({"error": format!("its endpoints {eds_name:?} do not exist")})
                        }
                        Known::Failed(why) => {
                            json!({"error": format!("its endpoints {eds_name:?}: {why}")})
                        }
                        Known::Waiting => return true,
                    }
                }
                (Known::Have(_), None) => return true,
            };
            config.insert(name.clone(), entry);
        }
        let json = json!({"loadBalancingConfig": [{balancer::NAME: {"clusters": config}}]});
        let text = json.to_string();
        let key = format!("{text}\n{vh:?}\n{:?}", listener.max_stream_duration);
        if self.published.as_deref() == Some(&key) {
            return true;
        }
        self.published = Some(key);
        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let router = Router::new(&vh, listener.max_stream_duration, self.seed);
        sink.update(
            Resolution::new(Vec::<Endpoint>::new())
                .with_service_config(text)
                .with_config_selector(Arc::new(router)),
        )
    }

    fn set_rds(&mut self, name: Option<String>) {
        if self.rds == name {
            return;
        }
        if let Some(old) = self.rds.take() {
            self.unwatch(resource::ROUTE, &old);
        }
        if let Some(new) = &name {
            self.watch(resource::ROUTE, new);
        }
        self.rds = name;
    }

    fn set_clusters(&mut self, wanted: BTreeSet<String>) {
        let stale: Vec<String> = self
            .clusters
            .keys()
            .filter(|n| !wanted.contains(*n))
            .cloned()
            .collect();
        for name in stale {
            if let Some(c) = self.clusters.remove(&name) {
                self.unwatch(resource::CLUSTER, &name);
                if let Some((eds, _)) = c.eds
                    && !self
                        .clusters
                        .values()
                        .any(|o| o.eds.as_ref().is_some_and(|e| e.0 == eds))
                {
                    self.unwatch(resource::ENDPOINTS, &eds);
                }
            }
        }
        for name in wanted {
            if !self.clusters.contains_key(&name) {
                self.watch(resource::CLUSTER, &name);
                self.clusters.insert(
                    name,
                    ClusterDeps {
                        cluster: Known::Waiting,
                        eds: None,
                    },
                );
            }
        }
    }
}

/// A cluster's entry in the balancer config.
fn cluster_json(outlier: Option<&Value>, e: &resource::Endpoints) -> Value {
    let priorities: Vec<Value> = e
        .priorities
        .iter()
        .map(|localities| {
            Value::Array(
                localities
                    .iter()
                    .map(|l| {
                        json!({
                            "name": l.name,
                            "weight": l.weight,
                            "endpoints": l.endpoints.iter().map(|addrs| {
                                addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>()
                            }).collect::<Vec<_>>(),
                        })
                    })
                    .collect(),
            )
        })
        .collect();
    let mut c = json!({
        "priorities": priorities,
        "drops": e.drops.iter().map(|(c, n)| json!([c, n])).collect::<Vec<_>>(),
    });
    if let Some(o) = outlier {
        c["outlierDetection"] = o.clone();
    }
    c
}
