//! Rows the store reads and writes.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A stored API key. The token itself is never stored, only its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Public identifier, also embedded in the token.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Hex HMAC-SHA256 of the token's secret part.
    pub hash: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Projects the key may see; `None` means all.
    pub projects: Option<Vec<String>>,
    /// Client networks the key may be used from; `None` means any.
    pub allowed_cidrs: Option<Vec<ipnet::IpNet>>,
    /// Expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last successful use, Unix ms.
    pub last_used_at: Option<i64>,
    /// Revocation time, Unix ms.
    pub revoked_at: Option<i64>,
    /// The rate-limit tier (`[limits.tiers]`); `None` means the default tier.
    pub rate_limit_tier: Option<String>,
}

/// Life-cycle state of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Waiting for a free slot in its project.
    Queued,
    /// Its process is running.
    Running,
    /// Exited with status 0.
    Succeeded,
    /// Exited with a non-zero status or could not start.
    Failed,
    /// Cancelled by a client.
    Cancelled,
    /// Killed after its timeout.
    TimedOut,
    /// The gateway stopped while it ran.
    Interrupted,
}

impl CommandState {
    /// All states, in life-cycle order.
    pub const ALL: [CommandState; 7] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::TimedOut,
        Self::Interrupted,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
            Self::Interrupted => "interrupted",
        }
    }

    /// Whether the command has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

impl fmt::Display for CommandState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommandState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown command state `{s}`"))
    }
}

/// A stored command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    /// Identifier (`cmd_…`).
    pub id: String,
    /// Project it runs in.
    pub project: String,
    /// Command kind (`shell`, `claude`, or an argv kind such as `git`).
    pub kind: String,
    /// The command as accepted, as JSON (the commands layer reads and writes it).
    pub spec: String,
    /// Current state.
    pub state: CommandState,
    /// Higher runs first.
    pub priority: i32,
    /// Seconds before it is killed.
    pub timeout_secs: i64,
    /// Exit status, once ended.
    pub exit_code: Option<i32>,
    /// Why it ended as it did, when that needs saying.
    pub reason: Option<String>,
    /// Key that submitted it.
    pub key_id: String,
    /// Client-chosen idempotency key.
    pub idempotency_key: Option<String>,
    /// Hash of the request body, to detect reuse of an idempotency key.
    pub request_hash: Option<String>,
    /// Monotonic enqueue order (FIFO within a priority; list cursor).
    pub queue_seq: i64,
    /// Process group while running.
    pub pgid: Option<i64>,
    /// Where that process group lives (the backend's identity), so that only that place kills it.
    pub runner: Option<String>,
    /// Acceptance time, Unix ms.
    pub created_at: i64,
    /// Start time, Unix ms.
    pub started_at: Option<i64>,
    /// End time, Unix ms.
    pub finished_at: Option<i64>,
    /// The replica that claimed it to run (set with `running`).
    pub owner: Option<String>,
    /// The Claude Code session of a `claude` command.
    pub session_id: Option<String>,
    /// What a `claude` run reported at its end (JSON: cost, turns, duration, error).
    pub run_summary: Option<String>,
}

/// A gateway process sharing the database, with its heartbeat lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// Identifier (`rep_…`), new for every process start.
    pub id: String,
    /// Host name it runs on.
    pub host: String,
    /// Process start, Unix ms.
    pub started_at: i64,
    /// Last renewal, Unix ms.
    pub heartbeat_at: i64,
    /// Peers take it as dead after this, Unix ms.
    pub lease_expires_at: i64,
}

/// A claim of the next queued command of a project for a replica, if the project has a free slot.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Project.
    pub project: String,
    /// Its `max_concurrent_commands`, counted across every replica.
    pub limit: i64,
    /// The claiming replica; nothing is claimed unless its lease row exists.
    pub owner: String,
    /// When, Unix ms.
    pub at: i64,
    /// The `command.started` audit row; its target becomes the claimed command's id.
    pub audit: AuditEntry,
}

/// A state change of a command and the audit event recording it.
#[derive(Debug)]
pub struct Transition<'a> {
    /// Command id.
    pub id: &'a str,
    /// States the command may be in for the change to apply.
    pub from: &'a [CommandState],
    /// New state.
    pub to: CommandState,
    /// Exit status, for terminal states.
    pub exit_code: Option<i32>,
    /// Why, when it needs saying.
    pub reason: Option<&'a str>,
    /// When, Unix ms.
    pub at: i64,
    /// Audit event written in the same transaction.
    pub audit: AuditEntry,
}

/// Filter and page of a command listing.
#[derive(Debug, Clone, Default)]
pub struct CommandQuery {
    /// Project.
    pub project: String,
    /// Only commands in this state.
    pub state: Option<CommandState>,
    /// Only commands older than this cursor (`queue_seq`).
    pub before: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// One piece of a command's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputChunk {
    /// Command id.
    #[serde(skip)]
    pub command_id: String,
    /// Per-command sequence number, from 1.
    pub seq: i64,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// Text (invalid UTF-8 replaced).
    pub text: String,
}

/// An audit event to append.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// Time, Unix ms.
    pub at: i64,
    /// Key that acted; `None` for the gateway itself.
    pub key_id: Option<String>,
    /// Client IP.
    pub client_ip: Option<String>,
    /// What happened (`key.create`, `command.accepted`, `POST /v1/keys`…).
    pub action: String,
    /// What it happened to (a path or an id).
    pub target: String,
    /// How it ended (`201`, `succeeded`…).
    pub outcome: String,
    /// Request id, when it came from a request.
    pub request_id: Option<String>,
    /// Trace id of that request, while traces are exported.
    pub trace_id: Option<String>,
    /// Extra JSON detail.
    pub detail: Option<String>,
    /// Set when this row is also a webhook event: the store then writes its outbox row (if a
    /// subscription matches it) in the same transaction. Not stored as such.
    pub event: Option<EventTag>,
}

/// What makes an audit row a webhook event: its type and what subscriptions match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTag {
    /// Event type, e.g. `command.succeeded`.
    pub kind: String,
    /// The project it concerns, if any (subscriptions may be limited to projects).
    pub project: Option<String>,
    /// Only this subscription, whatever its event filter (a test event).
    pub subscription: Option<String>,
}

impl EventTag {
    /// An event of `kind` about `project`, for every subscription that matches it.
    pub fn new(kind: impl Into<String>, project: Option<&str>) -> Self {
        Self {
            kind: kind.into(),
            project: project.map(str::to_owned),
            subscription: None,
        }
    }

    /// The event-filter patterns that match this event: its type, its family (`command.*`), `*`.
    pub fn patterns(&self) -> [String; 3] {
        let family = self.kind.split('.').next().unwrap_or_default();
        [self.kind.clone(), format!("{family}.*"), "*".to_owned()]
    }
}

/// A stored audit event.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Monotonic id (pagination cursor).
    pub id: i64,
    /// The event.
    pub entry: AuditEntry,
}

/// Filter and page of an audit listing.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events of this key.
    pub key_id: Option<String>,
    /// Only events with this action.
    pub action: Option<String>,
    /// Only events with this target.
    pub target: Option<String>,
    /// Only events at or after this time (Unix ms).
    pub since: Option<i64>,
    /// Only events before this time (Unix ms).
    pub until: Option<i64>,
    /// Only events with an id below this cursor.
    pub before: Option<i64>,
    /// Page size.
    pub limit: i64,
}
