//! The test Echo service on `--addr` (default `127.0.0.1:0`), for peers written in other languages
//! and for tests that kill servers; `--id NAME` makes it answer `x-server-id: NAME`;
//! `--ping-min-time-ms MS` and `--permit-pings-without-calls` set the PING policy.
//! Prints `listening on ADDR` once it accepts connections; stops on stdin EOF or SIGTERM.

use rgrpc_tests::{EchoService, echo_server};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:0".to_owned();
    let mut id = None;
    let mut ping_min_time = None;
    let mut permit_pings = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().expect("--addr needs a value"),
            "--id" => id = Some(args.next().expect("--id needs a value")),
            "--ping-min-time-ms" => {
                let ms = args.next().and_then(|v| v.parse().ok());
                ping_min_time = Some(std::time::Duration::from_millis(
                    ms.expect("--ping-min-time-ms needs milliseconds"),
                ));
            }
            "--permit-pings-without-calls" => permit_pings = true,
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: echo-server [--addr HOST:PORT] [--id NAME] [--ping-min-time-ms MS] [--permit-pings-without-calls]"
                );
                std::process::exit(2);
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("listening on {}", listener.local_addr().unwrap());
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        let eof = async {
            use tokio::io::AsyncReadExt;
            while stdin.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
        };
        tokio::select! {
            _ = term.recv() => {}
            () = eof => {}
        }
    };
    let service = EchoService {
        server_id: id,
        ..EchoService::default()
    };
    let mut builder = echo_server(service);
    if let Some(min_time) = ping_min_time {
        builder = builder.keepalive_enforcement(min_time, permit_pings);
    }
    builder
        .serve_with_listener(listener, stop)
        .await
        .expect("serve");
    // The stdin reader is a blocking thread the runtime would wait for; we are done.
    std::process::exit(0);
}
