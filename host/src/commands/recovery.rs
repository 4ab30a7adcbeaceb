//! Ownership across replicas: commands of a replica whose lease expired are reconciled by a peer
//! (marked `interrupted`, leftovers killed where their runner identity allows, streams ended); a
//! live peer's commands are never touched. Notices from peers wake the queue, feed live streams
//! and reach the owner of a command cancelled elsewhere; a replica that lost its lease stops what
//! it still runs.

use super::{Actor, Commands, StopReason, state_change};
use crate::replicas::Notice;
use crate::store::{CommandRecord, CommandState, StoreResult};
use crate::time::now_ms;

impl Commands {
    /// After a start: reconciles what dead replicas left (on SQLite, every earlier process), then
    /// starts queued commands.
    pub async fn recover(&self) -> StoreResult<()> {
        self.reconcile().await?;
        self.queue.dispatch_all().await
    }

    /// One sweep: replicas whose lease expired lose their rows (each to exactly one peer), and
    /// running commands that no registered replica owns become `interrupted`. Skipped while this
    /// replica may not judge its peers (see [`crate::replicas::Replica::may_reconcile_peers`]).
    pub async fn reconcile(&self) -> StoreResult<()> {
        let replica = &self.replica;
        if !replica.may_reconcile_peers() {
            return Ok(());
        }
        let me = replica.id();
        let horizon = if replica.may_reconcile_at_once() {
            i64::MAX
        } else {
            now_ms()
        };
        for dead in self.store.expired_replicas(horizon).await? {
            if dead.id != me && self.store.remove_replica(&dead.id, Some(horizon)).await? {
                tracing::warn!(replica_id = %dead.id, host = %dead.host, "a replica's lease expired; reconciling its commands");
            }
        }
        for cmd in self.store.orphaned_commands().await? {
            self.interrupt_orphan(&cmd).await?;
        }
        Ok(())
    }

    /// Marks a command whose replica is gone `interrupted`, after killing what is left of it
    /// where that is safe (the backend decides from the recorded runner identity).
    async fn interrupt_orphan(&self, cmd: &CommandRecord) -> StoreResult<()> {
        if let (Some(pgid), Some(runner)) = (cmd.pgid, &cmd.runner) {
            self.backend.kill_leftover(runner, pgid).await;
        } else if let Some(project) = self.projects.get(&cmd.project) {
            // The replica died between starting the process and recording it.
            self.backend.kill_unrecorded(&project, &cmd.id).await;
        }
        let reason = match &cmd.owner {
            Some(owner) => format!("the gateway replica running it ({owner}) stopped"),
            None => "the gateway stopped while the command ran".to_owned(),
        };
        if let Err(e) = self.store.seal_output(&cmd.id).await {
            tracing::warn!(command_id = %cmd.id, error = %e, "the output of an interrupted command could not be sealed");
        }
        let running = &[CommandState::Running];
        let actor = Actor::default();
        let change = state_change(
            &actor,
            (&cmd.id, &cmd.project),
            running,
            CommandState::Interrupted,
            None,
            Some(&reason),
        );
        if self.events.change_state(&change).await? {
            tracing::warn!(command_id = %cmd.id, %reason, "marked interrupted");
            self.events.slot_freed(&cmd.project);
            let (queue, project) = (self.queue.clone(), cmd.project.clone());
            tokio::spawn(async move { queue.dispatch(&project).await });
        }
        Ok(())
    }

    /// Sweeps every heartbeat for dead peers and for cancels asked elsewhere whose notice never
    /// came, until the task is aborted.
    pub fn spawn_peer_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        crate::time::spawn_every(self.replica.sweep_interval(), move || {
            let this = this.clone();
            async move { this.sweep_peers().await }
        })
    }

    async fn sweep_peers(&self) {
        if let Err(e) = self.reconcile().await {
            tracing::warn!(error = %e, "replica sweep failed");
        }
        match self.store.cancels_requested(&self.replica.id()).await {
            Ok(ids) => {
                for id in ids {
                    self.runner.stop(&id, StopReason::Cancelled);
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not read cancels asked elsewhere"),
        }
    }

    /// Acts on notices from the other replicas, and stops what runs here when this replica's
    /// lease is lost, until the task is aborted.
    pub fn spawn_peer_listener(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let mut notices = self.notices.subscribe();
        let mut lost = self.replica.lost_leases();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    notice = notices.recv() => match notice {
                        Ok(notice) => this.on_notice(notice),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => this.on_notice(Notice::Resync),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    Ok(old) = lost.recv() => this.stop_everything(&old),
                }
            }
        })
    }

    fn on_notice(&self, notice: Notice) {
        match notice {
            Notice::Queued { project } | Notice::SlotFreed { project } => {
                let queue = self.queue.clone();
                tokio::spawn(async move { queue.dispatch(&project).await });
            }
            Notice::Output { command, seq } => self.events.hub().stored_elsewhere(&command, seq),
            Notice::Ended {
                command,
                state,
                exit_code,
            } => match state.parse::<CommandState>() {
                Ok(state) => self.events.hub().close(&command, state, exit_code),
                Err(_) => self.events.hub().stored_elsewhere(&command, i64::MAX),
            },
            Notice::CancelRequested { command } => {
                self.runner.stop(&command, StopReason::Cancelled);
            }
            Notice::KeyRevoked { .. } => {}
            Notice::Resync => {
                self.events.hub().resync();
                let queue = self.queue.clone();
                tokio::spawn(async move {
                    if let Err(e) = queue.dispatch_all().await {
                        tracing::debug!(error = %e, "queue resync skipped");
                    }
                });
            }
        }
    }

    /// A peer took this replica as dead and reconciled what it ran: nothing here may go on as if
    /// it still owned those commands.
    fn stop_everything(&self, old_id: &str) {
        let count = self.runner.stop_owned_by(old_id);
        tracing::error!(replica_id = %old_id, count, "lease lost: stopping the commands this replica still ran");
    }
}
