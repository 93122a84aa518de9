//! `Streaming`: the messages a peer sends on one call, decoded as they arrive.
//!
//! A server handler reads its request stream with it; a client reads a response stream with it.
//! Bytes are pulled from h2 only when the reader asks for the next message, so a slow reader holds
//! back the sender through HTTP/2 flow control instead of buffering without bound.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use h2::RecvStream;
use tokio::time::Sleep;

use crate::codec::{self, RecvEncoding};
use crate::framing::Decoder;
use crate::metadata::MetadataMap;
use crate::status::Status;

/// A stream of messages received on a call.
///
/// It is a [`Stream`] of `Result<T, Status>`; [`Streaming::message`] reads one message without
/// any extension trait. On the client, the stream ends with `None` after an OK status and yields
/// the status as an error otherwise; the trailers are then in [`Streaming::trailers`].
/// Dropping a client's `Streaming` before its end cancels the call.
pub struct Streaming<T> {
    /// The response head a bidirectional call has not received yet.
    head: Option<PendingHead>,
    headers: Option<MetadataMap>,
    body: Option<RecvStream>,
    decoder: Decoder,
    encoding: RecvEncoding,
    last_compressed: bool,
    limit: usize,
    state: State,
    client: Option<Box<ClientSide>>,
    trailers: Option<MetadataMap>,
    _message: PhantomData<fn() -> T>,
}

/// The response head of a bidirectional call, still to come: from one stream, or from the
/// retry loop that runs attempts until one is committed.
pub(crate) enum PendingHead {
    Stream(h2::client::ResponseFuture),
    Retrying(
        Pin<
            Box<
                dyn Future<Output = Result<crate::client::call::attempt::ResponseHead, Status>>
                    + Send,
            >,
        >,
    ),
}

/// What only a client's response stream carries.
pub(crate) struct ClientSide {
    /// The call's deadline.
    pub(crate) deadline: Option<Pin<Box<Sleep>>>,
    /// The call's cancellation token, waited on.
    pub(crate) cancel: Option<Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>>,
    /// The task sending the request stream, stopped when the response stream is dropped.
    pub(crate) sender: Option<tokio::task::JoinHandle<()>>,
    /// An error the request sender hit, which explains a reset the reader then sees.
    pub(crate) send_error: Option<Arc<Mutex<Option<Status>>>>,
    /// The picker's hook, told how the call ended.
    pub(crate) on_end: Option<crate::client::balancer::OnEnd>,
    /// Counts the call as in progress for the channel's idle timeout.
    pub(crate) active: Option<crate::client::control::ActiveCall>,
}

