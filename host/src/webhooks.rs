//! Webhooks: subscriptions to the gateway's events, delivered from a transactional outbox (an
//! event's outbox row commits with its audit row, see [`EventTag`](crate::store::EventTag), and
//! the delivery workers turn it into a delivery per subscription), rendered by formatter plugins, signed per Standard
//! Webhooks, retried on a schedule, every attempt recorded; sent only to addresses the SSRF rules
//! allow.

mod dispatcher;
pub mod payload;
mod retry;
pub mod secrets;
mod settings;
pub mod signing;
mod subscriptions;
pub mod target;

pub use dispatcher::Dispatcher;
pub use settings::WebhooksConfig;
pub use subscriptions::{MAX_OUTPUT_TAIL_BYTES, SubscriptionFields, Subscriptions, WebhookError};

/// The event types a subscription may name (or name a family of, as `command.*`).
pub const EVENT_TYPES: [&str; 16] = [
    "command.accepted",
    "command.rejected",
    "command.started",
    "command.succeeded",
    "command.failed",
    "command.cancelled",
    "command.timed_out",
    "command.interrupted",
    "plugin.loaded",
    "plugin.swapped",
    "plugin.load_failed",
    "plugin.promoted",
    "plugin.rolled_back",
    "key.created",
    "key.revoked",
    "webhook.test",
];
