//! Server sockets: binding a TCP listener by address or name, and accepting TCP (with
//! `TCP_NODELAY`) and Unix connections through one trait.
//!
//! This module accepts sockets; TLS (`tls.rs`) and HTTP/2 (`http2/`) come after it.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::error::{Error, Kind};

/// A listener of some socket kind.
pub(crate) trait Accept: Send {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// An accepted socket registered with no runtime, to move to another one.
    type Detached: Send + 'static;
    fn accept(
        &self,
    ) -> impl Future<Output = std::io::Result<(Self::Io, Option<SocketAddr>)>> + Send;
    /// Takes a socket off the reactor of the runtime that accepted it.
    fn detach(io: Self::Io) -> std::io::Result<Self::Detached>;
    /// Registers a detached socket with the reactor of the runtime this runs on.
    fn attach(detached: Self::Detached) -> std::io::Result<Self::Io>;
}

pub(crate) struct TcpAccept(pub(crate) TcpListener);
pub(crate) struct UnixAccept(pub(crate) UnixListener);

impl Accept for TcpAccept {
    type Io = TcpStream;
    type Detached = std::net::TcpStream;
    fn detach(io: TcpStream) -> std::io::Result<std::net::TcpStream> {
        io.into_std()
    }
    fn attach(detached: std::net::TcpStream) -> std::io::Result<TcpStream> {
        TcpStream::from_std(detached)
    }
    async fn accept(&self) -> std::io::Result<(TcpStream, Option<SocketAddr>)> {
        let (io, peer) = self.0.accept().await?;
        // Small gRPC frames must not wait for Nagle's algorithm.
        let _ = io.set_nodelay(true);
        Ok((io, Some(peer)))
    }
}

impl Accept for UnixAccept {
    type Io = UnixStream;
    type Detached = std::os::unix::net::UnixStream;
    fn detach(io: UnixStream) -> std::io::Result<std::os::unix::net::UnixStream> {
        io.into_std()
    }
    fn attach(detached: std::os::unix::net::UnixStream) -> std::io::Result<UnixStream> {
        UnixStream::from_std(detached)
    }
    async fn accept(&self) -> std::io::Result<(UnixStream, Option<SocketAddr>)> {
        let (io, _) = self.0.accept().await?;
        Ok((io, None))
    }
}

/// Binds a TCP listener, accepting `host:port` with an IP or a name (`[::]:50051`, `localhost:0`).
pub(crate) async fn bind_tcp(addr: &str) -> Result<TcpListener, Error> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| {
            Error::new(
                Kind::InvalidAddress,
                format!("cannot resolve listen address {addr:?}"),
            )
            .with_source(e)
        })?
        .collect();
    let mut last = None;
    for a in addrs {
        match TcpListener::bind(a).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    let err = Error::new(Kind::Bind, format!("cannot listen on {addr}"));
    Err(match last {
        Some(e) => err.with_source(e),
        None => err,
    })
}
