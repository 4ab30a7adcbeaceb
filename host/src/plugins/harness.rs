//! The component half of the SDK's offline harness: runs a plugin's fixture file against its
//! compiled component, through the same runtime, budgets and checks the gateway uses
//! (`rdev plugins test`). Each case is judged by the SDK, exactly as in a native test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rdev_plugin_sdk as sdk;
use rdev_plugin_sdk::fixtures::{Cases, Fixture};
use rdev_plugin_sdk::testing::{Report, Subject};

use super::bindings::{tools, types};
use super::cache::{self, ArtifactCache, CacheKey};
use super::manifest::{PluginManifest, World};
use super::runtime::{EngineOptions, Runtime};
use super::version::Version;

/// A compiled component answering fixture cases.
pub struct ComponentSubject {
    file: PathBuf,
    world: World,
    runtime: Arc<Runtime>,
    cache: Arc<ArtifactCache>,
    _cache_dir: Option<tempfile::TempDir>,
    executor: tokio::runtime::Runtime,
    version: Option<Version>,
}

/// The world a fixture's cases are for.
pub fn world_of(fixture: &Fixture) -> World {
    match fixture.cases {
        Cases::Sanitizer(_) => World::CommandSanitizer,
        Cases::Validator(_) => World::RequestValidator,
        Cases::Formatter(_) => World::WebhookFormatter,
        Cases::Discovery(_) => World::ProjectDiscovery,
        Cases::Tool(_) => World::ToolPolicy,
    }
}

/// A policy chain of the one component in `file` (a sanitizer or a validator), configured with
/// `config`: the chains' own code judges through it, as the gateway's `POST …/explain` does.
pub async fn chain_of(file: &Path, world: World, config: serde_json::Value) -> anyhow::Result<super::Policies> {
    let runtime = Runtime::new(EngineOptions::default())?;
    let (_cache_dir, cache) = local_cache(&runtime)?;
    let mut manifest = PluginManifest::new("under-test", world, &file.display().to_string(), 0);
    manifest.config = config;
    let wasm = std::fs::read(file)?;
    let digest = cache::digest(&wasm);
    let version = Version::load(runtime, cache, manifest.clone(), wasm, digest)
        .await
        .map_err(|e| anyhow::anyhow!("the component {e}"))?;
    let (rollbacks, _) = tokio::sync::mpsc::unbounded_channel();
    let hooks = super::slot::SlotHooks {
        runner: Arc::new(super::rollout::shadow::ShadowRunner::start()?),
        rollbacks,
    };
    let slot = Arc::new(super::slot::Slot::new(
        manifest,
        crate::telemetry::Metrics::new(),
        hooks,
    ));
    slot.activate(version);
    let mut chains = super::Chains::default();
    match world {
        World::CommandSanitizer => chains.sanitizers.push(slot),
        World::RequestValidator => chains.validators.push(slot),
        other => anyhow::bail!("a `{}` component judges no command", other.as_str()),
    }
    Ok(super::Policies::new(chains))
}

/// The artifact cache of the user's offline runs (`rdev plugins test`, `deploy`'s fixtures): in
/// `$XDG_CACHE_HOME/rdev/plugin-cache` (else `~/.cache/…`), authenticated under a key kept apart
/// from it, in `$XDG_CONFIG_HOME/rdev/artifact-cache.secret` (else `~/.config/…`, mode 0600),
/// so that testing a large component again, or deploying it after its test, skips compiling
/// it. Without a home for either, a cache that lives as long as this run.
fn local_cache(runtime: &Runtime) -> anyhow::Result<(Option<tempfile::TempDir>, Arc<ArtifactCache>)> {
    let home = |variable: &str, fallback: &str| {
        std::env::var_os(variable)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(fallback)))
    };
    let user = home("XDG_CACHE_HOME", ".cache").zip(home("XDG_CONFIG_HOME", ".config"));
    if let Some((cache_home, config_home)) = user
        && let Ok(secret) = local_secret(&config_home.join("rdev/artifact-cache.secret"))
        && let Ok(cache) = ArtifactCache::open(
            &cache_home.join("rdev/plugin-cache"),
            runtime.engine(),
            &CacheKey::derive(&secret),
        )
    {
        return Ok((None, Arc::new(cache)));
    }
    let dir = tempfile::tempdir()?;
    let cache = ArtifactCache::open(dir.path(), runtime.engine(), &CacheKey::ephemeral())?;
    Ok((Some(dir), Arc::new(cache)))
}

