//! Assembles the gateway from its configuration (store, keys, plugins, projects, backend, commands) and
//! runs it until SIGINT/SIGTERM, then shuts down in order.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticator, NewKey, TokenHasher};
use crate::commands::{CommandServices, Commands};
use crate::config::{BackendKind, Config};
use crate::exec::kubernetes::Cluster;
use crate::exec::{ExecBackend, KubernetesBackend, LocalBackend};
use crate::http::{AppState, Services};
use crate::plugins::manager::{ManagerSettings, PluginManager};
use crate::plugins::trust::Trust;
use crate::projects::{ClusterInventory, LocalDirectories, ProjectRegistry, ProjectSource};
use crate::replicas::{Notices, Replica};
use crate::store::Store;
use crate::streaming::OutputHub;
use crate::telemetry::Metrics;

const DISCOVERY_INTERVAL: Duration = Duration::from_secs(2);
const QUEUE_SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The configured database's URL (the embedded SQLite file unless `database_url` is set),
/// creating the data directory.
fn database_url(config: &Config) -> anyhow::Result<String> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    Ok(config
        .database_url
        .clone()
        .unwrap_or_else(|| crate::store::sqlite_url(&config.data_dir)))
}

/// Opens the configured database (creating the data directory for SQLite).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = database_url(config)?;
    crate::store::open_with(&url, &config.database)
        .await
        .context("cannot open the database")
}

/// Notices between replicas: through PostgreSQL, or nowhere for the one process on a SQLite file.
async fn notices(url: &str, config: &Config, shutdown: CancellationToken) -> anyhow::Result<Notices> {
    if !crate::store::is_shared(url) {
        return Ok(Notices::local());
    }
    Notices::postgres(url, &config.database, shutdown)
        .await
        .context("cannot listen for notices from other replicas")
}

/// What the plugin manager starts with; a reload reads the manifests from the file again.
fn plugin_settings(config: &Config) -> anyhow::Result<ManagerSettings> {
    Ok(ManagerSettings {
        runtime: config.plugin_runtime.clone(),
        cache_dir: config.data_dir.join("plugin-cache"),
        cache_secret: config.key_hash_secret_path(),
        plugins_dir: config.plugins_dir.clone(),
        deployed_dir: config.data_dir.join("plugins"),
        manifests: config.plugin_manifests(),
        config_file: config.file.clone(),
        read_manifests: |path| {
            Config::from_file(path)
                .map(|c| c.plugin_manifests())
                .map_err(|e| e.to_string())
        },
        trust: Trust::from_config(&config.plugin_trust).map_err(anyhow::Error::msg)?,
    })
}

