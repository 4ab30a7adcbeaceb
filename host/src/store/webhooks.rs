//! The webhook outbox's part of the store contract: subscriptions, the outbox row of each event
//! (written in the transaction of the event's audit row — see [`EventTag`](super::EventTag)),
//! deliveries (one per event and subscription, made from the outbox rows by the delivery workers),
//! every attempt of a delivery, and the workers' claims. Any replica may run workers: turning an
//! outbox row into its deliveries deletes it in the same transaction, so it happens once, and a
//! claimed delivery is held under a lease, so that no two workers send it at once and one whose
//! worker died is claimed again.

use async_trait::async_trait;

use super::{AuditEntry, AuditRecord, StoreResult};

/// Whether a subscription receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    /// Deliveries are sent.
    Active,
    /// New events are recorded but held until it is resumed.
    Paused,
    /// Turned off by the gateway (the receiver answered 410, or kept failing); events are held
    /// as when paused, until an operator resumes it.
    Disabled,
}

impl SubscriptionState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }
}

impl std::str::FromStr for SubscriptionState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            "disabled" => Ok(Self::Disabled),
            other => Err(format!("unknown subscription state `{other}`")),
        }
    }
}

/// A webhook subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// `whk_…`.
    pub id: String,
    /// Receiver URL.
    pub url: String,
    /// Event types or patterns (`command.*`, `*`).
    pub events: Vec<String>,
    /// Projects whose events it receives (None: all, and events of no project).
    pub projects: Option<Vec<String>>,
    /// The formatter plugin that renders its bodies.
    pub formatter: String,
    /// Free text.
    pub description: String,
    /// Bytes of a command's last output included in its end events (0: none).
    pub output_tail_bytes: i64,
    /// The signing secret, sealed.
    pub secret: Vec<u8>,
    /// The secret before the last rotation, sealed, and until when it still signs.
    pub previous_secret: Option<(Vec<u8>, i64)>,
    /// Whether it receives deliveries.
    pub state: SubscriptionState,
    /// Why the gateway disabled it.
    pub disabled_reason: Option<String>,
    /// Since when its deliveries have been failing without a success in between.
    pub failing_since: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its due time (first attempt or a retry).
    Pending,
    /// Claimed by a worker, being sent.
    Sending,
    /// The receiver answered 2xx.
    Succeeded,
    /// Every attempt failed.
    Failed,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "sending" => Ok(Self::Sending),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown delivery state `{other}`")),
        }
    }
}

/// One event on its way to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `msg_…`: the `webhook-id`, the same on every attempt.
    pub id: String,
    /// Subscription.
    pub subscription_id: String,
    /// The event's audit row.
    pub event_id: i64,
    /// Event type.
    pub event_type: String,
    /// The event's project.
    pub project: Option<String>,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts since it was created or last redelivered (drives the retry schedule).
    pub attempts: i64,
    /// Attempts ever made (numbers the attempt log).
    pub attempts_total: i64,
    /// When the next attempt is due, Unix ms.
    pub due_at: i64,
    /// HTTP status of the last attempt, if it got one.
    pub last_status: Option<i64>,
    /// Error class of the last attempt, if it failed.
    pub last_error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// When it succeeded or finally failed.
    pub finished_at: Option<i64>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Delivery.
    pub delivery_id: String,
    /// 1, 2, … over the delivery's whole life.
    pub attempt: i64,
    /// When it started, Unix ms.
    pub at: i64,
    /// HTTP status, if the receiver answered.
    pub status: Option<i64>,
    /// How long it took.
    pub latency_ms: i64,
    /// Why it failed (`timeout`, `connect`, `address_refused`, `formatter`, `status`, …).
    pub error_class: Option<String>,
    /// More about the failure.
    pub error: Option<String>,
    /// The start of the response body.
    pub response: Option<String>,
}

/// A worker's claim of due deliveries.
#[derive(Debug, Clone)]
pub struct DeliveryClaim {
    /// The claiming replica.
    pub owner: String,
    /// Now, Unix ms.
    pub now: i64,
    /// Most deliveries claimed.
    pub limit: i64,
    /// Most deliveries of one subscription being sent at once.
    pub per_subscription: i64,
    /// Until when the claimed ones are held, Unix ms.
    pub lease_until: i64,
}

