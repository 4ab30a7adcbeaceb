//! The per-project queue: claims queued commands for this replica while their project has free
//! slots across all replicas (higher priority first, FIFO within a priority), and drains on
//! shutdown. The queue lives in the store, so a restart neither loses nor double-runs commands.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{Actor, Commands, RunningCommand, StopReason};
use crate::store::{Claim, CommandState, StoreResult};
use crate::time::now_ms;

impl Commands {
    /// Starts queued commands of `project` while it has free slots. Boxed because it is
    /// recursive through the runner, which dispatches again when a command ends.
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
            if !self.inner.accepting.load(Ordering::SeqCst) {
                return Ok(());
            }
            let Some(project) = self.inner.projects.get(project_name) else {
                let Some(next) = store.next_queued(project_name).await? else {
                    return Ok(());
                };
                let reason = "the project no longer exists";
                self.end_queued(&Actor::default(), &next.id, CommandState::Failed, reason)
                    .await?;
                continue;
            };
            let limit = i64::from(project.settings.max_concurrent_commands);
            // A read first, so that a full project costs no write: a slot that frees after this
            // read dispatches again on its own.
            if store.count_running(project_name).await? >= limit {
                return Ok(());
            }
            let claim = Claim {
                project: project_name.to_owned(),
                limit,
                owner: self.inner.replica.id(),
                at: now_ms(),
                audit: Actor::default().audit("command.started", "", CommandState::Running.as_str(), None),
            };
            let Some(next) = self.record_claimed(&claim).await? else {
                return Ok(());
            };
            let (stop, stop_rx) = watch::channel(None);
            let (done_tx, done) = watch::channel(false);
            self.inner.running.lock().unwrap_or_else(|e| e.into_inner()).insert(
                next.id.clone(),
                RunningCommand {
                    owner: claim.owner,
                    stop,
                    done,
                },
            );
            let this = self.clone();
            self.inner.tasks.spawn(async move {
                this.run(project, next, stop_rx).await;
                let _ = done_tx.send(true);
            });
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
    pub fn spawn_queue_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = this.dispatch_all().await {
                    tracing::debug!(error = %e, "queue sweep skipped");
                }
            }
        })
    }

    /// Stops starting commands, lets running ones finish within `grace`, then interrupts the rest.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.accepting.store(false, Ordering::SeqCst);
        // Wait for a dispatch in flight, then let go: a command that ends dispatches again
        // (which now starts nothing), so holding the lock here would deadlock the wait below.
        drop(self.inner.dispatching.lock().await);
        self.inner.tasks.close();
        if tokio::time::timeout(grace, self.inner.tasks.wait()).await.is_err() {
            let ids: Vec<String> = self
                .inner
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned()
                .collect();
            tracing::warn!(count = ids.len(), "grace period over; interrupting running commands");
            for id in ids {
                self.stop(&id, StopReason::Interrupted);
            }
            self.inner.tasks.wait().await;
        }
    }

    /// Whether new commands are accepted (false while shutting down).
    pub fn is_accepting(&self) -> bool {
        self.inner.accepting.load(Ordering::SeqCst)
    }
}
