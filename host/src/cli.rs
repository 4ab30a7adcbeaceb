//! Command line: `rdev serve`, `rdev run` (a client of a running gateway), `rdev keys create`,
//! `rdev plugins new|build|test|deploy|keygen|sign`. Every option has an `RDEV_*` environment
//! equivalent; flags override the environment, which overrides the config file.

mod api;
mod authoring;
mod client;
mod explain;
mod profile;
mod run;
mod signing;
mod sse;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::auth::{NewKey, SCOPES};
use crate::config::{BackendKind, Config, LogFormat};

/// rdev: run commands in project workspaces through a REST API and stream their output.
#[derive(Debug, Parser)]
#[command(name = "rdev", version)]
pub struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "RDEV_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, key-hashing secret).
    #[arg(long, env = "RDEV_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL (`postgres://…`); default: SQLite in the data directory.
    #[arg(long, env = "RDEV_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Log format.
    #[arg(long, env = "RDEV_LOG_FORMAT", global = true, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the gateway.
    Serve(ServeArgs),
    /// Runs a command in a project through a gateway and prints its output live; exits with its
    /// exit code (124 timed out, 125 interrupted, 126 refused, 130 cancelled).
    Run(run::RunArgs),
    /// Saves the gateway's URL and a token (asked for, never echoed) in a profile (mode 0600)
    /// for the client subcommands.
    Login(profile::LoginArgs),
    /// The projects the key can see.
    Projects(api::Common),
    /// A project's commands: list, show, cancel.
    Commands(api::CommandsArgs),
    /// The audit log.
    Audit(api::AuditArgs),
    /// Manages API keys directly in the database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Works with plugin components offline.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// The guardian `serve` starts for itself: kills what commands left running once the
    /// gateway is gone (see `exec::guardian`). Not for people.
    #[command(name = crate::exec::guardian::SUBCOMMAND, hide = true)]
    Reaper,
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Writes a plugin project for a world in Rust, Python or JavaScript: a plugin that builds
    /// and passes its fixtures, the fixtures, the WIT, the SDK and a README.
    New(authoring::NewArgs),
    /// Builds a project's component with its language's tool (cargo, componentize-py,
    /// componentize-js) into `dist/NAME.wasm`, and checks it implements the project's world.
    Build(authoring::BuildArgs),
    /// Runs a fixture file (see the SDK's `fixtures` format) against a compiled component, with
    /// the gateway's runtime, budgets and checks; exits non-zero when a case fails. Given a
    /// project directory: its built component and its `fixtures.json`.
    Test(PluginTestArgs),
    /// Deploys a project (after its fixtures pass) or a component into a running gateway, in
    /// addition to its configured plugins (admin key).
    Deploy(authoring::DeployArgs),
    /// Prints the config file's `[[plugins]]` entry for a project or a component.
    Entry(authoring::TargetArgs),
    /// Makes an Ed25519 key pair for signing plugins: writes the private key to a file and
    /// prints the public key for `[plugin_trust] keys`.
    Keygen(signing::KeygenArgs),
    /// Signs a component with a private key, writing the detached signature `<file>.sig`.
    Sign(signing::SignArgs),
    /// Writes the default plugins' components, carried in this binary, into a directory (for
    /// `plugins_dir`; then `default_plugins = true` adds your own entries to them).
    Defaults(DefaultsArgs),
    /// Every plugin's state, digest, counters and last error, from a gateway.
    Status(api::Common),
    /// Makes a gateway re-read its plugin list and files now.
    Reload(api::Common),
}

#[derive(Debug, Args)]
struct DefaultsArgs {
    /// The directory to write them into.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct PluginTestArgs {
    /// The component (`.wasm`), or a project directory.
    file: PathBuf,
    /// The fixture file (JSON); for a project, its `fixtures.json` by default.
    #[arg(long, conflicts_with = "command")]
    fixture: Option<PathBuf>,
    /// Instead of fixtures: a command body (as for `POST …/commands`) to explain through the
    /// component, a sanitizer or a validator, judged by the gateway's own chain code.
    #[arg(long)]
    command: Option<String>,
    /// The plugin's configuration (JSON) for `--command`.
    #[arg(long, requires = "command")]
    plugin_config: Option<String>,
    /// The project `--command` is judged for.
    #[arg(long, default_value = "demo", requires = "command")]
    project: String,
    /// Prints the report as JSON (what the SDK's component harness reads) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "RDEV_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Root directory of local workspaces.
    #[arg(long, env = "RDEV_WORKSPACES")]
    workspaces: Option<PathBuf>,
    /// Directory watched for plugin components.
    #[arg(long, env = "RDEV_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Creates a key directly in the database and prints its token alone on stdout.
    Create(CreateKeyArgs),
    /// The keys, through the API (admin).
    List(api::Common),
    /// Revokes a key through the API (admin).
    Revoke(api::RevokeArgs),
}

