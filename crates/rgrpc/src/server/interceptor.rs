//! Server interceptors: code that runs around every call, for authentication, logging and
//! metrics. An interceptor sees the call before its handler (and may add metadata or reject it)
//! and hears how it ended. It does not see or change messages.

use std::time::Duration;

use super::Context;
use crate::metadata::MetadataMap;
use crate::status::{Code, Status};

/// Runs around every call of a server, in the order added.
///
/// A closure `Fn(&mut CallInfo) -> Result<(), Status>` is an interceptor with only
/// [`Interceptor::on_call`].
pub trait Interceptor: Send + Sync + 'static {
    /// Before the handler: read or add request metadata, or end the call with a status.
    fn on_call(&self, call: &mut CallInfo<'_>) -> Result<(), Status>;

    /// After the call: its path, the code it ended with (`CANCELLED` when the client went away)
    /// and how long it took.
    fn on_end(&self, path: &str, code: Code, elapsed: Duration) {
        let _ = (path, code, elapsed);
    }
}

impl<F> Interceptor for F
where
    F: Fn(&mut CallInfo<'_>) -> Result<(), Status> + Send + Sync + 'static,
{
    fn on_call(&self, call: &mut CallInfo<'_>) -> Result<(), Status> {
        self(call)
    }
}

/// What an interceptor sees of a call before its handler runs.
#[derive(Debug)]
pub struct CallInfo<'a> {
    pub(crate) path: &'a str,
    pub(crate) metadata: &'a mut MetadataMap,
    pub(crate) context: &'a Context,
}

impl CallInfo<'_> {
    /// `/package.Service/Method`.
    pub fn path(&self) -> &str {
        self.path
    }

    /// The request metadata.
    pub fn metadata(&self) -> &MetadataMap {
        self.metadata
    }

    /// The request metadata, to add to what the handler will see.
    pub fn metadata_mut(&mut self) -> &mut MetadataMap {
        self.metadata
    }

    /// The call's context: peer address and certificates, deadline.
    pub fn context(&self) -> &Context {
        self.context
    }
}
