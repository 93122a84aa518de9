//! `rgrpc`: a curl for gRPC. Lists, describes, calls and load-tests services of any gRPC server,
//! learning the schema from server reflection or from local `.proto` files (parsed with protox,
//! no protoc).
//!
//! Exit codes: 0 success; 1 the call ended with a non-OK status; 2 bad usage or bad input
//! (JSON, flags); 3 could not connect; 4 the schema lookup failed (no reflection, unknown
//! symbol); 5 `health` answered but the service is not SERVING.

mod bench;
mod describe;
mod raw;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use rgrpc::client::Request;
use rgrpc::{Channel, Status};
use rgrpc_reflection::pb::{v1, v1alpha};

use raw::RawMessage;

#[derive(Parser, Debug)]
#[command(
    name = "rgrpc",
    version,
    about = "List, describe, call and load-test gRPC services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List services, or the methods of one service.
    List {
        #[command(flatten)]
        conn: Conn,
        /// A service to list the methods of.
        service: Option<String>,
    },
    /// Describe a service, method, message or enum as proto source.
    Describe {
        #[command(flatten)]
        conn: Conn,
        /// A fully qualified symbol, e.g. helloworld.Greeter or helloworld.HelloRequest.
        symbol: String,
    },
    /// Call a method with JSON requests; responses print as JSON.
    Call {
        #[command(flatten)]
        conn: Conn,
        /// The method, as package.Service/Method (or package.Service.Method).
        method: String,
        /// The request as JSON, `@FILE` to read it from a file, or `-` for NDJSON on stdin.
        /// Streaming requests read NDJSON from stdin when this is absent.
        #[arg(short = 'd', long = "data")]
        data: Option<String>,
        /// Give up after this long (e.g. 500ms, 5s, 1m).
        #[arg(long)]
        timeout: Option<String>,
        /// Print response headers and trailers to stderr.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Ask grpc.health.v1.Health about a service (or the whole server).
    Health {
        #[command(flatten)]
        conn: Conn,
        /// The service; empty for the server as a whole.
        service: Option<String>,
    },
    /// Load-test a method: closed loop (--concurrency) or open loop (--rps), for -n calls or
    /// -z time; latency percentiles, a histogram and errors by code as text, JSON or HTML.
    Bench(Box<bench::BenchArgs>),
    /// Resolve an `xds:///name` target and print the xDS resources the client then holds
    /// (listener, routes, clusters, endpoints), each with its version and status: what CSDS
    /// (gRFC A40) reports.
    Xds {
        /// The target, `xds:///name` or `xds://authority/name`.
        target: String,
        /// How long to wait for the resources to arrive (e.g. 500ms, 5s).
        #[arg(long, default_value = "5s")]
        timeout: String,
        /// `text` (a table) or `json` (an array of objects).
        #[arg(long, default_value = "text")]
        format: String,
    },
}

/// Where and how to connect, and where the schema comes from.
#[derive(Args, Debug, Clone)]
struct Conn {
    /// The target: `http://127.0.0.1:50051`, `https://example.com:443`, `host:port`,
    /// `dns:///host:port`, `ipv4:10.0.0.1:50051,10.0.0.2:50051`, `ipv6:[::1]:50051`,
    /// `unix:/path/to.sock`, `unix-abstract:name` or `xds:///name` (bootstrap from
    /// GRPC_XDS_BOOTSTRAP or GRPC_XDS_BOOTSTRAP_CONFIG).
    addr: String,
    /// A service config (gRFC A2 JSON, or `@FILE`): load balancing, timeouts, retries.
    #[arg(long = "service-config")]
    service_config: Option<String>,
    /// Read the schema from these .proto files instead of server reflection.
    #[arg(long = "proto")]
    protos: Vec<String>,
    /// Where imports of --proto files are found.
    #[arg(long = "import-path", short = 'I')]
    import_paths: Vec<String>,
    /// Use TLS even for an http:// address.
    #[arg(long)]
    tls: bool,
    /// Trust this CA certificate (PEM) instead of the system roots.
    #[arg(long)]
    cacert: Option<String>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long)]
    cert: Option<String>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long)]
    key: Option<String>,
    /// The server name to verify and send as :authority.
    #[arg(long)]
    authority: Option<String>,
    /// Accept any server certificate (development servers only: the connection is then open to
    /// anyone on the path).
    #[arg(long)]
    insecure_skip_verify: bool,
    /// Plaintext (the default for http://; here for scripts that say so explicitly).
    #[arg(long)]
    plaintext: bool,
    /// Metadata to send with every call, reflection included, as 'key: value' (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
}

