//! `conformance-server`: the server under test of the Connect conformance suite
//! (`connectconformance --mode server`). It reads a `ServerCompatRequest` on stdin, starts an rgrpc
//! server on a free loopback port as the request asks (TLS, client certificates, a receive limit),
//! answers with a `ServerCompatResponse` on stdout, and serves `ConformanceService` until SIGTERM
//! or Ctrl-C.
//!
//! Each method answers as its request's response definition says and echoes what it saw of the
//! call (headers, deadline, the requests) in the first response, or in the error's details when
//! the call fails before any response.

use std::time::Duration;

use prost_types::Any;
use rgrpc::server::Context;
use rgrpc::{
    Certificate, Identity, MetadataMap, Request, Response, ResponseStream, Server, ServerTlsConfig,
    Status, StreamSender, Streaming,
};
use rgrpc_interop::compat::{self, add_headers, headers_of, pack, status_of};
use rgrpc_interop::conformance::{
    self as pb, BidiStreamRequest, BidiStreamResponse, ClientStreamRequest, ClientStreamResponse,
    ConformancePayload, IdempotentUnaryRequest, IdempotentUnaryResponse, ServerCompatRequest,
    ServerCompatResponse, ServerStreamRequest, ServerStreamResponse, StreamResponseDefinition,
    UnaryRequest, UnaryResponse, UnaryResponseDefinition, UnimplementedRequest,
    UnimplementedResponse, conformance_payload::RequestInfo,
};

struct Conformance;

/// What the server saw of a call, to echo back.
fn request_info(metadata: &MetadataMap, context: &Context, requests: Vec<Any>) -> RequestInfo {
    RequestInfo {
        request_headers: headers_of(metadata),
        timeout_ms: context
            .time_remaining()
            .map(|left| i64::try_from(left.as_millis()).unwrap_or(i64::MAX)),
        requests,
        connect_get_info: None,
    }
}

fn invalid(e: String) -> Status {
    Status::invalid_argument(e)
}

fn delay(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
}

/// The answer of a call with one response, as its definition says: the payload with the request
/// info, or the error with the request info in its details. On error, the definition's headers
/// and trailers travel with the status (a trailers-only response).
async fn answer_one(
    definition: Option<UnaryResponseDefinition>,
    info: RequestInfo,
) -> Result<Response<ConformancePayload>, Status> {
    let Some(definition) = definition else {
        return Ok(Response::new(ConformancePayload {
            data: Vec::new(),
            request_info: Some(info),
        }));
    };
    if let Some(wait) = delay(definition.response_delay_ms) {
        tokio::time::sleep(wait).await;
    }
    use pb::unary_response_definition::Response as Answer;
    match definition.response {
        Some(Answer::Error(error)) => {
            let mut status = status_of(&error, Some(pack("ConformancePayload.RequestInfo", &info)));
            add_headers(status.metadata_mut(), &definition.response_headers).map_err(invalid)?;
            add_headers(status.metadata_mut(), &definition.response_trailers).map_err(invalid)?;
            Err(status)
        }
        answer => {
            let data = match answer {
                Some(Answer::ResponseData(data)) => data,
                _ => Vec::new(),
            };
            let mut response = Response::new(ConformancePayload {
                data,
                request_info: Some(info),
            });
            add_headers(response.metadata_mut(), &definition.response_headers).map_err(invalid)?;
            add_headers(response.trailers_mut(), &definition.response_trailers).map_err(invalid)?;
            Ok(response)
        }
    }
}

/// A streaming response with the definition's headers and trailers, fed by the returned sender.
fn stream_response<T: Send + 'static>(
    definition: Option<&StreamResponseDefinition>,
) -> Result<(StreamSender<T>, Response<ResponseStream<T>>), Status> {
    let (tx, stream) = ResponseStream::channel(1);
    let mut response = Response::new(stream);
    if let Some(definition) = definition {
        add_headers(response.metadata_mut(), &definition.response_headers).map_err(invalid)?;
        add_headers(response.trailers_mut(), &definition.response_trailers).map_err(invalid)?;
    }
    Ok((tx, response))
}

