//! `conformance-client`: the client under test of the Connect conformance suite
//! (`connectconformance --mode client`). It reads `ClientCompatRequest`s on stdin, makes each call
//! with rgrpc's client against the suite's reference server, and writes a `ClientCompatResponse`
//! for each on stdout (in the order the calls finish, which the suite allows). At the end of
//! stdin it waits for the calls in flight, then exits.
//!
//! A call the test asks to cancel carries a `CancellationToken` (`Request::set_cancellation_token`),
//! cancelled at the point the test names while the program goes on as if nothing happened, so
//! that the call's own reads report the cancellation.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use rgrpc::client::Request;
use rgrpc::codegen::PathAndQuery;
use rgrpc::{
    Certificate, Channel, ClientTlsConfig, Encoding, Identity, MetadataMap, Status, Streaming,
};
use rgrpc_interop::compat::{self, add_headers, error_of, headers_of, unpack};
use rgrpc_interop::conformance::{
    self as pb, BidiStreamRequest, BidiStreamResponse, ClientCompatRequest, ClientCompatResponse,
    ClientErrorResult, ClientResponseResult, ClientStreamRequest, ClientStreamResponse,
    ConformancePayload, IdempotentUnaryRequest, IdempotentUnaryResponse, ServerStreamRequest,
    ServerStreamResponse, StreamType, UnaryRequest, UnaryResponse, UnimplementedRequest,
    UnimplementedResponse, client_compat_request::cancel::CancelTiming,
    client_compat_response::Result as Outcome,
};

const SERVICE: &str = "connectrpc.conformance.v1.ConformanceService";
/// Calls in flight at once.
const PARALLEL: usize = 16;

/// When the test asks the client to cancel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cancel {
    Never,
    BeforeCloseSend,
    AfterCloseSend(Duration),
    AfterResponses(usize),
}

/// Cancels the call's token at the point the test names.
#[derive(Clone)]
struct Canceller {
    when: Cancel,
    token: rgrpc::CancellationToken,
}

impl Canceller {
    /// Just before the client says it has sent everything.
    fn before_close(&self) {
        if self.when == Cancel::BeforeCloseSend {
            self.token.cancel();
        }
    }

    /// Just after the client said it has sent everything: after the test's delay, in the
    /// background.
    fn after_close(&self) {
        if let Cancel::AfterCloseSend(after) = self.when {
            let token = self.token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                token.cancel();
            });
        }
    }

    /// After `received` responses have arrived.
    fn after_responses(&self, received: usize) {
        if self.when == Cancel::AfterResponses(received) {
            self.token.cancel();
        }
    }
}

/// What the call showed, as the suite's result records it.
#[derive(Default)]
struct Seen {
    headers: Vec<pb::Header>,
    payloads: Vec<ConformancePayload>,
    error: Option<pb::Error>,
    trailers: Vec<pb::Header>,
    unsent: usize,
}

impl Seen {
    /// The call ended with `status`; its metadata is the trailers (for a single-response call,
    /// headers and trailers together, as rgrpc hands them over on error).
    fn failed(&mut self, status: &Status) {
        self.error = Some(error_of(status));
        self.trailers = headers_of(status.metadata());
    }

    fn result(self) -> ClientResponseResult {
        ClientResponseResult {
            response_headers: self.headers,
            payloads: self.payloads,
            error: self.error,
            response_trailers: self.trailers,
            num_unsent_requests: i32::try_from(self.unsent).unwrap_or(i32::MAX),
            http_status_code: None,
            feedback: Vec::new(),
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| {
        eprintln!("conformance-client: cannot start a runtime: {e}");
        std::process::exit(1);
    });
    runtime.block_on(run());
}

async fn run() {
    let (tx, mut requests) = tokio::sync::mpsc::channel::<ClientCompatRequest>(PARALLEL);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            match compat::read_delimited(&mut stdin) {
                Ok(Some(request)) => {
                    if tx.blocking_send(request).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    eprintln!("conformance-client: bad input: {e}");
                    return;
                }
            }
        }
    });
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut calls = tokio::task::JoinSet::new();
    while let Some(request) = requests.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let out = out.clone();
        calls.spawn(async move {
            let test_name = request.test_name.clone();
            let result = match call(request).await {
                Ok(seen) => Outcome::Response(seen.result()),
                Err(message) => Outcome::Error(ClientErrorResult { message }),
            };
            let answer = ClientCompatResponse {
                test_name,
                result: Some(result),
            };
            let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = compat::write_delimited(&mut *out, &answer) {
                eprintln!("conformance-client: cannot write a result: {e}");
                std::process::exit(1);
            }
            drop(slot);
        });
    }
    while calls.join_next().await.is_some() {}
}

