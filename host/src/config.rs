//! Gateway configuration: a strictly parsed TOML file, overridden by `RDEV_*` environment
//! variables and command-line flags (see `cli`), checked once by [`Config::validate`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

pub use crate::commands::CommandsConfig;
pub use crate::exec::kubernetes::KubernetesConfig;
pub use crate::limits::LimitsConfig;
use crate::plugins::limits::RuntimeLimits;
use crate::plugins::manifest::{self, PluginManifest};
use crate::plugins::trust::{Trust, TrustConfig};
pub use crate::projects::{ProjectConfig, ProjectOverride, ProjectSettings};
use crate::replicas::ReplicasConfig;
use crate::retention::RetentionConfig;
use crate::store::DatabaseConfig;
pub use crate::telemetry::LogFormat;
use crate::webhooks::WebhooksConfig;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML for this schema (unknown keys are named here).
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, the key-hashing secret and caches.
    pub data_dir: PathBuf,
    /// Database URL; empty means the embedded SQLite file in `data_dir`.
    /// `postgres://…` selects PostgreSQL.
    pub database_url: Option<String>,
    /// Database timeouts and upkeep.
    pub database: DatabaseConfig,
    /// Heartbeat leases of the replicas sharing the database.
    pub replicas: ReplicasConfig,
    /// Directory watched for plugin components (relative plugin files are read from here).
    pub plugins_dir: PathBuf,
    /// The plugins (`[[plugins]]` entries); absent means the default plugins. Changes to this
    /// list in the config file take effect without a restart.
    pub plugins: Option<Vec<PluginManifest>>,
    /// Whether the default plugins load too: by default only when no `[[plugins]]` entry is
    /// given. With `true`, the entries are added to the defaults, and an entry named like a
    /// default replaces it (to configure it).
    pub default_plugins: Option<bool>,
    /// Milliseconds the plugin directory and config file must be quiet before a reload.
    pub plugins_debounce_ms: u64,
    /// Bounds of the plugin runtime: call slots, waiting for one, plugin file size and load time.
    pub plugin_runtime: RuntimeLimits,
    /// Keys plugin components must be signed by (none: signatures are not required).
    pub plugin_trust: TrustConfig,
    /// The file this configuration was read from (not a config key): watched for plugin changes.
    #[serde(skip)]
    pub file: Option<PathBuf>,
    /// Seconds running commands may take to finish after SIGTERM/SIGINT before they are interrupted.
    pub shutdown_grace_secs: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Log format: `json` (default) or `text`.
    pub log_format: LogFormat,
    /// Seconds between heartbeat comments on idle output streams.
    pub sse_heartbeat_secs: u64,
    /// Seconds between an output stream's re-checks of its key and, while other replicas are
    /// live, re-reads of the store in case a notice from the replica running the command was lost.
    pub sse_recheck_secs: u64,
    /// HTTP connection handling: read timeouts and the connection cap.
    pub http: HttpConfig,
    /// Authentication settings.
    pub auth: AuthConfig,
    /// Rate limits per key tier, bounded queues and streams, failed authentications.
    pub limits: LimitsConfig,
    /// Execution backend settings.
    pub backend: BackendConfig,
    /// How commands are turned into processes.
    pub commands: CommandsConfig,
    /// Settings applied to every project unless overridden in `projects`.
    pub project_defaults: ProjectSettings,
    /// Per-project overrides, keyed by project name.
    pub projects: BTreeMap<String, ProjectOverride>,
    /// Webhook delivery.
    pub webhooks: WebhooksConfig,
    /// What is kept, and for how long.
    pub retention: RetentionConfig,
}

