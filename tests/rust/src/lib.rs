//! Generated code for the end-to-end tests, a test implementation of each service, and a helper
//! that runs a server on a free loopback port and stops it.

#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rgrpc::{Code, Request, Response, ResponseStream, Status, Streaming};
use tokio::sync::{Notify, oneshot};

pub mod certs;

/// HTTP/2 bytes for tests that write frames themselves.
pub mod raw {
    /// The client connection preface.
    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    /// One frame: the 9-byte header for `payload`, then the payload.
    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }
}

pub mod echo {
    rgrpc::include_proto!("test.echo");
}
pub mod common {
    rgrpc::include_proto!("test.common");
}
pub mod kitchen {
    rgrpc::include_proto!("test.kitchen");
}
pub mod legacy {
    rgrpc::include_proto!("test.legacy");
}
pub mod nopackage {
    rgrpc::include_proto!("_");
}
pub mod collide {
    rgrpc::include_proto!("test.collide");
}

use echo::{EchoRequest, EchoResponse};

/// What the test service saw, for assertions from the test side.
#[derive(Debug, Default)]
pub struct Observed {
    /// Calls whose cancellation the handler's context reported.
    pub cancelled: AtomicUsize,
    pub cancel_seen: Notify,
    /// Messages a streaming handler has produced so far.
    pub produced: AtomicUsize,
    /// Unary and client-streaming calls received (every attempt of a retried call counts).
    pub attempts: AtomicUsize,
    /// The time each attempt had left by its grpc-timeout, as the server saw it.
    pub time_left: std::sync::Mutex<Vec<Duration>>,
    /// Calls that have reached a handler, of any method.
    pub started: AtomicUsize,
    pub started_seen: Notify,
}

impl Observed {
    fn start(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.started_seen.notify_waiters();
    }

    /// Waits until `n` calls have reached a handler (at most 10 s, then panics), so that a test
    /// acts once the server holds the call rather than after a guessed sleep.
    pub async fn wait_for_started(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            // Registered before the check, so that a start between the two is not missed.
            let started = self.started_seen.notified();
            if self.started.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::timeout_at(deadline, started)
                .await
                .expect("calls never reached the server's handler");
        }
    }
}

/// The `Echo` service of `echo.proto`.
#[derive(Debug, Clone, Default)]
pub struct EchoService {
    pub observed: Arc<Observed>,
    /// Sent back as `x-server-id` on unary calls, to tell servers apart.
    pub server_id: Option<String>,
}

fn reply(req: &EchoRequest, index: u32) -> EchoResponse {
    EchoResponse {
        message: req.message.clone(),
        padding: vec![0xab; req.reply_size as usize],
        index,
    }
}

/// The retry tests' failures: while the attempt is below `fail_until_attempt`.
fn check_attempt(req: &EchoRequest, previous: u32) -> Result<(), Status> {
    if req.fail_until_attempt == 0 || previous + 1 >= req.fail_until_attempt {
        return Ok(());
    }
    let code = if req.fail_code > 0 {
        Code::from_i32(req.fail_code)
    } else {
        Code::Unavailable
    };
    let status = Status::new(code, format!("attempt {} fails", previous + 1));
    Err(match req.pushback_ms {
        0 => status,
        n if n < 0 => status.with_retry_pushback(None),
        n => status.with_retry_pushback(Some(Duration::from_millis(n as u64))),
    })
}

fn check_fail(req: &EchoRequest) -> Result<(), Status> {
    if req.fail_until_attempt > 0 {
        return Ok(());
    }
    if req.fail_code > 0 {
        return Err(Status::new(
            Code::from_i32(req.fail_code),
            req.message.clone(),
        ));
    }
    Ok(())
}

