//! The plugin manager: the configured plugins (one [`Slot`] each), loading and checking new versions
//! off the request path, and publishing the policy chains. Every load attempt is logged, audited
//! and counted; a failed one never replaces a working version. Rollouts (shadow candidates,
//! promotion, the audit of rollbacks) are in [`rollouts`].

mod deploy;
mod rollouts;

pub use deploy::{DeployError, Deployment};
pub use rollouts::{Promotion, RolloutActor, RolloutError};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use serde::Serialize;

use super::cache::{self, ArtifactCache, CacheKey};
use super::limits::RuntimeLimits;
use super::manifest::{PluginManifest, World};
use super::rollout::shadow::ShadowRunner;
use super::runtime::{EngineOptions, Runtime};
use super::slot::{PluginStatus, Slot, SlotHooks};
use super::trust::{Trust, signature_path};
use super::version::Version;
use super::{
    Chains, CommandSanitizer, PassThroughDiscovery, PluginError, Policies, ProjectDiscovery, RequestValidator,
    ToolPolicy,
};
use super::{DiscoveredProject, InventoryItem};
use crate::store::{AuditEntry, EventTag, Store};
use crate::telemetry::Metrics;

/// What one reload did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// Plugins whose new version went live.
    pub loaded: Vec<String>,
    /// Plugins left as they were (same file and manifest).
    pub unchanged: Vec<String>,
    /// Plugins whose new version was refused, with why (the old version keeps serving).
    pub failed: Vec<ReloadFailure>,
    /// Why the plugin list itself could not be re-read, if it could not (nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

/// A refused version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadFailure {
    /// Plugin name.
    pub plugin: String,
    /// Why.
    pub error: String,
}

struct Inner {
    runtime: Arc<Runtime>,
    cache: Arc<ArtifactCache>,
    plugins_dir: PathBuf,
    deployed_dir: PathBuf,
    config_path: Option<PathBuf>,
    startup_manifests: Vec<PluginManifest>,
    read_manifests: ReadManifests,
    slots: ArcSwap<Vec<Arc<Slot>>>,
    policies: Policies,
    reloading: tokio::sync::Mutex<()>,
    store: Arc<dyn Store>,
    metrics: Metrics,
    hooks: SlotHooks,
    trust: Option<Trust>,
}

/// A plugin file as read: its bytes, their digest, and its signature file's content if it has
/// one.
type ReadFile = (Vec<u8>, String, Option<Vec<u8>>);

/// The plugin manager.
#[derive(Clone)]
pub struct PluginManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginManager")
            .field("plugins_dir", &self.inner.plugins_dir)
            .finish()
    }
}

/// Where a webhook delivery goes, as a formatter sees it.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// Subscription id.
    pub subscription: String,
    /// Receiver URL.
    pub url: String,
}

/// Reads the plugin manifests from a configuration file again (on a reload).
pub type ReadManifests = fn(&Path) -> Result<Vec<PluginManifest>, String>;

/// What the plugin manager starts with, from the configuration.
pub struct ManagerSettings {
    /// The `[plugin_runtime]` section.
    pub runtime: RuntimeLimits,
    /// Where compiled plugins are cached.
    pub cache_dir: PathBuf,
    /// The key-hashing secret, from which the cache's key is derived.
    pub cache_secret: PathBuf,
    /// Where relative plugin files are read from.
    pub plugins_dir: PathBuf,
    /// Where deployed plugins are kept (`dropins`); the gateway writes it.
    pub deployed_dir: PathBuf,
    /// The manifests in effect at start.
    pub manifests: Vec<PluginManifest>,
    /// The configuration file reloads read, if there is one.
    pub config_file: Option<PathBuf>,
    /// How a reload reads it.
    pub read_manifests: ReadManifests,
    /// The keys plugins must be signed by, if any.
    pub trust: Option<Trust>,
}

