//! Managing subscriptions: every write is checked (the URL against the SSRF rules, events
//! against the known types, the formatter against the loaded plugins) and stored with its audit
//! row, which never holds the secret or the URL (receiver URLs often carry a token).

use std::sync::Arc;

use super::secrets::{Sealer, Secret};
use super::target::TargetPolicy;
use super::{EVENT_TYPES, WebhooksConfig};
use crate::names::is_valid_name;
use crate::plugins::manager::PluginManager;
use crate::store::{AuditEntry, DeliveryRecord, EventTag, Store, StoreError, SubscriptionRecord, SubscriptionState};
use crate::time::now_ms;

/// Largest output tail a subscription may ask for, in bytes.
pub const MAX_OUTPUT_TAIL_BYTES: i64 = 16 * 1024;

/// Why a subscription change was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A field is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No such subscription or delivery.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request does not fit the current state.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> WebhookError {
    WebhookError::Invalid {
        field,
        message: message.into(),
    }
}

/// The fields of a subscription a client sets.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFields {
    /// Receiver URL.
    pub url: String,
    /// Event types or patterns.
    pub events: Vec<String>,
    /// Projects, or all.
    pub projects: Option<Vec<String>>,
    /// Formatter plugin.
    pub formatter: String,
    /// Free text.
    pub description: String,
    /// Bytes of output in end events.
    pub output_tail_bytes: i64,
}

/// Subscriptions and their secrets.
#[derive(Clone)]
pub struct Subscriptions {
    store: Arc<dyn Store>,
    plugins: PluginManager,
    sealer: Sealer,
    policy: TargetPolicy,
    config: WebhooksConfig,
}

impl Subscriptions {
    /// The service over `store`.
    pub fn new(store: Arc<dyn Store>, plugins: PluginManager, sealer: Sealer, config: WebhooksConfig) -> Self {
        let policy = TargetPolicy::new(config.allowed_targets.clone(), config.allow_http);
        Self {
            store,
            plugins,
            sealer,
            policy,
            config,
        }
    }

    async fn check(&self, f: &SubscriptionFields) -> Result<(), WebhookError> {
        self.policy
            .check_url(&f.url)
            .await
            .map_err(|e| invalid("url", e.to_string()))?;
        if f.events.is_empty() || f.events.len() > 64 {
            return Err(invalid("events", "name 1 to 64 event types"));
        }
        if let Some(bad) = f.events.iter().find(|e| !is_event_pattern(e)) {
            return Err(invalid(
                "events",
                format!("`{bad}` is not an event type, a family such as `command.*`, or `*`"),
            ));
        }
        match &f.projects {
            Some(p) if p.is_empty() => return Err(invalid("projects", "omit it for all projects, or name some")),
            Some(p) => {
                if let Some(bad) = p.iter().find(|p| !is_valid_name(p)) {
                    return Err(invalid("projects", format!("`{bad}` is not a project name")));
                }
            }
            None => {}
        }
        if !self.plugins.is_formatter(&f.formatter) {
            return Err(invalid(
                "formatter",
                format!("`{}` is not a configured webhook-formatter plugin", f.formatter),
            ));
        }
        if f.description.chars().count() > 500 || f.description.chars().any(char::is_control) {
            return Err(invalid("description", "at most 500 printable characters"));
        }
        if !(0..=MAX_OUTPUT_TAIL_BYTES).contains(&f.output_tail_bytes) {
            return Err(invalid(
                "output_tail_bytes",
                format!("must be between 0 and {MAX_OUTPUT_TAIL_BYTES}"),
            ));
        }
        Ok(())
    }

