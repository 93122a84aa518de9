//! Heap allocations per unary call, counted by a counting global allocator, for rgrpc and tonic,
//! server and client apart:
//!
//! - the server runs on threads of its own, and its handler notes how many allocations its
//!   thread has made so far, so the server's count per call is the growth of that note;
//! - the client runs on the main thread's current-thread runtime (its connection driver too), so
//!   its count per call is the growth of the main thread's count.
//!
//! Calls are sequential, after a warm-up, with the Greeter's tiny request and reply.
//!
//! `cargo run --release --bin allocs [CALLS]` (bench/run.sh runs it too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

mod ours {
    include!(concat!(env!("OUT_DIR"), "/rgrpc/helloworld.rs"));
}
mod theirs {
    include!(concat!(env!("OUT_DIR"), "/tonic/helloworld.rs"));
}

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts allocations (and reallocations, which may move) per thread.
struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; the count is a
// const-initialised thread-local, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn here() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// The server thread's count as its handler last saw it.
static SERVER_SEEN: AtomicU64 = AtomicU64::new(0);

struct Ours;
impl ours::Greeter for Ours {
    async fn say_hello(
        &self,
        request: rgrpc::Request<ours::HelloRequest>,
    ) -> Result<rgrpc::Response<ours::HelloReply>, rgrpc::Status> {
        SERVER_SEEN.store(here(), Ordering::Relaxed);
        Ok(rgrpc::Response::new(ours::HelloReply {
            message: format!("Hello {}", request.into_inner().name),
        }))
    }
}

struct Theirs;
#[tonic::async_trait]
impl theirs::greeter_server::Greeter for Theirs {
    async fn say_hello(
        &self,
        request: tonic::Request<theirs::HelloRequest>,
    ) -> Result<tonic::Response<theirs::HelloReply>, tonic::Status> {
        SERVER_SEEN.store(here(), Ordering::Relaxed);
        Ok(tonic::Response::new(theirs::HelloReply {
            message: format!("Hello {}", request.into_inner().name),
        }))
    }
}

/// On the calling thread's own current-thread runtime: connects with `connect`, makes
/// `calls` sequential calls after a warm-up; (server, client) allocations per call.
fn measure<C, CF, F, Fut>(calls: u64, connect: CF, call: F) -> (f64, f64)
where
    CF: Future<Output = C>,
    F: Fn(&C) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = connect.await;
        for _ in 0..calls / 5 + 100 {
            call(&client).await;
        }
        let (server0, client0) = (SERVER_SEEN.load(Ordering::Relaxed), here());
        for _ in 0..calls {
            call(&client).await;
        }
        let (server1, client1) = (SERVER_SEEN.load(Ordering::Relaxed), here());
        (
            (server1 - server0) as f64 / calls as f64,
            (client1 - client0) as f64 / calls as f64,
        )
    })
}

/// Serves `serve` on a thread of its own with a current-thread runtime; returns the address.
fn spawn_server<F, Fut>(serve: F) -> String
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            serve(listener).await;
        });
    });
    rx.recv().unwrap()
}

fn main() {
    let calls: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    // rgrpc's server uses one worker thread of its own (its default on one core).
    let ours_addr = spawn_server(|listener| async move {
        rgrpc::Server::builder()
            .worker_threads(1)
            .add_service(ours::GreeterServer::new(Ours))
            .serve_with_listener(listener, std::future::pending())
            .await
            .unwrap();
    });
    let theirs_addr = spawn_server(|listener| async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(theirs::greeter_server::GreeterServer::new(Theirs))
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });

    let ours_result = measure(
        calls,
        async {
            ours::GreeterClient::connect(&format!("http://{ours_addr}"))
                .await
                .unwrap()
        },
        |client| {
            let client = client.clone();
            async move {
                let name = "world".to_owned();
                client.say_hello(ours::HelloRequest { name }).await.unwrap();
            }
        },
    );
    let theirs_result = measure(
        calls,
        async {
            theirs::greeter_client::GreeterClient::connect(format!("http://{theirs_addr}"))
                .await
                .unwrap()
        },
        |client| {
            let mut client = client.clone();
            async move {
                let name = "world".to_owned();
                client
                    .say_hello(theirs::HelloRequest { name })
                    .await
                    .unwrap();
            }
        },
    );
    println!("allocations per unary call ({calls} sequential calls after a warm-up):");
    println!("{:<8} {:>10} {:>10}", "", "server", "client");
    println!(
        "{:<8} {:>10.1} {:>10.1}",
        "rgrpc", ours_result.0, ours_result.1
    );
    println!(
        "{:<8} {:>10.1} {:>10.1}",
        "tonic", theirs_result.0, theirs_result.1
    );
    println!(
        "rgrpc/tonic: server {:.2}, client {:.2}",
        ours_result.0 / theirs_result.0,
        ours_result.1 / theirs_result.1
    );
}
