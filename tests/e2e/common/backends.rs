//! A gateway on either execution backend: `local` (workspaces are directories under the
//! gateway's root) or `kubernetes` (workspaces are pods of the in-process fake API server, whose
//! exec runs real local processes in the pod's workspace directory).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use fake_apiserver::{BlackHoleProxy, FakeApiServer, Options, PodSpec};
use reqwest::StatusCode;

use super::{Db, Gateway, wait_until};

/// The namespace of the fake cluster's workspace pods.
pub const NAMESPACE: &str = "workspaces";
/// The default label prefix.
pub const PREFIX: &str = "rdev.orchard9.ai";

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    Kubernetes,
}

/// Generates one test per backend from an `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::backends::Backend::Local).await })*
        }
        mod kubernetes {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::backends::Backend::Kubernetes).await })*
        }
    };
}

/// A gateway and, for `kubernetes`, the fake cluster it talks to.
pub struct Site {
    pub gw: Gateway,
    pub cluster: Option<FakeApiServer>,
    pods: tempfile::TempDir,
}

/// The gateway settings for a fake cluster: quick breaker and timeouts so outages show fast.
pub fn kubernetes_config(cluster: &FakeApiServer, dir: &std::path::Path) -> String {
    kubernetes_config_at(cluster, dir, &cluster.url(), 5)
}

/// Like [`kubernetes_config`], with the API server reached at `url` (a proxy in front of it).
fn kubernetes_config_at(cluster: &FakeApiServer, dir: &std::path::Path, url: &str, api_timeout_secs: u64) -> String {
    let kubeconfig = dir.join("kubeconfig.yaml");
    std::fs::write(&kubeconfig, cluster.kubeconfig_at(NAMESPACE, url)).unwrap();
    format!(
        "backend.kind = \"kubernetes\"\n[backend.kubernetes]\nkubeconfig = {kubeconfig:?}\n\
         namespace = \"{NAMESPACE}\"\nbreaker_failures = 3\nbreaker_open_secs = 1\napi_timeout_secs = {api_timeout_secs}\n"
    )
}

impl Site {
    /// A gateway (SQLite, the discovery plugin only) on `backend`; `extra_config` holds
    /// top-level keys.
    pub async fn start(backend: Backend, extra_config: &str) -> Site {
        Self::start_with(backend, extra_config, Options::default()).await
    }

    /// Like [`start`](Self::start), with a fake API server configured by `options`.
    pub async fn start_with(backend: Backend, extra_config: &str, options: Options) -> Site {
        let pods = tempfile::tempdir().unwrap();
        let (cluster, config) = match backend {
            Backend::Local => (None, extra_config.to_owned()),
            Backend::Kubernetes => {
                let cluster = FakeApiServer::start_with(options).await;
                let config = format!("{extra_config}\n{}", kubernetes_config(&cluster, pods.path()));
                (Some(cluster), config)
            }
        };
        // Both backends discover projects with the default discovery plugin (the only one
        // loaded): pods need its label conventions.
        let discovery = super::plugins::default_plugin("label_discovery");
        let config = config + &super::plugins::entry("label-discovery", "project-discovery", &discovery, "");
        let gw = Gateway::start_with_plugins(Db::Sqlite, &config).await;
        Site { gw, cluster, pods }
    }

    /// A kubernetes site whose gateway reaches the fake API server only through a proxy the
    /// test can partition, with a long API timeout (20 s) so that what a shorter bound ends is
    /// plain; `kubernetes_keys` are added to `[backend.kubernetes]`.
    pub async fn behind_proxy(kubernetes_keys: &str) -> (Site, BlackHoleProxy) {
        let pods = tempfile::tempdir().unwrap();
        let cluster = FakeApiServer::start().await;
        let proxy = BlackHoleProxy::start(cluster.addr()).await;
        let config = kubernetes_config_at(&cluster, pods.path(), &proxy.url(), 20) + kubernetes_keys;
        let discovery = super::plugins::default_plugin("label_discovery");
        let config = config + &super::plugins::entry("label-discovery", "project-discovery", &discovery, "");
        let gw = Gateway::start_with_plugins(Db::Sqlite, &config).await;
        let site = Site {
            gw,
            cluster: Some(cluster),
            pods,
        };
        (site, proxy)
    }

    /// Where pod workspaces live on this machine.
    pub fn pod_root(&self) -> &std::path::Path {
        self.pods.path()
    }

    /// The fake cluster (kubernetes only).
    pub fn cluster(&self) -> &FakeApiServer {
        self.cluster.as_ref().expect("a kubernetes site")
    }

    /// Creates a project whose workspace is a git repository with one commit, and waits until
    /// the gateway lists it. Returns the workspace directory.
    pub async fn project(&self, name: &str) -> PathBuf {
        let workspace = match &self.cluster {
            None => self.gw.project(name),
            Some(cluster) => {
                let dir = self.pods.path().join(name);
                std::fs::create_dir_all(&dir).unwrap();
                cluster.create_pod(NAMESPACE, workspace_pod(&format!("{name}-0"), name, &dir));
                dir
            }
        };
        init_repository(&workspace);
        self.gw.wait_for_project(name).await;
        workspace
    }

    /// Whether a command's processes are all gone: locally, and for pods also as the fake
    /// API server sees them.
    pub async fn wait_processes_gone(&self, project: &str, pid: i32) {
        wait_until(Duration::from_secs(10), || async { !super::process_alive(pid) }).await;
        if let Some(cluster) = &self.cluster {
            let pod = format!("{project}-0");
            wait_until(Duration::from_secs(10), || async {
                cluster.running_processes(&pod).is_empty()
            })
            .await;
        }
    }
}

/// A running pod labelled as the project `name`, with its workspace at `dir`.
pub fn workspace_pod(pod: &str, name: &str, dir: &std::path::Path) -> PodSpec {
    let labels = BTreeMap::from([
        (format!("{PREFIX}/project"), "true".to_owned()),
        (format!("{PREFIX}/name"), name.to_owned()),
    ]);
    let annotations = BTreeMap::from([
        (format!("{PREFIX}/workspace"), dir.to_string_lossy().into_owned()),
        (format!("{PREFIX}/description"), format!("{name} in a pod")),
    ]);
    PodSpec {
        name: pod.to_owned(),
        labels,
        annotations,
        containers: vec!["main".to_owned()],
    }
}

fn init_repository(dir: &std::path::Path) {
    std::fs::write(dir.join("README.md"), "hello\n").unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "README.md"]);
    git(&["commit", "-q", "-m", "Initial commit"]);
}

/// Waits until `path` answers `status`.
pub async fn wait_for_status(gw: &Gateway, path: &str, status: StatusCode) {
    wait_until(Duration::from_secs(10), || async { gw.get(path).await.0 == status }).await;
}
