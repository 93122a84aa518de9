//! TLS, mutual TLS, call credentials and interceptors, over loopback with certificates generated
//! for each run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rgrpc::client::Request;
use rgrpc::server::{CallInfo, Interceptor};
use rgrpc::{Certificate, Channel, ClientTlsConfig, Code, Identity, ServerTlsConfig, Status};
use rgrpc_tests::certs::{TestPki, generate};
use rgrpc_tests::echo::{EchoClient, EchoRequest};
use rgrpc_tests::{EchoService, TestServer, echo_server};

fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

fn server_tls(pki: &TestPki) -> ServerTlsConfig {
    ServerTlsConfig::new(Identity::from_pem(&pki.server, &pki.server_key).unwrap())
}

fn client_tls(ca: &str) -> ClientTlsConfig {
    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca).unwrap())
}

async fn tls_client(server: &TestServer, tls: ClientTlsConfig) -> Result<EchoClient, rgrpc::Error> {
    let url = format!("https://localhost:{}", server.addr.port());
    let channel = Channel::builder(&url)?.tls_config(tls)?.connect().await?;
    Ok(EchoClient::new(channel))
}

#[tokio::test]
async fn tls_round_trip_and_wrong_ca() {
    let pki = generate().unwrap();
    let server =
        TestServer::start(echo_server(EchoService::default()).tls_config(server_tls(&pki))).await;
    let client = tls_client(&server, client_tls(&pki.ca)).await.unwrap();
    let response = client.unary(req("secret")).await.unwrap();
    assert_eq!(response.get_ref().message, "secret");
    assert!(response.metadata().get("x-peer-certs").is_none());

    let err = tls_client(&server, client_tls(&pki.other_ca))
        .await
        .unwrap_err();
    assert!(err.is_handshake(), "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    // A lazy channel reports the same as a call status.
    let url = format!("https://localhost:{}", server.addr.port());
    let lazy = Channel::builder(&url)
        .unwrap()
        .tls_config(client_tls(&pki.other_ca))
        .unwrap()
        .connect_lazy()
        .unwrap();
    let status = EchoClient::new(lazy).unary(req("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("TLS handshake"), "{status}");

    // A plaintext client cannot talk to a TLS server.
    let plain = rgrpc::Channel::builder(&server.url())
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert!(
        plain.is_err()
            || EchoClient::new(plain.unwrap())
                .unary(req("x"))
                .await
                .is_err()
    );
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_identifies_the_client_and_refuses_strangers() {
    let pki = generate().unwrap();
    let tls = server_tls(&pki).client_ca_root(Certificate::from_pem(&pki.ca).unwrap());
    let server = TestServer::start(echo_server(EchoService::default()).tls_config(tls)).await;

    let with_cert =
        client_tls(&pki.ca).identity(Identity::from_pem(&pki.client, &pki.client_key).unwrap());
    let client = tls_client(&server, with_cert).await.unwrap();
    let response = client.unary(req("me")).await.unwrap();
    assert_eq!(response.metadata().get("x-peer-certs"), Some("1"));

    // No certificate at all, or one from a CA the server does not trust.
    let anonymous = tls_client(&server, client_tls(&pki.ca)).await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(c) => c.unary(req("anon")).await.is_err(),
    };
    assert!(refused, "a client without a certificate got through");
    let stranger = client_tls(&pki.ca)
        .identity(Identity::from_pem(&pki.other_client, &pki.other_client_key).unwrap());
    let refused = match tls_client(&server, stranger).await {
        Err(_) => true,
        Ok(c) => c.unary(req("intruder")).await.is_err(),
    };
    assert!(
        refused,
        "a client with an untrusted certificate got through"
    );
    server.stop().await;
}

#[tokio::test]
async fn bearer_tokens_are_refused_over_plaintext_unless_allowed() {
    let server = TestServer::start(echo_server(EchoService::default())).await;
    let refusing = Channel::builder(&server.url())
        .unwrap()
        .bearer_token("t0ken")
        .connect()
        .await
        .unwrap();
    let status = EchoClient::new(refusing).unary(req("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("plaintext"), "{status}");

    let plain = Channel::connect(&server.url()).await.unwrap();
    let mut request = Request::new(req("x"));
    request.set_bearer_token("t0ken");
    let status = EchoClient::new(plain).unary(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let allowed = Channel::builder(&server.url())
        .unwrap()
        .bearer_token("t0ken")
        .allow_insecure_credentials(true)
        .connect()
        .await
        .unwrap();
    assert!(EchoClient::new(allowed).unary(req("x")).await.is_ok());
    server.stop().await;
}

/// Requires a token, adds a header the handler echoes, and counts how calls ended.
#[derive(Default)]
struct Auth {
    ended: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl Interceptor for Auth {
    fn on_call(&self, call: &mut CallInfo<'_>) -> Result<(), Status> {
        if call.metadata().get("authorization") != Some("Bearer good") {
            return Err(Status::unauthenticated("missing or wrong token"));
        }
        let path = call.path().to_owned();
        call.metadata_mut().insert("x-echo", &path).unwrap();
        Ok(())
    }

    fn on_end(&self, _path: &str, code: Code, _elapsed: Duration) {
        self.ended.fetch_add(1, Ordering::SeqCst);
        if code != Code::Ok {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn interceptors_authenticate_add_metadata_and_observe_outcomes() {
    let auth = Auth::default();
    let (ended, failed) = (auth.ended.clone(), auth.failed.clone());
    let server = TestServer::start(echo_server(EchoService::default()).interceptor(auth)).await;

    let anonymous = EchoClient::connect(&server.url()).await.unwrap();
    let status = anonymous.unary(req("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // A client interceptor adds the token to every call.
    let channel = Channel::builder(&server.url())
        .unwrap()
        .interceptor(|_path, metadata| {
            metadata
                .insert("authorization", "Bearer good")
                .map_err(|e| Status::internal(e.to_string()))
        })
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let response = client.unary(req("hi")).await.unwrap();
    assert_eq!(
        response.metadata().get("x-echo"),
        Some("/test.echo.Echo/Unary")
    );
    let mut failing = req("no");
    failing.fail_code = Code::NotFound as i32;
    assert_eq!(
        client.unary(failing).await.unwrap_err().code(),
        Code::NotFound
    );

    // A client interceptor can refuse a call before it is sent.
    let refusing = Channel::builder(&server.url())
        .unwrap()
        .interceptor(|path, _| Err(Status::permission_denied(format!("not calling {path}"))))
        .connect_lazy()
        .unwrap();
    let status = EchoClient::new(refusing).unary(req("x")).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    for _ in 0..100 {
        if ended.load(Ordering::SeqCst) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        ended.load(Ordering::SeqCst),
        3,
        "on_end for each call that reached the server"
    );
    assert_eq!(failed.load(Ordering::SeqCst), 2);
    server.stop().await;
}
