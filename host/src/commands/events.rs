//! The one seam through which a command changes: every change is committed together with its
//! audit row in one transaction, and only once committed is it published: to this replica's live
//! streams, to the other replicas (notices), to metrics. Output goes through here too
//! ([`OutputPublisher`]). What more a change must reach goes here, in one place: rows that must
//! commit with the change (its webhook event's outbox row, through [`EventTag`]) into the store's
//! transaction, everything that
//! follows it into [`Events::publish`].

use std::sync::Arc;

use crate::replicas::{Notice, Notices};
use crate::store::{
    AuditEntry, Claim, CommandRecord, CommandState, EventTag, Inserted, OutputChunk, Store, StoreResult, Transition,
};
use crate::streaming::OutputHub;
use crate::telemetry::Metrics;
use crate::telemetry::traces::CommandSpans;

use super::{Actor, state_change};

/// The audit row of a change, made a webhook event of its own action's name: its outbox row
/// commits with it.
fn tagged(mut audit: AuditEntry, project: Option<&str>) -> AuditEntry {
    audit.event = Some(EventTag::new(audit.action.clone(), project));
    audit
}

/// Where every change of a command is committed and published.
#[derive(Clone)]
pub(super) struct Events {
    store: Arc<dyn Store>,
    hub: OutputHub,
    metrics: Metrics,
    notices: Notices,
    spans: CommandSpans,
}

/// Publishes stored output: to this replica's subscribers, and to the others as one notice.
#[derive(Clone)]
pub(super) struct OutputPublisher {
    hub: OutputHub,
    notices: Notices,
}

impl OutputPublisher {
    /// Publishes chunks once they are stored, in order.
    pub(super) fn stored(&self, command_id: &str, chunks: Vec<OutputChunk>) {
        let Some(seq) = chunks.last().map(|c| c.seq) else {
            return;
        };
        self.hub.publish(command_id, chunks);
        self.notices.publish(Notice::Output {
            command: command_id.to_owned(),
            seq,
        });
    }
}

impl Events {
    pub(super) fn new(store: Arc<dyn Store>, hub: OutputHub, metrics: Metrics, notices: Notices) -> Self {
        Self {
            store,
            hub,
            metrics,
            notices,
            spans: CommandSpans::default(),
        }
    }

    /// The trace spans of commands between their request and their execution.
    pub(super) fn spans(&self) -> &CommandSpans {
        &self.spans
    }

    /// This replica's live streams (fed from peers' notices too).
    pub(super) fn hub(&self) -> &OutputHub {
        &self.hub
    }

    /// Where a runner's stored output is published.
    pub(super) fn output_publisher(&self) -> OutputPublisher {
        OutputPublisher {
            hub: self.hub.clone(),
            notices: self.notices.clone(),
        }
    }

    /// Stores a new command with its `command.accepted` audit row (and the request's own row, if
    /// given) in one commit; counts it and wakes the replicas if it is new.
    pub(super) async fn record_accepted(
        &self,
        record: &CommandRecord,
        audit: &AuditEntry,
        request_audit: Option<AuditEntry>,
    ) -> StoreResult<Inserted> {
        let mut audits = vec![tagged(audit.clone(), Some(&record.project))];
        audits.extend(request_audit);
        let inserted = self.store.insert_command(record, &audits).await?;
        if matches!(inserted, Inserted::New) {
            self.spans.queued(&record.id);
            self.metrics.commands_accepted.inc();
            let project = record.project.clone();
            self.notices.publish(Notice::Queued { project });
        }
        Ok(inserted)
    }

    /// Stores the audit row of a command of `project` that was refused before it was stored.
    pub(super) async fn record_rejected(&self, project: &str, audit: &AuditEntry) -> StoreResult<()> {
        self.store.append_audit(&tagged(audit.clone(), Some(project))).await
    }

    /// Claims the next queued command of a project for this replica (queued → running, with its
    /// `command.started` row), if the project has a free slot across all replicas.
    pub(super) async fn record_claimed(&self, claim: &Claim) -> StoreResult<Option<CommandRecord>> {
        let mut claim = claim.clone();
        claim.audit = tagged(claim.audit, Some(&claim.project));
        self.store.claim_next(&claim).await
    }

    /// Commits a state change with its audit row and then publishes it; false (and nothing
    /// published) if the command was in none of the states the change starts from.
    pub(super) async fn change_state(&self, change: &Transition<'_>) -> StoreResult<bool> {
        let applied = self.store.transition(change).await?;
        if applied {
            self.publish(change);
        }
        Ok(applied)
    }

    /// Ends a queued command without running it; false if it was no longer queued.
    pub(super) async fn end_queued(
        &self,
        actor: &Actor,
        command: (&str, &str),
        to: CommandState,
        reason: &str,
    ) -> StoreResult<bool> {
        let change = state_change(actor, command, &[CommandState::Queued], to, None, Some(reason));
        self.change_state(&change).await
    }

    /// Says that a command of `project` that ran here ended: a slot may be free, here or on
    /// another replica.
    pub(super) fn slot_freed(&self, project: &str) {
        let project = project.to_owned();
        self.notices.publish(Notice::SlotFreed { project });
    }

    /// Ends the live streams of a command whose end could not be stored, which would otherwise
    /// wait for an event that never comes; a client that returns reads the stored state (the
    /// command is reconciled as `interrupted` later).
    pub(super) fn end_streams_unrecorded(&self, change: &Transition<'_>) {
        self.hub.close(change.id, change.to, change.exit_code);
    }

    /// What follows a committed change. A change that only amends an ended command (a kill
    /// confirmed later) is not an end of its own.
    fn publish(&self, change: &Transition<'_>) {
        if change.to.is_terminal() && !change.from.contains(&change.to) {
            self.metrics
                .commands_finished
                .with_label_values(&[change.to.as_str()])
                .inc();
            self.hub.close(change.id, change.to, change.exit_code);
            self.spans.ended(change.id);
            self.notices.publish(Notice::Ended {
                command: change.id.to_owned(),
                state: change.to.as_str().to_owned(),
                exit_code: change.exit_code,
            });
        }
    }
}
