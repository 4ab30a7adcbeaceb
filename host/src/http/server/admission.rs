//! The connection cap. Up to `max` connections are served normally. At the cap, the oldest idle
//! connection (no request in flight, no request head begun) is closed to make room, since an
//! idle socket is the cheapest thing to give up; without one, up to `overflow` more connections
//! are served in shed mode; beyond that, a new connection waits a moment for a place (the
//! accept loop pauses, and the kernel's backlog holds later ones at no cost to the gateway's
//! descriptors) and is refused only if none frees. A burst of sockets therefore cannot have a
//! client refused just because the connections it made room from have not closed yet.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::conn_state::ConnState;

/// Admits connections against the cap.
pub(super) struct Admission {
    max: usize,
    overflow: usize,
    inner: Mutex<Inner>,
    /// Signalled whenever a connection gives its place back.
    released: Notify,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    normal: usize,
    shed: usize,
    evicting: usize,
    /// Open connections by id: ids grow with time, so iteration goes oldest first.
    conns: BTreeMap<u64, Entry>,
}

struct Entry {
    state: Arc<ConnState>,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Shed,
    /// Asked to close to make room; still holds its socket until it has.
    Evicted,
}

/// An admitted connection's place; given back when dropped.
pub(super) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    state: Arc<ConnState>,
    shed: bool,
}

impl Admission {
    /// A cap of `max` normal connections plus `overflow` shed ones.
    pub(super) fn new(max: usize, overflow: usize) -> Self {
        Self {
            max,
            overflow,
            inner: Mutex::new(Inner::default()),
            released: Notify::new(),
        }
    }

    /// A place for a new connection, or `None` when it must be closed at once.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let kind = if inner.normal < self.max || (inner.evicting < self.overflow && inner.evict_idle()) {
            Kind::Normal
        } else if inner.shed < self.overflow {
            Kind::Shed
        } else {
            return None;
        };
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnState::default());
        inner.count(kind, true);
        inner.conns.insert(
            id,
            Entry {
                state: state.clone(),
                kind,
            },
        );
        Some(Ticket {
            admission: self.clone(),
            id,
            state,
            shed: kind == Kind::Shed,
        })
    }

    /// A place for a new connection, waiting up to `patience` for one to free; `None` when the
    /// connection must be closed.
    pub(super) async fn admit_within(self: &Arc<Self>, patience: Duration) -> Option<Ticket> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let released = self.released.notified();
            if let Some(ticket) = self.admit() {
                return Some(ticket);
            }
            tokio::time::timeout_at(deadline, released).await.ok()?;
        }
    }

    fn release(&self, id: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = inner.conns.remove(&id) {
            inner.count(entry.kind, false);
        }
        drop(inner);
        self.released.notify_one();
    }
}

impl Inner {
    fn count(&mut self, kind: Kind, add: bool) {
        let counter = match kind {
            Kind::Normal => &mut self.normal,
            Kind::Shed => &mut self.shed,
            Kind::Evicted => &mut self.evicting,
        };
        if add {
            *counter += 1;
        } else {
            *counter -= 1;
        }
    }

    /// Asks the oldest idle normal connection to close; whether there was one.
    fn evict_idle(&mut self) -> bool {
        let Some(entry) = self
            .conns
            .values_mut()
            .find(|e| e.kind == Kind::Normal && e.state.is_idle())
        else {
            return false;
        };
        entry.kind = Kind::Evicted;
        entry.state.close();
        self.normal -= 1;
        self.evicting += 1;
        true
    }
}

impl Ticket {
    /// The connection's shared state.
    pub(super) fn state(&self) -> &Arc<ConnState> {
        &self.state
    }

    /// Whether the connection is served in shed mode.
    pub(super) fn shed(&self) -> bool {
        self.shed
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_make_room_before_shedding() {
        let admission = Arc::new(Admission::new(2, 1));
        let first = admission.admit().unwrap();
        let busy = admission.admit().unwrap();
        busy.state().request_started();
        let third = admission.admit().expect("the idle one makes room");
        assert!(!third.shed());
        assert!(
            first.state().closing().is_cancelled(),
            "the idle connection was asked to close"
        );
        third.state().request_started();
        let shed = admission.admit().expect("overflow");
        assert!(shed.shed());
        assert!(admission.admit().is_none(), "beyond the overflow");
        drop(first);
        drop(shed);
        assert!(admission.admit().unwrap().shed(), "the shed place was given back");
    }

    #[tokio::test]
    async fn a_connection_over_the_overflow_waits_for_a_place_to_free() {
        let admission = Arc::new(Admission::new(1, 1));
        let busy = admission.admit().unwrap();
        busy.state().request_started();
        let shed = admission.admit().unwrap();
        assert!(shed.shed());
        assert!(admission.admit_within(Duration::from_millis(10)).await.is_none());
        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit_within(Duration::from_secs(60)).await.is_some() }
        });
        tokio::task::yield_now().await;
        drop(shed);
        assert!(waiting.await.unwrap(), "the freed place went to the waiting connection");
    }
}
