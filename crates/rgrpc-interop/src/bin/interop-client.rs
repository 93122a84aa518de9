//! `interop-client --server_host=H --server_port=N --test_case=NAME [--use_tls=false]`: one interop
//! test case against any gRPC server, exiting 0 only on pass. `--test_case=all` runs every case,
//! prints a line per case and `N passed, M failed`, and exits non-zero if any failed.
//!
//! Besides the cases of every run, `pick_first_unary`, `rpc_soak` and `channel_soak` with the
//! official `--soak_*` flags, and `--service_config_json`. One flag of our own: `--target=T`
//! connects to any channel target (`ipv4:a:p,b:p`, `dns:///name:p`) instead of
//! `--server_host`:`--server_port`, for cases that need several addresses.

use std::time::Duration;

use rgrpc::client::Request;
use rgrpc::{Channel, Code, Encoding, Outgoing, Status};
use rgrpc_interop::pb::{
    self, BoolValue, EchoStatus, Empty, ResponseParameters, SimpleRequest,
    StreamingInputCallRequest, StreamingOutputCallRequest,
};
use rgrpc_interop::{Flags, payload};

type Outcome = Result<(), String>;

const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "very_large_request",
];

const ECHO_INITIAL_VALUE: &str = "test_initial_metadata_value";
const ECHO_TRAILING_VALUE: [u8; 3] = [0xab, 0xab, 0xab];

/// Adds the metadata the server must echo (custom_metadata).
fn with_metadata<T>(mut request: Request<T>) -> Request<T> {
    let md = request.metadata_mut();
    // Both keys and values are valid metadata; insertion cannot fail.
    let _ = md.insert("x-grpc-test-echo-initial", ECHO_INITIAL_VALUE);
    let _ = md.insert_bin("x-grpc-test-echo-trailing-bin", &ECHO_TRAILING_VALUE);
    request
}

fn ensure(ok: bool, what: impl Into<String>) -> Outcome {
    if ok { Ok(()) } else { Err(what.into()) }
}

fn call_err(status: Status) -> String {
    format!("call failed: {}: {}", status.code(), status.message())
}

fn gzip() -> Encoding {
    Encoding::from_name(b"gzip").expect("built with gzip")
}

fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_size: 314159,
        payload: Some(payload(271828)),
        ..Default::default()
    }
}

fn output_request(sizes: &[i32], payload_size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|s| ResponseParameters {
                size: *s,
                ..Default::default()
            })
            .collect(),
        payload: Some(payload(payload_size)),
        ..Default::default()
    }
}

fn body_len(p: &Option<pb::Payload>) -> usize {
    p.as_ref().map(|p| p.body.len()).unwrap_or(0)
}

/// What a case may need besides the channel: the flags, and new channels (channel_soak).
struct Setup<'a> {
    flags: &'a Flags,
    host: String,
    port: u16,
}

impl Setup<'_> {
    fn channel(&self) -> Result<Channel, String> {
        channel(self.flags, &self.host, self.port)
    }
}

/// The soak flags, with grpc-go's defaults.
struct Soak {
    iterations: usize,
    max_failures: usize,
    max_latency: Duration,
    overall: Duration,
    min_between: Duration,
    request_size: usize,
    response_size: i32,
    threads: usize,
}

impl Soak {
    fn from(flags: &Flags) -> Result<Soak, String> {
        Ok(Soak {
            iterations: flags.number("soak_iterations", 10)?,
            max_failures: flags.number("soak_max_failures", 0)?,
            max_latency: Duration::from_millis(
                flags.number("soak_per_iteration_max_acceptable_latency_ms", 1000)?,
            ),
            overall: Duration::from_secs(flags.number("soak_overall_timeout_seconds", 10)?),
            min_between: Duration::from_millis(flags.number("soak_min_time_ms_between_rpcs", 0)?),
            request_size: flags.number("soak_request_size", 271828)?,
            response_size: flags.number("soak_response_size", 314159)?,
            threads: flags.number::<usize>("soak_num_threads", 1)?.max(1),
        })
    }
}

