//! `rdev plugins new|build|deploy|entry`: a plugin project from nothing to live in a gateway —
//! scaffolded from the binary's templates, built by its language's tool, its fixtures run
//! against the component, then deployed through the API (or its config entry printed, for a
//! plugin directory).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use clap::builder::TypedValueParser;
use reqwest::Method;

use super::client::{Client, ClientArgs};
use crate::authoring::{self, Lang, Project};
use crate::plugins::dropins;
use crate::plugins::manifest::{Overrides, PluginManifest, World};

/// `rdev plugins new`.
#[derive(Debug, Args)]
pub(super) struct NewArgs {
    /// The plugin's name: lowercase letters, digits and `-`.
    name: String,
    /// The world it implements.
    #[arg(long, value_parser = world_parser())]
    world: World,
    /// The language it is written in.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to write the project (default: ./NAME); it must not hold files yet.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `rdev plugins build`.
#[derive(Debug, Args)]
pub(super) struct BuildArgs {
    /// The project directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// What to deploy, and how it runs.
#[derive(Debug, Args)]
pub(super) struct TargetArgs {
    /// A project directory (its built component, name, world and configuration) or a component.
    #[arg(default_value = ".")]
    target: PathBuf,
    /// The plugin's name (default: the project's, or the component's file name).
    #[arg(long)]
    name: Option<String>,
    /// The configuration (JSON; default: the project's `[config]`, else `{}`).
    #[arg(long)]
    config: Option<String>,
    /// Position in its chain (lower runs first).
    #[arg(long)]
    order: Option<i32>,
    /// Deadline of one call, in milliseconds of CPU time.
    #[arg(long)]
    deadline_ms: Option<u64>,
    /// Memory limit, in MiB.
    #[arg(long)]
    memory_mib: Option<u64>,
}

/// `rdev plugins deploy`.
#[derive(Debug, Args)]
pub(super) struct DeployArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Deploys even when the project's fixtures fail.
    #[arg(long)]
    skip_tests: bool,
    #[command(flatten)]
    client: ClientArgs,
}

impl TargetArgs {
    /// Sets the order and budgets given on the command line in a manifest entry (JSON).
    fn override_budgets(&self, entry: &mut serde_json::Value) {
        let overrides = Overrides {
            order: self.order,
            deadline_ms: self.deadline_ms,
            memory_mib: self.memory_mib,
        };
        overrides.apply(entry);
    }
}

fn world_parser() -> impl clap::builder::TypedValueParser<Value = World> {
    clap::builder::PossibleValuesParser::new(authoring::TEMPLATE_WORLDS.map(World::as_str))
        .map(|name| serde_json::from_value(serde_json::Value::String(name)).expect("a listed world"))
}

/// `rdev plugins new`: writes the project and says what comes next.
pub(super) fn new(args: NewArgs) -> anyhow::Result<()> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let files = authoring::scaffold(&dir, &args.name, args.world, args.lang)?;
    println!("wrote {} files into {}", files.len(), dir.display());
    let shown = dir.display();
    println!("next: rdev plugins build {shown} && rdev plugins deploy {shown} --url http://127.0.0.1:8080");
    Ok(())
}

