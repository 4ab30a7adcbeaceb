//! Prometheus metrics of the gateway, served at `GET /metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The gateway's metrics, registered in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route template, method and status.
    pub http_requests: IntCounterVec,
    /// Request latency by route template.
    pub http_duration: HistogramVec,
    /// Refused authentications by reason.
    pub auth_failures: IntCounterVec,
    /// Commands accepted into the queue.
    pub commands_accepted: IntCounter,
    /// Commands ended, by terminal state.
    pub commands_finished: IntCounterVec,
    /// Commands running on this replica.
    pub commands_running: IntGauge,
    /// Open output streams.
    pub streams_open: IntGauge,
    /// Plugin calls by plugin and outcome (`allow`, `deny`, `rewrite`, `valid`, `invalid`, `ok`, `failed`).
    pub plugin_calls: IntCounterVec,
    /// Plugin call latency by plugin.
    pub plugin_duration: HistogramVec,
    /// Plugin version loads by plugin and result (`loaded`, `failed`).
    pub plugin_loads: IntCounterVec,
    /// Shadow calls by plugin and comparison with the serving version (`agree`, `allow_to_deny`,
    /// `deny_to_allow`, `different_rewrite`, `different_errors`, `candidate_trapped`,
    /// `candidate_timed_out`).
    pub plugin_shadow_calls: IntCounterVec,
    /// Versions rolled back automatically, by plugin.
    pub plugin_rollbacks: IntCounterVec,
    /// Candidates promoted, by plugin.
    pub plugin_promotions: IntCounterVec,
    /// Kubernetes API circuit breaker: 0 closed, 1 half-open, 2 open.
    pub kube_breaker_state: IntGauge,
    /// Kubernetes API calls by outcome (`ok`, `failed`, `refused` while the breaker is open).
    pub kube_api_calls: IntCounterVec,
    /// Requests refused by a limit, by limit (`requests`, `commands`, `streams`, `queue`,
    /// `auth_failures`).
    pub rate_limited: IntCounterVec,
    /// Key records read from the store to authenticate (cache misses).
    pub key_store_reads: IntCounter,
    /// Commands waiting in the queue, all replicas together (read from the store at each scrape).
    pub commands_queued: IntGauge,
    /// Readiness as `/ready` reports it, by check (`database`, `backend`, `lease`,
    /// `accepting_commands`, and `all`): 1 ready, 0 not.
    pub ready: IntGaugeVec,
    /// Webhook delivery attempts by outcome (`succeeded`, `retrying`, `failed`, `lost_claim`).
    pub webhook_attempts: IntCounterVec,
    /// Webhook attempt latency (formatting, connecting, sending, reading the response).
    pub webhook_attempt_duration: HistogramVec,
    /// Webhook deliveries due and not yet sent, all replicas (read at each scrape).
    pub webhook_due: IntGauge,
    /// Seconds the oldest due webhook delivery has waited (read at each scrape).
    pub webhook_oldest_due_age: prometheus::Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("rdev_http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("rdev_http_request_duration_seconds", "HTTP request latency by route"),
            &["route"],
        )
        .expect("valid metric");
        let auth_failures = IntCounterVec::new(
            Opts::new("rdev_auth_failures_total", "Refused authentications by reason"),
            &["reason"],
        )
        .expect("valid metric");
        let commands_accepted =
            IntCounter::new("rdev_commands_accepted_total", "Commands accepted into the queue").expect("valid metric");
        let commands_finished = IntCounterVec::new(
            Opts::new("rdev_commands_finished_total", "Commands ended, by terminal state"),
            &["state"],
        )
        .expect("valid metric");
        let commands_running =
            IntGauge::new("rdev_commands_running", "Commands running on this replica").expect("valid metric");
        let streams_open = IntGauge::new("rdev_streams_open", "Open output streams").expect("valid metric");
        let plugin_calls = IntCounterVec::new(
            Opts::new("rdev_plugin_calls_total", "Plugin calls by plugin and outcome"),
            &["plugin", "outcome"],
        )
        .expect("valid metric");
        let plugin_duration = HistogramVec::new(
            HistogramOpts::new("rdev_plugin_call_duration_seconds", "Plugin call latency by plugin")
                .buckets(vec![1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 5e-3, 2.5e-2, 0.1]),
            &["plugin"],
        )
        .expect("valid metric");
        let plugin_loads = IntCounterVec::new(
            Opts::new("rdev_plugin_loads_total", "Plugin version loads by plugin and result"),
            &["plugin", "result"],
        )
        .expect("valid metric");
        let plugin_shadow_calls = IntCounterVec::new(
            Opts::new(
                "rdev_plugin_shadow_calls_total",
                "Shadow calls by plugin and comparison with the serving version",
            ),
            &["plugin", "comparison"],
        )
        .expect("valid metric");
        let plugin_rollbacks = IntCounterVec::new(
            Opts::new(
                "rdev_plugin_rollbacks_total",
                "Plugin versions rolled back automatically",
            ),
            &["plugin"],
        )
        .expect("valid metric");
        let plugin_promotions = IntCounterVec::new(
            Opts::new("rdev_plugin_promotions_total", "Shadow candidates promoted"),
            &["plugin"],
        )
        .expect("valid metric");
        let kube_breaker_state = IntGauge::new(
            "rdev_kube_breaker_state",
            "Kubernetes API circuit breaker: 0 closed, 1 half-open, 2 open",
        )
        .expect("valid metric");
        let kube_api_calls = IntCounterVec::new(
            Opts::new("rdev_kube_api_calls_total", "Kubernetes API calls by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let rate_limited = IntCounterVec::new(
            Opts::new("rdev_rate_limited_total", "Requests refused by a limit, by limit"),
            &["limit"],
        )
        .expect("valid metric");
        let key_store_reads = IntCounter::new(
            "rdev_key_store_reads_total",
            "Key records read from the store to authenticate (cache misses)",
        )
        .expect("valid metric");
        let commands_queued =
            IntGauge::new("rdev_commands_queued", "Commands waiting in the queue, all replicas").expect("valid metric");
        let ready = IntGaugeVec::new(
            Opts::new(
                "rdev_ready",
                "Readiness by check (1 ready, 0 not); check=\"all\" is /ready's answer",
            ),
            &["check"],
        )
        .expect("valid metric");
        let webhook_attempts = IntCounterVec::new(
            Opts::new("rdev_webhook_attempts_total", "Webhook delivery attempts by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let webhook_attempt_duration = HistogramVec::new(
            HistogramOpts::new("rdev_webhook_attempt_duration_seconds", "Webhook attempt latency")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0]),
            &["outcome"],
        )
        .expect("valid metric");
        let webhook_due = IntGauge::new("rdev_webhook_deliveries_due", "Webhook deliveries due and not yet sent")
            .expect("valid metric");
        let webhook_oldest_due_age = prometheus::Gauge::new(
            "rdev_webhook_oldest_due_age_seconds",
            "Seconds the oldest due webhook delivery has waited",
        )
        .expect("valid metric");
        let metrics = Self {
            registry,
            http_requests,
            http_duration,
            auth_failures,
            commands_accepted,
            commands_finished,
            commands_running,
            streams_open,
            plugin_calls,
            plugin_duration,
            plugin_loads,
            plugin_shadow_calls,
            plugin_rollbacks,
            plugin_promotions,
            kube_breaker_state,
            kube_api_calls,
            rate_limited,
            key_store_reads,
            commands_queued,
            ready,
            webhook_attempts,
            webhook_attempt_duration,
            webhook_due,
            webhook_oldest_due_age,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 23] = [
            Box::new(metrics.http_requests.clone()),
            Box::new(metrics.http_duration.clone()),
            Box::new(metrics.auth_failures.clone()),
            Box::new(metrics.commands_accepted.clone()),
            Box::new(metrics.commands_finished.clone()),
            Box::new(metrics.commands_running.clone()),
            Box::new(metrics.streams_open.clone()),
            Box::new(metrics.plugin_calls.clone()),
            Box::new(metrics.plugin_duration.clone()),
            Box::new(metrics.plugin_loads.clone()),
            Box::new(metrics.plugin_shadow_calls.clone()),
            Box::new(metrics.plugin_rollbacks.clone()),
            Box::new(metrics.plugin_promotions.clone()),
            Box::new(metrics.kube_breaker_state.clone()),
            Box::new(metrics.kube_api_calls.clone()),
            Box::new(metrics.rate_limited.clone()),
            Box::new(metrics.key_store_reads.clone()),
            Box::new(metrics.commands_queued.clone()),
            Box::new(metrics.ready.clone()),
            Box::new(metrics.webhook_attempts.clone()),
            Box::new(metrics.webhook_attempt_duration.clone()),
            Box::new(metrics.webhook_due.clone()),
            Box::new(metrics.webhook_oldest_due_age.clone()),
        ];
        for collector in collectors {
            metrics.registry.register(collector).expect("metric names are unique");
        }
        metrics
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
