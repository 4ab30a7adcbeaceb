//! Bodies of a connection's requests and responses: a deadline on receiving a request body, and
//! a response body that tells the connection when the response is done.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::conn_state::ConnState;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body did not arrive in time; the JSON extractor answers it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub struct BodyTimeout(Duration);

/// The request body, with a deadline unless it is known to be empty (most requests: no timer).
pub(super) fn request_body(body: Incoming, limit: Duration) -> Body {
    if http_body::Body::is_end_stream(&body) {
        return Body::new(body);
    }
    Body::new(TimedBody {
        inner: body,
        limit,
        deadline: Box::pin(tokio::time::sleep(limit)),
    })
}

/// A request body that fails with [`BodyTimeout`] once its deadline passes.
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Counts a request as finished when dropped: with the response body once hyper has sent it,
/// or with the response future if the client left first.
pub(super) struct Finished(Arc<ConnState>);

impl Finished {
    pub(super) fn new(state: Arc<ConnState>) -> Self {
        Self(state)
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body carrying its request's [`Finished`] marker.
pub(super) struct Tracked {
    inner: Body,
    _finished: Finished,
}

impl Tracked {
    pub(super) fn new(inner: Body, finished: Finished) -> Self {
        Self {
            inner,
            _finished: finished,
        }
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
