//! Delivery workers: turn the outbox's event rows into deliveries, claim due deliveries (any
//! replica may; a claim is a lease), render each with its subscription's formatter, sign the
//! final body, send it to the checked address, and record the attempt with the delivery's next
//! step (success, a retry on the schedule or after `Retry-After`, failure; 410 and a long failing
//! streak disable the subscription). A slow receiver holds at most its subscription's share of
//! the workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::WebhooksConfig;
use super::payload::{self, EventFacts};
use super::secrets::Sealer;
use super::signing;
use super::target::{CheckedResolver, TargetError, TargetPolicy};
use crate::plugins::manager::{PluginManager, WebhookTarget};
use crate::replicas::Replica;
use crate::store::{
    AfterAttempt, AttemptRecord, AttemptResult, AuditEntry, DeliveryClaim, DeliveryRecord, Store, SubscriptionRecord,
};
use crate::telemetry::Metrics;
use crate::time::now_ms;

/// Bytes of a response read at most; the rest is not waited for.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Characters of the response kept in the attempt log.
const SNIPPET_CHARS: usize = 2048;
/// Outbox rows turned into deliveries per transaction.
const EXPAND_BATCH: i64 = 256;
/// Output chunks read for an end event's tail.
const TAIL_CHUNKS: i64 = 256;

/// What one attempt came to.
#[derive(Debug, Default)]
struct Outcome {
    status: Option<u16>,
    error_class: Option<&'static str>,
    error: Option<String>,
    response: Option<String>,
    retry_after: Option<Duration>,
}

impl Outcome {
    fn failed(class: &'static str, error: impl Into<String>) -> Self {
        Self {
            error_class: Some(class),
            error: Some(error.into()),
            ..Self::default()
        }
    }

    fn succeeded(&self) -> bool {
        self.error_class.is_none()
    }
}

/// The delivery workers of this process.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    plugins: PluginManager,
    config: WebhooksConfig,
    sealer: Sealer,
    policy: TargetPolicy,
    client: reqwest::Client,
    metrics: Metrics,
    /// This process among the replicas: claims are made under its current id (a new one after
    /// a lost lease, when the old id's claims are anyone's to take).
    replica: Arc<Replica>,
    workers: Arc<Semaphore>,
    /// Signalled when a worker is done with a delivery.
    finished: Notify,
}

impl Dispatcher {
    /// Workers that claim deliveries as `replica`.
    pub fn new(
        store: Arc<dyn Store>,
        plugins: PluginManager,
        (config, sealer): (WebhooksConfig, Sealer),
        metrics: Metrics,
        replica: Arc<Replica>,
    ) -> anyhow::Result<Self> {
        crate::install_tls_provider();
        let policy = TargetPolicy::new(config.allowed_targets.clone(), config.allow_http);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
            .user_agent(concat!("rdev-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            plugins,
            workers: Arc::new(Semaphore::new(config.workers)),
            finished: Notify::new(),
            config,
            sealer,
            policy,
            client,
            metrics,
            replica,
        })
    }