/// `-H 'key: value'` flags as metadata; `-bin` keys take their value's bytes.
fn header_metadata(headers: &[String]) -> Outcome<rgrpc::MetadataMap> {
    let mut metadata = rgrpc::MetadataMap::new();
    for header in headers {
        let (k, v) = header
            .split_once(':')
            .ok_or_else(|| Failure::usage(format!("header {header:?} is not 'key: value'")))?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        let inserted = if k.ends_with("-bin") {
            metadata.append_bin(&k, v.as_bytes())
        } else {
            metadata.append(&k, v)
        };
        inserted.map_err(|e| Failure::usage(e.to_string()))?;
    }
    Ok(metadata)
}

/// A failure, with the exit code of its class.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    fn connect(message: impl Into<String>) -> Failure {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
    fn schema(message: impl Into<String>) -> Failure {
        Failure {
            code: 4,
            message: message.into(),
        }
    }
    /// A call that failed with `status` on `channel`: exit 3 when it failed for want of a
    /// connection (UNAVAILABLE while the channel is not connected), 1 for any other status, a
    /// server's UNAVAILABLE (load shedding, say) included.
    fn status(status: &Status, channel: &Channel) -> Failure {
        let unconnected = channel.state(false) != rgrpc::client::ConnectivityState::Ready;
        let code = if status.code() == rgrpc::Code::Unavailable && unconnected {
            3
        } else {
            1
        };
        Failure {
            code,
            message: format!("{}: {}", status.code(), status.message()),
        }
    }
}

type Outcome<T = ()> = Result<T, Failure>;

fn read_file(path: &str) -> Outcome<Vec<u8>> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {path}: {e}")))
}

/// A channel to the target of `conn`, connecting on its first call.
async fn channel(conn: &Conn) -> Outcome<Channel> {
    builder(conn)?.connect_lazy().map_err(|e| {
        if e.is_config() || e.is_invalid_address() {
            Failure::usage(e.to_string())
        } else {
            Failure::connect(e.to_string())
        }
    })
}

