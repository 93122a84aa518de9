//! Calls an Echo server (ours or a peer's) in every call kind and prints one line per check:
//! `PASS name` or `FAIL name: why`. Exits non-zero if any check fails.

use std::time::Duration;

use rgrpc::Code;
use rgrpc::client::Request;
use rgrpc_tests::echo::{EchoClient, EchoRequest};

fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
        ..Default::default()
    }
}

async fn run(client: &EchoClient, name: &str) -> Result<(), String> {
    match name {
        "unary" => {
            let mut request = Request::new(req("hello 你好"));
            request.metadata_mut().insert("x-echo", "meta").unwrap();
            let response = client.unary(request).await.map_err(|s| s.to_string())?;
            check(
                response.metadata().get("x-echo") == Some("meta"),
                "header echoed",
            )?;
            check(
                response.trailers().get("x-echo-trailer") == Some("meta"),
                "trailer echoed",
            )?;
            check(response.get_ref().message == "hello 你好", "message echoed")
        }
        "large_unary" => {
            let mut r = req(&"x".repeat(1 << 20));
            r.reply_size = 2 << 20;
            let response = client.unary(r).await.map_err(|s| s.to_string())?;
            check(response.get_ref().padding.len() == 2 << 20, "2 MiB reply")
        }
        "server_streaming" => {
            let mut r = req("s");
            r.count = 10;
            let mut stream = client
                .server_stream(r)
                .await
                .map_err(|s| s.to_string())?
                .into_inner();
            let mut n = 0;
            while let Some(m) = stream.message().await.map_err(|s| s.to_string())? {
                check(m.index == n, "in order")?;
                n += 1;
            }
            check(n == 10, "ten messages")
        }
        "client_streaming" => {
            let items: Vec<_> = ["a", "b", "c"].iter().map(|s| req(s)).collect();
            let response = client
                .client_stream(futures_util::stream::iter(items))
                .await
                .map_err(|s| s.to_string())?;
            check(response.get_ref().message == "a,b,c", "joined")
        }
        "bidi_streaming" => {
            let (tx, rx) = tokio::sync::mpsc::channel::<EchoRequest>(1);
            let outbound = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|m| (m, rx))
            });
            let mut inbound = client
                .bidi(outbound)
                .await
                .map_err(|s| s.to_string())?
                .into_inner();
            for i in 0..5 {
                tx.send(req(&format!("ping {i}")))
                    .await
                    .map_err(|e| e.to_string())?;
                let pong = inbound.message().await.map_err(|s| s.to_string())?;
                check(
                    pong.is_some_and(|p| p.message == format!("ping {i}")),
                    "pong",
                )?;
            }
            drop(tx);
            let end = inbound.message().await.map_err(|s| s.to_string())?;
            check(end.is_none(), "clean end")
        }
        "status" => {
            let text = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
            let mut r = req(text);
            r.fail_code = 2;
            let status = client.unary(r).await.err().ok_or("call succeeded")?;
            check(status.code() == Code::Unknown, "code UNKNOWN")?;
            check(status.message() == text, "message intact")
        }
        "deadline" => {
            let mut request = Request::new(req("slow"));
            request.set_timeout(Duration::from_millis(200));
            let status = client
                .wait_for_cancel(request)
                .await
                .err()
                .ok_or("call succeeded")?;
            check(status.code() == Code::DeadlineExceeded, "DEADLINE_EXCEEDED")
        }
        "compressed" => {
            // Requests in the encodings every gRPC implementation has (zstd is not in grpcio).
            for name in ["gzip", "deflate", "identity"] {
                let encoding =
                    rgrpc::Encoding::from_name(name.as_bytes()).ok_or("built without it")?;
                let mut request = Request::new(req(&"compressible ".repeat(2000)));
                request.set_compression(encoding);
                let response = client
                    .unary(request)
                    .await
                    .map_err(|s| format!("{encoding:?}: {s}"))?;
                check(response.get_ref().message.len() == 26_000, "echoed")?;
            }
            Ok(())
        }
        other => Err(format!("unknown check {other}")),
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: not as expected"))
    }
}

const ALL: [&str; 8] = [
    "compressed",
    "unary",
    "large_unary",
    "server_streaming",
    "client_streaming",
    "bidi_streaming",
    "status",
    "deadline",
];

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut addr = None;
    let mut only = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next(),
            "--check" => only = args.next(),
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: echo-client --addr URL [--check NAME]"
                );
                std::process::exit(2);
            }
        }
    }
    let addr = addr.unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let client = match EchoClient::connect(&addr).await {
        Ok(c) => c,
        Err(err) => {
            println!("FAIL connect: {err}");
            std::process::exit(1);
        }
    };
    let mut failed = 0;
    for name in ALL
        .iter()
        .filter(|n| only.as_deref().is_none_or(|o| o == **n))
    {
        match run(&client, name).await {
            Ok(()) => println!("PASS {name}"),
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
