//! Name resolution end to end: the DNS resolver against a DNS server this test runs on loopback
//! (answers built with hickory-proto), the static address-list targets, Unix sockets, and the
//! manual resolver.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use rgrpc::client::Request;
use rgrpc::client::resolver::{DnsOptions, ManualResolver, Resolution};
use rgrpc::{Channel, Code};
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};
use tokio::net::UdpSocket;

/// Answers by name and record type.
type Table = Arc<Mutex<HashMap<(String, RecordType), Vec<RData>>>>;

/// A DNS server on loopback that answers A, AAAA and TXT queries from a table the test edits.
struct DnsServer {
    addr: SocketAddr,
    table: Table,
    queries: Arc<Mutex<Vec<(String, RecordType)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    async fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let table: Table = Arc::default();
        let queries: Arc<Mutex<Vec<(String, RecordType)>>> = Arc::default();
        let (t, q) = (table.clone(), queries.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
                reply.metadata.message_type = MessageType::Response;
                reply.metadata.recursion_available = true;
                reply.metadata.authoritative = true;
                for question in &query.queries {
                    let name = question
                        .name()
                        .to_ascii()
                        .trim_end_matches('.')
                        .to_lowercase();
                    let kind = question.query_type();
                    q.lock().unwrap().push((name.clone(), kind));
                    reply.add_query(question.clone());
                    let answers = t.lock().unwrap().get(&(name.clone(), kind)).cloned();
                    match answers {
                        Some(list) => {
                            for rdata in list {
                                reply.add_answer(Record::from_rdata(
                                    question.name().clone(),
                                    0,
                                    rdata,
                                ));
                            }
                        }
                        None if t.lock().unwrap().keys().any(|(n, _)| *n == name) => {}
                        None => reply.metadata.response_code = ResponseCode::NXDomain,
                    }
                }
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        DnsServer {
            addr,
            table,
            queries,
            task,
        }
    }

