//! Small stream helpers for request and response streams, so that sending a list of messages
//! needs no other crate. Any `Stream` works where these do.

use std::pin::Pin;
use std::task::{Context, Poll};

pub use futures_core::Stream;

/// A stream of the items of an iterator: `client.record_route(rgrpc::stream::iter(points))`.
pub fn iter<I: IntoIterator>(items: I) -> Iter<I::IntoIter> {
    Iter(items.into_iter())
}

/// The stream [`iter`] returns.
#[derive(Debug, Clone)]
pub struct Iter<I>(I);

impl<I> Unpin for Iter<I> {}

impl<I: Iterator> Stream for Iter<I> {
    type Item = I::Item;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.0.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// A request stream fed through a channel, for messages produced while the call runs (each one
/// after reading a response, in a full-duplex exchange). The stream ends when every [`Sender`] is
/// dropped; `capacity` messages may wait in the channel.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
    (Sender(tx), Receiver(rx))
}

/// Sends into a [`channel`]'s stream.
#[derive(Debug)]
pub struct Sender<T>(tokio::sync::mpsc::Sender<T>);

impl<T> Sender<T> {
    /// Queues a message, waiting while the channel is full. Gives the message back once the call
    /// no longer reads its requests (it ended, or its stream was dropped).
    pub async fn send(&self, message: T) -> Result<(), T> {
        self.0.send(message).await.map_err(|e| e.0)
    }

    /// True once the call no longer reads its requests.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

/// The stream end of a [`channel`]: pass it as a call's requests.
#[derive(Debug)]
pub struct Receiver<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn next(rx: &mut Receiver<i32>) -> Option<i32> {
        std::future::poll_fn(|cx| Pin::new(&mut *rx).poll_next(cx)).await
    }

    #[tokio::test]
    async fn a_channel_stream_ends_when_its_senders_are_gone() {
        let (tx, mut rx) = channel(1);
        let second = tx.clone();
        tx.send(1).await.unwrap();
        assert_eq!(next(&mut rx).await, Some(1));
        drop(tx);
        second.send(2).await.unwrap();
        assert_eq!(next(&mut rx).await, Some(2));
        drop(second);
        assert_eq!(next(&mut rx).await, None);
        let (tx, rx) = channel(1);
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(3).await, Err(3));
    }
}
