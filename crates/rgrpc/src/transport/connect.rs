//! Client sockets: TCP (with `TCP_NODELAY`), Unix domain sockets by path, and Linux abstract
//! Unix sockets. Each error names the address and the step that failed.
//!
//! This module opens sockets; it does not resolve names (the client's resolvers do) or speak TLS
//! or HTTP/2 (`tls.rs`, `http2/`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::error::{Error, Kind};

/// One address a channel can connect to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Address {
    /// An IPv4 or IPv6 socket address.
    Tcp(SocketAddr),
    /// A Unix domain socket at a path.
    Unix(PathBuf),
    /// A Linux abstract Unix socket (the name without its leading NUL byte).
    UnixAbstract(Vec<u8>),
}

impl Address {
    /// True for an IPv6 TCP address (Happy Eyeballs interleaves the two families).
    pub fn is_ipv6(&self) -> bool {
        matches!(self, Address::Tcp(a) if a.is_ipv6())
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        Address::Tcp(addr)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::UnixAbstract(name) => {
                write!(f, "unix-abstract:{}", String::from_utf8_lossy(name))
            }
        }
    }
}

/// A connected client socket of either kind.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Opens a socket to `address`.
pub(crate) async fn connect(address: &Address) -> Result<Socket, Error> {
    let failed = |e: std::io::Error| {
        let what = match address {
            Address::Tcp(_) => "TCP connect",
            _ => "Unix socket connect",
        };
        Error::new(Kind::Connect, format!("{what} to {address} failed")).with_source(e)
    };
    match address {
        Address::Tcp(addr) => {
            let io = TcpStream::connect(addr).await.map_err(failed)?;
            // Small gRPC frames must not wait for Nagle's algorithm.
            let _ = io.set_nodelay(true);
            Ok(Socket::Tcp(io))
        }
        Address::Unix(path) => Ok(Socket::Unix(
            UnixStream::connect(path).await.map_err(failed)?,
        )),
        Address::UnixAbstract(name) => Ok(Socket::Unix(abstract_unix(name).map_err(failed)?)),
    }
}

#[cfg(target_os = "linux")]
fn abstract_unix(name: &[u8]) -> std::io::Result<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    // A local connect completes or fails at once; it never waits on a network.
    let io = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    io.set_nonblocking(true)?;
    UnixStream::from_std(io)
}

#[cfg(not(target_os = "linux"))]
fn abstract_unix(_: &[u8]) -> std::io::Result<UnixStream> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract Unix sockets exist only on Linux",
    ))
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Socket::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Socket::Tcp(s) => s.is_write_vectored(),
            Socket::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
