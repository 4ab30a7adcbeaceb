//! One loaded version of a plugin: its configured snapshot (see [`super::snapshot`]),
//! pre-instantiated against the runtime's linker and checked to implement its world, and the
//! typed calls into it. Every call gets a fresh store and instance and runs within the manifest's
//! budget.

mod prepare;
mod self_test;

use prepare::{Prepared, link};

use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;

use super::bindings::{discovery, formatter, sanitizer, tool, tools, types, validator};
use super::cache::{ArtifactCache, Origin};
use super::call_state::CallState;
pub use super::compat::Declared;
use super::manifest::PluginManifest;
use super::runtime::{Budget, CallError, Runtime};

/// Bundled self-test cases a version may ask the host to run before it goes live.
const MAX_SELF_TEST_CASES: usize = 256;
/// The least deadline of the calls that check a new version.
const CHECK_DEADLINE: Duration = Duration::from_secs(2);
/// How long the checks of a new version wait for call slots: they run off the request path, so
/// traffic may keep the slots busy a while but must not make a good version fail to load.
const CHECK_SLOT_WAIT: Duration = Duration::from_secs(60);

/// Which call slots a version's calls take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// The runtime's call slots, waiting up to the slot wait.
    Serving,
    /// The shadow slots, never waiting.
    Shadow,
}

/// The wall-clock backstop of a shadow call: it runs at idle CPU priority, so on a busy machine
/// it may wait long for a core without being blocked (its deadline still counts CPU time only).
const SHADOW_WALL_LIMIT: Duration = Duration::from_secs(30);

/// The pre-instantiated component, typed by world.
#[derive(Clone)]
enum Pre {
    Sanitizer(sanitizer::CommandSanitizerPre<CallState>),
    Validator(validator::RequestValidatorPre<CallState>),
    Formatter(formatter::WebhookFormatterPre<CallState>),
    Discovery(discovery::ProjectDiscoveryPre<CallState>),
    Tool(tool::ToolPolicyPre<CallState>),
}

/// A plugin's `configure` refused the configuration it was given.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ConfigRefused(String);

/// A loaded, checked version of a plugin.
pub struct Version {
    /// The plugin name.
    pub name: Arc<str>,
    /// The manifest it was loaded with.
    pub manifest: PluginManifest,
    /// SHA-256 of the component file.
    pub digest: String,
    /// Whether the compiled code came from the artifact cache.
    pub origin: Origin,
    /// Whether calls start from a configured snapshot (else `configure` runs on every call).
    pub snapshot: bool,
    /// When it was loaded (Unix milliseconds).
    pub loaded_at: i64,
    /// The name and version the component declares of itself.
    pub declared: Option<Declared>,
    /// The `rdev:plugin` package version it was built against.
    pub package_version: Option<String>,
    config_json: String,
    budget: Budget,
    slot_wait: Duration,
    lane: Lane,
    pre: Pre,
    runtime: Arc<Runtime>,
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Version")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// Runs one call: permit, fresh store, instantiate (configure, unless the version is a
/// snapshot), then `$body` with the bindings
/// `$b` and the store `$store`, all on the store's CPU meter and within the budget's wall-clock
/// limit; failures are classified against the budget.
macro_rules! call {
    ($self:ident, $variant:ident, |$b:ident, $store:ident| $body:expr) => {
        async {
            let Pre::$variant(pre) = &$self.pre else {
                return Err(CallError::BadOutput("called through the wrong world".into()));
            };
            // Declared first, so dropped last: the slot frees once the store is gone, and the
            // pool never holds more instances than there are slots.
            let _permit = match $self.lane {
                Lane::Serving => $self.runtime.permit($self.slot_wait).await?,
                Lane::Shadow => $self.runtime.shadow_permit()?,
            };
            let mut store: Store<CallState> = $self.runtime.store($self.name.clone(), &$self.budget);
            let meter = store.data().meter();
            let run = meter.run(async {
                let $b = pre.instantiate_async(&mut store).await?;
                if !$self.snapshot {
                    if let Err(message) = $b.call_configure(&mut store, &$self.config_json).await? {
                        return Err(wasmtime::Error::new(ConfigRefused(message)));
                    }
                }
                let $store = &mut store;
                $body.await
            });
            let wall = $self.wall_limit();
            match tokio::time::timeout(wall, run).await {
                Ok(outcome) => outcome.map_err(|e| match e.downcast_ref::<ConfigRefused>() {
                    Some(refused) => CallError::Configure(refused.0.clone()),
                    None => Runtime::classify(&e, &store, &$self.budget),
                }),
                Err(_) => Err(CallError::Blocked(wall.as_millis())),
            }
        }
        .await
    };
}

impl Version {
    /// Loads the component `wasm` (whose SHA-256 is `digest`) for `manifest`: configured once
    /// into a snapshot (or from the snapshot cached for this file and configuration), linked,
    /// and checked to implement its world, accept its configuration and pass its bundled
    /// self-test. It is refused first if it was built for another world or an incompatible
    /// version of the `rdev:plugin` package. Compilation runs on a blocking thread.
    pub async fn load(
        runtime: Arc<Runtime>,
        cache: Arc<ArtifactCache>,
        manifest: PluginManifest,
        wasm: Vec<u8>,
        digest: String,
    ) -> Result<Self, String> {
        let built = super::compat::check(&wasm, manifest.world)?;
        let budget = manifest.budget();
        // The checks run off the request path, on a machine that may be busy loading other
        // plugins: they prove behaviour, not speed, so they get a generous deadline.
        let check_budget = Budget {
            deadline: budget.deadline.max(CHECK_DEADLINE),
            ..budget
        };
        let name: Arc<str> = manifest.name.as_str().into();
        let config_json = manifest.config.to_string();
        let limit = runtime.limits().load_timeout();
        let prepare = Prepared::new(&runtime, &cache, &name, wasm, &digest, &config_json, check_budget);
        let prepared = tokio::time::timeout(limit, prepare)
            .await
            .map_err(|_| format!("took longer than {} s to compile and configure", limit.as_secs()))??;
        let pre = link(&runtime, &prepared.component, manifest.world)?;
        let mut version = Self {
            name,
            config_json,
            budget: check_budget,
            slot_wait: CHECK_SLOT_WAIT,
            lane: Lane::Serving,
            digest,
            origin: prepared.origin,
            snapshot: prepared.snapshot,
            loaded_at: crate::time::now_ms(),
            declared: built.declared,
            package_version: built.package_version,
            manifest,
            pre,
            runtime,
        };
        version.self_test().await?;
        version.budget = budget;
        version.slot_wait = version.runtime.limits().slot_wait();
        Ok(version)
    }

