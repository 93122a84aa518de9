//! rgrpc: gRPC for Rust, over HTTP/2 with `h2`, messages with `prost`.
//!
//! A unary call, server side, left to right (the client is the mirror image):
//!
//! ```text
//! TCP/Unix socket ─▶ HTTP/2 connection ─▶ stream ─▶ gRPC frames ─▶ protobuf message ─▶ handler
//!   transport/       h2 (http2/)          server/call framing/       codec/ (prost)      your impl
//! ```
//!
//! A client call: target → resolver → balancer → subchannel (picked without a lock) → attempt,
//! and the retry layer decides whether another attempt follows (see [`client`]).
//!
//! | module | what it holds |
//! |---|---|
//! | [`server`] | [`Server`] builder, routing, a handler's [`Request`] and [`Response`], the call [`Context`](server::Context), response streams |
//! | [`client`] | [`Channel`], a call's [`client::Request`] (timeout, wait-for-ready, credentials) and [`client::Response`]: targets, resolvers, balancers (`pick_first`, `round_robin`, yours), service config, retries and hedging, blocking clients |
//! | [`metadata`] | [`MetadataMap`]: ASCII and `-bin` values, `grpc-timeout` |
//! | [`Status`], [`Code`] | the error that crosses the wire |
//!
//! Services and clients are generated from `.proto` files by `rgrpc-build` in `build.rs`, with no
//! `protoc` needed. See `examples/` in the repository for runnable programs.
//!
//! ## Shape of the four call kinds
//! A handler receives a [`Request`] of a message, or of a [`Streaming`] of messages, and returns a
//! [`Response`] of a message, or of a [`ResponseStream`]. Response streams are pulled by the call's
//! task as HTTP/2 flow control allows, so a slow peer never makes the server buffer without bound.
//! A client sends a message or a [`client::Request`] and gets a [`client::Response`] back: the two
//! roles have their own types, so a per-call timeout cannot be set on a request a handler received.
//!
//! ## Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `gzip` | yes | gzip message compression |
//! | `deflate` | yes | zlib deflate message compression |
//! | `zstd` | yes | Zstandard message compression |
//! | `tls` | no | TLS and mutual TLS with rustls: `ServerTlsConfig`, `ClientTlsConfig`, `https://` |
//! | `tower` | no | `tower` layers around every server call: `server::Builder::layer` |

#![deny(missing_docs)]

/// `get_ref`, `get_mut` and `into_inner` for a type with a `message: T` field (the requests and
/// responses of both roles).
macro_rules! message_accessors {
    () => {
        /// The message.
        pub fn get_ref(&self) -> &T {
            &self.message
        }

        /// The message, mutably.
        pub fn get_mut(&mut self) -> &mut T {
            &mut self.message
        }

        /// Takes the message out.
        pub fn into_inner(self) -> T {
            self.message
        }
    };
}

pub mod client;
mod codec;
#[doc(hidden)]
pub mod codegen;
mod error;
mod framing;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
mod http2;
pub mod metadata;
pub mod server;
mod status;
pub mod stream;
mod streaming;
mod transport;

pub use client::{Channel, IntoStreamingRequest};
pub use codec::{Encoding, IntoOutgoing, Outgoing};
pub use error::Error;
pub use http2::keepalive::KeepaliveConfig;
pub use metadata::MetadataMap;
pub use server::{Request, Response, ResponseStream, Server, StreamSender};
pub use status::{Code, Status};
pub use streaming::Streaming;
/// A call's cancellation, shared between tasks: a handler's [`server::Context`] hands one out, and
/// a client [`client::Request`] takes one to end its call on demand (tokio-util's type).
pub use tokio_util::sync::CancellationToken;
#[cfg(feature = "tls")]
pub use transport::tls::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Includes the code `rgrpc-build` generated for a proto package, e.g.
/// `rgrpc::include_proto!("helloworld")`. A file without a package is `"_"`.
#[macro_export]
macro_rules! include_proto {
    ($package:tt) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}
