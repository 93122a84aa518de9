//! The DNS resolver (`dns:` targets, `host:port`, `http(s)://`): A and AAAA records through
//! `hickory-resolver` on tokio, and optionally the `_grpc_config.<host>` TXT record (gRFC A2).
//!
//! It resolves once when started, then again only when the channel asks (a connection lost, a
//! GOAWAY, every address failed), and never more often than the minimum interval (30 s by
//! default). A failed lookup is retried with the connection backoff of
//! `doc/connection-backoff.md`. It does not poll DNS on a timer: servers that come and go are
//! found when connections to them change.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Resolution, Resolver, ResolverBuilder, ResolverSink};
use crate::client::backoff::{Backoff, BackoffConfig};
use crate::client::target::{Target, split_host_port};
use crate::status::Status;

/// Settings of the DNS resolver, from `Channel::builder(..)?.dns_options(..)`.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    min_interval: Duration,
    service_config: bool,
}

impl Default for DnsOptions {
    fn default() -> DnsOptions {
        DnsOptions {
            min_interval: Duration::from_secs(30),
            service_config: false,
        }
    }
}

impl DnsOptions {
    /// The defaults: at most one resolution per 30 s, TXT service configs off.
    pub fn new() -> DnsOptions {
        DnsOptions::default()
    }

    /// The shortest time between two resolutions (default 30 s, as grpc-go).
    pub fn min_interval(mut self, interval: Duration) -> DnsOptions {
        self.min_interval = interval;
        self
    }

    /// Looks up the service config in the `_grpc_config.<host>` TXT record (gRFC A2). Off by
    /// default, as in grpc-java and C-core: whoever controls DNS then controls retries and
    /// balancing.
    pub fn service_config(mut self, yes: bool) -> DnsOptions {
        self.service_config = yes;
        self
    }
}

type LookupFuture<T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send>>;

/// The DNS queries the resolver makes; a trait so tests can answer without a DNS server.
pub(crate) trait Lookup: Send + Sync + 'static {
    fn ips(&self, host: &str) -> LookupFuture<Vec<IpAddr>>;
    fn txt(&self, name: &str) -> LookupFuture<Vec<String>>;
}

/// Lookups through hickory, against the system's name servers or the target's authority.
struct Hickory(hickory_resolver::TokioResolver);

impl Hickory {
    fn new(authority: &str) -> Result<Hickory, String> {
        use hickory_resolver::config::{
            LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
        };
        use hickory_resolver::net::runtime::TokioRuntimeProvider;
        let provider = TokioRuntimeProvider::default();
        let mut builder = if authority.is_empty() {
            hickory_resolver::TokioResolver::builder(provider)
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?
        } else {
            let (host, port) = split_host_port(authority)
                .map_err(|why| format!("DNS server {authority:?}: {why}"))?;
            let ip: IpAddr = host
                .parse()
                .map_err(|_| format!("DNS server {authority:?} must be an IP address"))?;
            let mut server = NameServerConfig::udp_and_tcp(ip);
            for c in &mut server.connections {
                c.port = port.unwrap_or(53);
            }
            let mut b = hickory_resolver::TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                provider,
            );
            *b.options_mut() = ResolverOpts::default();
            b
        };
        let options = builder.options_mut();
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // The channel decides when to look again; hickory's cache would answer from memory.
        options.cache_size = 0;
        builder
            .build()
            .map(Hickory)
            .map_err(|e| format!("cannot start the DNS resolver: {e}"))
    }
}

impl Lookup for Hickory {
    fn ips(&self, host: &str) -> LookupFuture<Vec<IpAddr>> {
        let resolver = self.0.clone();
        let host = host.to_owned();
        Box::pin(async move {
            let found = resolver
                .lookup_ip(host.as_str())
                .await
                .map_err(|e| format!("DNS lookup of {host:?} failed: {e}"))?;
            Ok(found.iter().collect())
        })
    }

