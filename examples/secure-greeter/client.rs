//! `secure-greeter-client --ca FILE [--cert FILE --key FILE] [--token TOKEN] [--addr URL] [NAME]`
//!
//! Calls the secure greeter over TLS, trusting `--ca`, presenting a client certificate when given,
//! with `authorization: Bearer <token>` (default: `SECURE_GREETER_TOKEN`).

use rgrpc::{Certificate, Channel, ClientTlsConfig, Identity};
use rgrpc_examples::secure_greeter::{GreeterClient, HelloRequest};

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(2);
    })
}

#[tokio::main]
async fn main() {
    let usage = "secure-greeter-client --ca FILE [--cert FILE --key FILE] [--token TOKEN] [--addr URL] [NAME]";
    let args = rgrpc_examples::Args::parse(
        "https://localhost:50051",
        &["ca", "cert", "key", "token", "server-name"],
        usage,
    );
    let name = args
        .positional
        .first()
        .cloned()
        .unwrap_or_else(|| "you".into());
    let token = args
        .value("token")
        .map(str::to_owned)
        .or_else(|| std::env::var("SECURE_GREETER_TOKEN").ok());
    rgrpc_examples::run_client(|| async move {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = args.value("ca") {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca))?);
        }
        if let (Some(cert), Some(key)) = (args.value("cert"), args.value("key")) {
            tls = tls.identity(Identity::from_pem(read(cert), read(key))?);
        }
        if let Some(server_name) = args.value("server-name") {
            tls = tls.domain_name(server_name);
        }
        let mut builder = Channel::builder(&args.addr)?.tls_config(tls)?;
        if let Some(token) = token {
            builder = builder.bearer_token(token);
        }
        let client = GreeterClient::new(builder.connect().await?);
        let reply = client.say_hello(HelloRequest { name }).await?;
        println!("Greeter client received: {}", reply.into_inner().message);
        Ok(())
    })
    .await;
}
