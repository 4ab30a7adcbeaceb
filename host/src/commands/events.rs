//! The one seam through which a command changes: every change is committed together with its
//! audit row in one transaction, and only once committed is it published (live streams, metrics).
//! What more a change must reach goes here, in one place: rows that must commit with the change
//! (a webhook outbox) into the store's transaction, notices that follow it (other replicas) into
//! [`Commands::publish`].

use crate::store::{AuditEntry, CommandRecord, Inserted, StoreResult, Transition};

use super::Commands;

impl Commands {
    /// Stores a new command with its `command.accepted` audit row; counts it if it is new.
    pub(super) async fn record_accepted(&self, record: &CommandRecord, audit: &AuditEntry) -> StoreResult<Inserted> {
        let inserted = self.inner.store.insert_command(record, audit).await?;
        if matches!(inserted, Inserted::New) {
            self.inner.metrics.commands_accepted.inc();
        }
        Ok(inserted)
    }

    /// Stores the audit row of a command that was refused before it was stored.
    pub(super) async fn record_rejected(&self, audit: &AuditEntry) -> StoreResult<()> {
        self.inner.store.append_audit(audit).await
    }

    /// Commits a state change with its audit row and then publishes it; false (and nothing
    /// published) if the command was in none of the states the change starts from.
    pub(super) async fn change_state(&self, change: &Transition<'_>) -> StoreResult<bool> {
        let applied = self.inner.store.transition(change).await?;
        if applied {
            self.publish(change);
        }
        Ok(applied)
    }

    /// Ends the live streams of a command whose end could not be stored, which would otherwise
    /// wait for an event that never comes; a client that returns reads the stored state (the
    /// next start marks the command `interrupted`).
    pub(super) fn end_streams_unrecorded(&self, change: &Transition<'_>) {
        self.inner.hub.close(change.id, change.to, change.exit_code);
    }

    /// What follows a committed change. A change that only amends an ended command (a kill
    /// confirmed later) is not an end of its own.
    fn publish(&self, change: &Transition<'_>) {
        if change.to.is_terminal() && !change.from.contains(&change.to) {
            self.inner
                .metrics
                .commands_finished
                .with_label_values(&[change.to.as_str()])
                .inc();
            self.inner.hub.close(change.id, change.to, change.exit_code);
        }
    }
}
