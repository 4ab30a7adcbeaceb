//! Deploying a plugin into a running gateway: the component is loaded and checked like any
//! version (signature, world, `configure`, bundled self-test) before anything is written, then
//! installed as a deployed plugin (`dropins`, in the data directory) and the plugin list reloaded, so that it serves
//! before the answer. Undeploying removes its files and reloads.

use serde::Serialize;

use super::{PluginManager, RolloutActor};
use crate::plugins::cache;
use crate::plugins::dropins;
use crate::plugins::file::replace;
use crate::plugins::manifest::PluginManifest;
use crate::plugins::slot::PluginStatus;
use crate::plugins::trust::signature_path;

/// Why a deployment was not done.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The manifest's values are not usable.
    #[error("{0}")]
    Invalid(String),
    /// The gateway's configuration has a plugin of that name: it changes through the config
    /// file, or a rollout (shadow and promotion), not a deployment.
    #[error(
        "plugin `{0}` is in the gateway's configuration; roll out a new version through its shadow (PUT /v1/plugins/{0}/shadow) instead"
    )]
    Configured(String),
    /// No deployed plugin has that name.
    #[error("plugin `{0}` was not deployed")]
    NotDeployed(String),
    /// The component was refused when it loaded.
    #[error("the component was refused: it {0}")]
    Refused(String),
    /// Its files could not be written (or removed) in the plugin directory.
    #[error("the plugin could not be installed in the plugin directory: {0}")]
    Install(String),
}

/// What a deployment did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deployment {
    /// Whether the plugin is new (else an earlier deployment was replaced).
    pub created: bool,
    /// The plugin, as `GET /v1/plugins` shows it after the reload.
    pub plugin: PluginStatus,
}

impl PluginManager {
    /// Deploys `wasm` (with its detached `signature`, if any) as plugin `manifest.name`, whose
    /// file is set to `NAME.wasm`.
    pub async fn deploy(
        &self,
        mut manifest: PluginManifest,
        wasm: Vec<u8>,
        signature: Option<Vec<u8>>,
        actor: &RolloutActor,
    ) -> Result<Deployment, DeployError> {
        let name = manifest.name.clone();
        manifest.file = self.deployed_dir().join(dropins::component_file(&name));
        manifest.shadow_file = None;
        manifest.check().map_err(DeployError::Invalid)?;
        if self.configured_manifests().iter().any(|m| m.name == name) {
            return Err(DeployError::Configured(name));
        }
        let digest = cache::digest(&wasm);
        self.load_version(manifest.clone(), wasm.clone(), digest.clone(), signature.as_deref())
            .await
            .map_err(DeployError::Refused)?;
        let dir = self.deployed_dir().to_owned();
        let manifest_path = dropins::manifest_path(&dir, &name);
        let created = !manifest_path.exists();
        let component = manifest.file.clone();
        let installed = std::fs::create_dir_all(&dir)
            .and_then(|()| match &signature {
                Some(signature) => replace(&signature_path(&component), signature),
                None => remove_if_present(&signature_path(&component)),
            })
            .and_then(|()| replace(&component, &wasm))
            .and_then(|()| replace(&manifest_path, dropins::render(&manifest).as_bytes()));
        installed.map_err(|e| DeployError::Install(format!("{}: {e}", dir.display())))?;
        let report = self.reload().await;
        let plugin = self
            .statuses()
            .into_iter()
            .find(|status| status.name == name)
            .ok_or_else(|| DeployError::Install(format!("plugin `{name}` is not in the list after the reload")))?;
        if plugin.digest.as_deref() != Some(digest.as_str()) {
            let error = report.failed.iter().find(|f| f.plugin == name).map(|f| f.error.clone());
            return Err(DeployError::Refused(error.unwrap_or_else(|| "did not go live".into())));
        }
        let outcome = if created { "created" } else { "replaced" };
        let detail = serde_json::json!({ "digest": digest, "world": manifest.world, "signed": signature.is_some() });
        self.audit_by(actor, "plugin.deployed", &name, outcome, detail, None)
            .await;
        tracing::info!(plugin = %name, %digest, outcome, "plugin deployed");
        Ok(Deployment { created, plugin })
    }

    /// Removes deployed plugin `name` (its manifest, component and signature) and reloads.
    pub async fn undeploy(&self, name: &str, actor: &RolloutActor) -> Result<(), DeployError> {
        let dir = self.deployed_dir().to_owned();
        let manifest_path = dropins::manifest_path(&dir, name);
        if !crate::names::is_valid_name(name) || !manifest_path.exists() {
            return Err(DeployError::NotDeployed(name.to_owned()));
        }
        let component = dir.join(dropins::component_file(name));
        let removed = std::fs::remove_file(&manifest_path)
            .and_then(|()| remove_if_present(&component))
            .and_then(|()| remove_if_present(&signature_path(&component)));
        removed.map_err(|e| DeployError::Install(format!("{}: {e}", dir.display())))?;
        self.reload().await;
        self.audit_by(actor, "plugin.undeployed", name, "removed", serde_json::json!({}), None)
            .await;
        tracing::info!(plugin = %name, "plugin undeployed");
        Ok(())
    }
}

fn remove_if_present(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