impl ClientSide {
    /// Tells the picker's hook, once, how the call ended.
    pub(crate) fn end(&mut self, code: crate::Code) {
        self.active = None;
        if let Some(on_end) = self.on_end.take() {
            on_end(&crate::client::balancer::CallEnd::new(code));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Data,
    Trailers,
    Done,
}

impl<T> Streaming<T> {
    /// The request stream of a server call.
    pub(crate) fn server(body: RecvStream, limit: usize, encoding: RecvEncoding) -> Streaming<T> {
        Streaming {
            head: None,
            headers: None,
            body: Some(body),
            decoder: Decoder::new(limit),
            encoding,
            last_compressed: false,
            limit,
            state: State::Data,
            client: None,
            trailers: None,
            _message: PhantomData,
        }
    }

    /// The response stream of a client call. `trailers_only` holds the status block when the
    /// server answered with headers alone.
    pub(crate) fn client(
        body: RecvStream,
        limit: usize,
        encoding: RecvEncoding,
        side: ClientSide,
        trailers_only: Option<MetadataMap>,
    ) -> Streaming<T> {
        let done = trailers_only.is_some();
        let mut side = side;
        if done {
            side.end(crate::Code::Ok);
        }
        Streaming {
            head: None,
            headers: None,
            body: Some(body),
            decoder: Decoder::new(limit),
            encoding,
            last_compressed: false,
            limit,
            state: if done { State::Done } else { State::Data },
            client: Some(Box::new(side)),
            trailers: trailers_only,
            _message: PhantomData,
        }
    }

    /// The response stream of a client call whose head has not arrived yet: a bidirectional call
    /// returns before the server answers, since a server may wait for the first request first.
    pub(crate) fn client_pending(
        head: PendingHead,
        limit: usize,
        side: ClientSide,
    ) -> Streaming<T> {
        Streaming {
            head: Some(head),
            headers: None,
            body: None,
            decoder: Decoder::new(limit),
            encoding: RecvEncoding::Identity,
            last_compressed: false,
            limit,
            state: State::Head,
            client: Some(Box::new(side)),
            trailers: None,
            _message: PhantomData,
        }
    }

    /// Whether the last message read arrived compressed.
    pub fn last_message_compressed(&self) -> bool {
        self.last_compressed
    }

    /// Trailer metadata, once the stream has ended with an OK status (client side).
    pub fn trailers(&self) -> Option<&MetadataMap> {
        self.trailers.as_ref()
    }

    /// The trailers, taken out of a stream that is done with them.
    pub(crate) fn take_trailers(&mut self) -> Option<MetadataMap> {
        self.trailers.take()
    }

    /// True once the call's cancellation token (client side) has been cancelled.
    fn cancelled(&mut self, cx: &mut Context<'_>) -> bool {
        self.client
            .as_mut()
            .and_then(|c| c.cancel.as_mut())
            .is_some_and(|wait| wait.as_mut().poll(cx).is_ready())
    }

    fn fail(&mut self, status: Status) -> Poll<Option<Result<T, Status>>> {
        self.state = State::Done;
        if let Some(client) = &mut self.client
            && let Some(sender) = client.sender.take()
        {
            sender.abort();
        }
        Poll::Ready(Some(Err(status)))
    }

    fn h2_status(&self, err: h2::Error) -> Status {
        let from_sender = self
            .client
            .as_ref()
            .and_then(|c| c.send_error.as_ref())
            .and_then(|slot| slot.lock().ok()?.take());
        let status = from_sender.unwrap_or_else(|| Status::from_h2(err));
        let deadline = self
            .client
            .as_ref()
            .and_then(|c| c.deadline.as_ref())
            .map(|sleep| sleep.deadline().into_std());
        crate::client::call::deadline_cause(status, deadline)
    }
}

impl<T: prost::Message + Default> Streaming<T> {
    /// The response header metadata of a bidirectional call, waiting for it if needed. (Other
    /// calls have their headers in `Response::metadata`.)
    pub async fn headers(&mut self) -> Result<Option<&MetadataMap>, Status> {
        if self.state == State::Head {
            std::future::poll_fn(|cx| self.poll_head(cx)).await?;
        }
        Ok(self.headers.as_ref())
    }

    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        if self.head.is_some() && self.cancelled(cx) {
            self.head = None;
            self.state = State::Done;
            return Poll::Ready(Err(crate::client::call::cancelled_by_client()));
        }
        let Some(head) = self.head.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if let Some(deadline) = self.client.as_mut().and_then(|c| c.deadline.as_mut())
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.head = None;
            self.state = State::Done;
            return Poll::Ready(Err(Status::deadline_exceeded("deadline exceeded")));
        }

        let result = match head {
            PendingHead::Stream(response) => match ready!(Pin::new(response).poll(cx)) {
                Ok(response) => crate::client::call::attempt::read_head(response),
                Err(err) => Err(self.h2_status(err)),
            },
            PendingHead::Retrying(attempts) => ready!(attempts.as_mut().poll(cx)),
        };
        self.head = None;
        match result {
            Ok(head) => {
                if let (Some(client), Some(on_end)) = (self.client.as_mut(), head.on_end) {
                    client.on_end = Some(on_end);
                }
                self.encoding = head.encoding;
                self.headers = Some(head.metadata);
                self.body = Some(head.body);
                if let Some(trailers) = head.trailers_only {
                    if let Some(client) = &mut self.client {
                        client.end(crate::Code::Ok);
                    }
                    self.trailers = Some(trailers);
                    self.state = State::Done;
                } else {
                    self.state = State::Data;
                }
                Poll::Ready(Ok(()))
            }
            Err(status) => {
                self.state = State::Done;
                Poll::Ready(Err(status))
            }
        }
    }

