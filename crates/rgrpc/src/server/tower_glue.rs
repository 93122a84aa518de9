//! Glue between the server and `tower` (feature `tower`): existing layers (load shedding,
//! concurrency and rate limits, or your own) run around every call, before its handler.
//!
//! A layer wraps [`Dispatch`], a `tower::Service` of [`TowerRequest`]s that runs the routed
//! method and resolves to the code the call ended with. A layer that refuses a call before it
//! reaches `Dispatch` (an overloaded load shedder, say) ends it with that error as the status:
//! a [`Status`] error is sent as it is, anything else as UNAVAILABLE with the error's text. A layer
//! that abandons a call already running (a timeout) ends it with CANCELLED; deadlines are better
//! set by clients with `grpc-timeout`.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tower_service::Service as TowerService;

use super::{BoxFuture, ServerCall, Service};
use crate::status::{Code, Status};

/// One call as a `tower` request.
pub struct TowerRequest {
    call: Arc<Mutex<Option<ServerCall>>>,
    service: Arc<dyn Service>,
    method: usize,
    path: Arc<str>,
}

impl TowerRequest {
    /// `/package.Service/Method`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Debug for TowerRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerRequest")
            .field("path", &self.path)
            .finish()
    }
}

/// The innermost `tower` service: runs the routed method.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dispatch;

impl TowerService<TowerRequest> for Dispatch {
    type Response = Code;
    type Error = Infallible;
    type Future = BoxFuture<Result<Code, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: TowerRequest) -> Self::Future {
        let taken = take(&request.call);
        Box::pin(async move {
            match taken {
                Some(call) => Ok(request.service.call(request.method, call).await),
                None => Ok(Code::Cancelled),
            }
        })
    }
}

fn take(slot: &Mutex<Option<ServerCall>>) -> Option<ServerCall> {
    // The slot is only ever taken whole; a poisoned lock still holds a consistent Option.
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// A layered service, type-erased for the server: makes each connection's copy of it. The
/// layered service need not be `Sync`, so the server's one copy sits behind a lock, taken once
/// per connection; calls clone the connection's copy, which only the connection's task touches.
pub(crate) type Layered = Arc<dyn Fn() -> ConnectionLayer + Send + Sync>;

/// One connection's copy of the layered service; makes each call's.
pub(crate) type ConnectionLayer = Box<dyn Fn() -> CallLayer + Send>;

/// One call through the layers.
pub(crate) type CallLayer =
    Box<dyn FnOnce(ServerCall, Arc<dyn Service>, usize, &str) -> BoxFuture<Code> + Send>;

/// Erases `layer` applied to [`Dispatch`].
pub(crate) fn erase<L>(layer: L) -> Layered
where
    L: tower_layer::Layer<Dispatch>,
    L::Service: TowerService<TowerRequest, Response = Code> + Clone + Send + 'static,
    <L::Service as TowerService<TowerRequest>>::Future: Send + 'static,
    <L::Service as TowerService<TowerRequest>>::Error: Into<Box<dyn StdError + Send + Sync>> + Send,
{
    let service = Mutex::new(layer.layer(Dispatch));
    Arc::new(move || {
        let connection = service.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Box::new(move || {
            let service = connection.clone();
            Box::new(move |call, routed, method, path| {
                per_call(service, call, routed, method, path)
            })
        })
    })
}

fn per_call<S>(
    mut service: S,
    call: ServerCall,
    routed: Arc<dyn Service>,
    method: usize,
    path: &str,
) -> BoxFuture<Code>
where
    S: TowerService<TowerRequest, Response = Code> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>> + Send,
{
    let slot = Arc::new(Mutex::new(Some(call)));
    let request = TowerRequest {
        call: slot.clone(),
        service: routed,
        method,
        path: Arc::from(path),
    };
    Box::pin(async move {
        let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
        let result = match ready {
            Ok(()) => service.call(request).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(code) => code,
            Err(err) => {
                let err: Box<dyn StdError + Send + Sync> = err.into();
                let status = match err.downcast::<Status>() {
                    Ok(status) => *status,
                    Err(other) => Status::unavailable(other.to_string()),
                };
                // Answer only if the call never reached its handler.
                match take(&slot) {
                    Some(mut call) => {
                        super::respond_status(&mut call.respond, &status);
                        status.code()
                    }
                    None => Code::Cancelled,
                }
            }
        }
    })
}