/// `rdev plugins build`: the project's component, and how long it took.
pub(super) fn build(args: BuildArgs) -> anyhow::Result<()> {
    let project = Project::read(&args.dir)?;
    let started = Instant::now();
    let component = authoring::build(&args.dir, &project)?;
    let bytes = std::fs::metadata(&component).map(|m| m.len()).unwrap_or_default();
    println!(
        "built {} ({} {}, {:.1} MB) in {:.1} s",
        component.display(),
        project.lang.as_str(),
        project.world.as_str(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The component of a project directory and its fixture file, for `rdev plugins test DIR`.
pub(super) fn project_test_files(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let project = Project::read(dir)?;
    let component = built(dir, &project)?;
    Ok((component, Project::fixtures(dir)))
}

/// `rdev plugins deploy`: the project's fixtures first, then the component to a gateway.
pub(super) fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let (manifest, component, fixtures) = resolve(&args.target)?;
    if let Some(fixtures) = fixtures.filter(|_| !args.skip_tests) {
        super::test_component(&component, &fixtures, false).context("nothing was deployed")?;
    }
    let wasm = std::fs::read(&component).with_context(|| format!("cannot read {}", component.display()))?;
    super::client(upload(args.client, manifest, wasm, &component))
}

/// `rdev plugins entry`: the `[[plugins]]` entry of the config file for the target (what
/// differs from the defaults only).
pub(super) fn entry(target: TargetArgs) -> anyhow::Result<()> {
    let (manifest, component, _) = resolve(&target)?;
    let file = component.file_name().map(PathBuf::from).unwrap_or(manifest.file);
    let mut entry = serde_json::json!({ "name": manifest.name, "world": manifest.world, "file": file });
    if manifest.config != serde_json::json!({}) {
        entry["config"] = manifest.config;
    }
    target.override_budgets(&mut entry);
    let table = toml::to_string(&serde_json::json!({ "plugins": [entry] }))?;
    println!("# Copy {} into the plugin directory.\n{table}", component.display());
    Ok(())
}

/// The manifest, component and fixture file (projects only) of a target.
fn resolve(target: &TargetArgs) -> anyhow::Result<(PluginManifest, PathBuf, Option<PathBuf>)> {
    let (name, world, config, component, fixtures) = if target.target.is_dir() {
        let project = Project::read(&target.target)?;
        let component = built(&target.target, &project)?;
        let fixtures = Some(Project::fixtures(&target.target)).filter(|f| f.is_file());
        (project.name, Some(project.world), project.config, component, fixtures)
    } else {
        let stem = target.target.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let name = stem.replace('_', "-");
        (name, None, serde_json::json!({}), target.target.clone(), None)
    };
    let name = target.name.clone().unwrap_or(name);
    let world = match world {
        Some(world) => world,
        None => {
            let wasm = std::fs::read(&component).with_context(|| format!("cannot read {}", component.display()))?;
            crate::plugins::compat::inspect(&wasm)
                .map_err(|e| anyhow::anyhow!("{}: {e}", component.display()))?
                .world
                .with_context(|| format!("{} implements none of the worlds", component.display()))?
        }
    };
    let config = match &target.config {
        Some(text) => serde_json::from_str(text).context("--config is not JSON")?,
        None => config,
    };
    let mut entry =
        serde_json::json!({ "name": name, "world": world, "file": dropins::component_file(&name), "config": config });
    target.override_budgets(&mut entry);
    let manifest: PluginManifest = serde_json::from_value(entry)?;
    manifest.check().map_err(anyhow::Error::msg)?;
    Ok((manifest, component, fixtures))
}

/// The project's built component, or a hint to build it.
fn built(dir: &Path, project: &Project) -> anyhow::Result<PathBuf> {
    let component = project.component(dir);
    anyhow::ensure!(
        component.is_file(),
        "{} is not built yet: run `rdev plugins build {}`",
        component.display(),
        dir.display()
    );
    Ok(component)
}

async fn upload(client: ClientArgs, manifest: PluginManifest, wasm: Vec<u8>, component: &Path) -> anyhow::Result<()> {
    let client = Client::new(&client)?;
    let query = [
        ("world", manifest.world.as_str().to_owned()),
        ("config", manifest.config.to_string()),
        ("order", manifest.order.to_string()),
        ("deadline_ms", manifest.deadline_ms.to_string()),
        ("memory_mib", manifest.memory_mib.to_string()),
    ];
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let mut request = client
        .request(Method::PUT, &format!("/v1/plugins/{}?{query}", manifest.name))
        .header("content-type", "application/wasm");
    let signature = crate::plugins::trust::signature_path(component);
    if let Ok(signature) = std::fs::read_to_string(&signature) {
        request = request.header("rdev-plugin-signature", signature.trim());
    }
    let deployed = client.send(request.body(wasm)).await?;
    let plugin = &deployed["plugin"];
    let verb = if deployed["created"] == true {
        "deployed"
    } else {
        "replaced"
    };
    println!(
        "{verb} `{}` ({} {}), digest {}: {}",
        manifest.name,
        plugin["world"].as_str().unwrap_or_default(),
        plugin["state"].as_str().unwrap_or_default(),
        plugin["digest"].as_str().unwrap_or_default(),
        if plugin["snapshot"] == true {
            "configured once (snapshot)"
        } else {
            "configured on every call"
        }
    );
    Ok(())
}
