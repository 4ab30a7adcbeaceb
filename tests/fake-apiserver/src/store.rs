//! The object store: current objects, one global resourceVersion counter and the log of every change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use tokio::sync::watch;

use crate::objects::{Content, Identity, Kind, Stored};
use crate::selectors::Filter;

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Modified,
    Deleted,
}

/// One logged change. `previous` is the version before it, so that a watcher with a label selector
/// can tell an object that starts or stops matching.
pub(crate) struct Event {
    pub(crate) rv: u64,
    pub(crate) change: Change,
    pub(crate) object: Arc<Stored>,
    pub(crate) previous: Option<Arc<Stored>>,
}

type Key = (Kind, String, String);

/// The state behind the lock.
#[derive(Default)]
pub(crate) struct Objects {
    rv: u64,
    serial: u64,
    current: BTreeMap<Key, Arc<Stored>>,
    // The whole history is kept, so a watch never has to be answered with 410 Gone.
    log: Vec<Arc<Event>>,
}

impl Objects {
    /// The latest resource version.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// Current objects of `kind` that `filter` selects, in namespace/name order.
    pub(crate) fn list(&self, kind: Kind, filter: &Filter) -> Vec<Arc<Stored>> {
        let of_kind = self.current.iter().filter(|((k, _, _), _)| *k == kind);
        of_kind.map(|(_, o)| o.clone()).filter(|o| filter.matches(o)).collect()
    }

    pub(crate) fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<Stored>> {
        self.current.get(&(kind, namespace.into(), name.into())).cloned()
    }

    /// Logged changes after resource version `rv`.
    pub(crate) fn events_after(&self, rv: u64) -> Vec<Arc<Event>> {
        let start = self.log.partition_point(|e| e.rv <= rv);
        self.log[start..].to_vec()
    }

    fn put(&mut self, namespace: &str, name: &str, content: Content) {
        let key = (content.kind(), namespace.to_string(), name.to_string());
        let previous = self.current.get(&key).cloned();
        let identity = previous.as_ref().map_or_else(|| self.new_identity(), |p| p.identity);
        self.rv += 1;
        let object = Arc::new(Stored::render(namespace, name, content, identity, self.rv));
        self.current.insert(key, object.clone());
        let change = if previous.is_some() {
            Change::Modified
        } else {
            Change::Added
        };
        self.record(change, object, previous);
    }

    fn remove(&mut self, kind: Kind, namespace: &str, name: &str) {
        if let Some(previous) = self.current.remove(&(kind, namespace.into(), name.into())) {
            self.rv += 1;
            let object = Arc::new(previous.at_version(self.rv));
            self.record(Change::Deleted, object, Some(previous));
        }
    }

    fn new_identity(&mut self) -> Identity {
        self.serial += 1;
        Identity {
            serial: self.serial,
            created: Timestamp::now(),
        }
    }

    fn record(&mut self, change: Change, object: Arc<Stored>, previous: Option<Arc<Stored>>) {
        self.log.push(Arc::new(Event {
            rv: self.rv,
            change,
            object,
            previous,
        }));
    }
}

/// The store with its change notification: watchers wait on `changed` for a newer resource version.
pub(crate) struct Store {
    objects: Mutex<Objects>,
    changed: watch::Sender<u64>,
}

impl Store {
    pub(crate) fn new() -> Self {
        Self {
            objects: Mutex::default(),
            changed: watch::Sender::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Objects> {
        self.objects.lock().expect("store lock poisoned")
    }

    /// A receiver that wakes whenever a change is recorded; take it before reading the log.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Creates or replaces an object.
    pub(crate) fn put(&self, namespace: &str, name: &str, content: Content) {
        let mut objects = self.lock();
        objects.put(namespace, name, content);
        self.changed.send_replace(objects.rv);
    }

    /// Deletes an object if it exists.
    pub(crate) fn remove(&self, kind: Kind, namespace: &str, name: &str) {
        let mut objects = self.lock();
        objects.remove(kind, namespace, name);
        self.changed.send_replace(objects.rv);
    }
}

/// A list response body: `{"apiVersion":"v1","kind":"PodList","metadata":{"resourceVersion":..},"items":[..]}`.
pub(crate) fn list_json(kind: Kind, rv: u64, items: &[Arc<Stored>]) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": kind.list_kind(),
        "metadata": ListMeta { resource_version: Some(rv.to_string()), ..ListMeta::default() },
        "items": items.iter().map(|o| &o.json).collect::<Vec<_>>(),
    })
}
