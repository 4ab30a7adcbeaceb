//! Rollouts through the manager: candidates loaded into shadow (from a manifest's `shadow_file`
//! or an upload), their diff, promotion through the gate, automatic promotion, and the audit of
//! rollbacks the slots make.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;

use super::{Inner, PluginManager};
use crate::plugins::file::replace;
use crate::plugins::rollout::shadow::{CandidateSource, Shadow, ShadowReport};
use crate::plugins::slot::{RolledBack, Slot};
use crate::plugins::trust::signature_path;
use crate::store::EventTag;

/// How often candidates are checked for automatic promotion.
const AUTO_PROMOTION_TICK: Duration = Duration::from_secs(1);

/// Why a rollout request could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// No plugin has that name.
    #[error("plugin `{0}`")]
    NotFound(String),
    /// The plugin has no candidate in shadow.
    #[error("plugin `{0}` has no candidate in shadow")]
    NoCandidate(String),
    /// The plugin's world has no calls to judge in shadow.
    #[error("plugin `{0}` is a {1}: shadow candidates are for sanitizers, validators and tool policies")]
    NoShadowCalls(String, &'static str),
    /// The gate does not hold.
    #[error("the promotion gate does not hold: {}", .0.join("; "))]
    GateFails(Vec<String>),
    /// The candidate was refused when it loaded.
    #[error("the candidate was refused: it {0}")]
    Refused(String),
    /// The candidate could not be written in place of the serving file.
    #[error("the candidate could not be installed as {path}: {error}")]
    Install {
        /// The serving file.
        path: String,
        /// Why.
        error: String,
    },
}

/// Who asks for a rollout change, for its audit row.
#[derive(Debug, Clone, Default)]
pub struct RolloutActor {
    /// The key, if a client asked (absent for the gateway's own automatic promotion).
    pub key_id: Option<String>,
    /// The request, if a client asked.
    pub request_id: Option<String>,
}

/// What a promotion did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Promotion {
    /// The plugin.
    pub plugin: String,
    /// The version that serves now.
    pub digest: String,
    /// The version it replaced.
    pub previous_digest: Option<String>,
    /// Whether the gate was overridden.
    pub forced: bool,
    /// The gate's objections that were overridden (empty unless forced).
    pub overridden: Vec<String>,
}

impl PluginManager {
    fn slot(&self, name: &str) -> Result<Arc<Slot>, RolloutError> {
        self.inner
            .slots
            .load()
            .iter()
            .find(|s| s.name() == name)
            .cloned()
            .ok_or_else(|| RolloutError::NotFound(name.to_owned()))
    }

    /// The candidate of `name` and its diff.
    pub fn shadow_report(&self, name: &str) -> Result<ShadowReport, RolloutError> {
        let slot = self.slot(name)?;
        let shadow = slot
            .shadow()
            .ok_or_else(|| RolloutError::NoCandidate(name.to_owned()))?;
        Ok(shadow.report())
    }

