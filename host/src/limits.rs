//! Limits per key tier (requests per second, commands per minute, concurrent output streams,
//! queued commands per project) and per client network (failed authentications), so that one
//! client cannot take the gateway, or another client's share of it.
//!
//! Rates are GCRA buckets (`governor`) held in memory. With several replicas on one database each
//! replica grants a key `rate / live replicas` with the tier's full burst, so a key gets at most
//! the tier's rate cluster-wide plus one burst per replica. The queue bound is counted in the
//! store, so it holds cluster-wide; stream caps are per replica.

mod failures;
mod per_key;
mod streams;
mod tiers;

pub use streams::StreamPermit;
pub use tiers::{DEFAULT_TIER, LimitsConfig, Tier};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::store::KeyRecord;

/// The state of a rate bucket, for the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests the bucket holds when full (the burst).
    pub limit: u32,
    /// Requests that may still be made at once.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The key's requests per second.
    Requests,
    /// The key's commands per minute.
    Commands,
    /// The key's concurrent output streams.
    Streams,
    /// The project's queued commands.
    Queue,
    /// Failed authentications from the client's network.
    AuthFailures,
}

impl LimitKind {
    /// The label of `rdev_rate_limited_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Commands => "commands",
            Self::Streams => "streams",
            Self::Queue => "queue",
            Self::AuthFailures => "auth_failures",
        }
    }
}

/// A request refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// The limit.
    pub kind: LimitKind,
    /// The bucket, for the headers (requests and failed authentications).
    pub budget: Option<Budget>,
    /// Seconds after which a retry may be admitted.
    pub retry_after: u32,
    /// What the client is told.
    pub message: String,
}

/// Seconds a client is asked to wait when a project's queue is full: it drains at the pace of
/// the commands ahead, which the gateway cannot foresee.
pub const QUEUE_FULL_RETRY_SECS: u32 = 5;

/// The limits of this replica.
#[derive(Clone)]
pub struct Limits {
    config: Arc<LimitsConfig>,
    requests: Arc<per_key::PerKey>,
    commands: Arc<per_key::PerKey>,
    failures: Arc<failures::Failures>,
    streams: streams::Streams,
    refused: prometheus::IntCounterVec,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

impl Limits {
    /// Limits as configured, counting refusals in `refused` (by [`LimitKind::label`]).
    pub fn new(config: LimitsConfig, refused: prometheus::IntCounterVec) -> Self {
        let failures = failures::Failures::new(config.failed_auth_per_minute, config.failed_auth_burst);
        Self {
            config: Arc::new(config),
            requests: Arc::default(),
            commands: Arc::default(),
            failures: Arc::new(failures),
            streams: streams::Streams::default(),
            refused,
        }
    }

    /// Whether limits apply at all (`[limits] enabled`).
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// The tier of a key (the default tier when its tier is no longer configured).
    pub fn tier(&self, key: &KeyRecord) -> &Tier {
        self.config.tier_of(key.rate_limit_tier.as_deref())
    }

    fn refuse(&self, exceeded: Exceeded) -> Exceeded {
        self.count_refusal(exceeded.kind);
        exceeded
    }

    /// Admits one request of a key, with `replicas` live replicas sharing the tier's rate; the
    /// bucket's state after it (none while limits are off).
    pub fn admit_request(&self, key: &KeyRecord, replicas: i64) -> Result<Option<Budget>, Exceeded> {
        if !self.enabled() {
            return Ok(None);
        }
        let tier = self.tier(key);
        let quota = per_key::quota(tier.burst, tier.requests_per_second, replicas);
        self.requests.check(&key.id, quota).map(Some).map_err(|(budget, wait)| {
            self.refuse(Exceeded {
                kind: LimitKind::Requests,
                budget: Some(budget),
                retry_after: whole_secs(wait),
                message: format!(
                    "rate limit exceeded: {} requests per second with bursts of {}",
                    tier.requests_per_second, tier.burst
                ),
            })
        })
    }

    /// Admits one new command of a key.
    pub fn admit_command(&self, key: &KeyRecord, replicas: i64) -> Result<(), Exceeded> {
        if !self.enabled() {
            return Ok(());
        }
        let tier = self.tier(key);
        let per_minute = tier.commands_per_minute;
        let quota = per_key::quota(per_minute, f64::from(per_minute) / 60.0, replicas);
        self.commands.check(&key.id, quota).map(drop).map_err(|(_, wait)| {
            self.refuse(Exceeded {
                kind: LimitKind::Commands,
                budget: None,
                retry_after: whole_secs(wait),
                message: format!("command limit exceeded: {per_minute} commands per minute"),
            })
        })
    }

    /// The most commands a key may leave queued in one project.
    pub fn queue_bound(&self, key: &KeyRecord) -> Option<u32> {
        self.enabled().then(|| self.tier(key).max_queued_per_project)
    }

    /// Counts a refusal made elsewhere (the queue bound is checked where commands are queued).
    pub fn count_refusal(&self, kind: LimitKind) {
        self.refused.with_label_values(&[kind.label()]).inc();
    }

    /// Opens an output stream of a key: the permit counts it until dropped.
    pub fn open_stream(&self, key: &KeyRecord) -> Result<StreamPermit, Exceeded> {
        let cap = self.enabled().then(|| self.tier(key).max_streams);
        self.streams.open(&key.id, cap).map_err(|open| {
            self.refuse(Exceeded {
                kind: LimitKind::Streams,
                budget: None,
                retry_after: 1,
                message: format!("this key has {open} output streams open, its limit"),
            })
        })
    }

    /// Refuses a request from a network that failed to authenticate too often, before its
    /// token is looked at.
    pub fn admit_client(&self, ip: IpAddr) -> Result<(), Exceeded> {
        if !self.enabled() {
            return Ok(());
        }
        self.failures.blocked(ip).map_or(Ok(()), |wait| {
            Err(self.refuse(Exceeded {
                kind: LimitKind::AuthFailures,
                budget: Some(self.failures.exhausted()),
                retry_after: whole_secs(wait),
                message: "too many failed authentications from this address".into(),
            }))
        })
    }

    /// Counts a failed authentication from `ip`; the network's remaining budget.
    pub fn authentication_failed(&self, ip: IpAddr) -> Option<Budget> {
        self.enabled().then(|| self.failures.record(ip))
    }
}

/// Whole seconds, rounded up, at least 1: `Retry-After` of 0 invites an immediate retry.
fn whole_secs(wait: Duration) -> u32 {
    u32::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u32::MAX)
        .max(1)
}