#[derive(Debug, Args)]
struct CreateKeyArgs {
    /// Key name.
    #[arg(long)]
    name: String,
    /// Grants every scope.
    #[arg(long)]
    admin: bool,
    /// Grants a scope (repeatable).
    #[arg(long = "scope", value_parser = clap::builder::PossibleValuesParser::new(SCOPES))]
    scopes: Vec<String>,
    /// Limits the key to a project (repeatable).
    #[arg(long = "project")]
    projects: Vec<String>,
    /// Limits the key to a network, as a CIDR (repeatable).
    #[arg(long = "allow-cidr")]
    cidrs: Vec<ipnet::IpNet>,
    /// Rate-limit tier, one of the configured `[limits.tiers]` (default: `default`).
    #[arg(long)]
    rate_limit_tier: Option<String>,
    /// Creates the key through a running gateway's API (with `RDEV_URL` and an admin's
    /// `RDEV_TOKEN`, or the profile) instead of in the database.
    #[arg(long)]
    api: bool,
    #[command(flatten)]
    client: client::ClientArgs,
}

impl CreateKeyArgs {
    /// The scopes asked for: `--admin` and every `--scope`.
    fn scopes(&self) -> anyhow::Result<Vec<String>> {
        let mut scopes = self.scopes.clone();
        if self.admin {
            scopes.push("admin".into());
        }
        anyhow::ensure!(!scopes.is_empty(), "give --admin or at least one --scope");
        Ok(scopes)
    }
}

impl CommonArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            config.database_url = Some(url.clone());
        }
        if let Some(format) = self.log_format {
            config.log_format = format;
        }
        Ok(config)
    }
}

fn serve(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.workspaces {
        config.backend.workspaces = dir;
    }
    if let Some(dir) = args.plugins_dir {
        config.plugins_dir = dir;
    }
    config.validate()?;
    if config.backend.kind == BackendKind::Local
        && let Err(e) = crate::exec::guardian::Guardian::install()
    {
        tracing::warn!(error = %e, "children of commands may outlive a crash of the gateway");
    }
    runtime()?.block_on(crate::app::serve(config))
}

/// `rdev keys create --api`: the same key, made by the gateway; the token alone on stdout.
async fn create_key_via_api(args: CreateKeyArgs) -> anyhow::Result<()> {
    let client = client::Client::new(&args.client)?;
    let body = serde_json::json!({
        "name": args.name,
        "scopes": args.scopes()?,
        "projects": (!args.projects.is_empty()).then_some(&args.projects),
        "allowed_cidrs": (!args.cidrs.is_empty()).then_some(&args.cidrs),
        "rate_limit_tier": args.rate_limit_tier,
    });
    let created = client
        .send(client.request(reqwest::Method::POST, "/v1/keys").json(&body))
        .await?;
    println!("{}", created["token"].as_str().unwrap_or_default());
    Ok(())
}

fn create_key(config: Config, args: CreateKeyArgs) -> anyhow::Result<()> {
    config.validate()?;
    let scopes = args.scopes()?;
    if let Some(tier) = &args.rate_limit_tier {
        anyhow::ensure!(config.limits.has_tier(tier), "`{tier}` is not a tier in [limits.tiers]");
    }
    let new = NewKey {
        name: args.name,
        scopes,
        projects: (!args.projects.is_empty()).then_some(args.projects),
        allowed_cidrs: (!args.cidrs.is_empty()).then_some(args.cidrs),
        expires_at: None,
        rate_limit_tier: args.rate_limit_tier,
    };
    let token = runtime()?.block_on(async {
        let store = crate::app::open_store(&config).await?;
        let auth = crate::app::authenticator(&config, store)?;
        let entry =
            crate::commands::Actor::default().audit("key.create", "", "created", Some("{\"via\":\"cli\"}".into()));
        anyhow::Ok(auth.create(new, Some(entry)).await?.1)
    })?;
    println!("{token}");
    Ok(())
}