    /// Runs the workers until `shutdown`. Each round turns waiting events into deliveries (the
    /// next round follows at once if a full batch was waiting) and claims due ones. While
    /// deliveries flow, the next round follows the first worker to finish, so a burst goes out as
    /// fast as the workers send it; once nothing is due, rounds fall back to the poll interval.
    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let poll = Duration::from_millis(self.config.poll_interval_ms);
            loop {
                let expanded = match self.store.expand_events(EXPAND_BATCH).await {
                    Ok(n) => n == EXPAND_BATCH,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not turn webhook events into deliveries");
                        false
                    }
                };
                let flowing = match self.clone().claim_and_send().await {
                    Ok(flowing) => flowing,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim webhook deliveries");
                        false
                    }
                };
                if expanded && !shutdown.is_cancelled() {
                    continue;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.finished.notified(), if flowing => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        })
    }

    /// Claims as many due deliveries as there are free workers and starts sending them; true if
    /// deliveries are flowing (some were claimed, or every worker is busy).
    async fn claim_and_send(self: Arc<Self>) -> crate::store::StoreResult<bool> {
        let free = self.workers.available_permits();
        if free == 0 {
            return Ok(true);
        }
        let now = now_ms();
        let claim = DeliveryClaim {
            owner: self.replica.id(),
            now,
            limit: free as i64,
            per_subscription: self.config.per_subscription_concurrency as i64,
            lease_until: now + self.config.lease_ms(),
        };
        let claimed = self.store.claim_deliveries(&claim).await?;
        let owner = Arc::new(claim.owner);
        let flowing = !claimed.is_empty();
        for delivery in claimed {
            let Ok(permit) = self.workers.clone().try_acquire_owned() else {
                break;
            };
            let (this, owner) = (self.clone(), owner.clone());
            tokio::spawn(async move {
                this.deliver(delivery, &owner).await;
                drop(permit);
                this.finished.notify_one();
            });
        }
        Ok(flowing)
    }

    /// One attempt of a delivery claimed as `owner`, recorded.
    async fn deliver(&self, delivery: DeliveryRecord, owner: &str) {
        let subscription = match self.store.get_subscription(&delivery.subscription_id).await {
            Ok(Some(s)) => s,
            // Deleted meanwhile: its deliveries went with it.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(delivery = %delivery.id, error = %e, "webhook delivery not attempted: the store is unavailable");
                return;
            }
        };
        let at = now_ms();
        let started = Instant::now();
        let outcome = self.attempt(&subscription, &delivery).await;
        let latency = started.elapsed();
        let result = self.result_of(&subscription, &delivery, (at, latency), outcome, owner);
        let label = match result.next {
            AfterAttempt::Succeeded => "succeeded",
            AfterAttempt::RetryAt(_) => "retrying",
            AfterAttempt::Failed => "failed",
        };
        let recorded = match self.store.finish_attempt(&result).await {
            Ok(recorded) => recorded,
            Err(e) => {
                tracing::warn!(delivery = %delivery.id, error = %e, "webhook attempt not recorded; the delivery is retried when its claim expires");
                false
            }
        };
        let label = if recorded { label } else { "lost_claim" };
        self.metrics.webhook_attempts.with_label_values(&[label]).inc();
        self.metrics
            .webhook_attempt_duration
            .with_label_values(&[label])
            .observe(latency.as_secs_f64());
        if let Some((reason, _)) = result.disable.as_ref().filter(|_| recorded) {
            tracing::warn!(subscription = %subscription.id, %reason, "webhook subscription disabled");
        }
        tracing::debug!(delivery = %delivery.id, subscription = %subscription.id, outcome = label,
            status = result.attempt.status, error_class = result.attempt.error_class.as_deref(), "webhook attempt");
    }

    /// The attempt's record and what comes next.
    fn result_of(
        &self,
        sub: &SubscriptionRecord,
        delivery: &DeliveryRecord,
        (at, latency): (i64, Duration),
        outcome: Outcome,
        owner: &str,
    ) -> AttemptResult {
        let gone = outcome.status == Some(410);
        let healthy = outcome.succeeded();
        let next = if healthy {
            AfterAttempt::Succeeded
        } else if gone {
            AfterAttempt::Failed
        } else {
            match super::retry::next_delay(&self.config, delivery.attempts, outcome.retry_after) {
                Some(delay) => AfterAttempt::RetryAt(at + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
                None => AfterAttempt::Failed,
            }
        };
        let failing_for = sub.failing_since.map(|since| at - since);
        let limit = i64::try_from(self.config.disable_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let reason = if gone {
            Some("the receiver answered 410 Gone".to_owned())
        } else if !healthy && self.config.disable_after_secs > 0 && failing_for.is_some_and(|f| f >= limit) {
            Some(format!(
                "every delivery failed for more than {} s",
                self.config.disable_after_secs
            ))
        } else {
            None
        };
        let disable = reason.map(|reason| {
            let detail = serde_json::json!({ "reason": reason, "delivery": delivery.id });
            let audit = AuditEntry {
                at,
                action: "webhook.disabled".into(),
                target: sub.id.clone(),
                outcome: "disabled".into(),
                detail: Some(detail.to_string()),
                ..AuditEntry::default()
            };
            (reason, audit)
        });
        AttemptResult {
            attempt: AttemptRecord {
                delivery_id: delivery.id.clone(),
                attempt: delivery.attempts_total + 1,
                at,
                status: outcome.status.map(i64::from),
                latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
                error_class: outcome.error_class.map(str::to_owned),
                error: outcome.error,
                response: outcome.response,
            },
            owner: owner.to_owned(),
            next,
            healthy,
            disable,
        }
    }

    async fn attempt(&self, sub: &SubscriptionRecord, delivery: &DeliveryRecord) -> Outcome {
        let url = match self.policy.parse(&sub.url) {
            Ok(url) => url,
            Err(e @ TargetError::Refused(_)) => return Outcome::failed("address_refused", e.to_string()),
            Err(e) => return Outcome::failed("invalid_url", e.to_string()),
        };
        let event = match self.event(sub, delivery).await {
            Ok(event) => event,
            Err(e) => return Outcome::failed("store", e),
        };
        let target = WebhookTarget {
            subscription: sub.id.clone(),
            url: sub.url.clone(),
        };
        let rendered = match self
            .plugins
            .format(
                &sub.formatter,
                &delivery.event_type,
                &event,
                &target,
                self.config.max_body_bytes,
            )
            .await
        {
            Ok(rendered) => rendered,
            Err(e) => return Outcome::failed("formatter", format!("formatter {} {}", e.plugin, e.message)),
        };
        let Some(secret) = self.sealer.open(&sub.id, &sub.secret) else {
            return Outcome::failed(
                "secret",
                "the signing secret cannot be opened (another key-hashing secret?)",
            );
        };
        let now = now_ms();
        let previous = sub
            .previous_secret
            .as_ref()
            .filter(|(_, until)| *until > now)
            .and_then(|(sealed, _)| self.sealer.open(&sub.id, sealed));
        let secrets: Vec<_> = std::iter::once(&secret).chain(previous.as_ref()).collect();
        let timestamp = now / 1000;
        let signature = signing::sign(&secrets, &delivery.id, timestamp, &rendered.body);
        let request = self
            .client
            .post(url)
            .timeout(Duration::from_millis(self.config.timeout_ms))
            .header(reqwest::header::CONTENT_TYPE, rendered.content_type)
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(rendered.body);
        match request.send().await {
            Ok(response) => read_response(response).await,
            Err(e) => transport_failure(&e),
        }
    }

    /// The event's payload, from its audit row and what it is about.
    async fn event(&self, sub: &SubscriptionRecord, delivery: &DeliveryRecord) -> Result<String, String> {
        let store_error = |e: crate::store::StoreError| e.to_string();
        let record = self
            .store
            .get_audit(delivery.event_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| format!("event {} is no longer stored", delivery.event_id))?;
        let command = if delivery.event_type.starts_with("command.") {
            self.store
                .get_command(&record.entry.target)
                .await
                .map_err(store_error)?
        } else {
            None
        };
        let ended = command
            .as_ref()
            .is_some_and(|_| !matches!(delivery.event_type.as_str(), "command.accepted" | "command.started"));
        let tail = match (&command, usize::try_from(sub.output_tail_bytes)) {
            (Some(c), Ok(max)) if ended && max > 0 => Some((
                self.store.output_tail(&c.id, TAIL_CHUNKS).await.map_err(store_error)?,
                max,
            )),
            _ => None,
        };
        Ok(payload::render(&EventFacts {
            delivery,
            record: &record,
            command: command.as_ref(),
            tail,
        }))
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the response and classifies its status.
async fn read_response(response: reqwest::Response) -> Outcome {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(super::retry::parse_retry_after);
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    let mut read_error = None;
    while body.len() < MAX_RESPONSE_BYTES {
        match stream.next().await {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            Some(Err(e)) => {
                read_error = Some(e);
                break;
            }
            None => break,
        }
    }
    body.truncate(MAX_RESPONSE_BYTES);
    let text = String::from_utf8_lossy(&body);
    let snippet: String = text.chars().take(SNIPPET_CHARS).collect();
    let mut outcome = Outcome {
        status: Some(status.as_u16()),
        response: (!snippet.is_empty()).then_some(snippet),
        ..Outcome::default()
    };
    if status.is_success() {
        if let Some(e) = read_error.filter(reqwest::Error::is_timeout) {
            outcome.error_class = Some("timeout");
            outcome.error = Some(format!("the response was not read in time: {e}"));
        }
        return outcome;
    }
    outcome.error_class = Some(if status.is_redirection() { "redirect" } else { "status" });
    outcome.error = Some(format!("the receiver answered {status}"));
    if matches!(status.as_u16(), 429 | 503) {
        outcome.retry_after = retry_after;
    }
    outcome
}

/// The class of a request that got no response.
fn transport_failure(e: &reqwest::Error) -> Outcome {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(cause) = source {
        if let Some(target) = cause.downcast_ref::<TargetError>() {
            let class = match target {
                TargetError::Unresolved(_) => "dns",
                _ => "address_refused",
            };
            return Outcome::failed(class, target.to_string());
        }
        source = cause.source();
    }
    let class = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    Outcome::failed(class, error_chain(e))
}

/// The causes of a transport error, without the URL (it may carry a token, as Slack's do).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = "the request failed".to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
