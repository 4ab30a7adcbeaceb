//! Retention: a background task that deletes what the policy no longer keeps — the output of
//! ended commands past their project's `output_max_age_secs` or beyond its `output_max_bytes`
//! (the commands that finished first go first), audit rows past `retention.audit_max_age_secs`
//! (never one that a webhook still waiting to be sent needs) and finished webhook deliveries past
//! `retention.deliveries_max_age_secs`. It deletes in small batches, each its own short
//! transaction, so that requests and output never wait long behind it.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::projects::{Project, ProjectRegistry};
use crate::store::{Store, StoreResult};
use crate::time::now_ms;

/// The `[retention]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Seconds between two passes.
    pub interval_secs: u64,
    /// Audit rows older than this many seconds are deleted; 0: kept forever.
    pub audit_max_age_secs: u64,
    /// Finished webhook deliveries (and their attempts) older than this many seconds are
    /// deleted; 0: kept forever.
    pub deliveries_max_age_secs: u64,
    /// Most rows one delete removes.
    pub batch_rows: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            audit_max_age_secs: 365 * 24 * 3600,
            deliveries_max_age_secs: 7 * 24 * 3600,
            batch_rows: 500,
        }
    }
}

impl RetentionConfig {
    /// Refuses a configuration that would spin or never delete anything.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_secs == 0 || self.batch_rows == 0 {
            return Err("retention: interval_secs and batch_rows must be at least 1".into());
        }
        Ok(())
    }
}

/// How many rows one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Output rows.
    pub output: u64,
    /// Audit rows.
    pub audit: u64,
    /// Webhook deliveries.
    pub deliveries: u64,
}

/// The retention task.
pub struct Retention {
    store: Arc<dyn Store>,
    projects: ProjectRegistry,
    config: RetentionConfig,
}

/// A pause between batches, so that a long prune leaves the database to everyone else.
const BETWEEN_BATCHES: Duration = Duration::from_millis(5);

fn cutoff(max_age_secs: u64) -> Option<i64> {
    let age_ms = i64::try_from(max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    (max_age_secs > 0).then(|| now_ms().saturating_sub(age_ms))
}

impl Retention {
    /// Retention over `store` for the projects of `projects`.
    pub fn new(store: Arc<dyn Store>, projects: ProjectRegistry, config: RetentionConfig) -> Self {
        Self {
            store,
            projects,
            config,
        }
    }

    /// Runs a pass every `interval_secs` until `stop`.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let every = Duration::from_secs(self.config.interval_secs);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                match self.run_once().await {
                    Ok(pruned) if pruned != Pruned::default() => {
                        tracing::info!(
                            output_rows = pruned.output,
                            audit_rows = pruned.audit,
                            deliveries = pruned.deliveries,
                            "retention: deleted what the policy no longer keeps"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention pass failed; it runs again later"),
                }
            }
        })
    }

    /// One pass over every project, then the audit log and the deliveries.
    pub async fn run_once(&self) -> StoreResult<Pruned> {
        let mut pruned = Pruned::default();
        for project in self.projects.list() {
            pruned.output += self.prune_project(&project).await?;
        }
        let limit = i64::from(self.config.batch_rows);
        if let Some(before) = cutoff(self.config.audit_max_age_secs) {
            pruned.audit = self.batches(|| self.store.prune_audit_before(before, limit)).await?;
        }
        if let Some(before) = cutoff(self.config.deliveries_max_age_secs) {
            pruned.deliveries = self
                .batches(|| self.store.prune_deliveries_before(before, limit))
                .await?;
        }
        Ok(pruned)
    }

    /// The output of `project` past its age, then beyond its size.
    async fn prune_project(&self, project: &Project) -> StoreResult<u64> {
        let (name, settings) = (project.name.as_str(), &project.settings);
        let limit = i64::from(self.config.batch_rows);
        let mut deleted = 0;
        if let Some(before) = cutoff(settings.output_max_age_secs) {
            deleted += self
                .batches(|| self.store.prune_output_before(name, before, limit))
                .await?;
        }
        if settings.output_max_bytes == 0 {
            return Ok(deleted);
        }
        let max = i64::try_from(settings.output_max_bytes).unwrap_or(i64::MAX);
        let mut kept = 0i64;
        for (command_id, bytes) in self.store.stored_output(name).await? {
            kept = kept.saturating_add(bytes);
            if kept > max {
                deleted += self.batches(|| self.store.delete_output(&command_id, limit)).await?;
            }
        }
        Ok(deleted)
    }

    /// Runs `batch` until it deletes less than a full batch; the rows deleted in all.
    async fn batches<F, Fut>(&self, mut batch: F) -> StoreResult<u64>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<u64>>,
    {
        let mut total = 0;
        loop {
            let n = batch().await?;
            total += n;
            if n < u64::from(self.config.batch_rows) {
                return Ok(total);
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
    }
}