impl PluginManager {
    /// Loads the plugins the settings name. Plugins that fail to load are reported and refuse
    /// what depends on them; the gateway starts anyway.
    pub async fn start(settings: ManagerSettings, store: Arc<dyn Store>, metrics: Metrics) -> anyhow::Result<Self> {
        let runtime = Runtime::with_limits(EngineOptions::default(), settings.runtime.clone())?;
        let cache = ArtifactCache::open(
            &settings.cache_dir,
            runtime.engine(),
            &cache_key(&settings.cache_secret),
        )?;
        let (rollbacks, rolled_back) = tokio::sync::mpsc::unbounded_channel();
        let hooks = SlotHooks {
            runner: Arc::new(ShadowRunner::start()?),
            rollbacks,
        };
        let host = Self {
            inner: Arc::new(Inner {
                runtime,
                cache: Arc::new(cache),
                plugins_dir: settings.plugins_dir,
                deployed_dir: settings.deployed_dir,
                config_path: settings.config_file,
                startup_manifests: settings.manifests,
                read_manifests: settings.read_manifests,
                slots: ArcSwap::from_pointee(Vec::new()),
                policies: Policies::default(),
                reloading: tokio::sync::Mutex::new(()),
                store,
                metrics,
                hooks,
                trust: settings.trust,
            }),
        };
        host.spawn_rollout_tasks(rolled_back);
        let mut manifests = host.inner.startup_manifests.clone();
        manifests.extend(super::dropins::read(&host.inner.deployed_dir, &manifests));
        let report = host.apply(manifests).await;
        for failure in &report.failed {
            tracing::error!(plugin = %failure.plugin, error = %failure.error, "plugin could not be loaded");
        }
        Ok(host)
    }

    /// The policy chains, kept current by this host.
    pub fn policies(&self) -> Policies {
        self.inner.policies.clone()
    }

    /// Project discovery through the configured discovery plugin (the first in order), or
    /// pass-through when none is configured.
    pub fn discovery(&self) -> Arc<dyn ProjectDiscovery> {
        Arc::new(PluginDiscovery(self.clone()))
    }

    /// The directory relative plugin files are read from.
    pub fn plugins_dir(&self) -> &Path {
        &self.inner.plugins_dir
    }

    /// The directory deployed plugins are kept in.
    pub fn deployed_dir(&self) -> &Path {
        &self.inner.deployed_dir
    }

    /// The config file watched for plugin manifest changes, if any.
    pub fn config_path(&self) -> Option<&Path> {
        self.inner.config_path.as_deref()
    }

