//! The queue: claims queued commands for this replica while their project has free slots across
//! all replicas (higher priority first, FIFO within a priority) and hands them to the runner. The
//! queue lives in the store, so a restart neither loses nor double-runs commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;

use super::Actor;
use super::events::Events;
use super::runner::Runner;
use crate::projects::ProjectRegistry;
use crate::replicas::Replica;
use crate::store::{Claim, CommandState, Store, StoreResult};
use crate::time::now_ms;

/// Claims queued commands.
#[derive(Clone)]
pub(super) struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    events: Events,
    store: Arc<dyn Store>,
    projects: ProjectRegistry,
    replica: Arc<Replica>,
    runner: Runner,
    /// One dispatch at a time on this replica (claims are atomic anyway; this avoids claiming
    /// in parallel only to find the slots taken).
    dispatching: tokio::sync::Mutex<()>,
    claiming: AtomicBool,
}

impl Queue {
    pub(super) fn new(
        events: Events,
        store: Arc<dyn Store>,
        projects: ProjectRegistry,
        replica: Arc<Replica>,
        runner: Runner,
    ) -> Self {
        let inner = Inner {
            events,
            store,
            projects,
            replica,
            runner,
            dispatching: tokio::sync::Mutex::new(()),
            claiming: AtomicBool::new(true),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Claims and starts queued commands of `project` while it has free slots. Boxed because it
    /// is recursive through the runner, which dispatches again when a command ends.
    pub(super) fn dispatch<'a>(&'a self, project: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.try_dispatch(project).await {
                tracing::error!(error = %e, project, "could not start queued commands");
            }
        })
    }

    async fn try_dispatch(&self, project_name: &str) -> StoreResult<()> {
        let _serialized = self.inner.dispatching.lock().await;
        let store = &self.inner.store;
        loop {
            if !self.is_claiming() {
                return Ok(());
            }
            let Some(project) = self.inner.projects.get(project_name) else {
                let Some(next) = store.next_queued(project_name).await? else {
                    return Ok(());
                };
                let reason = "the project no longer exists";
                let actor = Actor::default();
                self.inner
                    .events
                    .end_queued(&actor, (&next.id, &next.project), CommandState::Failed, reason)
                    .await?;
                continue;
            };
            let limit = i64::from(project.settings.max_concurrent_commands);
            // Reads first, so that an empty queue or a full project costs no write (every end of
            // a command dispatches): a command queued or a slot freed after these reads
            // dispatches again on its own.
            if store.next_queued(project_name).await?.is_none() || store.count_running(project_name).await? >= limit {
                return Ok(());
            }
            let claim = Claim {
                project: project_name.to_owned(),
                limit,
                owner: self.inner.replica.id(),
                at: now_ms(),
                audit: Actor::default().audit("command.started", "", CommandState::Running.as_str(), None),
            };
            let Some(next) = self.inner.events.record_claimed(&claim).await? else {
                return Ok(());
            };
            let (queue, name) = (self.clone(), project_name.to_owned());
            let then = async move { queue.dispatch(&name).await };
            self.inner.runner.spawn(project, next, claim.owner, then);
        }
    }

    /// Dispatches every project with queued commands.
    pub(super) async fn dispatch_all(&self) -> StoreResult<()> {
        for project in self.inner.store.projects_with_queued().await? {
            self.dispatch(&project).await;
        }
        Ok(())
    }

    /// Dispatches every project with queued commands every `every`. A dispatch that failed (the
    /// database was unavailable when a command was queued or ended) would otherwise leave its
    /// commands queued until the next command of that project comes or goes.
    pub(super) fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        crate::time::spawn_every(every, move || {
            let this = this.clone();
            async move {
                if let Err(e) = this.dispatch_all().await {
                    tracing::debug!(error = %e, "queue sweep skipped");
                }
            }
        })
    }

    /// Stops claiming, once a dispatch in flight is done. The lock is let go at once: a command
    /// that ends dispatches again (which now claims nothing), and the drain waits for those.
    pub(super) async fn stop_claiming(&self) {
        self.inner.claiming.store(false, Ordering::SeqCst);
        drop(self.inner.dispatching.lock().await);
    }

    /// Whether this replica claims commands (false while it shuts down).
    pub(super) fn is_claiming(&self) -> bool {
        self.inner.claiming.load(Ordering::SeqCst)
    }
}
