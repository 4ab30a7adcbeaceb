//! A slot holds one configured plugin: the version serving now (swapped atomically; calls in
//! flight keep the version they started with), the outcome of the last load attempt, and
//! counters, and the version's rollout: a shadow candidate, the probation of a new version and
//! the last good one to roll back to. Slots are what the policy chains call.

mod rollout;
mod worlds;

pub use rollout::{RolledBack, SlotHooks};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use serde::Serialize;

use super::manifest::{PluginManifest, World};
use super::rollout::shadow::Shadow;
use super::runtime::CallError;
use super::version::{Declared, Version};
use super::{Answer, FailureKind, PluginError};
use crate::telemetry::Metrics;

/// Health of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PluginState {
    /// A version is serving and the last load attempt succeeded.
    Active,
    /// A version is serving, but the last load attempt failed (the older version keeps serving).
    Degraded,
    /// No version could be loaded: what depends on the plugin is refused.
    Failed,
}

/// What `GET /v1/plugins` says about one plugin.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PluginStatus {
    /// Name.
    pub name: String,
    /// World.
    pub world: World,
    /// Component file.
    pub file: String,
    /// SHA-256 of the serving version's file.
    pub digest: Option<String>,
    /// The name and version the serving component declares of itself, if it does.
    pub declared: Option<Declared>,
    /// The `rdev:plugin` package version the serving component was built against.
    pub package_version: Option<String>,
    /// When the serving version was loaded (RFC 3339).
    pub loaded_at: Option<String>,
    /// Health.
    pub state: PluginState,
    /// Whether the serving version is a configured snapshot (`configure` ran once, when it
    /// loaded); false when it is configured on every call.
    pub snapshot: bool,
    /// Why the last load attempt failed, if it did.
    pub last_error: Option<String>,
    /// When a version was last loaded or refused (RFC 3339).
    pub last_attempt_at: Option<String>,
    /// Position in its chain.
    pub order: i32,
    /// Projects it applies to (empty: all).
    pub projects: Vec<String>,
    /// Call deadline, in milliseconds.
    pub deadline_ms: u64,
    /// Memory limit, in MiB.
    pub memory_mib: u64,
    /// Fuel per call, if limited.
    pub fuel: Option<u64>,
    /// Calls made.
    pub calls: u64,
    /// Calls that denied a command or found field errors.
    pub denials: u64,
    /// Calls that failed (trap, deadline, memory, fuel, bad output) and so refused the request.
    pub traps: u64,
    /// The candidate in shadow, if there is one: its digest (the diff is at
    /// `GET /v1/plugins/{name}/shadow`).
    pub shadow_digest: Option<String>,
    /// Why the last candidate could not be loaded, if it could not.
    pub shadow_error: Option<String>,
    /// The version last rolled back, if the serving one replaced it that way: that digest is
    /// refused until a different file arrives.
    pub rolled_back_from: Option<RolledBack>,
}

#[derive(Default)]
struct LastAttempt {
    error: Option<String>,
    at: Option<i64>,
}

/// One configured plugin.
pub struct Slot {
    name: String,
    desired: RwLock<PluginManifest>,
    active: ArcSwapOption<Version>,
    last: Mutex<LastAttempt>,
    calls: AtomicU64,
    denials: AtomicU64,
    traps: AtomicU64,
    metrics: Metrics,
    shadow: ArcSwapOption<Shadow>,
    shadow_error: Mutex<Option<String>>,
    rollout: Mutex<rollout::Rollout>,
    hooks: SlotHooks,
}

impl Slot {
    /// An empty slot for `manifest`.
    pub fn new(manifest: PluginManifest, metrics: Metrics, hooks: SlotHooks) -> Self {
        Self {
            name: manifest.name.clone(),
            desired: RwLock::new(manifest),
            active: ArcSwapOption::empty(),
            last: Mutex::new(LastAttempt::default()),
            calls: AtomicU64::new(0),
            denials: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            metrics,
            shadow: ArcSwapOption::empty(),
            shadow_error: Mutex::new(None),
            rollout: Mutex::new(rollout::Rollout::default()),
            hooks,
        }
    }

