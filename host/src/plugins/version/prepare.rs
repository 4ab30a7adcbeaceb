//! Turning a plugin file into the component a version serves: its configured snapshot from the
//! artifact cache, else configured and snapshotted now; the file itself, configured on every
//! call, only when it cannot be snapshotted. Then linking it, typed by its world.

use std::sync::Arc;

use wasmtime::component::Component;

use super::Pre;
use crate::plugins::bindings::{discovery, formatter, sanitizer, tool, validator};
use crate::plugins::cache::{self, ArtifactCache, Origin};
use crate::plugins::manifest::World;
use crate::plugins::runtime::{Budget, Runtime};
use crate::plugins::snapshot::{self, SnapshotError};

/// The component a version serves, and where it came from.
pub(super) struct Prepared {
    pub component: Component,
    pub origin: Origin,
    /// Whether it is a configured snapshot.
    pub snapshot: bool,
}

impl Prepared {
    /// The component for the file `wasm` (SHA-256 `digest`) configured with `config_json`.
    pub async fn new(
        runtime: &Arc<Runtime>,
        cache: &Arc<ArtifactCache>,
        plugin: &Arc<str>,
        wasm: Vec<u8>,
        digest: &str,
        config_json: &str,
        budget: Budget,
    ) -> Result<Self, String> {
        if !runtime.options().snapshots {
            return Self::unconfigured(runtime, cache, wasm, digest).await;
        }
        let name = cache::snapshot_name(digest, config_json);
        let cached = {
            let (cache, engine, name) = (cache.clone(), runtime.engine().clone(), name.clone());
            tokio::task::spawn_blocking(move || cache.load(&engine, &name))
                .await
                .ok()
                .flatten()
        };
        if let Some(component) = cached {
            return Ok(Self::snapshot(component, Origin::Cache));
        }
        match snapshot::configured(runtime, plugin.clone(), wasm.clone(), config_json.into(), budget).await {
            Ok(snapshot) => {
                let component = compile(runtime, cache, snapshot, name).await?;
                Ok(Self::snapshot(component, Origin::Compiled))
            }
            Err(SnapshotError::Refused(message)) => Err(format!("refused its configuration: {message}")),
            Err(SnapshotError::Failed(e)) => Err(format!("failed while configuring: {e}")),
            Err(SnapshotError::Unsupported(why)) => {
                tracing::warn!(%plugin, %why, "plugin cannot be snapshotted; it is configured on every call");
                Self::unconfigured(runtime, cache, wasm, digest).await
            }
        }
    }

    /// The file itself, compiled or from the cache: `configure` runs on every call.
    async fn unconfigured(
        runtime: &Arc<Runtime>,
        cache: &Arc<ArtifactCache>,
        wasm: Vec<u8>,
        digest: &str,
    ) -> Result<Self, String> {
        let (cache, engine, digest) = (cache.clone(), runtime.engine().clone(), digest.to_owned());
        let (component, origin) = tokio::task::spawn_blocking(move || cache.load_or_compile(&engine, &wasm, &digest))
            .await
            .map_err(|e| format!("compilation failed: {e}"))?
            .map_err(|e| format!("not a valid WebAssembly component: {e:#}"))?;
        Ok(Self {
            component,
            origin,
            snapshot: false,
        })
    }

    fn snapshot(component: Component, origin: Origin) -> Self {
        Self {
            component,
            origin,
            snapshot: true,
        }
    }
}

/// Compiles a snapshot and caches it under `name`.
async fn compile(
    runtime: &Arc<Runtime>,
    cache: &Arc<ArtifactCache>,
    snapshot: Vec<u8>,
    name: String,
) -> Result<Component, String> {
    let (cache, engine) = (cache.clone(), runtime.engine().clone());
    tokio::task::spawn_blocking(move || cache.compile(&engine, &snapshot, &name))
        .await
        .map_err(|e| format!("compilation failed: {e}"))?
        .map_err(|e| format!("its configured snapshot does not compile: {e:#}"))
}