/// A channel builder with the target, service config, TLS, authority and headers of `conn`.
fn builder(conn: &Conn) -> Outcome<rgrpc::client::Builder> {
    let addr = conn.addr.clone();
    let mut builder = Channel::builder(&addr).map_err(|e| Failure::usage(e.to_string()))?;
    if let Some(config) = &conn.service_config {
        let json = match config.strip_prefix('@') {
            Some(path) => String::from_utf8(read_file(path)?)
                .map_err(|_| Failure::usage(format!("{path} is not UTF-8")))?,
            None => config.clone(),
        };
        builder = builder.default_service_config(json);
    }
    let tls_wanted =
        conn.tls || addr.starts_with("https://") || conn.cacert.is_some() || conn.cert.is_some();
    if tls_wanted && !conn.plaintext {
        let mut tls = rgrpc::ClientTlsConfig::new();
        if let Some(ca) = &conn.cacert {
            let ca = rgrpc::Certificate::from_pem(read_file(ca)?)
                .map_err(|e| Failure::usage(e.to_string()))?;
            tls = tls.ca_certificate(ca);
        }
        match (&conn.cert, &conn.key) {
            (Some(cert), Some(key)) => {
                let id = rgrpc::Identity::from_pem(read_file(cert)?, read_file(key)?)
                    .map_err(|e| Failure::usage(e.to_string()))?;
                tls = tls.identity(id);
            }
            (None, None) => {}
            _ => return Err(Failure::usage("--cert and --key go together")),
        }
        if let Some(name) = &conn.authority {
            tls = tls.domain_name(name);
        }
        if conn.insecure_skip_verify {
            tls = tls.danger_accept_invalid_certs(true);
        }
        builder = builder
            .tls_config(tls)
            .map_err(|e| Failure::usage(e.to_string()))?;
    } else if let Some(name) = &conn.authority {
        builder = builder
            .authority(name.clone())
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    let headers = header_metadata(&conn.headers)?;
    if !headers.is_empty() {
        builder = builder.interceptor(move |_, metadata| {
            metadata.extend(headers.clone());
            Ok(())
        });
    }
    Ok(builder)
}

/// The schema: local files if given, else whatever reflection tells about `symbols`.
async fn schema(conn: &Conn, channel: &Channel, symbols: &[&str]) -> Outcome<DescriptorPool> {
    if !conn.protos.is_empty() {
        let includes: Vec<&str> = if conn.import_paths.is_empty() {
            vec!["."]
        } else {
            conn.import_paths.iter().map(String::as_str).collect()
        };
        let fds = protox::compile(&conn.protos, includes)
            .map_err(|e| Failure::usage(format!("{e:?}")))?;
        return DescriptorPool::from_file_descriptor_set(fds)
            .map_err(|e| Failure::schema(e.to_string()));
    }
    let mut pool = DescriptorPool::new();
    for symbol in symbols {
        let request = v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            (*symbol).to_owned(),
        );
        let files = match reflect(channel, request).await? {
            v1::server_reflection_response::MessageResponse::FileDescriptorResponse(f) => {
                f.file_descriptor_proto
            }
            v1::server_reflection_response::MessageResponse::ErrorResponse(e) => {
                return Err(Failure::schema(format!("reflection: {}", e.error_message)));
            }
            _ => return Err(Failure::schema("reflection answered something else")),
        };
        let mut set = prost_types::FileDescriptorSet::default();
        for bytes in files {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .map_err(|e| Failure::schema(format!("reflection sent a bad descriptor: {e}")))?;
            if pool.get_file_by_name(file.name()).is_none() {
                set.file.push(file);
            }
        }
        // Dependencies come after the files that import them; add them first.
        set.file.reverse();
        pool.add_file_descriptor_set(set)
            .map_err(|e| Failure::schema(format!("reflection sent an inconsistent schema: {e}")))?;
    }
    Ok(pool)
}

/// One reflection request, over v1 or, if the server lacks it, v1alpha.
async fn reflect(
    channel: &Channel,
    request: v1::server_reflection_request::MessageRequest,
) -> Outcome<v1::server_reflection_response::MessageResponse> {
    let message = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let client = v1::ServerReflectionClient::new(channel.clone());
    let v1_result = async {
        let mut stream = client
            .server_reflection_info(rgrpc::stream::iter(vec![message.clone()]))
            .await?
            .into_inner();
        stream.message().await
    }
    .await;
    let response = match v1_result {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(Failure::schema(
                "reflection closed the stream without answering",
            ));
        }
        Err(status) if status.code() == rgrpc::Code::Unimplemented => {
            let alpha = v1alpha::ServerReflectionClient::new(channel.clone());
            let request: v1alpha::ServerReflectionRequest = recode(&message);
            let mut stream = alpha
                .server_reflection_info(rgrpc::stream::iter(vec![request]))
                .await
                .map_err(|s| reflection_failure(&s, channel))?
                .into_inner();
            let answer = stream
                .message()
                .await
                .map_err(|s| reflection_failure(&s, channel))?;
            recode(&answer.ok_or_else(|| Failure::schema("reflection closed the stream"))?)
        }
        Err(status) => return Err(reflection_failure(&status, channel)),
    };
    response
        .message_response
        .ok_or_else(|| Failure::schema("reflection sent an empty answer"))
}

fn reflection_failure(status: &Status, channel: &Channel) -> Failure {
    if status.code() == rgrpc::Code::Unavailable {
        return Failure::status(status, channel);
    }
    Failure::schema(format!(
        "server reflection failed ({}: {}); pass --proto files instead",
        status.code(),
        status.message()
    ))
}

fn recode<A: Message, B: Message + Default>(a: &A) -> B {
    // v1 and v1alpha have the same fields and numbers.
    B::decode(a.encode_to_vec().as_slice()).unwrap_or_default()
}