fn test_plugin(args: PluginTestArgs) -> anyhow::Result<()> {
    if let Some(body) = &args.command {
        let config = args.plugin_config.as_deref();
        return runtime()?.block_on(explain::explain(&args.file, body, config, &args.project, args.json));
    }
    let (component, fixture) = match args.fixture {
        Some(fixture) => (args.file, fixture),
        None if crate::authoring::Project::is_project(&args.file) => authoring::project_test_files(&args.file)?,
        None => anyhow::bail!("give --fixture FILE or --command BODY (or a project directory)"),
    };
    test_component(&component, &fixture, args.json)
}

/// Runs `fixture` against `component` and prints the report; an error when a case fails.
fn test_component(component: &std::path::Path, fixture: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let source = fixture.display().to_string();
    let text = std::fs::read_to_string(fixture).with_context(|| format!("cannot read {source}"))?;
    let fixture = rdev_plugin_sdk::fixtures::Fixture::parse(&text).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    let report = crate::plugins::harness::run(component, &source, &fixture)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    anyhow::ensure!(
        report.passed(),
        "{} of {} cases failed",
        report.failures().count(),
        report.cases.len()
    );
    Ok(())
}

fn write_default_plugins(dir: &std::path::Path) -> anyhow::Result<()> {
    let written = crate::plugins::embedded::write_defaults(dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    for file in written {
        println!("{}", file.display());
    }
    Ok(())
}

/// Runs a client subcommand on a runtime of its own.
fn client(call: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(call)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Only the gateway exports traces; the other subcommands log.
    let load = |export: bool| {
        let config = cli.common.load()?;
        let telemetry = crate::telemetry::init(config.log_format, export)?;
        if telemetry.exporting() {
            tracing::info!("exporting traces over OTLP/HTTP");
        }
        anyhow::Ok((config, telemetry))
    };
    let result = match cli.command {
        Command::Serve(args) => load(true).and_then(|(config, telemetry)| {
            let served = serve(config, args);
            telemetry.shutdown();
            served
        }),
        Command::Keys(KeysCommand::Create(args)) if args.api => client(create_key_via_api(args)),
        Command::Keys(KeysCommand::Create(args)) => load(false).and_then(|(config, _)| create_key(config, args)),
        Command::Plugins(PluginsCommand::Test(args)) => load(false).and_then(|_| test_plugin(args)),
        Command::Plugins(PluginsCommand::New(args)) => authoring::new(args),
        Command::Plugins(PluginsCommand::Build(args)) => authoring::build(args),
        Command::Plugins(PluginsCommand::Deploy(args)) => load(false).and_then(|_| authoring::deploy(args)),
        Command::Plugins(PluginsCommand::Entry(args)) => authoring::entry(args),
        Command::Plugins(PluginsCommand::Keygen(args)) => signing::keygen(args),
        Command::Plugins(PluginsCommand::Defaults(args)) => write_default_plugins(&args.out),
        Command::Plugins(PluginsCommand::Sign(args)) => signing::sign(args),
        // The guardian reads no configuration: nothing may keep it from starting.
        Command::Reaper => return crate::exec::guardian::run(),
        // Clients: they read the gateway's URL and a token, not the gateway's configuration.
        Command::Run(args) => return run::main(args),
        Command::Login(args) => profile::login(args),
        Command::Projects(common) => client(api::projects(common)),
        Command::Commands(args) => client(api::commands(args)),
        Command::Audit(args) => client(api::audit(args)),
        Command::Keys(KeysCommand::List(common)) => client(api::keys(common)),
        Command::Keys(KeysCommand::Revoke(args)) => client(api::revoke(args)),
        Command::Plugins(PluginsCommand::Status(common)) => client(api::plugins(common, false)),
        Command::Plugins(PluginsCommand::Reload(common)) => client(api::plugins(common, true)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rdev: {e:#}");
            ExitCode::FAILURE
        }
    }
}