/// rpc_soak and channel_soak: many large unary calls in sequence (per thread), each within the
/// latency bound, over one channel or a new channel each time; passes with at most
/// `--soak_max_failures` failed iterations, all within the overall timeout.
async fn soak(setup: &Setup<'_>, shared: &Channel, fresh_channels: bool) -> Outcome {
    let soak = std::sync::Arc::new(Soak::from(setup.flags)?);
    let started = tokio::time::Instant::now();
    let mut threads = Vec::new();
    for t in 0..soak.threads {
        let share =
            soak.iterations / soak.threads + usize::from(t < soak.iterations % soak.threads);
        let soak = soak.clone();
        // Lazy channels: each connects inside its iteration, and is closed when dropped.
        let mut channels = Vec::new();
        for _ in 0..if fresh_channels { share } else { 0 } {
            channels.push(Some(setup.channel()?));
        }
        let shared = shared.clone();
        threads.push(tokio::spawn(async move {
            let (mut failures, mut latencies, mut done) = (0usize, Vec::new(), 0usize);
            for i in 0..share {
                if started.elapsed() >= soak.overall {
                    break;
                }
                let begin = tokio::time::Instant::now();
                let channel = match channels.get_mut(i).and_then(Option::take) {
                    Some(fresh) => fresh,
                    None => shared.clone(),
                };
                let client = pb::TestServiceClient::new(channel);
                let request = SimpleRequest {
                    response_size: soak.response_size,
                    payload: Some(payload(soak.request_size)),
                    ..Default::default()
                };
                let result = client.unary_call(request).await;
                let latency = begin.elapsed();
                let ok = match &result {
                    Ok(r) => body_len(&r.get_ref().payload) == soak.response_size as usize,
                    Err(_) => false,
                };
                if !ok || latency > soak.max_latency {
                    failures += 1;
                    let why = match result {
                        Err(status) => call_err(status),
                        Ok(_) if !ok => "wrong payload size".into(),
                        Ok(_) => {
                            format!("took {latency:?}, over the {:?} allowed", soak.max_latency)
                        }
                    };
                    eprintln!("soak thread {t} iteration {i} failed: {why}");
                }
                latencies.push(latency);
                done += 1;
                // A fresh channel is closed before the next one opens.
                drop(client);
                tokio::time::sleep_until(begin + soak.min_between).await;
            }
            (failures, latencies, done)
        }));
    }
    let (mut failures, mut latencies, mut done) = (0, Vec::new(), 0);
    for thread in threads {
        let (f, l, d) = thread
            .await
            .map_err(|e| format!("soak thread panicked: {e}"))?;
        failures += f;
        latencies.extend(l);
        done += d;
    }
    latencies.sort();
    let pct = |p: usize| {
        latencies
            .get(latencies.len().saturating_sub(1) * p / 100)
            .copied()
    };
    eprintln!(
        "soak: {done} of {} iterations, {failures} failed, p50 {:?} p90 {:?} p100 {:?}",
        soak.iterations,
        pct(50).unwrap_or_default(),
        pct(90).unwrap_or_default(),
        pct(100).unwrap_or_default(),
    );
    ensure(
        done == soak.iterations,
        format!(
            "only {done} of {} iterations within the {:?} overall timeout",
            soak.iterations, soak.overall
        ),
    )?;
    ensure(
        failures <= soak.max_failures,
        format!(
            "{failures} iterations failed, {} allowed",
            soak.max_failures
        ),
    )
}

/// pick_first_unary: 100 calls asking for the server id, which must be the same every time
/// although the target names several servers.
async fn pick_first_unary(client: &pb::TestServiceClient) -> Outcome {
    let mut first: Option<String> = None;
    for i in 0..100 {
        let request = SimpleRequest {
            response_size: 1,
            payload: Some(payload(1)),
            fill_server_id: true,
            ..Default::default()
        };
        let mut request = Request::new(request);
        request.set_timeout(Duration::from_secs(30));
        let r = client.unary_call(request).await.map_err(call_err)?;
        let id = r.into_inner().server_id;
        ensure(
            !id.is_empty(),
            format!("call {i}: the server sent no server id"),
        )?;
        match &first {
            None => first = Some(id),
            Some(f) => ensure(
                *f == id,
                format!("call {i} reached {id:?}, the first reached {f:?}"),
            )?,
        }
    }
    Ok(())
}