/// HTTP connection handling: read timeouts and the connection cap, which keep slow or idle
/// clients from holding the gateway's sockets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Seconds a client may take to send a request's headers, counted from their first byte;
    /// then it is answered 408 and the connection closed.
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a request's body, counted from the end of its headers.
    pub body_timeout_secs: u64,
    /// Seconds a connection may stay open without a request (a new connection, or between
    /// keep-alive requests) before it is closed.
    pub idle_timeout_secs: u64,
    /// Milliseconds a response write may wait for the client to read (no progress at all)
    /// before the connection is closed: a stream reader that stopped reading is cut, and
    /// resumes with `Last-Event-ID`. Producers never wait for readers either way.
    pub dispatch_timeout_ms: u64,
    /// Connections served normally. At the cap an idle connection is closed to make room;
    /// without one, new connections are served in shed mode. Kept below the descriptor limit.
    pub max_connections: usize,
    /// Connections beyond `max_connections` served in shed mode: only `/health` and `/ready`
    /// are answered, everything else 503. Beyond these, new connections are closed at once.
    pub overflow_connections: usize,
    /// Origins (`https://console.example.com`) whose browser pages may call the API. Empty (the
    /// default): no cross-origin request is allowed.
    pub cors_allowed_origins: Vec<String>,
    /// The gateway is served over TLS (by a proxy in front of it): responses carry
    /// `Strict-Transport-Security`.
    pub hsts: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            idle_timeout_secs: 60,
            dispatch_timeout_ms: 5000,
            max_connections: 4096,
            overflow_connections: 64,
            cors_allowed_origins: Vec::new(),
            hsts: false,
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), String> {
        if [self.header_timeout_secs, self.body_timeout_secs, self.idle_timeout_secs].contains(&0) {
            return Err("http: header_timeout_secs, body_timeout_secs and idle_timeout_secs must be at least 1".into());
        }
        if self.dispatch_timeout_ms < 100 {
            return Err("http: dispatch_timeout_ms must be at least 100".into());
        }
        if self.max_connections == 0 || self.overflow_connections == 0 {
            return Err("http: max_connections and overflow_connections must be at least 1".into());
        }
        for origin in &self.cors_allowed_origins {
            crate::http::hygiene::parse_origin(origin).map_err(|e| format!("http.cors_allowed_origins: {e}"))?;
        }
        Ok(())
    }
}

/// Authentication settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Proxies whose `X-Forwarded-For` header is believed; the socket address is used otherwise.
    pub trusted_proxies: Vec<IpNet>,
    /// File holding the 32-byte secret that keys are hashed with (created if missing). Replicas
    /// sharing a database must share this file. Default: `key-hash.secret` in `data_dir`.
    pub key_hash_secret_file: Option<PathBuf>,
    /// `GET /metrics` asks for a key with the `metrics:read` scope (or `admin`). Off by
    /// default: Prometheus usually scrapes from inside the cluster network.
    pub metrics_require_key: bool,
}

/// Execution backend settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// Backend kind: `local` (default) or `kubernetes`.
    pub kind: BackendKind,
    /// Root directory of local workspaces: each subdirectory is a project.
    pub workspaces: PathBuf,
    /// Settings of the `kubernetes` backend.
    pub kubernetes: KubernetesConfig,
}