async fn list(conn: &Conn, service: Option<&str>) -> Outcome {
    let channel = channel(conn).await?;
    match service {
        None if conn.protos.is_empty() => {
            let request =
                v1::server_reflection_request::MessageRequest::ListServices(String::new());
            match reflect(&channel, request).await? {
                v1::server_reflection_response::MessageResponse::ListServicesResponse(list) => {
                    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
                    names.sort();
                    emit(format!("{}\n", names.join("\n")).as_bytes())
                }
                _ => Err(Failure::schema("reflection did not list services")),
            }
        }
        None => {
            let pool = schema(conn, &channel, &[]).await?;
            for s in pool.services() {
                println!("{}", s.full_name());
            }
            Ok(())
        }
        Some(service) => {
            let pool = schema(conn, &channel, &[service]).await?;
            let svc = pool
                .get_service_by_name(service)
                .ok_or_else(|| Failure::schema(format!("no service {service}")))?;
            for m in svc.methods() {
                println!("{}", m.full_name());
            }
            Ok(())
        }
    }
}

async fn describe(conn: &Conn, symbol: &str) -> Outcome {
    let channel = channel(conn).await?;
    let pool = schema(conn, &channel, &[symbol]).await?;
    let text = describe::symbol(&pool, symbol)
        .ok_or_else(|| Failure::schema(format!("no symbol {symbol}")))?;
    print!("{text}");
    Ok(())
}

/// `package.Service/Method` or `package.Service.Method` to (service, method).
fn split_method(method: &str) -> Outcome<(&str, &str)> {
    let method = method.trim_start_matches('/');
    method
        .split_once('/')
        .or_else(|| method.rsplit_once('.'))
        .ok_or_else(|| Failure::usage(format!("{method:?} is not package.Service/Method")))
}

fn parse_duration(text: &str) -> Outcome<Duration> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| text.split_at(i))
        .unwrap_or((text, "s"));
    let n: f64 = number
        .parse()
        .map_err(|_| Failure::usage(format!("bad duration {text:?}")))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(Failure::usage(format!(
                "bad duration unit in {text:?} (ms, s, m, h)"
            )));
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_json(descriptor: &MessageDescriptor, text: &str) -> Outcome<DynamicMessage> {
    let mut de = serde_json::Deserializer::from_str(text);
    let message = DynamicMessage::deserialize(descriptor.clone(), &mut de)
        .map_err(|e| Failure::usage(format!("bad JSON for {}: {e}", descriptor.full_name())))?;
    de.end()
        .map_err(|e| Failure::usage(format!("bad JSON for {}: {e}", descriptor.full_name())))?;
    Ok(message)
}

fn print_message(descriptor: &MessageDescriptor, raw: RawMessage, pretty: bool) -> Outcome {
    let message = DynamicMessage::decode(descriptor.clone(), raw.0.as_slice()).map_err(|e| {
        Failure::schema(format!(
            "the response is not a {}: {e}",
            descriptor.full_name()
        ))
    })?;
    let options = prost_reflect::SerializeOptions::new();
    let mut out = Vec::new();
    let result = if pretty {
        let mut ser = serde_json::Serializer::pretty(&mut out);
        message.serialize_with_options(&mut ser, &options)
    } else {
        let mut ser = serde_json::Serializer::new(&mut out);
        message.serialize_with_options(&mut ser, &options)
    };
    result.map_err(|e| Failure::schema(format!("cannot print the response: {e}")))?;
    out.push(b'\n');
    emit(&out)
}

/// Writes to stdout; a reader that went away (`| head`) ends the program quietly.
fn emit(bytes: &[u8]) -> Outcome {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::usage(format!("cannot write the output: {e}"))),
    }
}

