//! What the socket wrapper, the service and the connection cap know about one connection: its
//! requests started and finished, whether a head has begun, and the request to close it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;

use futures::task::AtomicWaker;
use tokio_util::sync::CancellationToken;

/// What the socket wrapper, the service and the cap know about a connection.
#[derive(Default)]
pub(super) struct ConnState {
    started: AtomicU64,
    finished: AtomicU64,
    head_begun: AtomicBool,
    close: CancellationToken,
    /// Woken when a request finishes: hyper does not read again by itself after a response,
    /// and the idle deadline must start running.
    reader: AtomicWaker,
}

impl ConnState {
    /// A request head was received and handed to the service.
    pub(super) fn request_started(&self) {
        self.head_begun.store(false, Ordering::SeqCst);
        self.started.fetch_add(1, Ordering::SeqCst);
    }

    /// A response was sent in full (or abandoned).
    pub(super) fn request_finished(&self) {
        self.finished.fetch_add(1, Ordering::SeqCst);
        self.reader.wake();
    }

    /// Wakes the task reading the connection once the request in flight finishes.
    pub(super) fn wake_when_finished(&self, waker: &Waker) {
        self.reader.register(waker);
    }

    /// Requests started and finished so far.
    pub(super) fn requests(&self) -> (u64, u64) {
        (
            self.started.load(Ordering::SeqCst),
            self.finished.load(Ordering::SeqCst),
        )
    }

    /// The first bytes of a request head arrived.
    pub(super) fn head_begun(&self) {
        self.head_begun.store(true, Ordering::SeqCst);
    }

    /// No request in flight and none begun: closing the connection loses nothing.
    pub(super) fn is_idle(&self) -> bool {
        let (started, finished) = self.requests();
        started == finished && !self.head_begun.load(Ordering::SeqCst)
    }

    /// Asks the connection to close once its current request (if any) is answered.
    pub(super) fn close(&self) {
        self.close.cancel();
    }

    /// Cancelled when the connection is asked to close.
    pub(super) fn closing(&self) -> &CancellationToken {
        &self.close
    }
}
