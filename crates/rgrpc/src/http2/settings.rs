//! Limits and window sizes shared by the server and client builders, with safe defaults.

/// Default receive limit for one message: 4 MiB, as every gRPC implementation uses.
pub(crate) const DEFAULT_MAX_RECV_MESSAGE: usize = 4 * 1024 * 1024;
/// Default send limit for one message: none, as in every other implementation (grpc-go: the
/// largest i32; grpc-java, C-core, tonic: none). A limit here would refuse what a peer that raised
/// its receive limit asked for, and the receiver's limit is what protects it.
pub(crate) const DEFAULT_MAX_SEND_MESSAGE: usize = usize::MAX;
/// Default limit on concurrent streams a peer may open on one connection.
pub(crate) const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 256;
/// Default limit on the size of a received header block (HPACK-decoded).
pub(crate) const DEFAULT_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
/// Default per-stream receive window: enough for 1 MiB in flight per call.
pub(crate) const DEFAULT_STREAM_WINDOW: u32 = 1024 * 1024;
/// Default per-connection receive window; also the bound on unread data per connection.
pub(crate) const DEFAULT_CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;
/// Largest HTTP/2 frame we accept.
pub(crate) const DEFAULT_MAX_FRAME_SIZE: u32 = 16 * 1024;
