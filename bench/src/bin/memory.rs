//! Server memory per idle connection and per open idle stream, read from the server's
//! `/proc/PID/status` (VmRSS) while this program holds connections open against it:
//!
//! `memory SERVER_PID ADDR CONNECTIONS`
//!
//! It opens CONNECTIONS HTTP/2 connections (with plain `h2`, the same client for every server),
//! each finishing the SETTINGS exchange and one Echo call, and notes the server's RSS; then opens
//! one more bidi Echo stream on each connection that sends nothing, and notes it again. Prints
//! `KIB_PER_CONNECTION KIB_PER_STREAM`. The server is `stream serve rgrpc|tonic PORT`.

use std::time::Duration;

use bytes::Bytes;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn echo_request(addr: &str) -> http::Request<()> {
    http::Request::post(format!("http://{addr}/bench.stream.Streamer/Echo"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// Waits until the server's RSS stops growing (it settles after the last handshake).
async fn settled(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = rss_kib(pid);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: memory SERVER_PID ADDR CONNECTIONS");
        std::process::exit(2);
    }
    let pid: u32 = args[1].parse().expect("SERVER_PID");
    let addr = args[2].clone();
    let n: usize = args[3].parse().expect("CONNECTIONS");
    let before = settled(pid).await;
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let io = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let (client, conn) = h2::client::handshake(io).await.expect("handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.expect("ready");
        // One whole call, so that the server has set up everything a served connection has.
        let (response, mut body) = client.send_request(echo_request(&addr), false).unwrap();
        // An empty Chunk with its (empty) bytes field present: 2 bytes after the prefix.
        let framed = vec![0u8, 0, 0, 0, 2, 0x0a, 0];
        body.send_data(Bytes::from(framed), true).unwrap();
        let mut response = response.await.expect("response").into_body();
        while let Some(chunk) = response.data().await {
            let chunk = chunk.expect("data");
            let _ = response.flow_control().release_capacity(chunk.len());
        }
        clients.push(client);
    }
    let with_connections = settled(pid).await;
    let mut streams = Vec::with_capacity(n);
    for client in &mut clients {
        let mut ready = client.clone().ready().await.expect("ready");
        let (response, body) = ready.send_request(echo_request(&addr), false).unwrap();
        streams.push((response, body));
    }
    // The server sees each stream once the headers arrive; give it the time to.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_streams = settled(pid).await;
    let per_connection = with_connections.saturating_sub(before) as f64 / n as f64;
    let per_stream = with_streams.saturating_sub(with_connections) as f64 / n as f64;
    println!("{per_connection:.1} {per_stream:.1}");
    drop(streams);
}