    /// Creates a subscription; its secret is returned here only.
    pub async fn create(
        &self,
        fields: SubscriptionFields,
        audit: AuditEntry,
    ) -> Result<(SubscriptionRecord, String), WebhookError> {
        self.check(&fields).await?;
        let id = format!("whk_{}", hex::encode(rand::random::<[u8; 8]>()));
        let secret = Secret::generate();
        let now = now_ms();
        let record = SubscriptionRecord {
            secret: self.sealer.seal(&id, &secret),
            id,
            url: fields.url,
            events: fields.events,
            projects: fields.projects,
            formatter: fields.formatter,
            description: fields.description,
            output_tail_bytes: fields.output_tail_bytes,
            previous_secret: None,
            state: SubscriptionState::Active,
            disabled_reason: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        let audit = described(audit, &record);
        self.store.insert_subscription(&record, &audit).await?;
        Ok((record, secret.reveal()))
    }

    /// One subscription.
    pub async fn get(&self, id: &str) -> Result<SubscriptionRecord, WebhookError> {
        self.store
            .get_subscription(id)
            .await?
            .ok_or(WebhookError::NotFound("webhook"))
    }

    async fn save(&self, record: SubscriptionRecord, audit: AuditEntry) -> Result<SubscriptionRecord, WebhookError> {
        let audit = described(audit, &record);
        if self.store.update_subscription(&record, &audit).await? {
            Ok(record)
        } else {
            Err(WebhookError::NotFound("webhook"))
        }
    }

    /// Replaces the fields a client sets.
    pub async fn update(
        &self,
        id: &str,
        fields: SubscriptionFields,
        audit: AuditEntry,
    ) -> Result<SubscriptionRecord, WebhookError> {
        let current = self.get(id).await?;
        self.check(&fields).await?;
        let record = SubscriptionRecord {
            url: fields.url,
            events: fields.events,
            projects: fields.projects,
            formatter: fields.formatter,
            description: fields.description,
            output_tail_bytes: fields.output_tail_bytes,
            updated_at: now_ms(),
            ..current
        };
        self.save(record, audit).await
    }

    /// A new secret; the current one keeps signing beside it for `overlap_secs` (default from
    /// the configuration). The new secret is returned here only.
    pub async fn rotate(
        &self,
        id: &str,
        overlap_secs: Option<u64>,
        audit: AuditEntry,
    ) -> Result<(SubscriptionRecord, String), WebhookError> {
        let current = self.get(id).await?;
        let overlap = overlap_secs.unwrap_or(self.config.secret_overlap_secs);
        if overlap > 30 * 24 * 3600 {
            return Err(invalid("overlap_secs", "at most 30 days"));
        }
        let secret = Secret::generate();
        let now = now_ms();
        let until = now + i64::try_from(overlap).unwrap_or(0) * 1000;
        let record = SubscriptionRecord {
            previous_secret: (overlap > 0).then(|| (current.secret.clone(), until)),
            secret: self.sealer.seal(&current.id, &secret),
            updated_at: now,
            ..current
        };
        Ok((self.save(record, audit).await?, secret.reveal()))
    }

    /// Pauses or resumes (also a disabled one) a subscription.
    pub async fn set_state(
        &self,
        id: &str,
        state: SubscriptionState,
        audit: AuditEntry,
    ) -> Result<SubscriptionRecord, WebhookError> {
        let current = self.get(id).await?;
        let record = SubscriptionRecord {
            state,
            disabled_reason: None,
            failing_since: None,
            updated_at: now_ms(),
            ..current
        };
        self.save(record, audit).await
    }

    /// Deletes a subscription and its delivery log.
    pub async fn delete(&self, id: &str, audit: AuditEntry) -> Result<(), WebhookError> {
        let audit = AuditEntry {
            target: id.to_owned(),
            ..audit
        };
        if self.store.delete_subscription(id, &audit).await? {
            Ok(())
        } else {
            Err(WebhookError::NotFound("webhook"))
        }
    }

    /// Records a `webhook.test` event for this subscription alone; it is delivered like any.
    pub async fn send_test(&self, id: &str, audit: AuditEntry) -> Result<(), WebhookError> {
        let sub = self.get(id).await?;
        if sub.state != SubscriptionState::Active {
            return Err(WebhookError::Conflict(format!(
                "the subscription is {}; resume it first",
                sub.state.as_str()
            )));
        }
        let audit = AuditEntry {
            target: id.to_owned(),
            event: Some(EventTag {
                subscription: Some(id.to_owned()),
                ..EventTag::new("webhook.test", None)
            }),
            ..audit
        };
        self.store.append_audit(&audit).await?;
        Ok(())
    }

    /// Makes a delivery due again now, with a fresh retry schedule.
    pub async fn redeliver(&self, id: &str, delivery: &str, audit: AuditEntry) -> Result<DeliveryRecord, WebhookError> {
        let found = self.store.get_delivery(id, delivery).await?;
        if found.is_none() {
            return Err(WebhookError::NotFound("delivery"));
        }
        let audit = AuditEntry {
            target: delivery.to_owned(),
            ..audit
        };
        if !self.store.redeliver(id, delivery, now_ms(), &audit).await? {
            return Err(WebhookError::Conflict("the delivery is being sent right now".into()));
        }
        self.store
            .get_delivery(id, delivery)
            .await?
            .ok_or(WebhookError::NotFound("delivery"))
    }
}

/// The audit row of a change to `record`: its id, and what it receives (never its URL or secret).
fn described(audit: AuditEntry, record: &SubscriptionRecord) -> AuditEntry {
    let host = url::Url::parse(&record.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    let detail = serde_json::json!({ "host": host, "events": record.events, "projects": record.projects,
        "formatter": record.formatter, "state": record.state.as_str() });
    AuditEntry {
        target: record.id.clone(),
        detail: Some(detail.to_string()),
        ..audit
    }
}

/// An event type, a family (`command.*`) or `*`.
fn is_event_pattern(pattern: &str) -> bool {
    pattern == "*"
        || EVENT_TYPES.contains(&pattern)
        || pattern
            .strip_suffix(".*")
            .is_some_and(|family| EVENT_TYPES.iter().any(|t| t.split('.').next() == Some(family)))
}

#[cfg(test)]
mod tests {
    use super::is_event_pattern;

    #[test]
    fn event_patterns_name_known_types_or_families() {
        for ok in ["*", "command.*", "command.succeeded", "key.revoked", "plugin.swapped"] {
            assert!(is_event_pattern(ok), "{ok}");
        }
        for bad in ["command", "command.nope", "nope.*", "", "**", "command.*.x"] {
            assert!(!is_event_pattern(bad), "{bad}");
        }
    }
}