impl echo::Echo for EchoService {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        self.observed.start();
        let echo_header = request.metadata().get("x-echo").map(str::to_owned);
        let was_compressed = request.message_compressed();
        let request_peer = request.context().peer_addr();
        let peer_cert = request
            .context()
            .peer_certificates()
            .map(|chain| chain.len().to_string());
        let previous = request.context().previous_attempts();
        self.observed.attempts.fetch_add(1, Ordering::SeqCst);
        if let Some(left) = request.context().time_remaining() {
            self.observed.time_left.lock().unwrap().push(left);
        }
        let req = request.into_inner();
        check_fail(&req)?;
        check_attempt(&req, previous)?;
        if req.delay_ms > 0 && (req.delay_attempts == 0 || previous < req.delay_attempts) {
            tokio::time::sleep(Duration::from_millis(req.delay_ms.into())).await;
        }
        let mut response = Response::new(reply(&req, previous));
        // As in the streaming methods, a negative fail_code chooses compression: -1 asks for the
        // reply uncompressed, -2 for it compressed, whatever the server's default.
        match req.fail_code {
            -1 => response.set_compressed(false),
            -2 => response.set_compressed(true),
            _ => {}
        }
        if let Some(addr) = request_peer {
            response
                .metadata_mut()
                .insert("x-peer-port", &addr.port().to_string())
                .unwrap();
        }
        if let Some(n) = peer_cert {
            response.metadata_mut().insert("x-peer-certs", &n).unwrap();
        }
        if was_compressed {
            response
                .metadata_mut()
                .insert("x-request-compressed", "true")
                .unwrap();
        }
        if let Some(id) = &self.server_id {
            response.metadata_mut().insert("x-server-id", id).unwrap();
        }
        if let Some(v) = echo_header {
            response.metadata_mut().insert("x-echo", &v).unwrap();
            response
                .trailers_mut()
                .insert("x-echo-trailer", &v)
                .unwrap();
        }
        Ok(response)
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Status> {
        self.observed.start();
        let previous = request.context().previous_attempts();
        self.observed.attempts.fetch_add(1, Ordering::SeqCst);
        let req = request.into_inner();
        check_fail(&req)?;
        check_attempt(&req, previous)?;
        let (tx, stream) = ResponseStream::channel(4);
        let observed = self.observed.clone();
        tokio::spawn(async move {
            for i in 0..req.count {
                if req.delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(req.delay_ms.into())).await;
                }
                // With fail_code -1, even messages ask for compression and odd ones opt out.
                let mut message = rgrpc::Outgoing::new(reply(&req, i));
                if req.fail_code == -1 {
                    message = message.compressed(i % 2 == 0);
                }
                if tx.send(message).await.is_err() {
                    return;
                }
                observed.produced.fetch_add(1, Ordering::SeqCst);
            }
        });
        Ok(Response::new(stream))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Status> {
        self.observed.start();
        let previous = request.context().previous_attempts();
        self.observed.attempts.fetch_add(1, Ordering::SeqCst);
        let mut requests = request.into_inner();
        let mut joined = Vec::new();
        let mut last = None;
        while let Some(req) = requests.message().await? {
            check_fail(&req)?;
            if req.delay_ms > 0 {
                // A slow reader, for the flow-control tests.
                tokio::time::sleep(Duration::from_millis(req.delay_ms.into())).await;
            }
            joined.push(req.message.clone());
            last = Some(req);
        }
        // A retried stream fails after it was read whole, so a replay must send all of it.
        if let Some(req) = &last {
            check_attempt(req, previous)?;
        }
        Ok(Response::new(EchoResponse {
            message: joined.join(","),
            padding: Vec::new(),
            index: joined.len() as u32,
        }))
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Status> {
        self.observed.start();
        let previous = request.context().previous_attempts();
        let mut requests = request.into_inner();
        // A retry test's request fails the call before any response: read it first.
        let mut first = None;
        let fails = |req: &EchoRequest| req.fail_until_attempt > 0;
        if let Some(req) = requests.message().await? {
            if fails(&req) {
                self.observed.attempts.fetch_add(1, Ordering::SeqCst);
                check_attempt(&req, previous)?;
            }
            first = Some(req);
        }
        let (tx, stream) = ResponseStream::channel(1);
        tokio::spawn(async move {
            let mut i = 0;
            loop {
                let next = match first.take() {
                    Some(req) => Ok(Some(req)),
                    None => requests.message().await,
                };
                match next {
                    Ok(Some(req)) => {
                        if let Err(status) = check_fail(&req) {
                            tx.fail(status).await;
                            return;
                        }
                        if tx.send(reply(&req, i)).await.is_err() {
                            return;
                        }
                        i += 1;
                    }
                    Ok(None) => return,
                    Err(status) => {
                        tx.fail(status).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn wait_for_cancel(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<EchoResponse>, Status> {
        self.observed.start();
        let token = request.context().cancellation_token();
        let observed = self.observed.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            observed.cancelled.fetch_add(1, Ordering::SeqCst);
            observed.cancel_seen.notify_waiters();
        });
        std::future::pending().await
    }
}

/// The `Counter` service: counts calls.
#[derive(Debug, Default)]
pub struct CounterService {
    calls: AtomicUsize,
}

impl echo::Counter for CounterService {
    async fn count(&self, _: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Response::new(EchoResponse {
            index: n as u32,
            ..Default::default()
        }))
    }
}

/// A server on a free loopback port, stopped gracefully on drop of its shutdown sender.
#[derive(Debug)]
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), rgrpc::Error>>>,
}

impl TestServer {
    /// Serves `builder` on `bind` (use `127.0.0.1:0` for a free port).
    pub async fn start_on(builder: rgrpc::server::Builder, bind: &str) -> TestServer {
        let listener = tokio::net::TcpListener::bind(bind).await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(builder.serve_with_listener(listener, async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub async fn start(builder: rgrpc::server::Builder) -> TestServer {
        TestServer::start_on(builder, "127.0.0.1:0").await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Begins graceful shutdown and waits until the server has stopped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .expect("server stops")
                .expect("server task")
                .expect("server result");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// The Echo and Counter services on one server.
pub fn echo_server(service: EchoService) -> rgrpc::server::Builder {
    rgrpc::Server::builder()
        .add_service(echo::EchoServer::new(service))
        .add_service(echo::CounterServer::new(CounterService::default()))
}
