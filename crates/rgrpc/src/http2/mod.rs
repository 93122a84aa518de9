//! HTTP/2 through `h2`: the handshake and settings of each role, keepalive, and moving gRPC
//! frames through a stream's body under flow control.
//!
//! This layer knows h2 types and the runtime; it does not know about services, routing or the
//! meaning of a status.

pub(crate) mod batch;
pub(crate) mod body;
pub(crate) mod enforce;
pub(crate) mod handshake;
pub(crate) mod keepalive;
pub(crate) mod settings;