/// Which execution backend runs commands.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Local directories and processes.
    Local,
    /// Pods of a Kubernetes cluster, through the pod exec API.
    Kubernetes,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".rdev"),
            database_url: None,
            database: DatabaseConfig::default(),
            replicas: ReplicasConfig::default(),
            plugins_dir: PathBuf::from(env!("RDEV_DEFAULT_PLUGINS_DIR")),
            plugins: None,
            default_plugins: None,
            plugins_debounce_ms: 200,
            plugin_runtime: RuntimeLimits::default(),
            plugin_trust: TrustConfig::default(),
            file: None,
            shutdown_grace_secs: 10,
            max_body_bytes: 1024 * 1024,
            log_format: LogFormat::Json,
            sse_heartbeat_secs: 10,
            sse_recheck_secs: 5,
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            webhooks: WebhooksConfig::default(),
            retention: RetentionConfig::default(),
            backend: BackendConfig::default(),
            commands: CommandsConfig::default(),
            project_defaults: ProjectSettings::default(),
            projects: BTreeMap::new(),
        }
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            kind: BackendKind::Local,
            workspaces: PathBuf::from("workspaces"),
            kubernetes: KubernetesConfig::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are an error that names them.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.file = Some(path.to_owned());
        Ok(config)
    }

    /// The file holding the key-hashing secret (`auth.key_hash_secret_file`, else in `data_dir`).
    pub fn key_hash_secret_path(&self) -> PathBuf {
        self.auth
            .key_hash_secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("key-hash.secret"))
    }

    /// The plugin manifests in effect: the configured ones, or the defaults (whose discovery
    /// then reads the Kubernetes backend's label prefix).
    pub fn plugin_manifests(&self) -> Vec<PluginManifest> {
        let listed = self.plugins.clone().unwrap_or_default();
        if !self.default_plugins.unwrap_or(self.plugins.is_none()) {
            return listed;
        }
        let mut defaults = manifest::defaults();
        let prefix = &self.backend.kubernetes.label_prefix;
        if *prefix != KubernetesConfig::default().label_prefix {
            for discovery in defaults
                .iter_mut()
                .filter(|m| m.world == manifest::World::ProjectDiscovery)
            {
                discovery.config = serde_json::json!({ "prefix": prefix });
            }
        }
        defaults.retain(|d| !listed.iter().any(|m| m.name == d.name));
        defaults.extend(listed);
        defaults
    }

    /// The project sections, for the project registry.
    pub fn project_config(&self) -> ProjectConfig {
        ProjectConfig {
            defaults: self.project_defaults.clone(),
            overrides: self.projects.clone(),
        }
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        manifest::check_all(&self.plugin_manifests()).map_err(ConfigError::Invalid)?;
        self.database.validate().map_err(ConfigError::Invalid)?;
        self.replicas.check().map_err(ConfigError::Invalid)?;
        if !(10..=10_000).contains(&self.plugins_debounce_ms) {
            return invalid("plugins_debounce_ms must be between 10 and 10000".into());
        }
        self.plugin_runtime.check().map_err(ConfigError::Invalid)?;
        Trust::from_config(&self.plugin_trust).map_err(ConfigError::Invalid)?;
        if self.backend.kind == BackendKind::Kubernetes {
            self.backend.kubernetes.validate().map_err(ConfigError::Invalid)?;
        }
        self.http.validate().map_err(ConfigError::Invalid)?;
        self.limits.validate().map_err(ConfigError::Invalid)?;
        self.webhooks.validate().map_err(ConfigError::Invalid)?;
        self.retention.validate().map_err(ConfigError::Invalid)?;
        if self.max_body_bytes < 1024 {
            return invalid("max_body_bytes must be at least 1024".into());
        }
        if !(1..=15).contains(&self.sse_heartbeat_secs) {
            return invalid("sse_heartbeat_secs must be between 1 and 15".into());
        }
        if !(1..=3600).contains(&self.sse_recheck_secs) {
            return invalid("sse_recheck_secs must be between 1 and 3600".into());
        }
        for kind in self.commands.programs.keys() {
            if kind == "shell" || !crate::names::is_valid_name(kind) {
                return invalid(format!("commands.programs: `{kind}` is not a usable command kind"));
            }
        }
        let known = |k: &String| k == "shell" || self.commands.programs.contains_key(k);
        let all_settings = std::iter::once(("project_defaults", &self.project_defaults.allowed_kinds)).chain(
            self.projects
                .iter()
                .filter_map(|(name, p)| p.allowed_kinds.as_ref().map(|k| (name.as_str(), k))),
        );
        for (owner, kinds) in all_settings {
            if let Some(unknown) = kinds.iter().find(|k| !known(k)) {
                return invalid(format!(
                    "{owner}: allowed kind `{unknown}` has no program in commands.programs"
                ));
            }
        }
        if self.commands.output_outage_secs == 0 || self.commands.output_outage_bytes < 64 * 1024 {
            return invalid(
                "commands.output_outage_secs must be at least 1 and output_outage_bytes at least 65536".into(),
            );
        }
        if self.project_defaults.max_concurrent_commands == 0
            || self.projects.values().any(|p| p.max_concurrent_commands == Some(0))
        {
            return invalid("max_concurrent_commands must be at least 1".into());
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:"))
        {
            return invalid("database_url must start with postgres://, postgresql:// or sqlite:".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named_in_the_error() {
        let err = toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
        let err = toml::from_str::<Config>("[backend]\nroot = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("root"), "{err}");
    }

    #[test]
    fn project_override_falls_back_to_defaults() {
        let cfg: Config = toml::from_str("[projects.demo]\nmax_concurrent_commands = 2\n").unwrap();
        cfg.validate().unwrap();
        let (_, s) = cfg.project_config().settings_of("demo");
        assert_eq!(s.max_concurrent_commands, 2);
        assert_eq!(s.default_timeout_secs, 600);
    }

    #[test]
    fn plugins_can_be_added_to_the_defaults_or_replace_them() {
        let entry = "[[plugins]]\nname = \"probe\"\nworld = \"command-sanitizer\"\nfile = \"probe.wasm\"\n";
        let names = |toml_text: &str| -> Vec<String> {
            let cfg: Config = toml::from_str(toml_text).unwrap();
            cfg.plugin_manifests().into_iter().map(|m| m.name).collect()
        };
        assert_eq!(names(entry), ["probe"], "entries replace the defaults");
        let both = names(&format!("default_plugins = true\n{entry}"));
        assert_eq!(both.len(), manifest::defaults().len() + 1, "{both:?}");
        assert!(both.contains(&"probe".to_owned()) && both.contains(&"shell-sanitizer".to_owned()));
        let configured = "default_plugins = true\n[[plugins]]\nname = \"shell-sanitizer\"\n\
            world = \"command-sanitizer\"\nfile = \"shell_sanitizer.wasm\"\norder = 5\n";
        let cfg: Config = toml::from_str(configured).unwrap();
        let manifests = cfg.plugin_manifests();
        assert_eq!(
            manifests.len(),
            manifest::defaults().len(),
            "a default is replaced by its namesake"
        );
        assert_eq!(manifests.iter().find(|m| m.name == "shell-sanitizer").unwrap().order, 5);
        assert!(names("default_plugins = false\n").is_empty());
    }

    #[test]
    fn default_discovery_follows_the_label_prefix() {
        let cfg: Config = toml::from_str("[backend.kubernetes]\nlabel_prefix = \"example.com\"\n").unwrap();
        let discovery = cfg
            .plugin_manifests()
            .into_iter()
            .find(|m| m.name == "label-discovery")
            .unwrap();
        assert_eq!(discovery.config, serde_json::json!({ "prefix": "example.com" }));
    }

    #[test]
    fn kubernetes_settings_are_checked() {
        let cfg: Config =
            toml::from_str("[backend]\nkind = \"kubernetes\"\n[backend.kubernetes]\ndefault_workspace = \"w\"\n")
                .unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("default_workspace"));
        for (key, bad) in [
            ("probe_timeout_ms", "0"),
            ("probe_timeout_ms", "60000"),
            ("exec_liveness_secs", "1"),
        ] {
            let text = format!("[backend]\nkind = \"kubernetes\"\n[backend.kubernetes]\n{key} = {bad}\n");
            let cfg: Config = toml::from_str(&text).unwrap();
            assert!(cfg.validate().unwrap_err().to_string().contains(key), "{key} = {bad}");
        }
    }

    #[test]
    fn rejects_kinds_without_a_program() {
        let cfg: Config = toml::from_str("[project_defaults]\nallowed_kinds = [\"make\"]\n").unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("make"));
    }
}
