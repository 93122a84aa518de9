//! Client-side health checking (gRFC A17): on each connection of a subchannel whose balancer
//! asks for it, a `grpc.health.v1.Health/Watch` stream for the service config's
//! `healthCheckConfig.serviceName`. The subchannel is READY only while the server says SERVING.
//!
//! A server without the health service (UNIMPLEMENTED) counts as healthy. A Watch that fails
//! otherwise is opened again after a backoff, the subchannel unhealthy meanwhile. This module
//! watches; the subchannel decides what the answers mean for its state.

use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, header};

use super::backoff::{Backoff, BackoffConfig};
use crate::codec::RecvEncoding;
use crate::framing::FrameWriter;
use crate::status::{Code, Status};
use crate::streaming::{ClientSide, Streaming};

/// What a health check needs: the service to ask about, and the head of its calls.
#[derive(Debug)]
pub(crate) struct HealthCheck {
    pub(crate) service: String,
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    pub(crate) user_agent: String,
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`; `status` is its ServingStatus enum.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

const SERVING: i32 = 1;

/// What the server said about the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// SERVING, or no health service at all.
    Serving,
    /// Anything else, with why.
    NotServing(String),
}

/// Watches until the connection is gone, telling `report` every change.
pub(crate) async fn watch(
    send: SendRequest<Bytes>,
    check: &HealthCheck,
    mut report: impl FnMut(Health) + Send,
) {
    let mut backoff = Backoff::new(BackoffConfig::default());
    loop {
        let mut answered = false;
        let outcome = watch_once(send.clone(), check, &mut |health| {
            answered = true;
            report(health);
        })
        .await;
        match outcome {
            Err(status) if status.code() == Code::Unimplemented => {
                tracing::debug!(service = %check.service,
                    "the server has no health service; treating it as healthy");
                report(Health::Serving);
                return std::future::pending().await;
            }
            Err(status) => {
                tracing::debug!(service = %check.service, %status, "health watch failed");
                report(Health::NotServing(format!(
                    "health check of {:?} failed: {}: {}",
                    check.service,
                    status.code(),
                    status.message()
                )));
            }
            Ok(()) => report(Health::NotServing(format!(
                "the health watch of {:?} ended",
                check.service
            ))),
        }
        if answered {
            backoff.reset();
        }
        tokio::time::sleep(backoff.next_delay().max(Duration::from_millis(1))).await;
    }
}

/// One Watch stream, reporting each answer; returns when it ends.
async fn watch_once(
    mut send: SendRequest<Bytes>,
    check: &HealthCheck,
    report: &mut (dyn FnMut(Health) + Send),
) -> Result<(), Status> {
    let path = PathAndQuery::from_static("/grpc.health.v1.Health/Watch");
    let mut request =
        crate::client::call::attempt::grpc_request(&check.scheme, &check.authority, path)?;
    if let Ok(agent) = HeaderValue::from_str(&check.user_agent) {
        request.headers_mut().insert(header::USER_AGENT, agent);
    }
    send = send.ready().await.map_err(Status::from_h2)?;
    let (response, mut body) = send.send_request(request, false).map_err(Status::from_h2)?;
    let message = HealthCheckRequest {
        service: check.service.clone(),
    };
    let frame = crate::codec::encode(
        &mut FrameWriter::new(),
        &message,
        usize::MAX,
        crate::codec::Encoding::Identity,
    )?;
    body.send_data(frame, true).map_err(Status::from_h2)?;
    let head = crate::client::call::attempt::read_head(response.await.map_err(Status::from_h2)?)?;
    let side = ClientSide {
        cancel: None,
        deadline: None,
        sender: None,
        send_error: None,
        on_end: None,
        active: None,
    };
    let encoding: RecvEncoding = head.encoding;
    let mut answers: Streaming<HealthCheckResponse> =
        Streaming::client(head.body, 64 * 1024, encoding, side, head.trailers_only);
    while let Some(answer) = answers.message().await? {
        report(if answer.status == SERVING {
            Health::Serving
        } else {
            let name = match answer.status {
                0 => "UNKNOWN",
                2 => "NOT_SERVING",
                3 => "SERVICE_UNKNOWN",
                _ => "an unknown status",
            };
            Health::NotServing(format!("health check: {:?} is {name}", check.service))
        });
    }
    Ok(())
}