/// What comes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    /// It succeeded.
    Succeeded,
    /// Another attempt at this time, Unix ms.
    RetryAt(i64),
    /// No attempt is left.
    Failed,
}

/// An attempt's result, recorded if the worker still holds the delivery.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The attempt.
    pub attempt: AttemptRecord,
    /// The worker's replica.
    pub owner: String,
    /// The delivery's next step.
    pub next: AfterAttempt,
    /// Whether the subscription is healthy again (a success) or failing.
    pub healthy: bool,
    /// Disable the subscription, with this audit row (410, or failing for too long).
    pub disable: Option<(String, AuditEntry)>,
}

/// Filter and page of a delivery listing.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Subscription.
    pub subscription_id: String,
    /// Only deliveries in this state.
    pub state: Option<DeliveryState>,
    /// Only deliveries of this event type.
    pub event_type: Option<String>,
    /// Only deliveries created before this one (cursor: its id).
    pub before: Option<(i64, String)>,
    /// Page size.
    pub limit: i64,
}

/// The outbox's backlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    /// Deliveries due (pending and due, or claimed by a worker whose lease ran out).
    pub due: i64,
    /// Due time of the oldest of them, or the time of the oldest event not yet turned into its
    /// deliveries if that is older, Unix ms.
    pub oldest_due_at: Option<i64>,
}

/// Subscriptions, deliveries and attempts.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Stores a new subscription with its audit row.
    async fn insert_subscription(&self, sub: &SubscriptionRecord, audit: &AuditEntry) -> StoreResult<()>;
    /// One subscription.
    async fn get_subscription(&self, id: &str) -> StoreResult<Option<SubscriptionRecord>>;
    /// Every subscription, newest first.
    async fn list_subscriptions(&self) -> StoreResult<Vec<SubscriptionRecord>>;
    /// Replaces a subscription's fields with its audit row; false if it is gone.
    async fn update_subscription(&self, sub: &SubscriptionRecord, audit: &AuditEntry) -> StoreResult<bool>;
    /// Deletes a subscription and its deliveries with its audit row; false if it is gone.
    async fn delete_subscription(&self, id: &str, audit: &AuditEntry) -> StoreResult<bool>;
    /// Turns the oldest `limit` outbox rows into their deliveries — one for each subscription
    /// that matches the event and existed when it happened — and deletes them, in one
    /// transaction (of two replicas doing this at once, each takes other rows); how many it took.
    async fn expand_events(&self, limit: i64) -> StoreResult<i64>;
    /// Claims due deliveries of active subscriptions, oldest first, at most
    /// `per_subscription` of one subscription in flight. A delivery claimed by a worker whose
    /// lease ran out, or whose replica is gone (taken as dead), is due again.
    async fn claim_deliveries(&self, claim: &DeliveryClaim) -> StoreResult<Vec<DeliveryRecord>>;
    /// Records an attempt and the delivery's next step, if `owner` still holds it; false if not.
    async fn finish_attempt(&self, result: &AttemptResult) -> StoreResult<bool>;
    /// Deliveries of a subscription, newest first.
    async fn list_deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<DeliveryRecord>>;
    /// One delivery of a subscription.
    async fn get_delivery(&self, subscription_id: &str, id: &str) -> StoreResult<Option<DeliveryRecord>>;
    /// The attempts of a delivery, in order.
    async fn list_attempts(&self, delivery_id: &str) -> StoreResult<Vec<AttemptRecord>>;
    /// Makes a delivery due again now with a fresh retry schedule (unless a worker is sending
    /// it), with its audit row; false if it is being sent or gone.
    async fn redeliver(&self, subscription_id: &str, id: &str, now: i64, audit: &AuditEntry) -> StoreResult<bool>;
    /// One audit row (the record of an event).
    async fn get_audit(&self, id: i64) -> StoreResult<Option<AuditRecord>>;
    /// The last `limit` output chunks of a command, in order (for an end event's tail).
    async fn output_tail(&self, command_id: &str, limit: i64) -> StoreResult<Vec<super::OutputChunk>>;
    /// The backlog of due deliveries.
    async fn outbox_depth(&self, now: i64) -> StoreResult<OutboxDepth>;
}