async fn run(case: &str, channel: &Channel, setup: &Setup<'_>) -> Outcome {
    let client = pb::TestServiceClient::new(channel.clone());
    match case {
        "pick_first_unary" => pick_first_unary(&client).await,
        "rpc_soak" => soak(setup, channel, false).await,
        "channel_soak" => soak(setup, channel, true).await,
        "empty_unary" => {
            let r = client.empty_call(Empty {}).await.map_err(call_err)?;
            ensure(*r.get_ref() == Empty {}, "response not empty")
        }
        "large_unary" => {
            let r = client.unary_call(large_request()).await.map_err(call_err)?;
            ensure(
                body_len(&r.get_ref().payload) == 314159,
                "wrong payload size",
            )
        }
        "client_compressed_unary" => {
            // Probe: a request that claims compression but is not compressed must be refused.
            let mut probe = large_request();
            probe.expect_compressed = Some(BoolValue { value: true });
            let status = client
                .unary_call(probe)
                .await
                .err()
                .ok_or("probe accepted")?;
            ensure(
                status.code() == Code::InvalidArgument,
                format!("probe: expected INVALID_ARGUMENT, got {status}"),
            )?;
            for compressed in [true, false] {
                let mut req = large_request();
                req.expect_compressed = Some(BoolValue { value: compressed });
                let mut request = Request::new(req);
                if compressed {
                    request.set_compression(gzip());
                }
                let r = client.unary_call(request).await.map_err(call_err)?;
                ensure(
                    body_len(&r.get_ref().payload) == 314159,
                    "wrong payload size",
                )?;
            }
            Ok(())
        }
        "server_compressed_unary" => {
            for compressed in [true, false] {
                let mut req = large_request();
                req.response_compressed = Some(BoolValue { value: compressed });
                let r = client.unary_call(req).await.map_err(call_err)?;
                ensure(
                    body_len(&r.get_ref().payload) == 314159,
                    "wrong payload size",
                )?;
                // The spec asks a client that can see the compressed flag to check it.
                ensure(
                    r.message_compressed() == compressed,
                    format!(
                        "response_compressed was {compressed}, but the reply arrived {}",
                        if r.message_compressed() {
                            "compressed"
                        } else {
                            "uncompressed"
                        }
                    ),
                )?;
            }
            Ok(())
        }
        "client_streaming" => {
            let requests: Vec<_> = [27182, 8, 1828, 45904]
                .iter()
                .map(|n| StreamingInputCallRequest {
                    payload: Some(payload(*n)),
                    ..Default::default()
                })
                .collect();
            let r = client
                .streaming_input_call(rgrpc::stream::iter(requests))
                .await
                .map_err(call_err)?;
            ensure(
                r.get_ref().aggregated_payload_size == 74922,
                "wrong aggregate",
            )
        }
        "client_compressed_streaming" => {
            let probe = StreamingInputCallRequest {
                payload: Some(payload(27182)),
                expect_compressed: Some(BoolValue { value: true }),
            };
            let status = client
                .streaming_input_call(rgrpc::stream::iter(vec![probe]))
                .await
                .err()
                .ok_or("probe accepted")?;
            ensure(
                status.code() == Code::InvalidArgument,
                format!("probe: expected INVALID_ARGUMENT, got {status}"),
            )?;
            let messages = vec![
                Outgoing::new(StreamingInputCallRequest {
                    payload: Some(payload(27182)),
                    expect_compressed: Some(BoolValue { value: true }),
                }),
                Outgoing::new(StreamingInputCallRequest {
                    payload: Some(payload(45904)),
                    expect_compressed: Some(BoolValue { value: false }),
                })
                .compressed(false),
            ];
            let mut request = Request::new(rgrpc::stream::iter(messages));
            request.set_compression(gzip());
            let r = client
                .streaming_input_call(request)
                .await
                .map_err(call_err)?;
            ensure(
                r.get_ref().aggregated_payload_size == 73086,
                "wrong aggregate",
            )
        }
        "server_streaming" => {
            let sizes = [31415, 9, 2653, 58979];
            let req = output_request(&sizes, 0);
            let mut stream = client
                .streaming_output_call(req)
                .await
                .map_err(call_err)?
                .into_inner();
            for size in sizes {
                let m = stream
                    .message()
                    .await
                    .map_err(call_err)?
                    .ok_or("stream ended early")?;
                ensure(body_len(&m.payload) == size as usize, "wrong payload size")?;
            }
            ensure(
                stream.message().await.map_err(call_err)?.is_none(),
                "extra responses",
            )
        }
        "server_compressed_streaming" => {
            let mut req = output_request(&[31415, 92653], 0);
            req.response_parameters[0].compressed = Some(BoolValue { value: true });
            req.response_parameters[1].compressed = Some(BoolValue { value: false });
            let mut stream = client
                .streaming_output_call(req)
                .await
                .map_err(call_err)?
                .into_inner();
            for (size, compressed) in [(31415, true), (92653, false)] {
                let m = stream
                    .message()
                    .await
                    .map_err(call_err)?
                    .ok_or("stream ended early")?;
                ensure(body_len(&m.payload) == size, "wrong payload size")?;
                ensure(
                    stream.last_message_compressed() == compressed,
                    format!("message of {size} bytes: compressed flag is not {compressed}"),
                )?;
            }
            ensure(
                stream.message().await.map_err(call_err)?.is_none(),
                "extra responses",
            )
        }
        "ping_pong" => {
            let (tx, requests) = rgrpc::stream::channel(1);
            let mut responses = client
                .full_duplex_call(requests)
                .await
                .map_err(call_err)?
                .into_inner();
            for (size, payload_size) in [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)] {
                tx.send(output_request(&[size], payload_size))
                    .await
                    .map_err(|_| "request stream closed")?;
                let m = responses
                    .message()
                    .await
                    .map_err(call_err)?
                    .ok_or("no response")?;
                ensure(body_len(&m.payload) == size as usize, "wrong payload size")?;
            }
            drop(tx);
            ensure(
                responses.message().await.map_err(call_err)?.is_none(),
                "extra responses",
            )
        }
        "empty_stream" => {
            let requests = rgrpc::stream::iter(Vec::<StreamingOutputCallRequest>::new());
            let mut responses = client
                .full_duplex_call(requests)
                .await
                .map_err(call_err)?
                .into_inner();
            ensure(
                responses.message().await.map_err(call_err)?.is_none(),
                "got a response",
            )
        }
        "timeout_on_sleeping_server" => {
            let (tx, requests) = rgrpc::stream::channel(1);
            let mut request = Request::new(requests);
            request.set_timeout(Duration::from_millis(1));
            let outcome = match client.full_duplex_call(request).await {
                Err(status) => Err(status),
                Ok(response) => {
                    let _ = tx.send(output_request(&[31415], 27182)).await;
                    let mut responses = response.into_inner();
                    loop {
                        match responses.message().await {
                            Ok(Some(_)) => continue,
                            Ok(None) => break Ok(()),
                            Err(status) => break Err(status),
                        }
                    }
                }
            };
            match outcome {
                Err(status) if status.code() == Code::DeadlineExceeded => Ok(()),
                Err(status) => Err(format!("expected DEADLINE_EXCEEDED, got {status}")),
                Ok(()) => Err("the call did not time out".into()),
            }
        }
        "cancel_after_begin" => {
            // Start a client stream, send nothing, cancel: the call must end with CANCELLED.
            let (_tx, requests) = rgrpc::stream::channel::<StreamingInputCallRequest>(1);
            let token = rgrpc::CancellationToken::new();
            let mut request = Request::new(requests);
            request.set_cancellation_token(token.clone());
            let cancel = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                token.cancel();
            };
            let (result, ()) = tokio::join!(client.streaming_input_call(request), cancel);
            match result {
                Err(status) if status.code() == Code::Cancelled => Ok(()),
                other => Err(format!("expected CANCELLED, got {other:?}")),
            }
        }
        "cancel_after_first_response" => {
            let (tx, requests) = rgrpc::stream::channel(1);
            let token = rgrpc::CancellationToken::new();
            let mut request = Request::new(requests);
            request.set_cancellation_token(token.clone());
            let mut responses = client
                .full_duplex_call(request)
                .await
                .map_err(call_err)?
                .into_inner();
            tx.send(output_request(&[31415], 27182))
                .await
                .map_err(|_| "request stream closed")?;
            let m = responses
                .message()
                .await
                .map_err(call_err)?
                .ok_or("no response")?;
            ensure(body_len(&m.payload) == 31415, "wrong payload size")?;
            token.cancel();
            match responses.message().await {
                Err(status) if status.code() == Code::Cancelled => Ok(()),
                other => Err(format!(
                    "expected CANCELLED after cancelling, got {other:?}"
                )),
            }
        }
        "custom_metadata" => {
            let initial = ECHO_INITIAL_VALUE;
            let trailing = ECHO_TRAILING_VALUE;
            let r = client
                .unary_call(with_metadata(Request::new(large_request())))
                .await
                .map_err(call_err)?;
            ensure(
                r.metadata().get("x-grpc-test-echo-initial") == Some(initial),
                "unary: initial metadata not echoed",
            )?;
            ensure(
                r.trailers()
                    .get_bin("x-grpc-test-echo-trailing-bin")
                    .and_then(Result::ok)
                    .as_deref()
                    == Some(&trailing[..]),
                "unary: trailing metadata not echoed",
            )?;

            let requests = rgrpc::stream::iter(vec![output_request(&[314159], 271828)]);
            let mut responses = client
                .full_duplex_call(with_metadata(Request::new(requests)))
                .await
                .map_err(call_err)?
                .into_inner();
            let headers = responses.headers().await.map_err(call_err)?.cloned();
            ensure(
                headers
                    .as_ref()
                    .and_then(|h| h.get("x-grpc-test-echo-initial"))
                    == Some(initial),
                "duplex: initial metadata not echoed",
            )?;
            let m = responses
                .message()
                .await
                .map_err(call_err)?
                .ok_or("no response")?;
            ensure(body_len(&m.payload) == 314159, "wrong payload size")?;
            ensure(
                responses.message().await.map_err(call_err)?.is_none(),
                "extra responses",
            )?;
            let got = responses
                .trailers()
                .and_then(|t| t.get_bin("x-grpc-test-echo-trailing-bin"))
                .and_then(Result::ok);
            ensure(
                got.as_deref() == Some(&trailing[..]),
                "duplex: trailing metadata not echoed",
            )
        }
        "status_code_and_message" | "special_status_message" => {
            let message = if case == "special_status_message" {
                "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
            } else {
                "test status message"
            };
            let echo = Some(EchoStatus {
                code: 2,
                message: message.into(),
            });
            let req = SimpleRequest {
                response_status: echo.clone(),
                ..Default::default()
            };
            let status = client.unary_call(req).await.err().ok_or("call succeeded")?;
            ensure(
                status.code() == Code::Unknown && status.message() == message,
                format!("unary: got {status:?}"),
            )?;
            if case == "special_status_message" {
                return Ok(());
            }
            let req = StreamingOutputCallRequest {
                response_status: echo,
                ..Default::default()
            };
            let mut responses = client
                .full_duplex_call(rgrpc::stream::iter(vec![req]))
                .await
                .map_err(call_err)?
                .into_inner();
            let status = responses.message().await.err().ok_or("stream succeeded")?;
            ensure(
                status.code() == Code::Unknown && status.message() == message,
                format!("duplex: got {status:?}"),
            )
        }
        "unimplemented_method" => {
            let status = client
                .unimplemented_call(Empty {})
                .await
                .err()
                .ok_or("call succeeded")?;
            ensure(
                status.code() == Code::Unimplemented,
                format!("expected UNIMPLEMENTED, got {status}"),
            )
        }
        "unimplemented_service" => {
            let other = pb::UnimplementedServiceClient::new(channel.clone());
            let status = other
                .unimplemented_call(Empty {})
                .await
                .err()
                .ok_or("call succeeded")?;
            ensure(
                status.code() == Code::Unimplemented,
                format!("expected UNIMPLEMENTED, got {status}"),
            )
        }
        "very_large_request" => {
            // By default as large as the 4 MiB default receive limit allows, with room for the
            // framing; --very_large_request_size for a server that takes more.
            let size = setup
                .flags
                .number("very_large_request_size", 4 * 1024 * 1024 - 64)?;
            let req = SimpleRequest {
                response_size: 10,
                payload: Some(payload(size)),
                ..Default::default()
            };
            let r = client.unary_call(req).await.map_err(call_err)?;
            ensure(body_len(&r.get_ref().payload) == 10, "wrong payload size")
        }
        other => Err(format!("unknown test case {other:?}")),
    }
}

