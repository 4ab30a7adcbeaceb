//! An in-process fake Kubernetes API server for tests.
//!
//! It speaks the real wire protocol (JSON objects from k8s-openapi, chunked watch streams, exec over a
//! `v5.channel.k8s.io`/`v4.channel.k8s.io` websocket) so that the kube-rs client is exercised unchanged.
//! Exec runs real local processes, each in its own process group, which outlive a dropped websocket just
//! like processes in a real container do.

mod exec;
mod http;
mod load;
mod objects;
mod procs;
mod proxy;
mod selectors;
mod session;
mod shared;
mod status;
mod store;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;

pub use load::CpuHog;
pub use objects::PodSpec;
use objects::{Content, Kind};
pub use proxy::BlackHoleProxy;
use shared::Shared;

/// Server settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Exec subprotocols the server accepts, in its order of preference.
    pub exec_protocols: Vec<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            exec_protocols: vec!["v5.channel.k8s.io", "v4.channel.k8s.io"],
        }
    }
}

/// One exec the server started (or failed to start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRecord {
    /// Name of the pod exec-ed into.
    pub pod: String,
    /// The container, as requested or defaulted to the pod's only container.
    pub container: String,
    /// The `command` query parameters, in order.
    pub command: Vec<String>,
    /// The negotiated subprotocol, e.g. `v5.channel.k8s.io`.
    pub protocol: String,
    /// Pid of the spawned process, which also leads its process group; 0 if it could not be spawned.
    pub pid: u32,
}

/// A running fake API server. Clones share it; dropping the last one stops it and SIGKILLs every
/// process its execs started.
#[derive(Clone)]
pub struct FakeApiServer {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        self.shared.processes().kill_all();
    }
}

impl FakeApiServer {
    /// Starts a server with default options on 127.0.0.1 and an ephemeral port.
    pub async fn start() -> FakeApiServer {
        Self::start_with(Options::default()).await
    }

    /// Starts a server on 127.0.0.1 and an ephemeral port; it runs on the current tokio runtime.
    pub async fn start_with(options: Options) -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let shared = Arc::new(Shared::new(options));
        tokio::spawn(http::serve(listener, shared.clone()));
        FakeApiServer {
            inner: Arc::new(Handle { shared, addr }),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// A kubeconfig whose current context `fake` points at this server (plain HTTP, token
    /// `fake-token`) with `namespace` as the default namespace.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        self.kubeconfig_at(namespace, &self.url())
    }

    /// Like [`kubeconfig`](Self::kubeconfig), with the server reached at `url` (a proxy in front
    /// of this server, say).
    pub fn kubeconfig_at(&self, namespace: &str, url: &str) -> String {
        // JSON strings are valid YAML scalars, so the namespace needs no YAML escaping of its own.
        let namespace = serde_json::Value::from(namespace);
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: fake\n  cluster:\n    server: {url}\n\
             users:\n- name: fake\n  user:\n    token: fake-token\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\n\
             current-context: fake\n",
        )
    }

    /// Creates a pod (an ADDED event), or replaces it if it exists (MODIFIED).
    pub fn create_pod(&self, namespace: &str, pod: PodSpec) {
        let name = pod.name.clone();
        self.shared().store.put(namespace, &name, Content::Pod(pod));
    }

    /// Replaces a pod's labels, annotations and containers (a MODIFIED event; ADDED if it was missing).
    pub fn update_pod(&self, namespace: &str, pod: PodSpec) {
        self.create_pod(namespace, pod);
    }

    /// Deletes a pod (a DELETED event), then acts like a kubelet killing its containers: every exec
    /// websocket into the pod is cut without a status frame and every process group exec started
    /// in it is SIGKILLed.
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        self.shared().store.remove(Kind::Pod, namespace, name);
        self.shared().processes().kill_pod(namespace, name);
    }

    /// Creates (ADDED) or replaces (MODIFIED) a ConfigMap.
    pub fn set_config_map(&self, namespace: &str, name: &str, data: BTreeMap<String, String>) {
        self.shared().store.put(namespace, name, Content::ConfigMap(data));
    }

    /// Deletes a ConfigMap (a DELETED event) if it exists.
    pub fn delete_config_map(&self, namespace: &str, name: &str) {
        self.shared().store.remove(Kind::ConfigMap, namespace, name);
    }

    /// Simulates an API server outage: while down, every request is answered 503 and open watches end.
    /// Exec sessions already running are not affected.
    pub fn set_down(&self, down: bool) {
        self.shared().down.send_replace(down);
    }

    /// Every exec started so far, in order.
    pub fn execs(&self) -> Vec<ExecRecord> {
        self.shared().execs().clone()
    }

    /// Pids of live processes (zombies excluded) in the process groups exec created in pods with this
    /// name, in any namespace, children and grandchildren included.
    pub fn running_processes(&self, pod: &str) -> Vec<u32> {
        let groups = self.shared().processes().groups_named(pod);
        procs::live_members(&groups)
    }

    /// HTTP requests received, refused ones included.
    pub fn request_count(&self) -> u64 {
        self.shared().requests.load(Ordering::Relaxed)
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }
}