async fn read_requests(
    descriptor: &MessageDescriptor,
    data: Option<&str>,
    streaming: bool,
) -> Outcome<Vec<DynamicMessage>> {
    let text = match data {
        Some("-") | None if streaming || data == Some("-") => {
            use tokio::io::AsyncReadExt;
            let mut text = String::new();
            tokio::io::stdin()
                .read_to_string(&mut text)
                .await
                .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
            text
        }
        Some(d) if d.starts_with('@') => String::from_utf8(read_file(&d[1..])?)
            .map_err(|_| Failure::usage("the request file is not UTF-8"))?,
        Some(d) => d.to_owned(),
        None => "{}".to_owned(),
    };
    if streaming || data == Some("-") {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_json(descriptor, l))
            .collect()
    } else {
        Ok(vec![parse_json(descriptor, &text)?])
    }
}

/// With `-v`, the trailers and the final status of a successful call.
fn print_end(verbose: bool, trailers: Option<&rgrpc::MetadataMap>) {
    if verbose {
        if let Some(t) = trailers {
            print_metadata("< trailer", t);
        }
        eprintln!("< grpc-status: OK");
    }
}

fn print_metadata(label: &str, metadata: &rgrpc::MetadataMap) {
    for (key, value) in metadata.iter() {
        eprintln!("{label} {key}: {}", String::from_utf8_lossy(value));
    }
}

#[allow(clippy::too_many_arguments)]
async fn call(
    conn: &Conn,
    method: &str,
    data: Option<&str>,
    timeout: Option<&str>,
    verbose: bool,
) -> Outcome {
    let (service, name) = split_method(method)?;
    let channel = channel(conn).await?;
    let pool = schema(conn, &channel, &[service]).await?;
    let svc = pool
        .get_service_by_name(service)
        .ok_or_else(|| Failure::schema(format!("no service {service}")))?;
    let method: MethodDescriptor = svc
        .methods()
        .find(|m| m.name() == name)
        .ok_or_else(|| Failure::schema(format!("no method {name} in {service}")))?;
    let requests = read_requests(&method.input(), data, method.is_client_streaming()).await?;
    let path: rgrpc::codegen::PathAndQuery = format!("/{service}/{name}")
        .parse()
        .map_err(|_| Failure::usage("bad method path"))?;
    let metadata = rgrpc::MetadataMap::new();
    let timeout = timeout.map(parse_duration).transpose()?;
    fn decorate<T>(
        message: T,
        metadata: &rgrpc::MetadataMap,
        timeout: Option<Duration>,
    ) -> Request<T> {
        let mut request = Request::new(message);
        *request.metadata_mut() = metadata.clone();
        if let Some(t) = timeout {
            request.set_timeout(t);
        }
        request
    }
    let with_streams =
        |messages: Vec<DynamicMessage>| decorate(rgrpc::stream::iter(messages), &metadata, timeout);
    let with = |message: DynamicMessage| decorate(message, &metadata, timeout);
    let pretty = std::io::stdout().is_terminal();
    let output = method.output();
    // A method that takes one message gets the first given, or an empty one.
    let single = |requests: Vec<DynamicMessage>| {
        requests
            .into_iter()
            .next()
            .unwrap_or_else(|| DynamicMessage::new(method.input()))
    };
    match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) | (true, false) => {
            let response = if method.is_client_streaming() {
                channel
                    .client_streaming::<_, DynamicMessage, RawMessage>(path, with_streams(requests))
                    .await
            } else {
                let message = single(requests);
                channel
                    .unary::<DynamicMessage, RawMessage>(path, with(message))
                    .await
            }
            .map_err(|s| Failure::status(&s, &channel))?;
            if verbose {
                print_metadata("<", response.metadata());
            }
            let trailers = response.trailers().clone();
            print_message(&output, response.into_inner(), pretty)?;
            print_end(verbose, Some(&trailers));
            Ok(())
        }
        (client_streaming, true) => {
            let response = if client_streaming {
                channel
                    .streaming::<_, DynamicMessage, RawMessage>(path, with_streams(requests))
                    .await
            } else {
                let message = single(requests);
                channel
                    .server_streaming::<DynamicMessage, RawMessage>(path, with(message))
                    .await
            }
            .map_err(|s| Failure::status(&s, &channel))?;
            if verbose {
                print_metadata("<", response.metadata());
            }
            let mut stream = response.into_inner();
            while let Some(message) = stream
                .message()
                .await
                .map_err(|s| Failure::status(&s, &channel))?
            {
                print_message(&output, message, pretty)?;
            }
            print_end(verbose, stream.trailers());
            Ok(())
        }
    }
}