    /// Every plugin's status, in chain order.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let slots = self.inner.slots.load();
        slots.iter().map(|s| s.status(&self.inner.plugins_dir)).collect()
    }

    /// Re-reads the plugin list (from the config file, if there is one) and every plugin file,
    /// and swaps in what changed and passes its checks.
    pub async fn reload(&self) -> ReloadReport {
        let manifests = match self.read_manifests() {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(%error, "plugin list not reloaded");
                self.audit(
                    "plugins.reload_failed",
                    "config",
                    "failed",
                    serde_json::json!({ "error": error }),
                    None,
                )
                .await;
                let current = self.inner.slots.load().iter().map(|s| s.desired()).collect();
                let mut report = self.apply(current).await;
                report.config_error = Some(error);
                return report;
            }
        };
        self.apply(manifests).await
    }

    /// The plugin list: the configuration's (from its file, if there is one) and the deployed
    /// plugins.
    fn read_manifests(&self) -> Result<Vec<PluginManifest>, String> {
        let mut manifests = match &self.inner.config_path {
            Some(path) => (self.inner.read_manifests)(path)?,
            None => self.inner.startup_manifests.clone(),
        };
        manifests.extend(super::dropins::read(&self.inner.deployed_dir, &manifests));
        super::manifest::check_all(&manifests)?;
        Ok(manifests)
    }

    /// The configuration's plugins, without the deployed ones: its file's as they read now (or,
    /// when it does not read, as they were at start).
    fn configured_manifests(&self) -> Vec<PluginManifest> {
        self.inner
            .config_path
            .as_ref()
            .and_then(|path| (self.inner.read_manifests)(path).ok())
            .unwrap_or_else(|| self.inner.startup_manifests.clone())
    }

    /// Makes the slots match `manifests`, loading what changed, then publishes the chains.
    async fn apply(&self, manifests: Vec<PluginManifest>) -> ReloadReport {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let old = self.inner.slots.load_full();
        let mut report = ReloadReport::default();
        let mut slots = Vec::with_capacity(manifests.len());
        for manifest in manifests {
            let slot = old
                .iter()
                .find(|s| s.name() == manifest.name)
                .cloned()
                .unwrap_or_else(|| {
                    let (metrics, hooks) = (self.inner.metrics.clone(), self.inner.hooks.clone());
                    Arc::new(Slot::new(manifest.clone(), metrics, hooks))
                });
            slot.set_desired(manifest);
            self.refresh(&slot, &mut report).await;
            self.refresh_shadow(&slot).await;
            slots.push(slot);
        }
        slots.sort_by_cached_key(|slot| {
            let m = slot.desired();
            (m.world, m.order, m.name)
        });
        self.inner.policies.publish(chains(&slots));
        self.inner.slots.store(Arc::new(slots));
        report
    }

    /// Loads the slot's desired manifest if its file or manifest changed.
    async fn refresh(&self, slot: &Slot, report: &mut ReloadReport) {
        let manifest = slot.desired();
        let name = manifest.name.clone();
        let outcome = match self.read_file(manifest.path(&self.inner.plugins_dir)).await {
            Ok((_, digest, _))
                if slot
                    .active()
                    .is_some_and(|v| v.digest == digest && v.manifest.serves_like(&manifest)) =>
            {
                if slot.restored() {
                    tracing::info!(plugin = %name, %digest, "plugin file restored: it matches the serving version again");
                    self.audit(
                        "plugin.restored",
                        &name,
                        "restored",
                        serde_json::json!({ "digest": digest }),
                        None,
                    )
                    .await;
                }
                report.unchanged.push(name);
                return;
            }
            Ok((_, digest, _)) if slot.refused_digest().as_deref() == Some(digest.as_str()) => {
                let error =
                    format!("version {digest} was rolled back; it is refused until a different file is in place");
                report.failed.push(ReloadFailure { plugin: name, error });
                return;
            }
            Ok((wasm, digest, signature)) => self.load_version(manifest, wasm, digest, signature.as_deref()).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(version) => {
                let previous = slot.active().map(|v| v.digest.clone());
                let detail = serde_json::json!({ "digest": version.digest, "world": version.manifest.world,
                    "previous_digest": previous });
                let event = if previous.is_some() {
                    "plugin.swapped"
                } else {
                    "plugin.loaded"
                };
                tracing::info!(plugin = %name, digest = %version.digest, origin = ?version.origin, "plugin version loaded");
                self.inner
                    .metrics
                    .plugin_loads
                    .with_label_values(&[&name, "loaded"])
                    .inc();
                slot.activate(version);
                let tag = EventTag::new(event, None);
                self.audit("plugin.loaded", &name, "loaded", detail, Some(tag)).await;
                report.loaded.push(name);
            }
            Err(error) => {
                let serving = slot.active().map(|v| v.digest.clone());
                match &serving {
                    Some(digest) => {
                        tracing::warn!(plugin = %name, %error, %digest, "plugin version refused; the previous version keeps serving");
                    }
                    None => {
                        tracing::warn!(plugin = %name, %error, "plugin version refused; the plugin has no working version")
                    }
                }
                self.inner
                    .metrics
                    .plugin_loads
                    .with_label_values(&[&name, "failed"])
                    .inc();
                slot.record_attempt(Some(error.clone()));
                let detail = serde_json::json!({ "error": error, "serving_digest": serving });
                let tag = EventTag::new("plugin.load_failed", None);
                self.audit("plugin.load_failed", &name, "failed", detail, Some(tag))
                    .await;
                report.failed.push(ReloadFailure { plugin: name, error });
            }
        }
    }

    /// A component file, its digest and its signature, read off the async runtime within the
    /// load timeout (a file on a hung filesystem must not hold up the reload).
    async fn read_file(&self, path: PathBuf) -> Result<ReadFile, String> {
        let limits = self.inner.runtime.limits();
        let (cap, limit) = (limits.max_file_bytes, limits.load_timeout());
        let read = tokio::task::spawn_blocking(move || {
            let wasm = super::file::read(&path, cap).map_err(|e| e.to_string())?;
            let digest = cache::digest(&wasm);
            let signature = match std::fs::read(signature_path(&path)) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(format!("cannot read its signature file: {e}")),
            };
            Ok((wasm, digest, signature))
        });
        match tokio::time::timeout(limit, read).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(format!("cannot read the plugin file: {e}")),
            Err(_) => Err(format!(
                "reading the plugin file took longer than {} s",
                limit.as_secs()
            )),
        }
    }

    /// Refuses a component that trusted keys are configured for and it is not signed by.
    fn verify(&self, wasm: &[u8], signature: Option<&[u8]>) -> Result<(), String> {
        match &self.inner.trust {
            Some(trust) => trust.verify(wasm, signature),
            None => Ok(()),
        }
    }

    /// Loads a version of `manifest` from `wasm`, once its signature is checked.
    async fn load_version(
        &self,
        manifest: PluginManifest,
        wasm: Vec<u8>,
        digest: String,
        signature: Option<&[u8]>,
    ) -> Result<Version, String> {
        self.verify(&wasm, signature)?;
        let (runtime, cache) = (self.inner.runtime.clone(), self.inner.cache.clone());
        Version::load(runtime, cache, manifest, wasm, digest).await
    }

    async fn audit(
        &self,
        action: &str,
        target: &str,
        outcome: &str,
        detail: serde_json::Value,
        event: Option<EventTag>,
    ) {
        self.audit_by(&RolloutActor::default(), action, target, outcome, detail, event)
            .await;
    }

    async fn audit_by(
        &self,
        actor: &RolloutActor,
        action: &str,
        target: &str,
        outcome: &str,
        detail: serde_json::Value,
        event: Option<EventTag>,
    ) {
        let entry = AuditEntry {
            at: crate::time::now_ms(),
            key_id: actor.key_id.clone(),
            client_ip: None,
            action: action.into(),
            target: target.into(),
            outcome: outcome.into(),
            request_id: actor.request_id.clone(),
            trace_id: None,
            detail: Some(detail.to_string()),
            event,
        };
        if let Err(e) = self.inner.store.append_audit(&entry).await {
            tracing::error!(error = %e, action, "could not audit a plugin event");
        }
    }

    /// Renders a webhook event with the formatter plugin `name`.
    pub async fn format(
        &self,
        name: &str,
        event_type: &str,
        event: &str,
        target: &WebhookTarget,
        max_body: usize,
    ) -> Result<super::Rendered, PluginError> {
        let slot = self
            .inner
            .slots
            .load()
            .iter()
            .find(|s| s.name() == name && s.desired().world == World::WebhookFormatter)
            .cloned()
            .ok_or_else(|| PluginError {
                plugin: name.to_owned(),
                digest: None,
                message: "is not a configured webhook formatter".to_owned(),
                kind: super::FailureKind::Unavailable,
            })?;
        let target = super::bindings::types::WebhookTarget {
            subscription: target.subscription.clone(),
            url: target.url.clone(),
        };
        slot.format(event_type, event, &target, max_body).await
    }

    /// Whether `name` is a configured webhook formatter.
    pub fn is_formatter(&self, name: &str) -> bool {
        self.inner
            .slots
            .load()
            .iter()
            .any(|s| s.name() == name && s.desired().world == World::WebhookFormatter)
    }

    fn discovery_slot(&self) -> Option<Arc<Slot>> {
        let slots = self.inner.slots.load();
        slots
            .iter()
            .find(|s| s.desired().world == World::ProjectDiscovery)
            .cloned()
    }
}

