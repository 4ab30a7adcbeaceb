//! Intake: a command request is validated, checked against its limits, the idempotency keys
//! already used and its project's queue bound, judged by the policy chains (fail closed), and
//! stored queued with its audit rows in one commit; then the queue is woken off the request
//! path. A refusal is audited with the decisions taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::events::Events;
use super::explain::{Asker, Judged, Judgement, judge};
use super::queue::Queue;
use super::{
    Actor, ClaudeSession, CommandError, CommandRequest, CommandSpec, CommandsConfig, PRIORITY_RANGE, SpecError,
    Submission,
};
use crate::auth::Principal;
use crate::exec::ExecBackend;
use crate::plugins::{Decision, Policies, Refused};
use crate::projects::Project;
use crate::store::{CommandRecord, CommandState, Inserted, Store};
use crate::time::now_ms;

/// What the checks before the policies settled.
pub(super) struct Prechecked {
    pub(super) priority: i32,
    pub(super) timeout_secs: u64,
    pub(super) session: Option<ClaudeSession>,
}

/// Takes command requests in.
pub(super) struct Intake {
    pub(super) events: Events,
    pub(super) store: Arc<dyn Store>,
    pub(super) backend: Arc<dyn ExecBackend>,
    pub(super) policies: Policies,
    pub(super) config: Arc<CommandsConfig>,
    pub(super) queue: Queue,
    pub(super) last_queue_seq: AtomicI64,
}

