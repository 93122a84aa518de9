//! Sending framed messages under HTTP/2 flow control, and polling for a peer's reset.
//!
//! `h2` buffers whatever it is handed, whether or not the peer's window allows it. So nothing is
//! handed to h2 beyond the capacity it has granted: a slow reader stops the writer here, and each
//! side holds at most one message in flight.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;
use h2::SendStream;

use crate::codec::{Outgoing, SendCompression};
use crate::framing::FrameWriter;
use crate::status::Status;

/// Why sending stopped early.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The peer reset the stream or the connection went away; nothing more can be sent.
    Gone(Status),
    /// Our side failed (the message stream yielded an error, or a message was too large).
    Local(Status),
}

/// State of an outbound message stream: the frame waiting for capacity, and the frame buffer.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    pending: Option<Bytes>,
    writer: FrameWriter,
}

impl Outbound {
    pub(crate) fn new() -> Outbound {
        Outbound::default()
    }

    /// Drives messages from `messages` into `send` until the stream ends (`Ready(Ok)`), fails,
    /// or has to wait. Does not end the HTTP/2 stream.
    pub(crate) fn poll_send<S, M>(
        &mut self,
        cx: &mut Context<'_>,
        send: &mut SendStream<Bytes>,
        mut messages: Pin<&mut S>,
        limit: usize,
        compression: SendCompression,
    ) -> Poll<Result<(), SendError>>
    where
        S: Stream<Item = Result<Outgoing<M>, Status>> + ?Sized,
        M: prost::Message,
    {
        loop {
            if let Poll::Ready(reset) = send.poll_reset(cx) {
                return Poll::Ready(Err(SendError::Gone(reset_status(reset))));
            }
            if let Some(frame) = self.pending.as_mut() {
                ready!(poll_write(cx, send, frame))?;
                self.pending = None;
                continue;
            }
            match ready!(messages.as_mut().poll_next(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(status)) => return Poll::Ready(Err(SendError::Local(status))),
                Some(Ok(outgoing)) => {
                    let (message, choice) = outgoing.into_parts();
                    let encoding = if compression.applies(choice) {
                        compression.encoding
                    } else {
                        crate::codec::Encoding::Identity
                    };
                    let frame = crate::codec::encode(&mut self.writer, &message, limit, encoding)
                        .map_err(SendError::Local)?;
                    self.pending = Some(frame);
                }
            }
        }
    }
}

/// Writes as much of `frame` as the granted capacity allows; `Ready(Ok)` once all of it is written.
pub(crate) fn poll_write(
    cx: &mut Context<'_>,
    send: &mut SendStream<Bytes>,
    frame: &mut Bytes,
) -> Poll<Result<(), SendError>> {
    while !frame.is_empty() {
        send.reserve_capacity(frame.len());
        let mut capacity = send.capacity();
        if capacity == 0 {
            capacity = match ready!(send.poll_capacity(cx)) {
                Some(Ok(n)) => n,
                Some(Err(err)) => return Poll::Ready(Err(SendError::Gone(Status::from_h2(err)))),
                None => {
                    return Poll::Ready(Err(SendError::Gone(Status::cancelled(
                        "stream closed by the peer",
                    ))));
                }
            };
            if capacity == 0 {
                continue;
            }
        }
        let chunk = frame.split_to(capacity.min(frame.len()));
        send.send_data(chunk, false)
            .map_err(|err| SendError::Gone(Status::from_h2(err)))?;
    }
    Poll::Ready(Ok(()))
}

/// The status for a stream the peer reset (or whose connection failed).
pub(crate) fn reset_status(reset: Result<h2::Reason, h2::Error>) -> Status {
    match reset {
        Ok(h2::Reason::CANCEL) | Ok(h2::Reason::NO_ERROR) => {
            Status::cancelled("call cancelled by the peer")
        }
        Ok(reason) => Status::cancelled(format!("stream reset by the peer: {reason}")),
        Err(err) => Status::from_h2(err),
    }
}
