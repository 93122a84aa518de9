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