/// A channel to the server the request names, with its TLS, limit and compression.
fn channel(request: &ClientCompatRequest) -> Result<Channel, String> {
    let target = format!("http://{}:{}", request.host, request.port);
    let mut builder = Channel::builder(&target).map_err(|e| e.to_string())?;
    if !request.server_tls_cert.is_empty() {
        let ca = Certificate::from_pem(&request.server_tls_cert).map_err(|e| e.to_string())?;
        let mut tls = ClientTlsConfig::new().ca_certificate(ca);
        if let Some(creds) = &request.client_tls_creds {
            let identity =
                Identity::from_pem(&creds.cert, &creds.key).map_err(|e| e.to_string())?;
            tls = tls.identity(identity);
        }
        builder = builder.tls_config(tls).map_err(|e| e.to_string())?;
    }
    if request.message_receive_limit > 0 {
        builder = builder.max_recv_message_size(request.message_receive_limit as usize);
    }
    use pb::Compression as C;
    let encoding = match request.compression() {
        C::Unspecified | C::Identity => None,
        C::Gzip => Some(Encoding::Gzip),
        C::Deflate => Some(Encoding::Deflate),
        C::Zstd => Some(Encoding::Zstd),
        other => return Err(format!("compression {other:?} is not supported")),
    };
    if let Some(encoding) = encoding {
        builder = builder.send_compressed(encoding);
    }
    builder.connect_lazy().map_err(|e| e.to_string())
}

/// The request the test describes around `message`: its headers, its timeout and the token
/// that cancels it.
fn request<T>(
    message: T,
    test: &ClientCompatRequest,
    cancel: &Canceller,
) -> Result<Request<T>, String> {
    let mut request = Request::new(message);
    request.set_cancellation_token(cancel.token.clone());
    add_headers(request.metadata_mut(), &test.request_headers)?;
    if let Some(ms) = test.timeout_ms {
        request.set_timeout(Duration::from_millis(u64::from(ms)));
    }
    Ok(request)
}

/// The test's request messages, unpacked as `name`.
fn messages<M: Message + Default>(
    test: &ClientCompatRequest,
    name: &str,
) -> Result<Vec<M>, String> {
    test.request_messages
        .iter()
        .map(|any| unpack(any, name))
        .collect()
}

fn single<M: Message + Default>(test: &ClientCompatRequest, name: &str) -> Result<M, String> {
    let mut all = messages(test, name)?;
    if all.len() != 1 {
        return Err(format!(
            "a {name} call takes one request message, the test gives {}",
            all.len()
        ));
    }
    Ok(all.remove(0))
}