    /// How long a call may take in wall-clock time, waiting included.
    fn wall_limit(&self) -> Duration {
        match self.lane {
            Lane::Serving => self.budget.wall_limit(),
            Lane::Shadow => self.budget.wall_limit().max(SHADOW_WALL_LIMIT),
        }
    }

    /// This version as a shadow candidate: its calls take the shadow slots.
    pub fn into_shadow(self) -> Self {
        Self {
            lane: Lane::Shadow,
            ..self
        }
    }

    /// A serving copy of a shadow candidate, loaded now (the compiled code is shared).
    pub fn promoted(&self) -> Self {
        Self {
            name: self.name.clone(),
            manifest: self.manifest.clone(),
            digest: self.digest.clone(),
            origin: self.origin,
            snapshot: self.snapshot,
            loaded_at: crate::time::now_ms(),
            declared: self.declared.clone(),
            package_version: self.package_version.clone(),
            config_json: self.config_json.clone(),
            budget: self.budget,
            slot_wait: self.slot_wait,
            lane: Lane::Serving,
            pre: self.pre.clone(),
            runtime: self.runtime.clone(),
        }
    }

    /// Judges a command.
    pub async fn sanitize(
        &self,
        command: &types::Command,
        context: &types::CommandContext,
    ) -> Result<types::Verdict, CallError> {
        call!(self, Sanitizer, |b, store| b.call_sanitize(store, command, context))
    }

    /// Field errors of a request.
    pub async fn validate(&self, resource: &str, request: &str) -> Result<Vec<types::FieldError>, CallError> {
        call!(self, Validator, |b, store| b.call_validate(store, resource, request))
    }

    /// Renders an event.
    pub async fn format(
        &self,
        event_type: &str,
        event: &str,
        target: &types::WebhookTarget,
    ) -> Result<Result<types::Rendered, String>, CallError> {
        call!(self, Formatter, |b, store| b
            .call_format(store, event_type, event, target))
    }

    /// The projects in an inventory.
    pub async fn discover(
        &self,
        inventory: &[types::InventoryItem],
    ) -> Result<Result<Vec<types::Project>, String>, CallError> {
        call!(self, Discovery, |b, store| b.call_discover(store, inventory))
    }

    /// Judges a tool call of a `claude` run.
    pub async fn judge_tool(
        &self,
        call: &tools::ToolCall,
        context: &tools::ToolContext,
    ) -> Result<tools::ToolVerdict, CallError> {
        call!(self, Tool, |b, store| b.call_judge(store, call, context))
    }

    /// Runs the bundled self-test cases (which also proves `configure` accepts the config).
    async fn self_test(&self) -> Result<(), String> {
        let failed = |e: CallError| e.to_string();
        match &self.pre {
            Pre::Sanitizer(_) => {
                let cases = call!(self, Sanitizer, |b, store| b.call_self_test(store)).map_err(failed)?;
                self.check_count(cases.len())?;
                self_test::sanitizer(self, cases).await
            }
            Pre::Validator(_) => {
                let cases = call!(self, Validator, |b, store| b.call_self_test(store)).map_err(failed)?;
                self.check_count(cases.len())?;
                self_test::validator(self, cases).await
            }
            Pre::Formatter(_) => {
                let cases = call!(self, Formatter, |b, store| b.call_self_test(store)).map_err(failed)?;
                self.check_count(cases.len())?;
                self_test::formatter(self, cases).await
            }
            Pre::Discovery(_) => {
                let cases = call!(self, Discovery, |b, store| b.call_self_test(store)).map_err(failed)?;
                self.check_count(cases.len())?;
                self_test::discovery(self, cases).await
            }
            Pre::Tool(_) => {
                let cases = call!(self, Tool, |b, store| b.call_self_test(store)).map_err(failed)?;
                self.check_count(cases.len())?;
                self_test::tool(self, cases).await
            }
        }
    }

    fn check_count(&self, n: usize) -> Result<(), String> {
        if n > MAX_SELF_TEST_CASES {
            return Err(format!(
                "bundles {n} self-test cases; at most {MAX_SELF_TEST_CASES} are run"
            ));
        }
        Ok(())
    }
}