    fn set_a(&self, name: &str, ips: &[&str]) {
        let records = ips
            .iter()
            .map(|ip| match ip.parse::<IpAddr>().unwrap() {
                IpAddr::V4(v4) => RData::A(A(v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
            })
            .collect::<Vec<_>>();
        let mut table = self.table.lock().unwrap();
        table.insert(
            (name.into(), RecordType::A),
            records
                .iter()
                .filter(|r| matches!(r, RData::A(_)))
                .cloned()
                .collect(),
        );
        table.insert(
            (name.into(), RecordType::AAAA),
            records
                .iter()
                .filter(|r| matches!(r, RData::AAAA(_)))
                .cloned()
                .collect(),
        );
    }

    fn set_txt(&self, name: &str, text: &str) {
        self.table.lock().unwrap().insert(
            (name.into(), RecordType::TXT),
            vec![RData::TXT(TXT::new(vec![text.to_owned()]))],
        );
    }

    fn count(&self, kind: RecordType) -> usize {
        self.queries
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, k)| *k == kind)
            .count()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn named(id: &str) -> EchoService {
    EchoService {
        server_id: Some(id.to_owned()),
        ..EchoService::default()
    }
}

fn req(message: &str) -> Request<EchoRequest> {
    let mut r = Request::new(EchoRequest {
        message: message.into(),
        ..Default::default()
    });
    r.set_timeout(Duration::from_secs(10));
    r.set_wait_for_ready(true);
    r
}

async fn served_by(client: &EchoClient, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in 0..n {
        let response = client.unary(req(&i.to_string())).await.unwrap();
        let id = response.metadata().get("x-server-id").unwrap().to_owned();
        *counts.entry(id).or_default() += 1;
    }
    counts
}

/// Two servers on the same free port, one on 127.0.0.1 and one on 127.0.0.2.
async fn two_servers() -> (TestServer, TestServer, u16) {
    for _ in 0..20 {
        let one = TestServer::start_on(echo_server(named("one")), "127.0.0.1:0").await;
        let port = one.addr.port();
        match std::net::TcpListener::bind(("127.0.0.2", port)) {
            Ok(probe) => {
                drop(probe);
                let two =
                    TestServer::start_on(echo_server(named("two")), &format!("127.0.0.2:{port}"))
                        .await;
                return (one, two, port);
            }
            Err(_) => one.stop().await,
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

#[tokio::test]
async fn dns_answers_are_followed_after_re_resolution() {
    let dns = DnsServer::start().await;
    let (one, two, port) = two_servers().await;
    dns.set_a("svc.test", &["127.0.0.1"]);
    let target = format!("dns://{}/svc.test:{port}", dns.addr);
    let channel = Channel::builder(&target)
        .unwrap()
        .dns_options(DnsOptions::new().min_interval(Duration::from_millis(100)))
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    assert_eq!(served_by(&client, 5).await.get("one"), Some(&5));
    assert_eq!(
        dns.count(RecordType::TXT),
        0,
        "TXT service configs are off by default"
    );

    // The name moves to the second server; the first goes away. Losing the connection makes
    // the channel resolve again, and the next calls reach the new address.
    dns.set_a("svc.test", &["127.0.0.2"]);
    one.stop().await;
    assert_eq!(served_by(&client, 5).await.get("two"), Some(&5));
    assert!(dns.count(RecordType::A) >= 2);
    two.stop().await;
}

#[tokio::test]
async fn txt_service_config_when_enabled() {
    let dns = DnsServer::start().await;
    let (one, two, port) = two_servers().await;
    dns.set_a("svc.test", &["127.0.0.1", "127.0.0.2"]);
    dns.set_txt(
        "_grpc_config.svc.test",
        r#"grpc_config=[{"clientLanguage":["go"],"serviceConfig":{}},{"serviceConfig":{"loadBalancingConfig":[{"round_robin":{}}]}}]"#,
    );
    let target = format!("dns://{}/svc.test:{port}", dns.addr);
    // Off: pick_first, every call to the first address.
    let plain = EchoClient::new(Channel::builder(&target).unwrap().connect_lazy().unwrap());
    assert_eq!(served_by(&plain, 6).await.len(), 1);
    // On: the record's round_robin spreads calls over both.
    let channel = Channel::builder(&target)
        .unwrap()
        .dns_options(DnsOptions::new().service_config(true))
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    // Both subchannels connect independently; give the second a moment to join.
    for _ in 0..50 {
        if served_by(&client, 10).await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Both connected: a fresh batch alternates.
    let counts = served_by(&client, 10).await;
    assert_eq!(counts.get("one"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("two"), Some(&5), "{counts:?}");
    assert!(dns.count(RecordType::TXT) >= 1);
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn a_name_that_does_not_resolve_fails_with_the_reason() {
    let dns = DnsServer::start().await;
    let target = format!("dns://{}/nowhere.test:1", dns.addr);
    let err = Channel::connect(&target).await.unwrap_err();
    assert!(err.is_resolve(), "{err}");
    assert!(err.to_string().contains("nowhere.test"), "{err}");
    let client = EchoClient::new(Channel::builder(&target).unwrap().connect_lazy().unwrap());
    let status = client.unary(EchoRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("nowhere.test"), "{status}");
}

#[tokio::test]
async fn address_list_targets_spread_with_round_robin() {
    let (one, two, port) = two_servers().await;
    let target = format!("ipv4:127.0.0.1:{port},127.0.0.2:{port}");
    let channel = Channel::builder(&target)
        .unwrap()
        .default_service_config(r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel.clone());
    for _ in 0..50 {
        if served_by(&client, 10).await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Both connected: a fresh batch alternates.
    let counts = served_by(&client, 10).await;
    assert_eq!(counts.get("one"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("two"), Some(&5), "{counts:?}");
    assert_eq!(
        channel.state(false),
        rgrpc::client::ConnectivityState::Ready
    );
    // pick_first (the default) sticks to the first.
    let first = EchoClient::new(Channel::connect(&target).await.unwrap());
    assert_eq!(served_by(&first, 6).await.get("one"), Some(&6));
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn manual_resolver_moves_the_channel() {
    let (one, two, port) = two_servers().await;
    let manual = ManualResolver::new();
    manual.update(Resolution::new([SocketAddr::from(([127, 0, 0, 1], port))]));
    let channel = Channel::builder("manual:///backends")
        .unwrap()
        .resolver(manual.clone())
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    assert_eq!(served_by(&client, 3).await.get("one"), Some(&3));
    manual.update(Resolution::new([SocketAddr::from(([127, 0, 0, 2], port))]));
    let mut seen = HashMap::new();
    for _ in 0..100 {
        seen = served_by(&client, 1).await;
        if seen.contains_key("two") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen.contains_key("two"), "{seen:?}");
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn unix_socket_targets() {
    let dir = std::env::temp_dir().join(format!("rgrpc-unix-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let path = path.clone();
        async move {
            echo_server(named("unix"))
                .serve_unix(&path, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        }
    });
    for _ in 0..100 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for target in [
        format!("unix:{}", path.display()),
        format!("unix://{}", path.display()),
    ] {
        let client = EchoClient::new(Channel::connect(&target).await.unwrap());
        assert_eq!(
            served_by(&client, 2).await.get("unix"),
            Some(&2),
            "{target}"
        );
    }
    let _ = stop_tx.send(());
    server.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unreachable_addresses_are_all_named() {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, pb) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    drop((a, b));
    let err = Channel::connect(&format!("ipv4:127.0.0.1:{pa},127.0.0.1:{pb}"))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{pa}")), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{pb}")), "{text}");
    assert!(text.contains("TCP connect"), "{text}");
    let source = std::error::Error::source(&err).expect("the primary failure is the source");
    assert!(source.downcast_ref::<rgrpc::Error>().is_some());
}

#[tokio::test]
async fn a_resolver_config_that_is_invalid_keeps_the_last_valid_one() {
    let (one, two, port) = two_servers().await;
    let addrs = [
        SocketAddr::from(([127, 0, 0, 1], port)),
        SocketAddr::from(([127, 0, 0, 2], port)),
    ];
    let round_robin = r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#;
    let manual = ManualResolver::new();
    manual.update(Resolution::new(addrs).with_service_config(round_robin));
    let channel = Channel::builder("manual:///svc")
        .unwrap()
        .resolver(manual.clone())
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    let spread = |client: EchoClient| async move {
        let mut counts = HashMap::new();
        for _ in 0..50 {
            counts = served_by(&client, 10).await;
            if counts.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        counts
    };
    assert_eq!(
        spread(client.clone()).await.len(),
        2,
        "round_robin from the resolver"
    );
    // gRFC A21: an invalid config from the resolver is ignored while a valid one was seen.
    manual.update(Resolution::new(addrs).with_service_config(r#"{"loadBalancingConfig":7}"#));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let counts = served_by(&client, 10).await;
    assert_eq!(counts.get("one"), Some(&5), "still round_robin: {counts:?}");

    // A channel whose first config is invalid fails its calls, naming the problem.
    let bad = ManualResolver::with_scheme("bad");
    bad.update(Resolution::new(addrs).with_service_config(r#"{"methodConfig":[{}]}"#));
    let channel = Channel::builder("bad:///svc")
        .unwrap()
        .resolver(bad)
        .connect_lazy()
        .unwrap();
    let status = EchoClient::new(channel)
        .unary(EchoRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("methodConfig[0].name"),
        "{status}"
    );
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn a_new_config_from_the_resolver_switches_the_policy() {
    let (one, two, port) = two_servers().await;
    let addrs = [
        SocketAddr::from(([127, 0, 0, 1], port)),
        SocketAddr::from(([127, 0, 0, 2], port)),
    ];
    let manual = ManualResolver::new();
    manual.update(Resolution::new(addrs));
    let channel = Channel::builder("manual:///svc")
        .unwrap()
        .resolver(manual.clone())
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    assert_eq!(
        served_by(&client, 10).await.get("one"),
        Some(&10),
        "pick_first"
    );
    manual.update(
        Resolution::new(addrs)
            .with_service_config(r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#),
    );
    for _ in 0..100 {
        if served_by(&client, 10).await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Both connected: a fresh batch alternates.
    let counts = served_by(&client, 10).await;
    assert_eq!(counts.get("one"), Some(&5), "round_robin now: {counts:?}");
    one.stop().await;
    two.stop().await;
}