async fn call(test: ClientCompatRequest) -> Result<Seen, String> {
    if test.protocol() != pb::Protocol::Grpc {
        return Err(format!("protocol {:?} is not supported", test.protocol()));
    }
    if !matches!(test.codec(), pb::Codec::Proto | pb::Codec::Unspecified) {
        return Err(format!("codec {:?} is not supported", test.codec()));
    }
    if let Some(service) = &test.service
        && service != SERVICE
    {
        return Err(format!("unknown service {service}"));
    }
    let cancel = match test.cancel.as_ref().and_then(|c| c.cancel_timing.as_ref()) {
        None => Cancel::Never,
        Some(CancelTiming::BeforeCloseSend(())) => Cancel::BeforeCloseSend,
        Some(CancelTiming::AfterCloseSendMs(ms)) => {
            Cancel::AfterCloseSend(Duration::from_millis(u64::from(*ms)))
        }
        Some(CancelTiming::AfterNumResponses(n)) => Cancel::AfterResponses(*n as usize),
    };
    let cancel = Canceller {
        when: cancel,
        token: rgrpc::CancellationToken::new(),
    };
    let channel = channel(&test)?;
    let method = test.method.clone().unwrap_or_default();
    let path = |name: &'static str| PathAndQuery::from_static(name);
    match (method.as_str(), test.stream_type()) {
        ("Unary", StreamType::Unary) => {
            let message = single::<UnaryRequest>(&test, "UnaryRequest")?;
            let call = channel.unary::<_, UnaryResponse>(
                path("/connectrpc.conformance.v1.ConformanceService/Unary"),
                request(message, &test, &cancel)?,
            );
            Ok(one_response(call, &cancel, |r| r.payload).await)
        }
        ("IdempotentUnary", StreamType::Unary) => {
            let message = single::<IdempotentUnaryRequest>(&test, "IdempotentUnaryRequest")?;
            let call = channel.unary::<_, IdempotentUnaryResponse>(
                path("/connectrpc.conformance.v1.ConformanceService/IdempotentUnary"),
                request(message, &test, &cancel)?,
            );
            Ok(one_response(call, &cancel, |r| r.payload).await)
        }
        ("Unimplemented", StreamType::Unary) => {
            let message = single::<UnimplementedRequest>(&test, "UnimplementedRequest")?;
            let call = channel.unary::<_, UnimplementedResponse>(
                path("/connectrpc.conformance.v1.ConformanceService/Unimplemented"),
                request(message, &test, &cancel)?,
            );
            Ok(one_response(call, &cancel, |_| None).await)
        }
        ("ClientStream", StreamType::ClientStream) => client_stream(&channel, &test, &cancel).await,
        ("ServerStream", StreamType::ServerStream) => server_stream(&channel, &test, &cancel).await,
        ("BidiStream", StreamType::HalfDuplexBidiStream) => {
            bidi(&channel, &test, &cancel, false).await
        }
        ("BidiStream", StreamType::FullDuplexBidiStream) => {
            bidi(&channel, &test, &cancel, true).await
        }
        (method, stream_type) => Err(format!(
            "no method {method:?} of stream type {stream_type:?} in {SERVICE}"
        )),
    }
}

/// Waits for a call with one response (its request already complete), cancelling it where the
/// test says.
async fn one_response<R>(
    call: impl Future<Output = Result<rgrpc::client::Response<R>, Status>>,
    cancel: &Canceller,
    payload: impl Fn(R) -> Option<ConformancePayload>,
) -> Seen {
    cancel.before_close();
    cancel.after_close();
    seen_of(call.await, payload)
}

fn seen_of<R>(
    result: Result<rgrpc::client::Response<R>, Status>,
    payload: impl Fn(R) -> Option<ConformancePayload>,
) -> Seen {
    let mut seen = Seen::default();
    match result {
        Ok(response) => {
            let (headers, message, trailers) = response.into_parts();
            seen.headers = headers_of(&headers);
            seen.payloads.push(payload(message).unwrap_or_default());
            seen.trailers = headers_of(&trailers);
        }
        Err(status) => seen.failed(&status),
    }
    seen
}

/// Sends `messages` into a request stream, each after the test's delay; stops at the first that
/// cannot be sent (the call is over) and counts it and the rest as unsent.
async fn send_all<M>(
    tx: &rgrpc::stream::Sender<M>,
    messages: Vec<M>,
    test: &ClientCompatRequest,
) -> usize {
    let total = messages.len();
    for (i, message) in messages.into_iter().enumerate() {
        if test.request_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(u64::from(test.request_delay_ms))).await;
        }
        if tx.send(message).await.is_err() {
            return total - i;
        }
    }
    0
}

async fn client_stream(
    channel: &Channel,
    test: &ClientCompatRequest,
    cancel: &Canceller,
) -> Result<Seen, String> {
    let messages = messages::<ClientStreamRequest>(test, "ClientStreamRequest")?;
    let (tx, rx) = rgrpc::stream::channel(1);
    let call = {
        let channel = channel.clone();
        let request = request(rx, test, cancel)?;
        // The call runs on its own, so that it opens and reads while this task sends.
        tokio::spawn(async move {
            channel
                .client_streaming::<_, ClientStreamRequest, ClientStreamResponse>(
                    PathAndQuery::from_static(
                        "/connectrpc.conformance.v1.ConformanceService/ClientStream",
                    ),
                    request,
                )
                .await
        })
    };
    let unsent = send_all(&tx, messages, test).await;
    cancel.before_close();
    drop(tx);
    cancel.after_close();
    let result = call
        .await
        .unwrap_or_else(|e| Err(Status::unknown(format!("the call panicked: {e}"))));
    let mut seen = seen_of(result, |r| r.payload);
    seen.unsent = unsent;
    Ok(seen)
}