/// Sends the definition's responses from number `first` on, each after the definition's delay,
/// the first of all carrying `info`; then ends with the definition's error, if any, with `info`
/// in its details when no response was sent at all.
async fn send_rest<T: prost::Message>(
    definition: &StreamResponseDefinition,
    first: usize,
    mut info: Option<RequestInfo>,
    tx: StreamSender<T>,
    wrap: impl Fn(ConformancePayload) -> T,
) {
    for data in definition.response_data.iter().skip(first) {
        if let Some(wait) = delay(definition.response_delay_ms) {
            tokio::time::sleep(wait).await;
        }
        let payload = ConformancePayload {
            data: data.clone(),
            request_info: info.take(),
        };
        if tx.send(wrap(payload)).await.is_err() {
            return;
        }
    }
    if let Some(error) = &definition.error {
        let sent_none = first == 0 && definition.response_data.is_empty();
        let extra = info
            .filter(|_| sent_none)
            .map(|info| pack("ConformancePayload.RequestInfo", &info));
        tx.fail(status_of(error, extra)).await;
    }
}

impl pb::ConformanceService for Conformance {
    async fn unary(
        &self,
        request: Request<UnaryRequest>,
    ) -> Result<Response<UnaryResponse>, Status> {
        let (metadata, message, context) = request.into_parts();
        let info = request_info(&metadata, &context, vec![pack("UnaryRequest", &message)]);
        let response = answer_one(message.response_definition, info).await?;
        Ok(response.map(|payload| UnaryResponse {
            payload: Some(payload),
        }))
    }

    async fn idempotent_unary(
        &self,
        request: Request<IdempotentUnaryRequest>,
    ) -> Result<Response<IdempotentUnaryResponse>, Status> {
        let (metadata, message, context) = request.into_parts();
        let info = request_info(
            &metadata,
            &context,
            vec![pack("IdempotentUnaryRequest", &message)],
        );
        let response = answer_one(message.response_definition, info).await?;
        Ok(response.map(|payload| IdempotentUnaryResponse {
            payload: Some(payload),
        }))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<ClientStreamRequest>>,
    ) -> Result<Response<ClientStreamResponse>, Status> {
        let (metadata, mut requests, context) = request.into_parts();
        let mut seen = Vec::new();
        let mut definition = None;
        while let Some(message) = requests.message().await? {
            if seen.is_empty() {
                definition = message.response_definition.clone();
            }
            seen.push(pack("ClientStreamRequest", &message));
        }
        let info = request_info(&metadata, &context, seen);
        let response = answer_one(definition, info).await?;
        Ok(response.map(|payload| ClientStreamResponse {
            payload: Some(payload),
        }))
    }

    async fn server_stream(
        &self,
        request: Request<ServerStreamRequest>,
    ) -> Result<Response<ResponseStream<ServerStreamResponse>>, Status> {
        let (metadata, message, context) = request.into_parts();
        let info = request_info(
            &metadata,
            &context,
            vec![pack("ServerStreamRequest", &message)],
        );
        let definition = message.response_definition;
        let (tx, response) = stream_response(definition.as_ref())?;
        if let Some(definition) = definition {
            tokio::spawn(async move {
                send_rest(&definition, 0, Some(info), tx, |payload| {
                    ServerStreamResponse {
                        payload: Some(payload),
                    }
                })
                .await;
            });
        }
        Ok(response)
    }

