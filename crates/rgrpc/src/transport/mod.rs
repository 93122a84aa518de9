//! Bytes on the socket below HTTP/2, for both roles: client sockets (`connect.rs`), server
//! listeners (`listen.rs`) and TLS sessions (`tls.rs`, feature `tls`).
//!
//! Nothing here knows about HTTP/2 or gRPC; `http2/` runs on the byte streams this module makes.

pub(crate) mod connect;
pub(crate) mod listen;
#[cfg(feature = "tls")]
pub(crate) mod tls;
