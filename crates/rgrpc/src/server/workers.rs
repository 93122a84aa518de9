//! The server's own threads: one current-thread tokio runtime per worker, each serving the
//! connections handed to it from start to end, with the calls of those connections (handler
//! tasks are spawned on the worker that runs their connection).
//!
//! Why: on tokio's multi-thread runtime, what `#[tokio::main]` gives, a connection's driver and
//! its call tasks wake each other across threads and are stolen between them; on one pinned core
//! that costs about a third of the HTTP/2 engine's throughput and multiplies the tail latency
//! (figures in docs/ARCHITECTURE.md). A connection that lives on one current-thread runtime pays
//! none of that, and connections spread over as many workers as there are cores, whatever
//! runtime the caller uses.
//!
//! The acceptor stays on the caller's runtime and hands each accepted socket, deregistered from
//! the caller's reactor, to the worker with the fewest connections, which registers it with its
//! own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Kind};

/// A connection to serve, made into a future on the worker (so that its socket registers with
/// the worker's reactor).
pub(crate) type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
    /// Connections handed to this worker and not yet closed.
    load: Arc<AtomicUsize>,
    done: oneshot::Receiver<()>,
}

/// The running workers.
pub(crate) struct Workers {
    workers: Vec<Worker>,
    next: usize,
    /// This set's entries in [`REGISTRY`].
    serials: Vec<u64>,
}

/// Every running worker's runtime, for [`live_tasks`].
static REGISTRY: std::sync::Mutex<Vec<(u64, tokio::runtime::Handle)>> =
    std::sync::Mutex::new(Vec::new());
static NEXT_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Tasks alive on the workers of every server in this process (its connections, and the tasks
/// their handlers spawn): what a soak test watches for leaks. Zero for servers on the caller's
/// runtime (`worker_threads(0)`), whose tasks that runtime's own metrics count.
pub fn live_worker_tasks() -> usize {
    REGISTRY
        .lock()
        .unwrap()
        .iter()
        .map(|(_, h)| h.metrics().num_alive_tasks())
        .sum()
}

impl Workers {
    /// Starts `n` (at least 1) worker threads.
    pub(crate) fn start(n: usize) -> Result<Workers, Error> {
        let mut workers = Vec::with_capacity(n.max(1));
        let mut serials = Vec::with_capacity(n.max(1));
        for index in 0..n.max(1) {
            let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
            let (finished, done) = oneshot::channel();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    Error::new(Kind::Bind, "cannot start a server worker runtime").with_source(e)
                })?;
            let serial = NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
            REGISTRY
                .lock()
                .unwrap()
                .push((serial, runtime.handle().clone()));
            serials.push(serial);
            std::thread::Builder::new()
                .name(format!("rgrpc-server-{index}"))
                .spawn(move || {
                    runtime.block_on(async {
                        while let Some(job) = queue.recv().await {
                            tokio::spawn(job());
                        }
                    });
                    // Every connection has ended by now (the server waits for them before it
                    // closes the queues); this drops what is left, such as timers.
                    drop(runtime);
                    let _ = finished.send(());
                })
                .map_err(|e| {
                    Error::new(Kind::Bind, "cannot start a server worker thread").with_source(e)
                })?;
            workers.push(Worker {
                jobs,
                load: Arc::new(AtomicUsize::new(0)),
                done,
            });
        }
        Ok(Workers {
            workers,
            next: 0,
            serials,
        })
    }

    /// Hands a connection to the worker with the fewest (ties: the next in turn). `serve` runs
    /// on that worker; the load counts it until it ends.
    pub(crate) fn dispatch<F, Fut>(&mut self, serve: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let n = self.workers.len();
        let mut best = self.next % n;
        for offset in 0..n {
            let i = (self.next + offset) % n;
            if self.workers[i].load.load(Ordering::Relaxed)
                < self.workers[best].load.load(Ordering::Relaxed)
            {
                best = i;
            }
        }
        self.next = (best + 1) % n;
        let worker = &self.workers[best];
        let load = worker.load.clone();
        load.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let _count = Count(load);
                serve().await;
            })
        });
        // A worker's queue lives as long as `self`; its thread ends only after we close it.
        let _ = worker.jobs.send(job);
    }

    /// Closes the queues and waits until every worker thread has finished.
    pub(crate) async fn stop(mut self) {
        self.unregister();
        let workers = std::mem::take(&mut self.workers);
        let mut done = Vec::with_capacity(workers.len());
        for worker in workers {
            drop(worker.jobs);
            done.push(worker.done);
        }
        for d in done {
            let _ = d.await;
        }
    }

    fn unregister(&mut self) {
        let serials = std::mem::take(&mut self.serials);
        if let Ok(mut registry) = REGISTRY.lock() {
            registry.retain(|(serial, _)| !serials.contains(serial));
        }
    }

    #[cfg(test)]
    fn loads(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Counts a connection on its worker while it lives.
struct Count(Arc<AtomicUsize>);

impl Drop for Count {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Worker threads by default: one per core this process may run on.
pub(crate) fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_least_loaded_worker_and_run_on_its_thread() {
        let mut workers = Workers::start(3).unwrap();
        let (release, hold) = tokio::sync::watch::channel(false);
        let (names_tx, mut names) = mpsc::unbounded_channel();
        for _ in 0..6 {
            let mut hold = hold.clone();
            let names_tx = names_tx.clone();
            workers.dispatch(move || async move {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = names_tx.send(name);
                let _ = hold.wait_for(|go| *go).await;
            });
        }
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(names.recv().await.unwrap().unwrap());
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "rgrpc-server-0",
                "rgrpc-server-0",
                "rgrpc-server-1",
                "rgrpc-server-1",
                "rgrpc-server-2",
                "rgrpc-server-2"
            ]
        );
        assert_eq!(workers.loads(), [2, 2, 2]);
        let loads: Vec<_> = workers.workers.iter().map(|w| w.load.clone()).collect();
        release.send(true).unwrap();
        // Stopping waits until every worker thread has finished, and with it every connection.
        workers.stop().await;
        let after: Vec<usize> = loads.iter().map(|l| l.load(Ordering::Relaxed)).collect();
        assert_eq!(after, [0, 0, 0]);
    }
}