    fn txt(&self, name: &str) -> LookupFuture<Vec<String>> {
        let resolver = self.0.clone();
        let name = name.to_owned();
        Box::pin(async move {
            let found = resolver
                .txt_lookup(name.as_str())
                .await
                .map_err(|e| format!("TXT lookup of {name:?} failed: {e}"))?;
            let mut records = Vec::new();
            for record in found.answers() {
                if let hickory_resolver::proto::rr::RData::TXT(txt) = &record.data {
                    // One record may be split in several strings; they are one text.
                    let text: Vec<u8> = txt
                        .txt_data
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect();
                    records.push(String::from_utf8_lossy(&text).into_owned());
                }
            }
            Ok(records)
        })
    }
}

/// Builds DNS resolvers.
#[derive(Debug, Clone)]
pub(crate) struct DnsResolverBuilder {
    options: DnsOptions,
}

impl DnsResolverBuilder {
    pub(crate) fn new(options: DnsOptions) -> DnsResolverBuilder {
        DnsResolverBuilder { options }
    }
}

impl ResolverBuilder for DnsResolverBuilder {
    fn scheme(&self) -> &str {
        "dns"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Box<dyn Resolver> {
        // An IP address needs no DNS server (nor the system's DNS configuration).
        if let Ok((host, port)) = split_host_port(target.endpoint())
            && let Ok(ip) = host.parse::<IpAddr>()
        {
            sink.update(Resolution::new([SocketAddr::new(ip, port.unwrap_or(443))]));
            return Box::new(super::Fixed);
        }
        let lookup: Result<Arc<dyn Lookup>, String> =
            Hickory::new(target.authority()).map(|h| Arc::new(h) as Arc<dyn Lookup>);
        start(target, sink, self.options.clone(), lookup)
    }
}

/// Starts the resolving task.
pub(crate) fn start(
    target: &Target,
    sink: ResolverSink,
    options: DnsOptions,
    lookup: Result<Arc<dyn Lookup>, String>,
) -> Box<dyn Resolver> {
    let now = Arc::new(Notify::new());
    let task = tokio::spawn(run(
        target.endpoint().to_owned(),
        sink,
        options,
        lookup,
        now.clone(),
    ));
    Box::new(DnsResolver { now, task })
}

struct DnsResolver {
    now: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Resolver for DnsResolver {
    fn resolve_now(&mut self) {
        self.now.notify_one();
    }
}

impl Drop for DnsResolver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DnsResolver")
    }
}

async fn run(
    endpoint: String,
    sink: ResolverSink,
    options: DnsOptions,
    lookup: Result<Arc<dyn Lookup>, String>,
    now: Arc<Notify>,
) {
    let lookup = match lookup {
        Ok(l) => l,
        Err(why) => {
            sink.error(Status::unavailable(why));
            return;
        }
    };
    let (host, port) = match split_host_port(&endpoint) {
        // naming.md: a dns target without a port means 443.
        Ok((host, port)) => (host, port.unwrap_or(443)),
        Err(why) => {
            sink.error(Status::unavailable(format!("{endpoint:?}: {why}")));
            return;
        }
    };
    let mut backoff = Backoff::new(BackoffConfig::default());
    loop {
        let started = Instant::now();
        match resolve(&*lookup, &host, port, options.service_config).await {
            Ok(resolution) => {
                backoff.reset();
                if !sink.update(resolution) {
                    return;
                }
                // Wait to be asked, and for the minimum interval.
                now.notified().await;
                tokio::time::sleep_until(started + options.min_interval).await;
            }
            Err(why) => {
                if !sink.error(Status::unavailable(why)) {
                    return;
                }
                // A request to resolve again does not cut the backoff short.
                tokio::time::sleep_until(started + backoff.next_delay()).await;
            }
        }
    }
}

/// One resolution: the addresses of `host`, and its service config if asked for.
async fn resolve(
    lookup: &dyn Lookup,
    host: &str,
    port: u16,
    service_config: bool,
) -> Result<Resolution, String> {
    let ips = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => lookup.ips(host).await?,
    };
    if ips.is_empty() {
        return Err(format!("DNS has no A or AAAA record for {host:?}"));
    }
    let mut resolution = Resolution::new(ips.into_iter().map(|ip| SocketAddr::new(ip, port)));
    if service_config && host.parse::<IpAddr>().is_err() {
        // A missing record is no error: most names have none.
        if let Ok(records) = lookup.txt(&format!("_grpc_config.{host}")).await
            && let Some(config) = choose_config(&records, &client_hostname(), &mut rand_percent)
        {
            resolution = resolution.with_service_config(config);
        }
    }
    Ok(resolution)
}

