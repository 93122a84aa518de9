//! One attempt of a call: pick a subchannel, open an HTTP/2 stream on its connection, send the
//! request head (with the time left of the call's deadline and the count of earlier attempts),
//! and check the response head.
//!
//! An attempt knows nothing of retry policies; it reports how it failed, so that `retry.rs`
//! and the call kinds can tell a call that never left the client from one the server refused
//! unprocessed and from one that really failed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::SendStream;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Uri, header};
use tokio::time::Instant;

use crate::client::balancer::Picked;
use crate::client::control::Shared;
use crate::client::subchannel::Transport;
use crate::codec::{Encoding, RecvEncoding};
use crate::metadata::names::{
    GRPC_ACCEPT_ENCODING, GRPC_ENCODING, GRPC_PREVIOUS_RPC_ATTEMPTS, GRPC_TIMEOUT,
};
use crate::metadata::{MetadataMap, format_timeout};
use crate::status::{Code, Status};

/// The parts of a request that shape every attempt's head.
pub(crate) struct CallHead {
    pub(crate) path: PathAndQuery,
    pub(crate) metadata: MetadataMap,
    pub(crate) deadline: Option<Instant>,
    pub(crate) wait_for_ready: bool,
    pub(crate) compression: Encoding,
    pub(crate) max_send: usize,
    pub(crate) max_recv: usize,
    /// Counts the call as in progress (for the idle timeout) while it lives.
    pub(crate) active: Option<crate::client::control::ActiveCall>,
    /// Ends the call with CANCELLED when cancelled.
    pub(crate) cancel: Option<tokio_util::sync::CancellationToken>,
    /// The cluster the config selector routed the call to, for the picker.
    pub(crate) cluster: Option<std::sync::Arc<str>>,
}

/// How an attempt failed.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// The picker failed the call: no attempt was made, and none should follow.
    Pick(Status),
    /// The stream never left the client (its connection was going away): another attempt is
    /// always safe.
    NotSent(Status),
    /// The server refused the stream unprocessed (REFUSED_STREAM, or above a GOAWAY's last
    /// stream): safe to send once more.
    Refused(Status),
    /// The attempt failed with this status.
    Failed(Status),
}

impl Opened {
    /// Tells the picker's hook that the attempt failed with `code`.
    pub(crate) fn failed(&mut self, code: Code) {
        if let Some(on_end) = self.picked.on_end.take() {
            on_end(&crate::client::balancer::CallEnd::new(code));
        }
    }
}

impl AttemptError {
    pub(crate) fn into_status(self) -> Status {
        match self {
            AttemptError::Pick(s)
            | AttemptError::NotSent(s)
            | AttemptError::Refused(s)
            | AttemptError::Failed(s) => s,
        }
    }
}

/// An open stream of one attempt: where the response comes from and where requests go.
pub(crate) struct Opened {
    pub(crate) response: h2::client::ResponseFuture,
    pub(crate) send: SendStream<Bytes>,
    pub(crate) transport: Arc<Transport>,
    pub(crate) picked: Picked,
}

/// Picks a subchannel and opens a stream with the request head. `previous` is the number of
/// earlier attempts, sent as `grpc-previous-rpc-attempts`.
pub(crate) async fn open(
    shared: &Arc<Shared>,
    head: &CallHead,
    previous: u32,
) -> Result<Opened, AttemptError> {
    let (picked, transport) = shared
        .pick(
            head.path.path(),
            &head.metadata,
            head.cluster.as_deref(),
            head.wait_for_ready,
        )
        .await
        .map_err(AttemptError::Pick)?;
    let not_sent = |err: h2::Error, transport: &Transport, picked: &Picked| {
        picked.subchannel.transport_failed(transport);
        AttemptError::NotSent(Status::from_h2(err))
    };
    let mut send = match transport.send.clone().ready().await {
        Ok(send) => send,
        Err(err) => return Err(not_sent(err, &transport, &picked)),
    };
    let request = request_head(shared, head, previous)?;
    match send.send_request(request, false) {
        Ok((response, send)) => Ok(Opened {
            response,
            send,
            transport,
            picked,
        }),
        Err(err) if err.is_go_away() || err.is_io() => Err(not_sent(err, &transport, &picked)),
        Err(err) => Err(AttemptError::Failed(Status::from_h2(err))),
    }
}

/// Sorts an error from a response future: refused-unprocessed, or a real failure.
pub(crate) fn response_error(
    err: h2::Error,
    picked: &Picked,
    transport: &Transport,
) -> AttemptError {
    if err.reason() == Some(h2::Reason::REFUSED_STREAM) {
        return AttemptError::Refused(Status::from_h2(err));
    }
    if err.is_go_away() && err.is_remote() {
        picked.subchannel.transport_failed(transport);
        return AttemptError::Refused(Status::from_h2(err));
    }
    AttemptError::Failed(Status::from_h2(err))
}

