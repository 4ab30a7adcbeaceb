//! The `[webhooks]` section of the configuration: delivery workers, timeouts, the retry
//! schedule and the targets a subscription may name.

use ipnet::IpNet;
use serde::Deserialize;

/// How webhooks are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Run delivery workers in this process (events are recorded either way).
    pub enabled: bool,
    /// Networks a subscription may reach although they are not public (loopback, private,
    /// link-local…), as CIDRs, e.g. `["10.20.0.0/16"]`. Empty (the default): public addresses only.
    pub allowed_targets: Vec<IpNet>,
    /// Allow `http://` URLs (default: `https://` only).
    pub allow_http: bool,
    /// Seconds between an attempt and the next retry, one entry per retry; with jitter of ±10 %.
    /// After the last one the delivery is `failed`.
    pub retry_schedule_secs: Vec<f64>,
    /// Longest wait a receiver's `Retry-After` may ask for, in seconds.
    pub max_retry_after_secs: u64,
    /// Milliseconds to connect (DNS and TCP/TLS).
    pub connect_timeout_ms: u64,
    /// Milliseconds an attempt may take from the request to the end of the kept response.
    pub timeout_ms: u64,
    /// Largest body a formatter may render, in bytes; a larger one fails the attempt.
    pub max_body_bytes: usize,
    /// Deliveries sent at once by this process.
    pub workers: usize,
    /// Deliveries of one subscription sent at once (per process): a slow receiver holds at most
    /// these, never the others' workers.
    pub per_subscription_concurrency: usize,
    /// Milliseconds between looks for due deliveries while none are being sent (while they are,
    /// the next look follows the first worker to finish).
    pub poll_interval_ms: u64,
    /// A subscription whose deliveries keep failing, without a success, for this many seconds is
    /// disabled (audited); `0` never disables.
    pub disable_after_secs: u64,
    /// Seconds the previous secret still signs after a rotation (default one day).
    pub secret_overlap_secs: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_targets: Vec::new(),
            allow_http: false,
            retry_schedule_secs: vec![5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10_800.0, 21_600.0],
            max_retry_after_secs: 6 * 3600,
            connect_timeout_ms: 5_000,
            timeout_ms: 15_000,
            max_body_bytes: 256 * 1024,
            workers: 64,
            per_subscription_concurrency: 4,
            poll_interval_ms: 200,
            disable_after_secs: 5 * 24 * 3600,
            secret_overlap_secs: 24 * 3600,
        }
    }
}

impl WebhooksConfig {
    /// Checks the values that have no safe meaning.
    pub fn validate(&self) -> Result<(), String> {
        if self.workers == 0 || self.per_subscription_concurrency == 0 {
            return Err("webhooks: workers and per_subscription_concurrency must be at least 1".into());
        }
        if self.connect_timeout_ms == 0 || self.timeout_ms == 0 || self.poll_interval_ms == 0 {
            return Err("webhooks: connect_timeout_ms, timeout_ms and poll_interval_ms must be at least 1".into());
        }
        if self.retry_schedule_secs.iter().any(|s| !s.is_finite() || *s < 0.0) {
            return Err("webhooks: retry_schedule_secs must be non-negative numbers".into());
        }
        if self.max_body_bytes == 0 {
            return Err("webhooks: max_body_bytes must be at least 1".into());
        }
        Ok(())
    }

    /// How long a worker holds a claimed delivery: longer than any attempt (formatting,
    /// connecting, sending, reading), so that only a dead worker's claims are taken over.
    pub fn lease_ms(&self) -> i64 {
        let ms = self
            .timeout_ms
            .saturating_add(self.connect_timeout_ms)
            .saturating_mul(2)
            + 30_000;
        i64::try_from(ms).unwrap_or(i64::MAX)
    }
}
