//! `secure-greeter-server --cert FILE --key FILE [--client-ca FILE] [--token TOKEN] [--addr ADDR]`
//!
//! TLS with the given certificate chain and key; with `--client-ca`, mutual TLS that requires a
//! client certificate from that CA. An interceptor checks `authorization: Bearer <token>` before
//! any handler runs: a missing or wrong token is UNAUTHENTICATED. The token defaults to the
//! `SECURE_GREETER_TOKEN` environment variable.

use rgrpc::server::CallInfo;
use rgrpc::{Certificate, Identity, Request, Response, Server, ServerTlsConfig, Status};
use rgrpc_examples::secure_greeter::{Greeter, GreeterServer, HelloReply, HelloRequest};

struct Service;

impl Greeter for Service {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.get_ref().name.clone();
        let mut message = format!("Hello, {name}!");
        if let Some(chain) = request.context().peer_certificates() {
            message.push_str(&format!(
                " (client certificate of {} bytes)",
                chain[0].len()
            ));
        }
        Ok(Response::new(HelloReply { message }))
    }
}

/// Compares in constant time, so the check does not leak how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(2);
    })
}

#[tokio::main]
async fn main() {
    let usage = "secure-greeter-server --cert FILE --key FILE [--client-ca FILE] [--token TOKEN] [--addr ADDR]";
    let args =
        rgrpc_examples::Args::parse("[::]:50051", &["cert", "key", "client-ca", "token"], usage);
    let (Some(cert), Some(key)) = (args.value("cert"), args.value("key")) else {
        eprintln!("usage: {usage}");
        std::process::exit(2);
    };
    let token = args
        .value("token")
        .map(str::to_owned)
        .or_else(|| std::env::var("SECURE_GREETER_TOKEN").ok())
        .unwrap_or_else(|| {
            eprintln!("give the expected token with --token or SECURE_GREETER_TOKEN");
            std::process::exit(2);
        });
    let identity = Identity::from_pem(read(cert), read(key)).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    let mut tls = ServerTlsConfig::new(identity);
    if let Some(ca) = args.value("client-ca") {
        let ca = Certificate::from_pem(read(ca)).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        });
        tls = tls.client_ca_root(ca);
    }
    let expected = format!("Bearer {token}");
    let auth = move |call: &mut CallInfo<'_>| -> Result<(), Status> {
        match call.metadata().get("authorization") {
            Some(given) if same(given.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated("the bearer token is not valid")),
            None => Err(Status::unauthenticated("a bearer token is required")),
        }
    };
    let server = Server::builder()
        .tls_config(tls)
        .interceptor(auth)
        .add_service(GreeterServer::new(Service));
    rgrpc_examples::serve(
        server,
        &args.addr,
        rgrpc_examples::secure_greeter::FILE_DESCRIPTOR_SET,
    )
    .await;
}
