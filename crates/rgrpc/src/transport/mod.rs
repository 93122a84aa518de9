//! Bytes on the socket below HTTP/2: TLS sessions (feature `tls`). TCP and Unix sockets are opened
//! by the server's accept loop and the channel's connector; this module adds the TLS layer and
//! nothing about HTTP/2 or gRPC.

#[cfg(feature = "tls")]
pub(crate) mod tls;
