//! State shared by the public handle, the HTTP connections, watches and exec sessions.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::procs::Processes;
use crate::store::Store;
use crate::{ExecRecord, Options};

pub(crate) struct Shared {
    pub(crate) options: Options,
    pub(crate) store: Store,
    pub(crate) processes: Mutex<Processes>,
    pub(crate) execs: Mutex<Vec<ExecRecord>>,
    /// `true` during a simulated outage; watches wait on it to end at once.
    pub(crate) down: watch::Sender<bool>,
    pub(crate) requests: AtomicU64,
    /// Cancelled when the last handle is dropped: every connection, watch and session ends.
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn new(options: Options) -> Self {
        let shutdown = CancellationToken::new();
        Self {
            options,
            store: Store::new(),
            processes: Mutex::new(Processes::new(shutdown.clone())),
            execs: Mutex::default(),
            down: watch::Sender::new(false),
            requests: AtomicU64::new(0),
            shutdown,
        }
    }

    pub(crate) fn processes(&self) -> MutexGuard<'_, Processes> {
        self.processes.lock().expect("processes lock poisoned")
    }

    pub(crate) fn execs(&self) -> MutexGuard<'_, Vec<ExecRecord>> {
        self.execs.lock().expect("execs lock poisoned")
    }

    pub(crate) fn is_down(&self) -> bool {
        *self.down.borrow()
    }
}
