//! Sending framed messages under HTTP/2 flow control, and polling for a peer's reset.
//!
//! `h2` buffers whatever it is handed, whether or not the peer's window allows it. So nothing is
//! handed to h2 beyond the capacity it has granted: a slow reader stops the writer here, and each
//! side holds at most one batch in flight.
//!
//! Messages that are ready one after another go out together: small frames are joined (without
//! copying: they sit side by side in the frame buffer) into one HTTP/2 DATA frame of up to
//! [`BATCH`] bytes. Each `send_data` costs a lock on h2's stream state and a frame header; sending
//! 1 KiB messages one by one made a server stream eight times slower than tonic's, which batches
//! the same way.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
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

/// Ready messages are joined into one write of up to this many bytes.
pub(crate) const BATCH: usize = 32 * 1024;

/// State of an outbound message stream: the frames waiting for capacity, the frame buffer, and
/// how the message stream ended if it did while frames still waited.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    pending: Option<Bytes>,
    writer: FrameWriter,
    end: Option<Result<(), Status>>,
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
            if let Some(end) = self.end.take() {
                return Poll::Ready(end.map_err(SendError::Local));
            }
            let mut batch: Option<BytesMut> = None;
            while batch.as_ref().is_none_or(|b| b.len() < BATCH) {
                let next = match messages.as_mut().poll_next(cx) {
                    Poll::Pending if batch.is_none() => return Poll::Pending,
                    Poll::Pending => break,
                    Poll::Ready(next) => next,
                };
                let outgoing = match next {
                    None => {
                        self.end = Some(Ok(()));
                        break;
                    }
                    Some(Err(status)) => {
                        // What was ready before the failure still goes out first.
                        self.end = Some(Err(status));
                        break;
                    }
                    Some(Ok(outgoing)) => outgoing,
                };
                let (message, choice) = outgoing.into_parts();
                let encoding = if compression.applies(choice) {
                    compression.encoding
                } else {
                    crate::codec::Encoding::Identity
                };
                let frame =
                    match crate::codec::encode_mut(&mut self.writer, &message, limit, encoding) {
                        Ok(frame) => frame,
                        Err(status) => {
                            self.end = Some(Err(status));
                            break;
                        }
                    };
                match batch.as_mut() {
                    None => batch = Some(frame),
                    Some(b) => b.unsplit(frame),
                }
            }
            if let Some(batch) = batch {
                self.pending = Some(batch.freeze());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Encoding;

    /// A stream of `n` ready messages, then `last` if given.
    struct Ready {
        left: u32,
        last: Option<Status>,
    }

    impl Stream for Ready {
        type Item = Result<Outgoing<wire::Msg>, Status>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            if self.left == 0 {
                return Poll::Ready(self.last.take().map(Err));
            }
            self.left -= 1;
            let value = vec![b'x'; 1000];
            Poll::Ready(Some(Ok(Outgoing::new(wire::Msg { value }))))
        }
    }

    mod wire {
        /// A message with one bytes field.
        #[derive(Clone, PartialEq, prost::Message)]
        pub(crate) struct Msg {
            #[prost(bytes = "vec", tag = "1")]
            pub(crate) value: Vec<u8>,
        }
    }

    /// Sends `messages` as a server would, over an in-memory h2 connection; returns the DATA
    /// chunks the client received and how sending ended.
    async fn send_over_h2(messages: Ready) -> (Vec<Bytes>, Result<(), SendError>) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(async move {
            let mut conn = h2::server::handshake(a).await.unwrap();
            let (_, mut respond) = conn.accept().await.unwrap().unwrap();
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            let mut send = respond
                .send_response(http::Response::new(()), false)
                .unwrap();
            let mut messages = Box::pin(messages);
            let mut outbound = Outbound::new();
            let compression = SendCompression {
                encoding: Encoding::Identity,
                by_default: false,
            };
            let result = std::future::poll_fn(|cx| {
                outbound.poll_send(cx, &mut send, messages.as_mut(), 1 << 20, compression)
            })
            .await;
            let _ = send.send_data(Bytes::new(), true);
            result
        });
        let (mut client, conn) = h2::client::handshake(b).await.unwrap();
        tokio::spawn(conn);
        let request = http::Request::post("http://x/p").body(()).unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let mut body = response.await.unwrap().into_body();
        let mut chunks = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            chunks.push(chunk);
        }
        (chunks, server.await.unwrap())
    }

    #[tokio::test]
    async fn ready_messages_go_out_together_and_a_failure_after_them_still_sends_them() {
        let messages = Ready {
            left: 100,
            last: Some(Status::internal("after the hundredth")),
        };
        let (chunks, result) = send_over_h2(messages).await;
        let bytes: usize = chunks.iter().map(Bytes::len).sum();
        // 100 frames of 5 + 3 + 1000 bytes, all delivered, in batches of about 32 KiB, each in
        // DATA frames of up to 16 KiB (three per batch): a dozen, where one by one took 100.
        assert_eq!(bytes, 100 * 1008);
        assert!(chunks.len() <= 16, "{} DATA frames", chunks.len());
        match result {
            Err(SendError::Local(status)) => assert_eq!(status.message(), "after the hundredth"),
            other => panic!("{other:?}"),
        }
        let (chunks, result) = send_over_h2(Ready {
            left: 3,
            last: None,
        })
        .await;
        assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), 3 * 1008);
        assert!(result.is_ok());
    }
}