    /// Loads an uploaded component as the candidate of `name` (checked like any version; the
    /// serving version is untouched either way).
    pub async fn upload_shadow(
        &self,
        name: &str,
        wasm: Vec<u8>,
        signature: Option<Vec<u8>>,
        actor: &RolloutActor,
    ) -> Result<ShadowReport, RolloutError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let slot = self.slot(name)?;
        let manifest = slot.desired();
        if !manifest.has_shadow_calls() {
            return Err(RolloutError::NoShadowCalls(name.to_owned(), manifest.world.as_str()));
        }
        let digest = crate::plugins::cache::digest(&wasm);
        let loaded = self
            .load_version(manifest, wasm.clone(), digest.clone(), signature.as_deref())
            .await;
        let detail = serde_json::json!({ "digest": digest, "source": "upload" });
        match loaded {
            Ok(version) => {
                let shadow = Shadow::new(version, Arc::new(wasm), signature, CandidateSource::Upload);
                slot.set_shadow(Some(shadow));
                tracing::info!(plugin = %name, %digest, "candidate uploaded into shadow");
                self.audit_by(actor, "plugin.shadow_loaded", name, "loaded", detail, None)
                    .await;
                self.shadow_report(name)
            }
            Err(error) => {
                tracing::warn!(plugin = %name, %digest, %error, "uploaded candidate refused");
                let detail = serde_json::json!({ "digest": digest, "source": "upload", "error": error });
                self.audit_by(actor, "plugin.shadow_failed", name, "failed", detail, None)
                    .await;
                Err(RolloutError::Refused(error))
            }
        }
    }

    /// Takes the candidate of `name` out of shadow.
    pub async fn remove_shadow(&self, name: &str, actor: &RolloutActor) -> Result<(), RolloutError> {
        let slot = self.slot(name)?;
        let shadow = slot
            .shadow()
            .ok_or_else(|| RolloutError::NoCandidate(name.to_owned()))?;
        slot.set_shadow(None);
        let detail = serde_json::json!({ "digest": shadow.digest() });
        self.audit_by(actor, "plugin.shadow_removed", name, "removed", detail, None)
            .await;
        Ok(())
    }

    /// Makes the candidate of `name` the serving version, if the gate holds or `force` is set:
    /// its file is written in place of the serving one (with its signature), so that reloads and
    /// restarts keep it, and it is swapped in (on probation, like any new version).
    pub async fn promote(&self, name: &str, force: bool, actor: &RolloutActor) -> Result<Promotion, RolloutError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let slot = self.slot(name)?;
        let shadow = slot
            .shadow()
            .ok_or_else(|| RolloutError::NoCandidate(name.to_owned()))?;
        let objections = shadow.gate_failures();
        if !objections.is_empty() && !force {
            let detail = serde_json::json!({ "digest": shadow.digest(), "gate": objections });
            self.audit_by(actor, "plugin.promotion_refused", name, "refused", detail, None)
                .await;
            return Err(RolloutError::GateFails(objections));
        }
        let path = slot.desired().path(&self.inner.plugins_dir);
        install(&path, &shadow).map_err(|error| RolloutError::Install {
            path: path.display().to_string(),
            error: error.to_string(),
        })?;
        let previous_digest = slot.active().map(|v| v.digest.clone());
        let version = shadow.version.promoted();
        let digest = version.digest.clone();
        slot.activate(version);
        slot.set_shadow(None);
        let overridden = if force { objections } else { Vec::new() };
        let promotion = Promotion {
            plugin: name.to_owned(),
            digest: digest.clone(),
            previous_digest,
            forced: force,
            overridden,
        };
        tracing::info!(plugin = %name, %digest, forced = force, "candidate promoted");
        self.inner.metrics.plugin_promotions.with_label_values(&[name]).inc();
        let detail = serde_json::to_value(&promotion).unwrap_or_default();
        let tag = EventTag::new("plugin.promoted", None);
        self.audit_by(actor, "plugin.promoted", name, "promoted", detail, Some(tag))
            .await;
        Ok(promotion)
    }

    /// Loads, keeps or drops the candidate the slot's manifest names in `shadow_file`. An
    /// uploaded candidate stays until it is promoted or removed.
    pub(super) async fn refresh_shadow(&self, slot: &Slot) {
        let manifest = slot.desired();
        let current = slot.shadow();
        let Some(file) = manifest.shadow_file.clone() else {
            if current.is_some_and(|s| matches!(s.source, CandidateSource::File { .. })) {
                slot.set_shadow(None);
            }
            return;
        };
        let path = self.inner.plugins_dir.join(&file);
        let read = self.read_file(path.clone()).await;
        let (wasm, digest, signature) = match read {
            Ok(read) => read,
            Err(error) => return self.shadow_failed(slot, &path, error).await,
        };
        if slot.active().is_some_and(|v| v.digest == digest) {
            // Already serving (promoted): there is nothing to compare.
            slot.set_shadow(None);
            return;
        }
        if current.is_some_and(|s| s.digest() == digest && s.version.manifest == manifest) {
            return;
        }
        let loaded = self
            .load_version(manifest, wasm.clone(), digest.clone(), signature.as_deref())
            .await;
        match loaded {
            Ok(version) => {
                let source = CandidateSource::File {
                    path: path.display().to_string(),
                };
                slot.set_shadow(Some(Shadow::new(version, Arc::new(wasm), signature, source)));
                tracing::info!(plugin = %slot.name(), %digest, "candidate loaded into shadow");
                let detail = serde_json::json!({ "digest": digest, "source": path.display().to_string() });
                self.audit_by(
                    &RolloutActor::default(),
                    "plugin.shadow_loaded",
                    slot.name(),
                    "loaded",
                    detail,
                    None,
                )
                .await;
            }
            Err(error) => self.shadow_failed(slot, &path, error).await,
        }
    }

    async fn shadow_failed(&self, slot: &Slot, path: &std::path::Path, error: String) {
        tracing::warn!(plugin = %slot.name(), file = %path.display(), %error, "candidate refused; no shadow");
        slot.set_shadow(None);
        slot.set_shadow_error(Some(error.clone()));
        let detail = serde_json::json!({ "source": path.display().to_string(), "error": error });
        self.audit_by(
            &RolloutActor::default(),
            "plugin.shadow_failed",
            slot.name(),
            "failed",
            detail,
            None,
        )
        .await;
    }

    /// Audits the rollbacks the slots report, and promotes candidates whose gate has held for
    /// their auto-promotion period; both stop with the manager.
    pub(super) fn spawn_rollout_tasks(
        &self,
        mut rollbacks: tokio::sync::mpsc::UnboundedReceiver<(String, RolledBack)>,
    ) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some((plugin, record)) = rollbacks.recv().await {
                let Some(manager) = upgrade(&weak) else { return };
                let detail = serde_json::to_value(&record).unwrap_or_default();
                let tag = EventTag::new("plugin.rolled_back", None);
                manager
                    .audit_by(
                        &RolloutActor::default(),
                        "plugin.rolled_back",
                        &plugin,
                        "rolled_back",
                        detail,
                        Some(tag),
                    )
                    .await;
            }
        });
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(AUTO_PROMOTION_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(manager) = upgrade(&weak) else { return };
                let due: Vec<String> = manager
                    .inner
                    .slots
                    .load()
                    .iter()
                    .filter(|s| s.shadow().is_some_and(|c| c.due_for_auto_promotion()))
                    .map(|s| s.name().to_owned())
                    .collect();
                for name in due {
                    match manager.promote(&name, false, &RolloutActor::default()).await {
                        Ok(p) => tracing::info!(plugin = %name, digest = %p.digest, "candidate promoted automatically"),
                        Err(error) => tracing::warn!(plugin = %name, %error, "automatic promotion failed"),
                    }
                }
            }
        });
    }
}

fn upgrade(weak: &Weak<Inner>) -> Option<PluginManager> {
    weak.upgrade().map(|inner| PluginManager { inner })
}

/// Writes the candidate's file (and signature) in place of the serving file: each through a
/// temporary file renamed over the old one, so a reader sees the old file or the new one.
fn install(path: &std::path::Path, shadow: &Shadow) -> std::io::Result<()> {
    // The signature first: a reload between the two renames then sees the old file with a
    // signature that does not match it, refuses it, and keeps serving what it serves.
    let sig = signature_path(path);
    match &shadow.signature {
        Some(signature) => replace(&sig, signature)?,
        None if sig.exists() => std::fs::remove_file(sig)?,
        None => {}
    }
    replace(path, &shadow.wasm)
}