fn client_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

fn rand_percent() -> u32 {
    crate::client::rng::Rng::from_entropy().below(100) as u32
}

/// The service config the TXT records choose for this client (gRFC A2): the `grpc_config=` record
/// holds a JSON list of choices; the first whose `clientLanguage`, `percentage` and
/// `clientHostname` all match gives its `serviceConfig`. An unparseable record gives the text
/// `"!invalid: reason"`, which the channel reports as an invalid config.
pub(crate) fn choose_config(
    records: &[String],
    hostname: &str,
    roll: &mut dyn FnMut() -> u32,
) -> Option<String> {
    let text = records
        .iter()
        .find_map(|r| r.strip_prefix("grpc_config="))?;
    let invalid = |why: String| Some(format!("!invalid: {why}"));
    let choices: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return invalid(format!("the grpc_config TXT record is not JSON: {e}")),
    };
    let Some(choices) = choices.as_array() else {
        return invalid("the grpc_config TXT record is not a JSON list of choices".into());
    };
    for (i, choice) in choices.iter().enumerate() {
        let Some(choice) = choice.as_object() else {
            return invalid(format!("grpc_config choice {i} is not an object"));
        };
        for key in choice.keys() {
            if !matches!(
                key.as_str(),
                "clientLanguage" | "percentage" | "clientHostname" | "serviceConfig"
            ) {
                return invalid(format!(
                    "grpc_config choice {i} has an unknown field {key:?}"
                ));
            }
        }
        let listed = |field: &str, want: &str| -> Result<bool, String> {
            match choice.get(field) {
                None => Ok(true),
                Some(serde_json::Value::Array(list)) => {
                    let mut found = false;
                    for v in list {
                        let s = v
                            .as_str()
                            .ok_or(format!("choice {i}: {field} holds a non-string"))?;
                        found |= s.eq_ignore_ascii_case(want);
                    }
                    Ok(found)
                }
                Some(_) => Err(format!("choice {i}: {field} is not a list")),
            }
        };
        let language = match listed("clientLanguage", "rust") {
            Ok(v) => v,
            Err(why) => return invalid(why),
        };
        let host = match listed("clientHostname", hostname) {
            Ok(v) => v,
            Err(why) => return invalid(why),
        };
        let percentage = match choice.get("percentage") {
            None => true,
            Some(p) => match p.as_u64() {
                Some(p) if p <= 100 => roll() < p as u32,
                _ => return invalid(format!("choice {i}: percentage must be 0 to 100")),
            },
        };
        if language && host && percentage {
            return match choice.get("serviceConfig") {
                Some(config) if config.is_object() => Some(config.to_string()),
                _ => invalid(format!("choice {i} has no serviceConfig object")),
            };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::client::control::Event;

    /// Answers from a table the test changes, counting queries.
    struct Table {
        ips: Mutex<Result<Vec<IpAddr>, String>>,
        queries: AtomicUsize,
    }

    impl Lookup for Arc<Table> {
        fn ips(&self, _: &str) -> LookupFuture<Vec<IpAddr>> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            let answer = self.ips.lock().unwrap().clone();
            Box::pin(async move { answer })
        }
        fn txt(&self, _: &str) -> LookupFuture<Vec<String>> {
            Box::pin(async { Ok(vec![]) })
        }
    }

    fn addresses(event: Event) -> Result<Vec<String>, String> {
        match event {
            Event::Resolved(Ok(r)) => Ok(r
                .endpoints()
                .iter()
                .map(|e| e.addresses()[0].to_string())
                .collect()),
            Event::Resolved(Err(s)) => Err(s.message().to_owned()),
            _ => panic!("not a resolution"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn re_resolves_when_asked_but_not_before_the_minimum_interval() {
        let table = Arc::new(Table {
            ips: Mutex::new(Ok(vec!["10.0.0.1".parse().unwrap()])),
            queries: AtomicUsize::new(0),
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let target = Target::parse("dns:///svc.test:8080").unwrap();
        let options = DnsOptions::new().min_interval(Duration::from_secs(30));
        let mut resolver = start(
            &target,
            ResolverSink::new(tx),
            options,
            Ok(Arc::new(table.clone())),
        );
        assert_eq!(
            addresses(rx.recv().await.unwrap()).unwrap(),
            ["10.0.0.1:8080"]
        );

        *table.ips.lock().unwrap() = Ok(vec!["10.0.0.2".parse().unwrap()]);
        let asked = Instant::now();
        resolver.resolve_now();
        assert_eq!(
            addresses(rx.recv().await.unwrap()).unwrap(),
            ["10.0.0.2:8080"]
        );
        assert!(
            asked.elapsed() >= Duration::from_secs(29),
            "{:?}",
            asked.elapsed()
        );

        // Not asked: no lookups, however long we wait.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(table.queries.load(Ordering::SeqCst), 2);
        assert!(rx.try_recv().is_err());
        // Asked long after the last one: at once.
        let asked = Instant::now();
        resolver.resolve_now();
        assert!(addresses(rx.recv().await.unwrap()).is_ok());
        assert!(asked.elapsed() < Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_reported_and_retried_with_backoff() {
        let table = Arc::new(Table {
            ips: Mutex::new(Err("SERVFAIL".into())),
            queries: AtomicUsize::new(0),
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let target = Target::parse("dns:///svc.test:1").unwrap();
        let options = DnsOptions::new().min_interval(Duration::from_millis(1));
        let _resolver = start(
            &target,
            ResolverSink::new(tx),
            options,
            Ok(Arc::new(table.clone())),
        );
        let t0 = Instant::now();
        assert!(
            addresses(rx.recv().await.unwrap())
                .unwrap_err()
                .contains("SERVFAIL")
        );
        assert!(addresses(rx.recv().await.unwrap()).is_err());
        let first = t0.elapsed();
        // connection-backoff: the first retry comes after 1 s ± 20%.
        assert!(
            first >= Duration::from_millis(800) && first <= Duration::from_millis(1200),
            "{first:?}"
        );
        *table.ips.lock().unwrap() = Ok(vec!["::1".parse().unwrap()]);
        assert_eq!(addresses(rx.recv().await.unwrap()).unwrap(), ["[::1]:1"]);
    }

    #[test]
    fn txt_choices() {
        let rec = |s: &str| vec!["other=1".to_owned(), format!("grpc_config={s}")];
        let mut never = || 99;
        let mut always = || 0;
        let sc = r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#;
        let pick = |s: &str, roll: &mut dyn FnMut() -> u32| choose_config(&rec(s), "web-1", roll);
        assert_eq!(
            pick(&format!(r#"[{{"serviceConfig":{sc}}}]"#), &mut never).as_deref(),
            Some(sc)
        );
        let go_only = format!(r#"[{{"clientLanguage":["go"],"serviceConfig":{sc}}}]"#);
        assert_eq!(pick(&go_only, &mut never), None);
        let rust = format!(r#"[{{"clientLanguage":["go","RUST"],"serviceConfig":{sc}}}]"#);
        assert!(pick(&rust, &mut never).is_some());
        let half = format!(r#"[{{"percentage":50,"serviceConfig":{sc}}}]"#);
        assert_eq!(pick(&half, &mut never), None);
        assert!(pick(&half, &mut always).is_some());
        let host = format!(
            r#"[{{"clientHostname":["web-2"],"serviceConfig":{{}}}},{{"clientHostname":["web-1"],"serviceConfig":{sc}}}]"#
        );
        assert_eq!(pick(&host, &mut never).as_deref(), Some(sc));
        assert!(pick("{", &mut never).unwrap().starts_with("!invalid"));
        assert!(
            pick(r#"[{"percentage":101,"serviceConfig":{}}]"#, &mut never)
                .unwrap()
                .contains("percentage")
        );
        assert!(
            pick(r#"[{"bogus":1,"serviceConfig":{}}]"#, &mut never)
                .unwrap()
                .contains("bogus")
        );
        assert_eq!(choose_config(&["x=1".into()], "h", &mut never), None);
    }
}