/// The authenticator, with the key-hashing secret from the data directory.
pub fn authenticator(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Authenticator> {
    let default = config.data_dir.join("key-hash.secret");
    let secret = config.auth.key_hash_secret_file.as_ref().unwrap_or(&default);
    let hasher = TokenHasher::load_or_create(secret).with_context(|| format!("cannot load {}", secret.display()))?;
    Ok(Authenticator::new(store, hasher))
}

/// Creates the workspaces root and, on first start, a `demo` project (a git repository).
fn prepare_workspaces(root: &Path) -> anyhow::Result<()> {
    if root.exists() {
        return Ok(());
    }
    let demo = root.join("demo");
    std::fs::create_dir_all(&demo).with_context(|| format!("cannot create {}", demo.display()))?;
    std::fs::write(
        demo.join("README.md"),
        "# demo\n\nA project created by rdev on first start.\n",
    )?;
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(["-c", "user.name=rdev", "-c", "user.email=rdev@localhost"])
            .args(args)
            .current_dir(&demo)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !(git(&["init", "-q"]) && git(&["add", "README.md"]) && git(&["commit", "-q", "-m", "Initial commit"])) {
        tracing::warn!("git is unavailable; the demo project is not a repository");
    }
    Ok(())
}

/// The execution backend and project source the configuration asks for.
async fn backend(
    config: &Config,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<(Arc<dyn ExecBackend>, Arc<dyn ProjectSource>)> {
    match config.backend.kind {
        BackendKind::Local => {
            let root = &config.backend.workspaces;
            prepare_workspaces(root)?;
            Ok((
                Arc::new(LocalBackend::new(root.clone()).guarded_by(crate::exec::guardian::Guardian::installed())),
                Arc::new(LocalDirectories::new(root.clone())),
            ))
        }
        BackendKind::Kubernetes => {
            let cluster = Cluster::connect(&config.backend.kubernetes, metrics, shutdown).await?;
            cluster.wait_synced().await;
            Ok((
                Arc::new(KubernetesBackend::new(cluster.clone())),
                Arc::new(ClusterInventory::new(Arc::new(cluster.clone()), cluster.labelling())),
            ))
        }
    }
}

/// Builds the application state and recovers commands left by an earlier run.
pub async fn build(config: Config) -> anyhow::Result<AppState> {
    let config = Arc::new(config);
    let url = database_url(&config)?;
    let store = open_store(&config).await?;
    let shutdown = CancellationToken::new();
    let notices = notices(&url, &config, shutdown.clone()).await?;
    let metrics = Metrics::new();
    let auth = authenticator(&config, store.clone())?
        .with_notices(notices.clone())
        .counting_reads_in(metrics.key_store_reads.clone());
    let limits = crate::limits::Limits::new(config.limits.clone(), metrics.rate_limited.clone());
    let sole = !crate::store::is_shared(&url);
    let replica = Replica::register(store.clone(), config.replicas.clone(), sole, notices.clone())
        .await
        .context("cannot register this replica")?;
    let (backend, source) = backend(&config, &metrics, shutdown.clone()).await?;
    let plugins = PluginManager::start(plugin_settings(&config)?, store.clone(), metrics.clone())
        .await
        .context("cannot start the plugin runtime")?;
    let projects = ProjectRegistry::new(source, plugins.discovery(), config.project_config());
    if let Err(e) = projects.refresh().await {
        tracing::warn!(error = %e, "initial project discovery failed");
    }
    let hub = OutputHub::default();
    let commands = Commands::new(CommandServices {
        store: store.clone(),
        backend: backend.clone(),
        projects: projects.clone(),
        hub: hub.clone(),
        policies: plugins.policies(),
        config: Arc::new(config.commands.clone()),
        metrics: metrics.clone(),
        replica: replica.clone(),
        notices,
    });
    commands.recover().await.context("cannot recover commands")?;
    let webhooks = crate::webhooks::Subscriptions::new(
        store.clone(),
        plugins.clone(),
        webhook_sealer(&config)?,
        config.webhooks.clone(),
    );
    let stream_clock =
        crate::streaming::StreamClock::start(Duration::from_secs(config.sse_heartbeat_secs), shutdown.clone());
    Ok(AppState::new(Services {
        config,
        store,
        auth,
        limits,
        projects,
        commands,
        hub,
        stream_clock,
        backend,
        metrics,
        plugins,
        shutdown,
        replica,
        webhooks,
    }))
}

/// What seals webhook secrets: keyed from the key-hashing secret, which replicas share (the
/// authenticator created it).
fn webhook_sealer(config: &Config) -> anyhow::Result<crate::webhooks::secrets::Sealer> {
    let path = config.key_hash_secret_path();
    let secret = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(crate::webhooks::secrets::Sealer::derive(&secret))
}

/// The webhook delivery workers of this process, if enabled.
fn spawn_webhook_workers(state: &AppState) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if !state.config.webhooks.enabled {
        return Ok(None);
    }
    let dispatcher = crate::webhooks::Dispatcher::new(
        state.store.clone(),
        state.plugins.clone(),
        (state.config.webhooks.clone(), webhook_sealer(&state.config)?),
        state.metrics.clone(),
        state.replica.clone(),
    )?;
    Ok(Some(Arc::new(dispatcher).spawn(state.shutdown.clone())))
}

/// On the very first start (no key was ever created) creates an admin key; returns its token.
/// Of replicas starting together on an empty database, one creates it. After that,
/// `rdev keys create --admin` is the way back in.
pub async fn bootstrap_admin(state: &AppState) -> anyhow::Result<Option<String>> {
    if state.store.count_keys().await? > 0 {
        return Ok(None);
    }
    let new = NewKey {
        name: "bootstrap-admin".into(),
        scopes: vec!["admin".into()],
        ..NewKey::default()
    };
    Ok(state.auth.create_first(new).await?)
}

/// The gateway's URL as seen from a local workspace: the listening address, with an
/// unspecified one (`0.0.0.0`, `::`) read as loopback.
fn hook_base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

fn print_banner(addr: SocketAddr, token: Option<&str>) {
    println!("rdev listening on http://{addr}");
    if let Some(token) = token {
        println!("\nFirst start: created an admin API key. It is shown only once:\n\n  {token}\n");
        println!("Try it:\n");
        println!("  export RDEV_TOKEN={token}");
        println!("  curl -s -H \"Authorization: Bearer $RDEV_TOKEN\" http://{addr}/v1/projects\n");
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = ctrl_c => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// Runs the gateway until a signal; then stops accepting connections, lets running commands
/// finish within the grace period, interrupts the rest, and closes open streams.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    // Taken before the store is opened and held until the process ends: a second gateway on the
    // same SQLite file must not even run recovery.
    let _serving = crate::store::lock_for_serving(&database_url(&config)?)?;
    // Bound before the commands start, so that a `claude` run's hook knows the address.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let mut config = config;
    config.commands.hook_url.get_or_insert_with(|| hook_base_url(addr));
    let state = build(config).await?;
    let refresher = state.projects.spawn_refresher(DISCOVERY_INTERVAL);
    let sweeper = state.commands.spawn_queue_sweeper(QUEUE_SWEEP_INTERVAL);
    let peers = state.commands.spawn_peer_listener();
    let revocations = state.auth.spawn_revocation_listener();
    let heartbeat = state.replica.spawn_heartbeat();
    let peer_sweeper = state.commands.spawn_peer_sweeper();
    let debounce = Duration::from_millis(state.config.plugins_debounce_ms);
    crate::plugins::reload::spawn(state.plugins.clone(), debounce, state.shutdown.clone());
    let webhook_workers = spawn_webhook_workers(&state)?;
    let retention = crate::retention::Retention::new(
        state.store.clone(),
        state.projects.clone(),
        state.config.retention.clone(),
    )
    .spawn(state.shutdown.clone());
    let token = bootstrap_admin(&state).await?;
    print_banner(addr, token.as_deref());
    tracing::info!(%addr, "listening");
    let stop_accepting = CancellationToken::new();
    let app = crate::http::router(state.clone());
    let server = crate::http::server::serve(listener, app, state.config.http.clone(), stop_accepting.clone());
    let mut server = tokio::spawn(server);
    tokio::select! {
        () = wait_for_signal() => {}
        result = &mut server => return result.context("server task failed"),
    }
    tracing::info!("shutting down: no new connections; waiting for running commands");
    stop_accepting.cancel();
    state.commands.shutdown(grace).await;
    heartbeat.abort();
    state.replica.leave().await;
    state.shutdown.cancel();
    for task in [refresher, sweeper, peers, peer_sweeper, revocations, retention]
        .into_iter()
        .chain(webhook_workers)
    {
        task.abort();
    }
    if tokio::time::timeout(Duration::from_secs(5), server).await.is_err() {
        tracing::warn!("connections still open after shutdown; closing them");
    }
    tracing::info!("stopped");
    Ok(())
}