async fn health(conn: &Conn, service: Option<&str>) -> Outcome {
    use rgrpc_health::pb::{HealthCheckRequest, HealthClient};
    let channel = channel(conn).await?;
    let client = HealthClient::new(channel.clone());
    let request = HealthCheckRequest {
        service: service.unwrap_or_default().to_owned(),
    };
    let response = client
        .check(request)
        .await
        .map_err(|s| Failure::status(&s, &channel))?;
    let status = response.into_inner().status();
    println!("{}", status.as_str_name());
    if status == rgrpc_health::ServingStatus::Serving {
        Ok(())
    } else {
        Err(Failure {
            code: 5,
            message: String::new(),
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    rgrpc_xds::init();
    let outcome = match &cli.command {
        Command::List { conn, service } => list(conn, service.as_deref()).await,
        Command::Describe { conn, symbol } => describe(conn, symbol).await,
        Command::Call {
            conn,
            method,
            data,
            timeout,
            verbose,
        } => call(conn, method, data.as_deref(), timeout.as_deref(), *verbose).await,
        Command::Health { conn, service } => health(conn, service.as_deref()).await,
        Command::Bench(args) => bench::bench(args).await,
        Command::Xds {
            target,
            timeout,
            format,
        } => xds(target, timeout, format).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("ERROR: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

/// `rgrpc xds`: resolves `target`, waits until the channel has a config (or failed to get one)
/// and every requested resource has an answer, then prints what the xDS clients hold.
async fn xds(target: &str, timeout: &str, format: &str) -> Outcome {
    use rgrpc::client::ConnectivityState;
    if !target.starts_with("xds:") {
        return Err(Failure::usage(format!("{target} is not an xds: target")));
    }
    if format != "text" && format != "json" {
        return Err(Failure::usage(format!(
            "--format {format}: expected text or json"
        )));
    }
    let limit = parse_duration(timeout)?;
    let channel = Channel::builder(target)
        .and_then(rgrpc::client::Builder::connect_lazy)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let settled = async {
        let mut state = channel.state(true);
        loop {
            let answered = !rgrpc_xds::dump()
                .await
                .iter()
                .any(|r| r.status == "requested");
            let configured = matches!(
                state,
                ConnectivityState::Ready | ConnectivityState::TransientFailure
            );
            if answered && configured {
                return;
            }
            tokio::select! {
                s = channel.wait_for_state_change(state) => state = s,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    };
    let in_time = tokio::time::timeout(limit, settled).await.is_ok();
    let mut resources = rgrpc_xds::dump().await;
    // In the order of the chain: listener, routes, clusters, endpoints.
    let rank = |t: &str| {
        [
            "Listener",
            "RouteConfiguration",
            "Cluster",
            "ClusterLoadAssignment",
        ]
        .iter()
        .position(|k| t.ends_with(&format!(".{k}")))
        .unwrap_or(4)
    };
    resources.sort_by(|a, b| (rank(&a.type_url), &a.name).cmp(&(rank(&b.type_url), &b.name)));
    if format == "json" {
        let list: Vec<serde_json::Value> = resources
            .iter()
            .map(|r| {
                serde_json::json!({
                    "typeUrl": r.type_url,
                    "name": r.name,
                    "version": r.version,
                    "status": r.status,
                    "error": r.error,
                    "summary": r.summary,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for r in &resources {
            let kind = r.type_url.rsplit('.').next().unwrap_or(&r.type_url);
            let version = if r.version.is_empty() {
                "-"
            } else {
                &r.version
            };
            println!("{kind:<22} {:<40} {version:<10} {}", r.name, r.status);
            if let Some(e) = &r.error {
                println!("    error: {e}");
            }
            if !r.summary.is_empty() {
                println!("    {}", r.summary);
            }
        }
    }
    if resources.is_empty() {
        return Err(Failure::connect(format!(
            "{target}: no xDS resources after {timeout}"
        )));
    }
    if !in_time {
        eprintln!("WARNING: not every resource was answered within {timeout}");
    }
    Ok(())
}