    /// The plugin name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The manifest the slot should serve.
    pub fn desired(&self) -> PluginManifest {
        self.desired.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the manifest the slot should serve (the next load uses it).
    pub fn set_desired(&self, manifest: PluginManifest) {
        *self.desired.write().unwrap_or_else(|e| e.into_inner()) = manifest;
    }

    /// The serving version.
    pub fn active(&self) -> Option<Arc<Version>> {
        self.active.load_full()
    }

    /// Swaps in a new version, which goes on probation with the one it replaces as the version
    /// to roll back to.
    pub fn activate(&self, version: Version) {
        let version = Arc::new(version);
        let mut rollout = self.lock_rollout();
        rollout.swapped(self.active.load_full(), &version);
        self.active.store(Some(version));
        drop(rollout);
        self.record_attempt(None);
    }

    /// Records the outcome of a load attempt (`None`: success).
    pub fn record_attempt(&self, error: Option<String>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.error = error;
        last.at = Some(crate::time::now_ms());
    }

    /// The plugin file matches the serving version again (an operator restored it): clears the
    /// last error. True if there was one.
    pub fn restored(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let was_degraded = last.error.take().is_some();
        if was_degraded {
            last.at = Some(crate::time::now_ms());
        }
        was_degraded
    }

    /// The slot's status.
    pub fn status(&self, plugins_dir: &std::path::Path) -> PluginStatus {
        let active = self.active();
        let manifest = active
            .as_ref()
            .map(|v| v.manifest.clone())
            .unwrap_or_else(|| self.desired());
        // Taken before `last`: a rollback holds the rollout lock while it records its error.
        let rolled_back_from = self.lock_rollout().rolled_back.clone();
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let state = match (&active, &last.error) {
            (None, _) => PluginState::Failed,
            (Some(_), Some(_)) => PluginState::Degraded,
            (Some(_), None) => PluginState::Active,
        };
        PluginStatus {
            name: self.name.clone(),
            world: manifest.world,
            file: manifest.path(plugins_dir).display().to_string(),
            digest: active.as_ref().map(|v| v.digest.clone()),
            declared: active.as_ref().and_then(|v| v.declared.clone()),
            package_version: active.as_ref().and_then(|v| v.package_version.clone()),
            loaded_at: active.as_ref().map(|v| crate::time::to_rfc3339(v.loaded_at)),
            state,
            snapshot: active.as_ref().is_some_and(|v| v.snapshot),
            last_error: last.error.clone(),
            last_attempt_at: last.at.map(crate::time::to_rfc3339),
            order: manifest.order,
            projects: manifest.projects,
            deadline_ms: manifest.deadline_ms,
            memory_mib: manifest.memory_mib,
            fuel: manifest.fuel,
            calls: self.calls.load(Ordering::Relaxed),
            denials: self.denials.load(Ordering::Relaxed),
            traps: self.traps.load(Ordering::Relaxed),
            shadow_digest: self.shadow().map(|s| s.digest().to_owned()),
            shadow_error: self.shadow_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            rolled_back_from,
        }
    }

    /// The serving version, or the error that refuses the request when there is none.
    fn serving(&self) -> Result<Arc<Version>, PluginError> {
        self.active().ok_or_else(|| {
            let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let why = last.error.as_deref().unwrap_or("not loaded yet");
            PluginError {
                plugin: self.name.clone(),
                digest: None,
                message: format!("has no working version: {why}"),
                kind: FailureKind::Unavailable,
            }
        })
    }

    fn applies(&self, project: Option<&str>) -> bool {
        match self.active() {
            Some(v) => v.manifest.applies_to(project),
            None => self.desired().applies_to(project),
        }
    }

    /// Counts a call and turns its result into an answer or a fail-closed error.
    fn finish<T>(
        &self,
        version: &Version,
        started: Instant,
        result: Result<T, CallError>,
        outcome: impl FnOnce(&T) -> &'static str,
    ) -> Result<Answer<T>, PluginError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let took = started.elapsed();
        self.metrics
            .plugin_duration
            .with_label_values(&[&self.name])
            .observe(took.as_secs_f64());
        self.watch(version, &result, took);
        let label = match &result {
            Ok(value) => outcome(value),
            Err(CallError::Busy(_)) => "overloaded",
            Err(_) => "failed",
        };
        if matches!(label, "deny" | "invalid") {
            self.denials.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics.plugin_calls.with_label_values(&[&self.name, label]).inc();
        match result {
            Ok(value) => Ok(Answer {
                value,
                digest: version.digest.clone(),
            }),
            Err(e @ CallError::Busy(_)) => {
                tracing::warn!(plugin = %self.name, error = %e, "plugin runtime overloaded; request refused as retryable");
                Err(PluginError {
                    plugin: self.name.clone(),
                    digest: Some(version.digest.clone()),
                    message: e.to_string(),
                    kind: FailureKind::Overloaded,
                })
            }
            Err(e) => {
                self.traps.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(plugin = %self.name, digest = %version.digest, error = %e, "plugin call failed; request refused");
                Err(PluginError {
                    plugin: self.name.clone(),
                    digest: Some(version.digest.clone()),
                    message: e.to_string(),
                    kind: FailureKind::Failed,
                })
            }
        }
    }
}
