//! Calls from synchronous code: generated `…BlockingClient`s run the async client on one
//! runtime of rgrpc's own (a worker thread shared by every blocking client of the process), as
//! the tutorials' grpcio scripts call their stubs.
//!
//! A blocking call made on a thread that drives a current-thread tokio runtime would stop that
//! runtime, and with it the call: it fails at once with `FAILED_PRECONDITION` instead. On a
//! multi-thread runtime's worker it runs through `block_in_place`.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::error::{Error, Kind};
use crate::status::Status;
use crate::streaming::Streaming;

const IN_ASYNC: &str = "a blocking rgrpc call on a thread that runs a current-thread tokio \
                        runtime would deadlock it; use the async client there (or call from \
                        a thread of your own)";

/// rgrpc's own runtime, started on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("rgrpc-blocking")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start rgrpc's runtime for blocking calls: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Why a future could not be run to completion here.
#[derive(Debug)]
pub struct BlockingError(String);

impl std::fmt::Display for BlockingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlockingError {}

impl From<BlockingError> for Status {
    fn from(err: BlockingError) -> Status {
        Status::failed_precondition(err.0)
    }
}

impl From<BlockingError> for Error {
    fn from(err: BlockingError) -> Error {
        Error::new(Kind::Config, err.0)
    }
}

/// Runs `future` to completion on rgrpc's blocking runtime, from synchronous code.
pub fn block_on<F>(future: F) -> Result<F::Output, BlockingError>
where
    F: Future,
{
    let runtime = runtime().map_err(BlockingError)?;
    match Handle::try_current() {
        Err(_) => Ok(runtime.block_on(future)),
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::CurrentThread => {
            Err(BlockingError(IN_ASYNC.to_owned()))
        }
        Ok(_) => Ok(tokio::task::block_in_place(|| runtime.block_on(future))),
    }
}

/// A response stream read from synchronous code: an `Iterator` of messages, ending after an
/// OK status and yielding the status as an error otherwise.
#[derive(Debug)]
pub struct BlockingStreaming<T> {
    inner: Streaming<T>,
}

impl<T> BlockingStreaming<T> {
    /// Wraps a response stream.
    pub fn new(inner: Streaming<T>) -> BlockingStreaming<T> {
        BlockingStreaming { inner }
    }

    /// Trailer metadata, once the stream has ended with OK.
    pub fn trailers(&self) -> Option<&crate::MetadataMap> {
        self.inner.trailers()
    }
}

impl<T: prost::Message + Default> BlockingStreaming<T> {
    /// The next message; `Ok(None)` at the end of a successful stream.
    pub fn message(&mut self) -> Result<Option<T>, Status> {
        block_on(self.inner.message())?
    }
}

impl<T: prost::Message + Default> Iterator for BlockingStreaming<T> {
    type Item = Result<T, Status>;

    fn next(&mut self) -> Option<Result<T, Status>> {
        self.message().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_from_plain_threads() {
        assert_eq!(block_on(async { 7 }).unwrap(), 7);
        let handles: Vec<_> = (0..4)
            .map(|i| std::thread::spawn(move || block_on(async move { i * 2 }).unwrap()))
            .collect();
        let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 12);
    }

    #[test]
    fn refuses_to_deadlock_a_current_thread_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let err = block_on(async { 1 }).unwrap_err();
            let status = Status::from(err);
            assert_eq!(status.code(), crate::Code::FailedPrecondition);
            assert!(status.message().contains("current-thread"), "{status}");
        });
    }

    #[test]
    fn a_channel_connects_when_asked_outside_any_runtime() {
        let channel = crate::Channel::builder("http://127.0.0.1:1")
            .unwrap()
            .connect_lazy()
            .unwrap();
        assert_eq!(channel.state(true), crate::client::ConnectivityState::Idle);
        let mut state = channel.state(false);
        for _ in 0..200 {
            if state == crate::client::ConnectivityState::TransientFailure {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            state = channel.state(false);
        }
        assert_eq!(state, crate::client::ConnectivityState::TransientFailure);
    }

    #[test]
    fn works_on_a_multi_thread_worker() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let v = rt.block_on(async { tokio::spawn(async { block_on(async { 5 }).unwrap() }).await });
        assert_eq!(v.unwrap(), 5);
    }
}