    async fn bidi_stream(
        &self,
        request: Request<Streaming<BidiStreamRequest>>,
    ) -> Result<Response<ResponseStream<BidiStreamResponse>>, Status> {
        let (metadata, mut requests, context) = request.into_parts();
        let wrap = |payload| BidiStreamResponse {
            payload: Some(payload),
        };
        let Some(first) = requests.message().await? else {
            // No request, so no definition: an empty, successful stream.
            return Ok(stream_response(None)?.1);
        };
        let definition = first.response_definition.clone();
        let mut seen = vec![pack("BidiStreamRequest", &first)];
        if !first.full_duplex {
            // Half duplex: everything in, then everything out.
            while let Some(message) = requests.message().await? {
                seen.push(pack("BidiStreamRequest", &message));
            }
            let info = request_info(&metadata, &context, seen);
            let (tx, response) = stream_response(definition.as_ref())?;
            if let Some(definition) = definition {
                tokio::spawn(async move { send_rest(&definition, 0, Some(info), tx, wrap).await });
            }
            return Ok(response);
        }
        // Full duplex: one response per request, each echoing the requests since the last one.
        let (tx, response) = stream_response(definition.as_ref())?;
        let definition = definition.unwrap_or_default();
        let mut info = Some(request_info(&metadata, &context, Vec::new()));
        tokio::spawn(async move {
            let mut sent = 0;
            loop {
                if sent >= definition.response_data.len() {
                    break;
                }
                let mut echo = info.take().unwrap_or_default();
                echo.requests = std::mem::take(&mut seen);
                if let Some(wait) = delay(definition.response_delay_ms) {
                    tokio::time::sleep(wait).await;
                }
                let payload = ConformancePayload {
                    data: definition.response_data[sent].clone(),
                    request_info: Some(echo),
                };
                if tx.send(wrap(payload)).await.is_err() {
                    return;
                }
                sent += 1;
                match requests.message().await {
                    Ok(Some(message)) => seen.push(pack("BidiStreamRequest", &message)),
                    Ok(None) => break,
                    Err(status) => return tx.fail(status).await,
                }
            }
            // The client stopped sending, or asked for more than there is to send: what remains
            // goes out now, then the error (the first request's info in it if nothing went out).
            let rest_info = info.map(|mut i| {
                i.requests = seen;
                i
            });
            send_rest(&definition, sent, rest_info, tx, wrap).await;
        });
        Ok(response)
    }

    async fn unimplemented(
        &self,
        _request: Request<UnimplementedRequest>,
    ) -> Result<Response<UnimplementedResponse>, Status> {
        Err(Status::unimplemented(
            "ConformanceService.Unimplemented is not implemented, on purpose",
        ))
    }
}

fn fail(message: String) -> ! {
    eprintln!("conformance-server: {message}");
    std::process::exit(1);
}

fn main() {
    let mut stdin = std::io::stdin().lock();
    let request: ServerCompatRequest = match compat::read_delimited(&mut stdin) {
        Ok(Some(r)) => r,
        Ok(None) => fail("no ServerCompatRequest on stdin".into()),
        Err(e) => fail(format!("cannot read the ServerCompatRequest: {e}")),
    };
    drop(stdin);
    let runtime = tokio::runtime::Runtime::new()
        .unwrap_or_else(|e| fail(format!("cannot start a runtime: {e}")));
    runtime.block_on(serve(request));
}

async fn serve(request: ServerCompatRequest) {
    let mut server = Server::builder().add_service(pb::ConformanceServiceServer::new(Conformance));
    if request.message_receive_limit > 0 {
        server = server.max_recv_message_size(request.message_receive_limit as usize);
    }
    let mut pem_cert = Vec::new();
    if request.use_tls {
        let creds = request
            .server_creds
            .unwrap_or_else(|| fail("use_tls without server_creds".into()));
        let identity = Identity::from_pem(&creds.cert, &creds.key)
            .unwrap_or_else(|e| fail(format!("bad server credentials: {e}")));
        let mut tls = ServerTlsConfig::new(identity);
        if !request.client_tls_cert.is_empty() {
            let ca = Certificate::from_pem(&request.client_tls_cert)
                .unwrap_or_else(|e| fail(format!("bad client certificate: {e}")));
            tls = tls.client_ca_root(ca);
        }
        server = server.tls_config(tls);
        pem_cert = creds.cert;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen: {e}")));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| fail(format!("no local address: {e}")))
        .port();
    let answer = ServerCompatResponse {
        host: "127.0.0.1".into(),
        port: u32::from(port),
        pem_cert,
    };
    if let Err(e) = compat::write_delimited(&mut std::io::stdout().lock(), &answer) {
        fail(format!("cannot write the ServerCompatResponse: {e}"));
    }
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    if let Err(e) = server.serve_with_listener(listener, stop).await {
        fail(format!("{e}"));
    }
}