/// `component` linked against the runtime and typed by `world`.
pub(super) fn link(runtime: &Runtime, component: &Component, world: World) -> Result<Pre, String> {
    let linked = runtime
        .linker()
        .instantiate_pre(component)
        .map_err(|e| format!("cannot be linked: {e:#}"))?;
    let wrong_world = |e: wasmtime::Error| format!("does not implement the {} world: {e:#}", world.as_str());
    Ok(match world {
        World::CommandSanitizer => Pre::Sanitizer(sanitizer::CommandSanitizerPre::new(linked).map_err(wrong_world)?),
        World::RequestValidator => Pre::Validator(validator::RequestValidatorPre::new(linked).map_err(wrong_world)?),
        World::WebhookFormatter => Pre::Formatter(formatter::WebhookFormatterPre::new(linked).map_err(wrong_world)?),
        World::ProjectDiscovery => Pre::Discovery(discovery::ProjectDiscoveryPre::new(linked).map_err(wrong_world)?),
        World::ToolPolicy => Pre::Tool(tool::ToolPolicyPre::new(linked).map_err(wrong_world)?),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::plugins::bindings::types;
    use crate::plugins::cache::CacheKey;
    use crate::plugins::manifest::PluginManifest;
    use crate::plugins::runtime::EngineOptions;
    use crate::plugins::version::Version;

    fn counter(config: serde_json::Value) -> (PluginManifest, Vec<u8>) {
        let file = Path::new(env!("RDEV_TEST_PLUGINS_DIR")).join("call_counter.wasm");
        let mut manifest = PluginManifest::new("counter", World::CommandSanitizer, &file.display().to_string(), 0);
        manifest.config = config;
        (manifest, std::fs::read(file).unwrap())
    }

    async fn load(runtime: &Arc<Runtime>, cache: &Arc<ArtifactCache>, label: &str) -> Version {
        let (manifest, wasm) = counter(serde_json::json!({ "label": label }));
        let digest = cache::digest(&wasm);
        Version::load(runtime.clone(), cache.clone(), manifest, wasm, digest)
            .await
            .unwrap()
    }

    async fn reason(version: &Version) -> String {
        let command = types::Command {
            kind: "shell".into(),
            script: Some("count".into()),
            args: None,
            prompt: None,
            env: vec![],
        };
        let context = types::CommandContext {
            project: "demo".into(),
            workdir: "/w/demo".into(),
            key_id: "key_1".into(),
            scopes: vec![],
        };
        match version.sanitize(&command, &context).await.unwrap() {
            types::Verdict::Deny(reason) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_version_is_configured_once_into_a_snapshot_cached_per_configuration() {
        let runtime = Runtime::new(EngineOptions::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ArtifactCache::open(dir.path(), runtime.engine(), &CacheKey::ephemeral()).unwrap());
        let first = load(&runtime, &cache, "a").await;
        assert!(first.snapshot);
        assert_eq!(first.origin, Origin::Compiled);
        for _ in 0..3 {
            assert_eq!(
                reason(&first).await,
                "call 1 of this instance, configured 1 times, label a"
            );
        }
        let again = load(&runtime, &cache, "a").await;
        assert_eq!((again.snapshot, again.origin), (true, Origin::Cache));
        assert_eq!(
            reason(&again).await,
            "call 1 of this instance, configured 1 times, label a"
        );
        let other = load(&runtime, &cache, "b").await;
        assert_eq!(
            other.origin,
            Origin::Compiled,
            "another configuration is another snapshot"
        );
        assert_eq!(
            reason(&other).await,
            "call 1 of this instance, configured 1 times, label b"
        );
    }

    #[tokio::test]
    async fn a_snapshot_artifact_it_did_not_write_is_never_loaded() {
        let runtime = Runtime::new(EngineOptions::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ArtifactCache::open(dir.path(), runtime.engine(), &CacheKey::ephemeral()).unwrap());
        assert_eq!(load(&runtime, &cache, "a").await.origin, Origin::Compiled);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let mut bytes = std::fs::read(&path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
        let again = load(&runtime, &cache, "a").await;
        assert_eq!(again.origin, Origin::Compiled, "a tampered snapshot is made again");
        assert_eq!(
            reason(&again).await,
            "call 1 of this instance, configured 1 times, label a"
        );
    }

    #[tokio::test]
    async fn without_snapshots_every_call_is_configured_on_a_fresh_instance() {
        let options = EngineOptions {
            snapshots: false,
            ..EngineOptions::default()
        };
        let runtime = Runtime::new(options).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ArtifactCache::open(dir.path(), runtime.engine(), &CacheKey::ephemeral()).unwrap());
        let version = load(&runtime, &cache, "a").await;
        assert!(!version.snapshot);
        for _ in 0..3 {
            assert_eq!(
                reason(&version).await,
                "call 1 of this instance, configured 1 times, label a"
            );
        }
    }
}
