//! The server: a builder with limits, services registered by name, and the accept loop.
//!
//! One task per connection drives HTTP/2; one task per call runs the handler. Routing is by
//! `:path`. Graceful shutdown sends GOAWAY, stops accepting, lets in-flight calls finish for a
//! grace period and then cancels them. TLS sessions are configured in `transport/`; this module
//! only runs their handshake, per connection.

mod call;
mod conn;
mod context;
mod interceptor;
mod message;
mod router;
#[cfg(feature = "tower")]
mod tower_glue;
mod workers;
pub use workers::live_worker_tasks;

pub use call::{ResponseStream, ServerCall, StreamSender};
pub use context::Context;
pub use interceptor::{CallInfo, Interceptor};
pub use message::{Request, Response};
#[cfg(feature = "tower")]
pub use tower_glue::{Dispatch, TowerRequest};

pub(crate) use call::{bidi_streaming, client_streaming, server_streaming, unary};
pub(crate) use conn::respond_status;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::Encoding;
use crate::error::{Error, Kind};
use crate::http2::settings::*;
use crate::transport::listen::{Accept, TcpAccept, UnixAccept, bind_tcp};
use router::Router;

/// A future a service returns for one call.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A gRPC service the server can route calls to. Generated code implements it; users rarely do.
pub trait Service: Send + Sync + 'static {
    /// Fully qualified name, e.g. `helloworld.Greeter`.
    fn name(&self) -> &'static str;
    /// Method names as they appear in `:path`, e.g. `SayHello`.
    fn methods(&self) -> &'static [&'static str];
    /// Runs one call of the method at `method` in [`Service::methods`], to the code it ended
    /// with.
    fn call(&self, method: usize, call: ServerCall) -> BoxFuture<crate::Code>;
}

/// One connection of a server built by [`Builder::into_shared`], for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) async fn conn_for_fuzzing(
    io: tokio::io::DuplexStream,
    shared: Arc<Shared>,
    draining: tokio::sync::watch::Receiver<bool>,
) {
    conn::serve_accepted(io, None, shared, draining).await;
}

/// Entry point: `Server::builder()`.
#[derive(Debug)]
pub struct Server(());

impl Server {
    /// A builder with the default limits and no services.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// Limits and settings of a server.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub(crate) max_recv_message: usize,
    pub(crate) max_send_message: usize,
    pub(crate) max_concurrent_streams: u32,
    pub(crate) max_header_list_size: u32,
    pub(crate) stream_window: u32,
    pub(crate) connection_window: u32,
    pub(crate) max_frame_size: u32,
    pub(crate) handshake_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) send_compressed: Option<Encoding>,
    pub(crate) keepalive: Option<crate::KeepaliveConfig>,
    pub(crate) ping_policy: crate::http2::enforce::Policy,
    pub(crate) max_connections: Option<usize>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_connection_age: Option<Duration>,
    /// Worker threads; 0 serves on the caller's runtime.
    pub(crate) workers: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_recv_message: DEFAULT_MAX_RECV_MESSAGE,
            max_send_message: DEFAULT_MAX_SEND_MESSAGE,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
            stream_window: DEFAULT_STREAM_WINDOW,
            connection_window: DEFAULT_CONNECTION_WINDOW,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            send_compressed: None,
            keepalive: None,
            ping_policy: crate::http2::enforce::Policy::default(),
            max_connections: None,
            idle_timeout: None,
            max_connection_age: None,
            workers: workers::default_count(),
        }
    }
}

/// What every connection and call of one server shares.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(crate) router: Router,
    /// Cancelled when the grace period after shutdown has passed.
    pub(crate) force: CancellationToken,
    pub(crate) tasks: TaskTracker,
    pub(crate) interceptors: Vec<Box<dyn Interceptor>>,
    #[cfg(feature = "tower")]
    pub(crate) layered: Option<tower_glue::Layered>,
}

/// Builds a server: limits, then services, then `serve*`.
#[derive(Default)]
pub struct Builder {
    config: ServerConfig,
    router: Router,
    interceptors: Vec<Box<dyn Interceptor>>,
    on_shutdown: Vec<Box<dyn FnOnce() + Send>>,
    #[cfg(feature = "tower")]
    layered: Option<tower_glue::Layered>,
    #[cfg(feature = "tls")]
    tls: Option<crate::transport::tls::ServerTlsConfig>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("services", &self.router.service_names().collect::<Vec<_>>())
            .finish()
    }
}

impl Builder {
    /// Largest message accepted (default 4 MiB); a larger one fails the call with
    /// `RESOURCE_EXHAUSTED` before it is buffered.
    pub fn max_recv_message_size(mut self, bytes: usize) -> Self {
        self.config.max_recv_message = bytes;
        self
    }

    /// Largest message sent (default: no limit); with a limit set, a handler returning a larger
    /// message fails its call with `RESOURCE_EXHAUSTED`.
    pub fn max_send_message_size(mut self, bytes: usize) -> Self {
        self.config.max_send_message = bytes;
        self
    }