/// The artifact cache's key, derived from the key-hashing secret: that file may live outside the
/// data directory (`auth.key_hash_secret_file`), and never lives in the cache directory, so
/// whoever can write cache files cannot forge their MAC. Without the secret the key lives only
/// in memory, and nothing cached by an earlier run is trusted.
fn cache_key(path: &Path) -> CacheKey {
    match std::fs::read(path) {
        Ok(secret) if !secret.is_empty() => CacheKey::derive(&secret),
        outcome => {
            let error = outcome.err().map_or_else(|| "empty".to_owned(), |e| e.to_string());
            tracing::warn!(path = %path.display(), %error, "no key-hashing secret: compiled plugins are not cached across restarts");
            CacheKey::ephemeral()
        }
    }
}

fn chains(slots: &[Arc<Slot>]) -> Chains {
    let of = |world| slots.iter().filter(move |s| s.desired().world == world).cloned();
    Chains {
        sanitizers: of(World::CommandSanitizer)
            .map(|s| s as Arc<dyn CommandSanitizer>)
            .collect(),
        validators: of(World::RequestValidator)
            .map(|s| s as Arc<dyn RequestValidator>)
            .collect(),
        tool_policies: of(World::ToolPolicy).map(|s| s as Arc<dyn ToolPolicy>).collect(),
    }
}

struct PluginDiscovery(PluginManager);

#[async_trait]
impl ProjectDiscovery for PluginDiscovery {
    async fn discover(&self, inventory: &[InventoryItem]) -> Result<Vec<DiscoveredProject>, PluginError> {
        match self.0.discovery_slot() {
            Some(slot) => slot.discover(inventory).await,
            None => PassThroughDiscovery.discover(inventory).await,
        }
    }
}