    /// The next message; `Ok(None)` at the end of a successful stream.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Status>>> {
        loop {
            if self.state != State::Done && self.cancelled(cx) {
                // Letting go of both halves of the stream resets it.
                self.head = None;
                self.body = None;
                return self.fail(crate::client::call::cancelled_by_client());
            }
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Head => {
                    if let Err(status) = ready!(self.poll_head(cx)) {
                        return self.fail(status);
                    }
                }
                State::Data => {
                    match self.decoder.decode() {
                        Ok(Some(frame)) => {
                            self.last_compressed = frame.compressed;
                            return match codec::decode(frame, &self.encoding, self.limit) {
                                Ok(message) => Poll::Ready(Some(Ok(message))),
                                Err(status) => self.fail(status),
                            };
                        }
                        Ok(None) => {}
                        Err(err) => return self.fail(err.into()),
                    }
                    if let Some(deadline) = self.client.as_mut().and_then(|c| c.deadline.as_mut())
                        && deadline.as_mut().poll(cx).is_ready()
                    {
                        return self.fail(Status::deadline_exceeded("deadline exceeded"));
                    }
                    let Some(body) = self.body.as_mut() else {
                        return Poll::Ready(None);
                    };
                    match ready!(body.poll_data(cx)) {
                        Some(Ok(chunk)) => {
                            // Our decoder bounds what it holds, so the window can reopen at once.
                            let _ = body.flow_control().release_capacity(chunk.len());
                            self.decoder.push(chunk);
                        }
                        Some(Err(err)) => {
                            let status = self.h2_status(err);
                            return self.fail(status);
                        }
                        None => {
                            if let Err(err) = self.decoder.finish() {
                                return self.fail(err.into());
                            }
                            self.state = if self.client.is_some() {
                                State::Trailers
                            } else {
                                State::Done
                            };
                        }
                    }
                }
                State::Trailers => {
                    let Some(body) = self.body.as_mut() else {
                        return Poll::Ready(None);
                    };
                    let trailers = ready!(body.poll_trailers(cx));
                    self.state = State::Done;
                    let headers = match trailers {
                        Ok(Some(headers)) => headers,
                        Ok(None) => {
                            return self.fail(Status::internal(
                                "server closed the stream without sending a status",
                            ));
                        }
                        Err(err) => {
                            let status = self.h2_status(err);
                            return self.fail(status);
                        }
                    };
                    match Status::from_trailers(&headers) {
                        Some(Ok(())) => {
                            self.trailers = Some(MetadataMap::from_headers(headers));
                            if let Some(client) = &mut self.client {
                                client.end(crate::Code::Ok);
                            }
                            return Poll::Ready(None);
                        }
                        Some(Err(status)) => return self.fail(status),
                        None => {
                            return self.fail(Status::internal(
                                "server sent trailers without grpc-status",
                            ));
                        }
                    }
                }
            }
        }
    }
}

impl<T: prost::Message + Default> Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx)
    }
}

impl<T> Unpin for Streaming<T> {}

impl<T> Drop for Streaming<T> {
    fn drop(&mut self) {
        if let Some(client) = self.client.as_mut() {
            if let Some(sender) = client.sender.take() {
                sender.abort();
            }
            client.end(crate::Code::Cancelled);
        }
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming")
            .field("state", &self.state)
            .field("buffered", &self.decoder.buffered())
            .field("encoding", &self.encoding)
            .finish()
    }
}