fn request_hash(project: &str, request: &CommandRequest) -> String {
    let canonical = serde_json::to_string(&(project, request)).unwrap_or_default();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

impl Intake {
    /// The policy chains commands and other requests pass through.
    pub(super) fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The next queue position: microseconds since the epoch, strictly increasing here.
    fn next_queue_seq(&self) -> i64 {
        let now_us = now_ms() * 1000;
        let mut last = self.last_queue_seq.load(Ordering::Relaxed);
        loop {
            let next = now_us.max(last + 1);
            match self
                .last_queue_seq
                .compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(current) => last = current,
            }
        }
    }

    /// Validates, runs the policies and queues a command. Returns it as stored and whether it
    /// is new (false when an idempotency key matched an earlier identical request).
    pub(super) async fn submit(
        &self,
        who: &Principal,
        actor: &Actor,
        project: &Project,
        submission: Submission,
    ) -> Result<(CommandRecord, bool), CommandError> {
        let Submission {
            request,
            idempotency_key,
            queue_bound,
            request_audit,
        } = submission;
        if !self.queue.is_claiming() {
            return Err(CommandError::ShuttingDown);
        }
        let request_hash = idempotency_key.as_ref().map(|_| request_hash(&project.name, &request));
        // A retry returns what the first request got, even if policies or settings changed since.
        if let Some(key) = &idempotency_key
            && let Some(existing) = self.store.find_idempotent(&who.key.id, key).await?
        {
            if existing.request_hash != request_hash {
                return Err(CommandError::IdempotencyConflict);
            }
            return Ok((existing, false));
        }
        let Prechecked {
            priority,
            timeout_secs,
            session,
        } = self.precheck(project, &request, queue_bound).await?;
        let (mut spec, decisions) = self.apply_policies(who, actor, project, &request).await?;
        spec.session = session;
        let record = CommandRecord {
            id: format!("cmd_{}", uuid::Uuid::new_v4().simple()),
            project: project.name.clone(),
            kind: spec.kind.clone(),
            spec: serde_json::to_string(&spec).unwrap_or_default(),
            state: CommandState::Queued,
            priority,
            timeout_secs: timeout_secs as i64,
            exit_code: None,
            reason: None,
            key_id: who.key.id.clone(),
            request_hash,
            idempotency_key,
            queue_seq: self.next_queue_seq(),
            pgid: None,
            runner: None,
            created_at: now_ms(),
            started_at: None,
            finished_at: None,
            owner: None,
            session_id: spec.session.as_ref().and_then(|s| s.id.clone()),
            run_summary: None,
        };
        let detail = serde_json::json!({ "kind": record.kind, "decisions": decisions }).to_string();
        let audit = actor.audit("command.accepted", &record.id, "queued", Some(detail));
        let request_audit = request_audit.map(|mut row| {
            row.outcome = "202".into();
            row
        });
        match self.events.record_accepted(&record, &audit, request_audit).await? {
            Inserted::Existing(existing) if existing.request_hash == record.request_hash => Ok((*existing, false)),
            Inserted::Existing(_) => Err(CommandError::IdempotencyConflict),
            Inserted::New => {
                // Claiming and starting it is the queue's work, off the request path: the answer
                // is the command as stored, `queued`, and its stream follows it from there.
                let (queue, project) = (self.queue.clone(), record.project.clone());
                let dispatch = async move { queue.dispatch(&project).await };
                tokio::spawn(dispatch.instrument(tracing::Span::current()));
                Ok((record, true))
            }
        }
    }

    /// The checks a request passes before the policies judge it, which read but change nothing:
    /// the project's queue bound, the backend's availability, the priority and timeout, the
    /// session.
    pub(super) async fn precheck(
        &self,
        project: &Project,
        request: &CommandRequest,
        queue_bound: Option<u32>,
    ) -> Result<Prechecked, CommandError> {
        if !self.queue.is_claiming() {
            return Err(CommandError::ShuttingDown);
        }
        if let Some(bound) = queue_bound
            && self.store.count_queued(Some(&project.name)).await? >= i64::from(bound)
        {
            return Err(CommandError::QueueFull(bound));
        }
        self.backend.available().map_err(CommandError::BackendUnavailable)?;
        let (priority, timeout_secs) = self.limits(project, request)?;
        let session = self.session(project, request).await?;
        Ok(Prechecked {
            priority,
            timeout_secs,
            session,
        })
    }

    /// The Claude Code session a `claude` request runs in: a new one, or one that a command of
    /// the same project ran in (never another project's), not in use unless forked.
    async fn session(
        &self,
        project: &Project,
        request: &CommandRequest,
    ) -> Result<Option<ClaudeSession>, CommandError> {
        let invalid = |message: &str| {
            CommandError::Invalid(SpecError {
                field: "resume",
                message: message.to_owned(),
            })
        };
        if request.kind != "claude" && request.resumes() {
            return Err(invalid("only `claude` commands have sessions"));
        }
        if request.kind != "claude" {
            return Ok(None);
        }
        if !request.resumes() {
            return Ok(Some(ClaudeSession::fresh()));
        }
        if request.resume.is_some() && request.continue_session == Some(true) {
            return Err(invalid("give `resume` or `continue`, not both"));
        }
        let wanted = request.resume.as_deref();
        if wanted.is_some_and(|id| uuid::Uuid::parse_str(id).is_err()) {
            return Err(invalid("must be a session id (a UUID)"));
        }
        let Some(earlier) = self.store.session_command(&project.name, wanted).await? else {
            return Err(CommandError::SessionNotFound(match wanted {
                Some(id) => format!("no command of project `{}` ran in session {id}", project.name),
                None => format!("project `{}` has no session to continue", project.name),
            }));
        };
        let id = earlier.session_id.unwrap_or_default();
        let fork = request.fork == Some(true);
        if !fork && !earlier.state.is_terminal() {
            return Err(CommandError::SessionBusy(id));
        }
        Ok(Some(ClaudeSession::after(id, fork)))
    }

    /// The priority and timeout of a request, checked against their limits.
    fn limits(&self, project: &Project, request: &CommandRequest) -> Result<(i32, u64), CommandError> {
        let invalid = |field, message| Err(CommandError::Invalid(SpecError { field, message }));
        let priority = request.priority.unwrap_or(0);
        if !PRIORITY_RANGE.contains(&priority) {
            let (low, high) = (PRIORITY_RANGE.start(), PRIORITY_RANGE.end());
            return invalid("priority", format!("must be between {low} and {high}"));
        }
        let max = self.config.max_timeout_secs;
        let timeout_secs = request.timeout_secs.unwrap_or(project.settings.default_timeout_secs);
        if timeout_secs == 0 || timeout_secs > max {
            return invalid("timeout_secs", format!("must be between 1 and {max}"));
        }
        Ok((priority, timeout_secs))
    }

    /// Validates the command, then runs the validators and the sanitizer chain (re-checking every
    /// rewrite). A refusal is audited with the decisions taken.
    async fn apply_policies(
        &self,
        who: &Principal,
        actor: &Actor,
        project: &Project,
        request: &CommandRequest,
    ) -> Result<(CommandSpec, Vec<Decision>), CommandError> {
        let Judgement {
            mut validators,
            sanitizers,
            outcome,
        } = self.judge(who, project, request).await;
        validators.extend(sanitizers);
        match outcome {
            Ok(spec) => Ok((spec, validators)),
            Err(Judged::Invalid(e)) => Err(CommandError::Invalid(e)),
            Err(Judged::Refused(refusal)) => Err(self.refused(actor, project, (refusal, validators)).await),
        }
    }

    /// What the validators and the sanitizer chain make of a request, recording nothing.
    pub(super) async fn judge(&self, who: &Principal, project: &Project, request: &CommandRequest) -> Judgement {
        let asker = Asker {
            key_id: &who.key.id,
            scopes: &who.key.scopes,
        };
        judge(&self.policies, &self.config, &asker, project, request).await
    }

    /// Audits a refused command with the decisions taken, and returns the error for the client.
    async fn refused(&self, actor: &Actor, project: &Project, (refusal, decisions): Refused) -> CommandError {
        let detail = serde_json::json!({ "decisions": decisions, "reason": refusal.to_string() });
        let entry = actor.audit("command.rejected", &project.name, "rejected", Some(detail.to_string()));
        if let Err(e) = self.events.record_rejected(&project.name, &entry).await {
            return e.into();
        }
        CommandError::Refused(refusal, decisions)
    }
}