/// Reads the responses of a stream into `seen` until it ends or fails, cancelling where the test
/// says (the read after that reports it).
async fn receive<R: Message + Default>(
    stream: &mut Streaming<R>,
    seen: &mut Seen,
    cancel: &Canceller,
    payload: impl Fn(R) -> Option<ConformancePayload>,
) -> Result<(), Status> {
    loop {
        cancel.after_responses(seen.payloads.len());
        match stream.message().await? {
            Some(message) => seen.payloads.push(payload(message).unwrap_or_default()),
            None => return Ok(()),
        }
    }
}

/// Ends a streaming call: records the headers and trailers, or the error.
async fn finish<R: Message + Default>(
    stream: &mut Streaming<R>,
    seen: &mut Seen,
    result: Result<(), Status>,
    headers: Option<&MetadataMap>,
) {
    if seen.headers.is_empty() {
        let headers = match headers {
            Some(h) => Some(h.clone()),
            // By now the stream has ended, failed or been cancelled, so this does not wait.
            None => stream.headers().await.ok().flatten().cloned(),
        };
        seen.headers = headers.as_ref().map(headers_of).unwrap_or_default();
    }
    match result {
        Ok(()) => seen.trailers = stream.trailers().map(headers_of).unwrap_or_default(),
        Err(status) => seen.failed(&status),
    }
}

async fn server_stream(
    channel: &Channel,
    test: &ClientCompatRequest,
    cancel: &Canceller,
) -> Result<Seen, String> {
    let message = single::<ServerStreamRequest>(test, "ServerStreamRequest")?;
    let call = channel.server_streaming::<_, ServerStreamResponse>(
        PathAndQuery::from_static("/connectrpc.conformance.v1.ConformanceService/ServerStream"),
        request(message, test, cancel)?,
    );
    let mut seen = Seen::default();
    // The one request goes out whole: the request side is closed as the call starts.
    cancel.before_close();
    cancel.after_close();
    let (headers, mut stream, _) = match call.await {
        Ok(response) => response.into_parts(),
        Err(status) => {
            seen.failed(&status);
            return Ok(seen);
        }
    };
    let result = receive(&mut stream, &mut seen, cancel, |r| r.payload).await;
    finish(&mut stream, &mut seen, result, Some(&headers)).await;
    Ok(seen)
}

async fn bidi(
    channel: &Channel,
    test: &ClientCompatRequest,
    cancel: &Canceller,
    full_duplex: bool,
) -> Result<Seen, String> {
    let messages = messages::<BidiStreamRequest>(test, "BidiStreamRequest")?;
    let (tx, rx) = rgrpc::stream::channel(1);
    let mut seen = Seen::default();
    let response = channel
        .streaming::<_, BidiStreamRequest, BidiStreamResponse>(
            PathAndQuery::from_static("/connectrpc.conformance.v1.ConformanceService/BidiStream"),
            request(rx, test, cancel)?,
        )
        .await;
    let mut stream = match response {
        Ok(response) => response.into_inner(),
        Err(status) => {
            seen.failed(&status);
            return Ok(seen);
        }
    };
    let payload = |r: BidiStreamResponse| r.payload;
    if full_duplex {
        // One request, then one response, in turn.
        let total = messages.len();
        for (i, message) in messages.into_iter().enumerate() {
            if send_all(&tx, vec![message], test).await > 0 {
                seen.unsent = total - i;
                break;
            }
            cancel.after_responses(seen.payloads.len());
            match stream.message().await {
                Ok(Some(message)) => seen.payloads.push(payload(message).unwrap_or_default()),
                Ok(None) => {
                    seen.unsent = total - i - 1;
                    break;
                }
                Err(status) => {
                    seen.unsent = total - i - 1;
                    finish(&mut stream, &mut seen, Err(status), None).await;
                    return Ok(seen);
                }
            }
        }
    } else {
        seen.unsent = send_all(&tx, messages, test).await;
    }
    cancel.before_close();
    drop(tx);
    cancel.after_close();
    let result = receive(&mut stream, &mut seen, cancel, payload).await;
    finish(&mut stream, &mut seen, result, None).await;
    Ok(seen)
}