    /// Calls a client may run at once on one connection (default 256).
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.config.max_concurrent_streams = streams;
        self
    }

    /// Largest header block accepted, HPACK-decoded (default 16 KiB).
    pub fn max_header_list_size(mut self, bytes: u32) -> Self {
        self.config.max_header_list_size = bytes;
        self
    }

    /// HTTP/2 receive window of each call (default 1 MiB).
    pub fn initial_stream_window_size(mut self, bytes: u32) -> Self {
        self.config.stream_window = bytes;
        self
    }

    /// HTTP/2 receive window of each connection (default 2 MiB): the most unread data a client
    /// can make the server hold per connection.
    pub fn initial_connection_window_size(mut self, bytes: u32) -> Self {
        self.config.connection_window = bytes;
        self
    }

    /// Largest HTTP/2 frame accepted (default 16 KiB, the protocol minimum; at most 16 MiB - 1).
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.config.max_frame_size = bytes.clamp(16 * 1024, (1 << 24) - 1);
        self
    }

    /// How long a new connection may take to complete the HTTP/2 handshake (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// How long in-flight calls may run after shutdown begins before they are cancelled
    /// (default 10 s).
    pub fn graceful_shutdown_timeout(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// Compresses responses with `encoding` when the client accepts it (default: responses are
    /// sent uncompressed unless a handler asks, with `Response::set_compressed` or
    /// `Outgoing::compressed`). Compressed requests are accepted in every built-in encoding
    /// either way.
    pub fn send_compressed(mut self, encoding: Encoding) -> Self {
        self.config.send_compressed = Some(encoding);
        self
    }

    /// Serves TLS (and mutual TLS, if the configuration names a client CA) with ALPN `h2`.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, tls: crate::transport::tls::ServerTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Pings each client every `time`; a connection whose PONG takes longer than `timeout` is
    /// closed, cancelling its calls. Off by default.
    pub fn keepalive(mut self, time: Duration, timeout: Duration) -> Self {
        self.config.keepalive = Some(crate::KeepaliveConfig::new(time, timeout));
        self
    }

    /// How often clients may PING (grpc-go's `KeepaliveEnforcementPolicy`; gRFC A8): while calls
    /// are open, no more often than every `min_time` (default 5 minutes); with none open, as
    /// often only if `permit_without_stream` (default false), else once per two hours. PINGs
    /// are forgiven whenever the server sends headers or data. The third PING too early closes
    /// the connection with GOAWAY `ENHANCE_YOUR_CALM` and the debug data `too_many_pings`, on
    /// which grpc clients double their keepalive time. `(Duration::ZERO, true)` turns it off.
    pub fn keepalive_enforcement(
        mut self,
        min_time: Duration,
        permit_without_stream: bool,
    ) -> Self {
        self.config.ping_policy = crate::http2::enforce::Policy {
            min_time,
            permit_without_stream,
        };
        self
    }

    /// Serves at most `n` connections at once; more wait in the listen backlog until one closes.
    /// No limit by default.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = Some(n.max(1));
        self
    }

    /// Closes a connection gracefully (GOAWAY) once it has had no call for at least `idle`.
    /// No limit by default.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.config.idle_timeout = Some(idle);
        self
    }

    /// Sends GOAWAY to a connection once it is `age` old, so that clients reconnect (and spread
    /// over new servers); its calls in flight may finish. No limit by default.
    pub fn max_connection_age(mut self, age: Duration) -> Self {
        self.config.max_connection_age = Some(age);
        self
    }

    /// Serves connections on `n` threads of the server's own, each a current-thread tokio
    /// runtime that runs its connections and their calls (default: one per core the process may
    /// run on). The runtime that calls `serve` only accepts. This is what makes a server under
    /// `#[tokio::main]` as fast as one tuned by hand: no call wakes a task on another thread.
    ///
    /// Handlers run on these threads, polled by their connection's task, so they must not call
    /// `tokio::task::block_in_place` (which needs the multi-thread runtime) and should hand long
    /// computation to `spawn_blocking`. `0` runs connections, and each call, as tasks on the
    /// caller's runtime instead, for programs that lay out their own threads.
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.config.workers = n;
        self
    }

    /// Runs `hook` when graceful shutdown begins, before connections are told to go away (to
    /// mark health NOT_SERVING, say).
    pub fn on_shutdown(mut self, hook: impl FnOnce() + Send + 'static) -> Self {
        self.on_shutdown.push(Box::new(hook));
        self
    }

    /// Runs every call through a `tower` layer (use `tower::ServiceBuilder` to stack several),
    /// after interceptors and before the handler. See [`Dispatch`] for how refusals become
    /// statuses.
    #[cfg(feature = "tower")]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower_layer::Layer<Dispatch>,
        L::Service:
            tower_service::Service<TowerRequest, Response = crate::Code> + Clone + Send + 'static,
        <L::Service as tower_service::Service<TowerRequest>>::Future: Send + 'static,
        <L::Service as tower_service::Service<TowerRequest>>::Error:
            Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        self.layered = Some(tower_glue::erase(layer));
        self
    }

    /// Adds an interceptor, run around every call in the order added.
    pub fn interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptors.push(Box::new(interceptor));
        self
    }

    /// Registers a service. Several services share the server's port.
    pub fn add_service<S: Service>(mut self, service: S) -> Self {
        self.router.add(Arc::new(service));
        self
    }

    /// Serves on `addr` (such as `"[::]:50051"` or `"127.0.0.1:0"`) until the process ends.
    pub async fn serve(self, addr: &str) -> Result<(), Error> {
        self.serve_with_shutdown(addr, std::future::pending()).await
    }

    /// Serves on `addr` until `signal` completes, then shuts down gracefully.
    pub async fn serve_with_shutdown(
        self,
        addr: &str,
        signal: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let listener = bind_tcp(addr).await?;
        self.serve_with_listener(listener, signal).await
    }

    /// Serves connections from a TCP listener the caller bound (port 0 gives a free port; read it
    /// with `local_addr`) until `signal` completes.
    pub async fn serve_with_listener(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        self.run(TcpAccept(listener), signal).await
    }

    /// Serves on a Unix domain socket at `path` until `signal` completes.
    pub async fn serve_unix(
        self,
        path: impl AsRef<Path>,
        signal: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let path = path.as_ref();
        let listener = UnixListener::bind(path).map_err(|e| {
            Error::new(Kind::Bind, format!("cannot listen on {}", path.display())).with_source(e)
        })?;
        self.run(UnixAccept(listener), signal).await
    }

    /// What every connection of this server shares, and the hooks to run at shutdown.
    #[allow(clippy::type_complexity)]
    pub(crate) fn into_shared(self) -> Result<(Arc<Shared>, Vec<Box<dyn FnOnce() + Send>>), Error> {
        #[cfg(feature = "tls")]
        let tls = self.tls.as_ref().map(|t| t.acceptor()).transpose()?;
        let shared = Arc::new(Shared {
            #[cfg(feature = "tls")]
            tls,
            config: self.config,
            router: self.router,
            force: CancellationToken::new(),
            tasks: TaskTracker::new(),
            interceptors: self.interceptors,
            #[cfg(feature = "tower")]
            layered: self.layered,
        });
        Ok((shared, self.on_shutdown))
    }

    async fn run<A: Accept>(
        self,
        listener: A,
        signal: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        let (shared, on_shutdown) = self.into_shared()?;
        let (draining_tx, draining) = tokio::sync::watch::channel(false);
        let slots = shared
            .config
            .max_connections
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
        let mut workers = match shared.config.workers {
            0 => None,
            n => Some(workers::Workers::start(n)?),
        };
        tokio::pin!(signal);
        loop {
            // At the connection limit, stop accepting until a connection closes.
            let slot = async {
                match &slots {
                    Some(s) => s.clone().acquire_owned().await.ok(),
                    None => None,
                }
            };
            let permit = tokio::select! {
                biased;
                () = &mut signal => break,
                permit = slot => permit,
            };
            tokio::select! {
                biased;
                () = &mut signal => break,
                accepted = listener.accept() => match accepted {
                    Ok((io, peer)) => {
                        let shared2 = shared.clone();
                        let draining = draining.clone();
                        match &mut workers {
                            None => {
                                shared.tasks.spawn(async move {
                                    conn::serve_accepted(io, peer, shared2, draining).await;
                                    drop(permit);
                                });
                            }
                            Some(workers) => {
                                let detached = match A::detach(io) {
                                    Ok(d) => d,
                                    Err(err) => {
                                        tracing::debug!(error = %err, "cannot hand over a connection");
                                        continue;
                                    }
                                };
                                // Counted from now, so that shutdown waits for it.
                                let token = shared.tasks.token();
                                workers.dispatch(move || async move {
                                    match A::attach(detached) {
                                        Ok(io) => conn::serve_accepted(io, peer, shared2, draining).await,
                                        Err(err) => tracing::debug!(error = %err, "cannot take over a connection"),
                                    }
                                    drop(permit);
                                    drop(token);
                                });
                            }
                        }
                    }
                    Err(err) => {
                        // Out of file descriptors and the like: back off briefly, keep serving.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
        drop(listener);
        for hook in on_shutdown {
            hook();
        }
        let _ = draining_tx.send(true);
        shared.tasks.close();
        let grace = shared.config.shutdown_grace;
        if tokio::time::timeout(grace, shared.tasks.wait())
            .await
            .is_err()
        {
            shared.force.cancel();
            shared.tasks.wait().await;
        }
        if let Some(workers) = workers {
            workers.stop().await;
        }
        Ok(())
    }
}