fn request_head(
    shared: &Shared,
    head: &CallHead,
    previous: u32,
) -> Result<http::Request<()>, AttemptError> {
    let mut request = grpc_request(&shared.scheme, &shared.authority, head.path.clone())
        .map_err(AttemptError::Pick)?;
    let headers = request.headers_mut();
    headers.insert(
        GRPC_ACCEPT_ENCODING,
        HeaderValue::from_static(Encoding::accept_header()),
    );
    if head.compression != Encoding::Identity {
        headers.insert(
            GRPC_ENCODING,
            HeaderValue::from_static(head.compression.name()),
        );
    }
    if let Some(deadline) = head.deadline {
        // Each attempt tells the server the time that remains, not the original timeout.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(AttemptError::Pick(Status::deadline_exceeded(
                "deadline exceeded",
            )));
        }
        // format_timeout yields ASCII digits and a unit letter.
        let timeout = format_timeout(left.max(Duration::from_nanos(1)));
        // The formatted text becomes the value's bytes without a copy.
        if let Ok(mut v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(timeout)) {
            // The value differs on nearly every call: marked never-indexed, it is sent as a
            // literal and does not churn the HPACK table (evicting the headers that repeat).
            v.set_sensitive(true);
            headers.insert(GRPC_TIMEOUT, v);
        }
    }
    if previous > 0 {
        headers.insert(GRPC_PREVIOUS_RPC_ATTEMPTS, HeaderValue::from(previous));
    }
    head.metadata.write_to(headers);
    // The caller's own user agent goes first, ours after it.
    let caller = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|user| format!("{user} {}", shared.config.user_agent));
    let agent = match caller {
        Some(agent) => HeaderValue::from_maybe_shared(bytes::Bytes::from(agent)).ok(),
        None => shared.user_agent.clone(),
    };
    if let Some(v) = agent {
        headers.insert(header::USER_AGENT, v);
    }
    Ok(request)
}

/// The head every gRPC request starts with: POST to the path, `application/grpc`, `te:
/// trailers`.
pub(crate) fn grpc_request(
    scheme: &http::uri::Scheme,
    authority: &http::uri::Authority,
    path: PathAndQuery,
) -> Result<http::Request<()>, Status> {
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(scheme.clone());
    uri.authority = Some(authority.clone());
    uri.path_and_query = Some(path);
    let uri = Uri::from_parts(uri).map_err(|e| Status::internal(format!("bad path: {e}")))?;
    let mut request = http::Request::new(());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    Ok(request)
}

/// What a checked response head holds.
pub(crate) struct ResponseHead {
    pub(crate) metadata: MetadataMap,
    pub(crate) encoding: RecvEncoding,
    pub(crate) body: h2::RecvStream,
    /// The status block of a Trailers-Only response with an OK status.
    pub(crate) trailers_only: Option<MetadataMap>,
    /// The picker's hook for the attempt this head belongs to.
    pub(crate) on_end: Option<crate::client::balancer::OnEnd>,
}

/// Checks a response head: HTTP status, content-type, and a Trailers-Only status.
pub(crate) fn read_head(response: http::Response<h2::RecvStream>) -> Result<ResponseHead, Status> {
    let (parts, body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        if let Some(Err(status)) = Status::from_trailers(&parts.headers) {
            return Err(status);
        }
        return Err(Status::new(
            Code::from_http_status(parts.status.as_u16()),
            format!(
                "server answered HTTP {} instead of a gRPC response",
                parts.status
            ),
        ));
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    if !content_type.is_some_and(|v| v.as_bytes().starts_with(b"application/grpc")) {
        return Err(Status::unknown(format!(
            "server answered with content-type {content_type:?}, not application/grpc"
        )));
    }
    let trailers_only = if body.is_end_stream() {
        match Status::from_trailers(&parts.headers) {
            Some(Ok(())) => Some(MetadataMap::from_headers(parts.headers.clone())),
            Some(Err(status)) => return Err(status),
            None => {
                return Err(Status::internal(
                    "server ended the response without a grpc-status",
                ));
            }
        }
    } else {
        None
    };
    let encoding =
        RecvEncoding::from_header(parts.headers.get(GRPC_ENCODING).map(|v| v.as_bytes()));
    Ok(ResponseHead {
        metadata: MetadataMap::from_headers(parts.headers),
        encoding,
        body,
        trailers_only,
        on_end: None,
    })
}
