//! The standard gRPC health service, `grpc.health.v1.Health`, for rgrpc servers.
//!
//! ```no_run
//! # async fn run() -> Result<(), rgrpc::Error> {
//! let (reporter, health) = rgrpc_health::service();
//! reporter.set_serving("helloworld.Greeter");
//! let shutdown = reporter.clone();
//! rgrpc::Server::builder()
//!     .add_service(health)
//!     // Tell checkers we are going away as soon as shutdown starts.
//!     .on_shutdown(move || shutdown.set_all_not_serving())
//!     .serve("[::]:50051")
//!     .await
//! # }
//! ```
//!
//! `Check` answers the current status, or NOT_FOUND for an unknown service; `Watch` streams the
//! current status and then every change (SERVICE_UNKNOWN for a service not known yet, and an
//! update if it is registered later). The empty service name stands for the whole server and is
//! SERVING from the start.

#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rgrpc::{Request, Response, ResponseStream, Status};
use tokio::sync::watch;

/// Generated code of `grpc.health.v1`, clients included. Checked in and compared with a fresh
/// generation by `tests/generated.rs`.
#[allow(missing_docs)]
pub mod pb {
    include!("generated/grpc.health.v1.rs");
}

/// The encoded file descriptor set of the health proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("generated/health.bin");

pub use pb::health_check_response::ServingStatus;

type Statuses = Arc<Mutex<HashMap<String, watch::Sender<ServingStatus>>>>;

/// Sets the status of services; cheap to clone, every clone changes the same table.
#[derive(Debug, Clone)]
pub struct HealthReporter {
    statuses: Statuses,
}

/// The health service to register with a server.
#[derive(Debug, Clone)]
pub struct HealthService {
    statuses: Statuses,
}

/// A reporter and the service it drives.
pub fn service() -> (HealthReporter, pb::HealthServer<HealthService>) {
    let statuses: Statuses = Arc::default();
    let reporter = HealthReporter {
        statuses: statuses.clone(),
    };
    reporter.set_serving("");
    (reporter, pb::HealthServer::new(HealthService { statuses }))
}

fn lock(
    statuses: &Statuses,
) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<ServingStatus>>> {
    // Every update leaves the table whole, so a poisoned lock is still usable.
    statuses.lock().unwrap_or_else(|p| p.into_inner())
}

impl HealthReporter {
    /// Sets a service's status; watchers hear about a change.
    pub fn set_status(&self, service: &str, status: ServingStatus) {
        let mut table = lock(&self.statuses);
        match table.get(service) {
            Some(tx) => {
                tx.send_if_modified(|current| {
                    let changed = *current != status;
                    *current = status;
                    changed
                });
            }
            None => {
                table.insert(service.to_owned(), watch::channel(status).0);
            }
        }
    }

    /// Marks a service SERVING.
    pub fn set_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::Serving);
    }

    /// Marks a service NOT_SERVING.
    pub fn set_not_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::NotServing);
    }

    /// Marks every known service, and the server as a whole, NOT_SERVING (on shutdown).
    pub fn set_all_not_serving(&self) {
        let names: Vec<String> = lock(&self.statuses).keys().cloned().collect();
        for name in names {
            self.set_not_serving(&name);
        }
    }

    /// Forgets a service: Check answers NOT_FOUND for it again.
    pub fn clear(&self, service: &str) {
        if let Some(tx) = lock(&self.statuses).remove(service) {
            tx.send_replace(ServingStatus::ServiceUnknown);
        }
    }
}

impl HealthService {
    /// A receiver for a service's status, creating an entry (SERVICE_UNKNOWN) that a later
    /// `set_status` fills in, so that a watcher can wait for a service not registered yet.
    fn subscribe(&self, service: &str) -> watch::Receiver<ServingStatus> {
        lock(&self.statuses)
            .entry(service.to_owned())
            .or_insert_with(|| watch::channel(ServingStatus::ServiceUnknown).0)
            .subscribe()
    }
}

impl pb::Health for HealthService {
    async fn check(
        &self,
        request: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<pb::HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        let status = lock(&self.statuses)
            .get(&service)
            .map(|tx| *tx.borrow())
            .filter(|s| *s != ServingStatus::ServiceUnknown);
        match status {
            Some(status) => Ok(Response::new(pb::HealthCheckResponse {
                status: status as i32,
            })),
            None => Err(Status::not_found(format!("unknown service {service:?}"))),
        }
    }

    async fn watch(
        &self,
        request: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<ResponseStream<pb::HealthCheckResponse>>, Status> {
        let mut rx = self.subscribe(&request.get_ref().service);
        let (tx, stream) = ResponseStream::channel(1);
        tokio::spawn(async move {
            loop {
                let status = *rx.borrow_and_update();
                let message = pb::HealthCheckResponse {
                    status: status as i32,
                };
                if tx.send(message).await.is_err() || rx.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}