/// The channel the flags ask for: plaintext, or TLS trusting `--ca_file` (with
/// `--use_test_ca`) or the system roots, verifying `--server_host_override` if given.
fn channel(flags: &Flags, host: &str, port: u16) -> Result<Channel, String> {
    let use_tls = flags.bool("use_tls", false)?;
    let target = match flags.get("target") {
        Some(target) => target.to_owned(),
        None => format!("http://{host}:{port}"),
    };
    let mut builder = Channel::builder(&target).map_err(|e| e.to_string())?;
    if let Some(json) = flags.get("service_config_json") {
        builder = builder.default_service_config(json);
    }
    if !use_tls {
        return builder.connect_lazy().map_err(|e| e.to_string());
    }
    let mut tls = rgrpc::ClientTlsConfig::new();
    if flags.bool("use_test_ca", false)? {
        let path = flags
            .get("ca_file")
            .ok_or("--use_test_ca needs --ca_file: this client embeds no test CA")?;
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        tls = tls.ca_certificate(rgrpc::Certificate::from_pem(pem).map_err(|e| e.to_string())?);
    }
    if let Some(name) = flags.get("server_host_override") {
        tls = tls.domain_name(name);
    }
    builder
        .tls_config(tls)
        .and_then(|b| b.connect_lazy())
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() {
    let flags = match Flags::parse(
        std::env::args().skip(1),
        &[
            "server_host",
            "server_port",
            "test_case",
            "use_tls",
            "use_test_ca",
            "ca_file",
            "server_host_override",
            "service_config_json",
            "target",
            "soak_iterations",
            "soak_max_failures",
            "soak_per_iteration_max_acceptable_latency_ms",
            "soak_overall_timeout_seconds",
            "soak_min_time_ms_between_rpcs",
            "soak_request_size",
            "soak_response_size",
            "soak_num_threads",
            "very_large_request_size",
        ],
    ) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("interop-client: {e}");
            std::process::exit(2);
        }
    };
    let host = flags.get("server_host").unwrap_or("localhost");
    let port: u16 = flags.number("server_port", 10000).unwrap_or_else(|e| {
        eprintln!("interop-client: {e}");
        std::process::exit(2);
    });
    let case = flags.get("test_case").unwrap_or("large_unary");
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let channel = match channel(&flags, &host, port) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("interop-client: {e}");
            std::process::exit(2);
        }
    };
    let cases: Vec<&str> = if case == "all" {
        CASES.to_vec()
    } else {
        vec![case]
    };
    let (mut passed, mut failed) = (0, 0);
    for case in &cases {
        let setup = Setup {
            flags: &flags,
            host: host.clone(),
            port,
        };
        // Soaks bound themselves with --soak_overall_timeout_seconds; anything else that
        // takes a minute is stuck.
        let limit = match Soak::from(&flags) {
            Ok(soak) if case.ends_with("_soak") => soak.overall + Duration::from_secs(30),
            _ => Duration::from_secs(60),
        };
        let outcome = match tokio::time::timeout(limit, run(case, &channel, &setup)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("timed out after {limit:?}")),
        };
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("PASS {case}");
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {case}: {why}");
            }
        }
    }
    if cases.len() > 1 {
        println!("{passed} passed, {failed} failed");
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