/// The secret at `path`, made (32 random bytes, mode 0600) when there is none.
fn local_secret(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read(path) {
        Ok(secret) if secret.len() >= 32 => return Ok(secret),
        Ok(_) => return Err(std::io::Error::other("the artifact cache secret is too short")),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let secret: [u8; 32] = rand::random();
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => file.write_all(&secret).map(|()| secret.to_vec()),
        // Another run made it first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

/// Runs `fixture` against the component in `file`.
pub fn run(file: &Path, fixture_source: &str, fixture: &Fixture) -> anyhow::Result<Report> {
    let mut subject = ComponentSubject::new(file, world_of(fixture))?;
    Ok(sdk::testing::run(fixture_source, fixture, &mut subject))
}

impl ComponentSubject {
    /// A subject for the component in `file`, implementing `world`.
    pub fn new(file: &Path, world: World) -> anyhow::Result<Self> {
        let executor = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let runtime = executor.block_on(async { Runtime::new(EngineOptions::default()) })?;
        let (cache_dir, cache) = local_cache(&runtime)?;
        Ok(Self {
            file: file.to_owned(),
            world,
            runtime,
            cache,
            _cache_dir: cache_dir,
            executor,
            version: None,
        })
    }

    fn version(&self) -> Result<&Version, String> {
        self.version
            .as_ref()
            .ok_or_else(|| "the plugin is not configured".to_owned())
    }
}

impl Subject for ComponentSubject {
    fn configure(&mut self, config: &str) -> Result<(), String> {
        let mut manifest = PluginManifest::new("under-test", self.world, &self.file.display().to_string(), 0);
        if !config.trim().is_empty() {
            manifest.config = serde_json::from_str(config).map_err(|e| format!("the config is not JSON: {e}"))?;
        }
        let wasm = std::fs::read(&self.file).map_err(|e| format!("cannot read {}: {e}", self.file.display()))?;
        let digest = cache::digest(&wasm);
        let load = Version::load(self.runtime.clone(), self.cache.clone(), manifest, wasm, digest);
        self.version = Some(self.executor.block_on(load)?);
        Ok(())
    }

    fn sanitize(&mut self, command: &sdk::Command, context: &sdk::CommandContext) -> Result<sdk::Verdict, String> {
        let (command, context) = (to_host_command(command), to_host_context(context));
        let call = self.version()?.sanitize(&command, &context);
        let verdict = self.executor.block_on(call).map_err(|e| e.to_string())?;
        Ok(match verdict {
            types::Verdict::Allow => sdk::Verdict::Allow,
            types::Verdict::Deny(reason) => sdk::Verdict::Deny(reason),
            types::Verdict::Rewrite(command) => sdk::Verdict::Rewrite(to_sdk_command(command)),
        })
    }

    fn validate(&mut self, resource: &str, request: &str) -> Result<Vec<sdk::FieldError>, String> {
        let call = self.version()?.validate(resource, request);
        let errors = self.executor.block_on(call).map_err(|e| e.to_string())?;
        Ok(errors
            .into_iter()
            .map(|e| sdk::FieldError {
                field: e.field,
                message: e.message,
            })
            .collect())
    }

    fn format(
        &mut self,
        event_type: &str,
        event: &str,
        target: &sdk::WebhookTarget,
    ) -> Result<Result<sdk::Rendered, String>, String> {
        let target = types::WebhookTarget {
            subscription: target.subscription.clone(),
            url: target.url.clone(),
        };
        let call = self.version()?.format(event_type, event, &target);
        let rendered = self.executor.block_on(call).map_err(|e| e.to_string())?;
        Ok(rendered.map(|r| sdk::Rendered {
            content_type: r.content_type,
            body: r.body,
        }))
    }

    fn discover(&mut self, inventory: &[sdk::InventoryItem]) -> Result<Result<Vec<sdk::Project>, String>, String> {
        let items: Vec<_> = inventory
            .iter()
            .map(|i| types::InventoryItem {
                source: i.source.clone(),
                name: i.name.clone(),
                workspace: i.workspace.clone(),
                labels: i.labels.clone(),
            })
            .collect();
        let call = self.version()?.discover(&items);
        let found = self.executor.block_on(call).map_err(|e| e.to_string())?;
        Ok(found.map(|projects| {
            projects
                .into_iter()
                .map(|p| sdk::Project {
                    name: p.name,
                    workspace: p.workspace,
                    description: p.description,
                })
                .collect()
        }))
    }

    fn judge_tool(&mut self, call: &sdk::ToolCall, context: &sdk::ToolContext) -> Result<sdk::ToolVerdict, String> {
        let call = tools::ToolCall {
            tool_name: call.tool_name.clone(),
            input: call.input.clone(),
        };
        let context = tools::ToolContext {
            project: context.project.clone(),
            workdir: context.workdir.clone(),
            command_id: context.command_id.clone(),
            key_id: context.key_id.clone(),
        };
        let verdict = self.executor.block_on(self.version()?.judge_tool(&call, &context));
        Ok(match verdict.map_err(|e| e.to_string())? {
            tools::ToolVerdict::Allow => sdk::ToolVerdict::Allow,
            tools::ToolVerdict::Deny(reason) => sdk::ToolVerdict::Deny(reason),
        })
    }
}

fn to_host_command(c: &sdk::Command) -> types::Command {
    types::Command {
        kind: c.kind.clone(),
        script: c.script.clone(),
        args: c.args.clone(),
        prompt: c.prompt.clone(),
        env: c
            .env
            .iter()
            .map(|v| types::EnvVar {
                name: v.name.clone(),
                value: v.value.clone(),
            })
            .collect(),
    }
}

fn to_sdk_command(c: types::Command) -> sdk::Command {
    sdk::Command {
        kind: c.kind,
        script: c.script,
        args: c.args,
        prompt: c.prompt,
        env: c
            .env
            .into_iter()
            .map(|v| sdk::EnvVar {
                name: v.name,
                value: v.value,
            })
            .collect(),
    }
}

fn to_host_context(c: &sdk::CommandContext) -> types::CommandContext {
    types::CommandContext {
        project: c.project.clone(),
        workdir: c.workdir.clone(),
        key_id: c.key_id.clone(),
        scopes: c.scopes.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_cache_secret_is_made_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rdev/artifact-cache.secret");
        let first = local_secret(&path).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(local_secret(&path).unwrap(), first);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert!(local_secret(&path).is_err(), "a truncated secret is not used");
    }
}
