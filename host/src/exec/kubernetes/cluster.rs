//! The connection to the Kubernetes API server: the client, the circuit breaker every call goes
//! through, and the watched pods and projects ConfigMap (kube-runtime reflectors) that discovery
//! reads and running commands consult to notice their pod vanishing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::KubernetesConfig;
use super::breaker::{Breaker, BreakerView};
use crate::exec::ExecError;
use crate::telemetry::Metrics;

/// How long startup waits for the first pod and ConfigMap lists.
const INITIAL_SYNC: Duration = Duration::from_secs(5);

/// A shared handle on the cluster.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    namespace: String,
    settings: KubernetesConfig,
    breaker: Breaker,
    pods: Store<Pod>,
    config_maps: Store<ConfigMap>,
    changes: watch::Sender<u64>,
    stop: CancellationToken,
}

/// A failed API call.
enum Unreachable {
    /// The client or the server said no.
    Failed(kube::Error),
    /// No answer within the deadline.
    TimedOut(Duration),
}

impl Unreachable {
    /// What the call says about the API server's health: a refusal is an answer, so healthy.
    fn health(&self) -> Result<(), String> {
        match self {
            Self::Failed(kube::Error::Api(status)) if status.code < 500 && status.code != 429 => Ok(()),
            Self::Failed(e) => Err(e.to_string()),
            Self::TimedOut(limit) => Err(timed_out(*limit)),
        }
    }

    /// The error a caller sees: unavailable unless the server answered and refused.
    fn into_exec_error(self) -> ExecError {
        let unavailable = self.health().is_err();
        let message = match self {
            Self::Failed(kube::Error::Api(status)) if !status.message.is_empty() => status.message,
            Self::Failed(other) => format!("Kubernetes API call failed: {other}"),
            Self::TimedOut(limit) => timed_out(limit),
        };
        match unavailable {
            true => ExecError::Unavailable(message),
            false => ExecError::Remote(message),
        }
    }
}

/// Runs a call within `limit`.
async fn timed<T>(limit: Duration, call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, Unreachable> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Unreachable::Failed(e)),
        Err(_) => Err(Unreachable::TimedOut(limit)),
    }
}

/// The breaker's view of a call's outcome.
fn health<T>(outcome: &Result<T, Unreachable>) -> Result<(), String> {
    outcome.as_ref().map_or_else(Unreachable::health, |_| Ok(()))
}

fn timed_out(limit: Duration) -> String {
    match limit.subsec_millis() {
        0 => format!("Kubernetes API call timed out after {}s", limit.as_secs()),
        _ => format!("Kubernetes API call timed out after {}ms", limit.as_millis()),
    }
}

async fn client_config(settings: &KubernetesConfig) -> anyhow::Result<kube::Config> {
    let options = KubeConfigOptions {
        context: settings.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&settings.kubeconfig, &settings.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).with_context(|| format!("cannot read {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options).await?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options).await?,
        (None, None) => kube::Config::infer().await?,
    };
    Ok(config)
}

impl Cluster {
    /// Connects (lazily: the API server may be down at startup) and starts the watches, which
    /// run until `stop` is cancelled.
    pub async fn connect(
        settings: &KubernetesConfig,
        metrics: &Metrics,
        stop: CancellationToken,
    ) -> anyhow::Result<Self> {
        let mut config = client_config(settings)
            .await
            .context("cannot load the Kubernetes configuration")?;
        config.connect_timeout = Some(Duration::from_secs(settings.api_timeout_secs));
        // The client would retry 503s for many seconds inside one call, hiding an outage from the
        // breaker; watches have their own backoff and commands must fail fast instead.
        config.default_retry = false;
        let namespace = settings
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config).context("cannot build the Kubernetes client")?;
        let breaker = Breaker::new(
            settings.breaker_failures,
            Duration::from_secs(settings.breaker_open_secs),
            metrics.kube_breaker_state.clone(),
            metrics.kube_api_calls.clone(),
        );
        let (pods, pod_writer) = reflector::store();
        let (config_maps, config_map_writer) = reflector::store();
        let cluster = Self {
            inner: Arc::new(Inner {
                client: client.clone(),
                namespace: namespace.clone(),
                settings: settings.clone(),
                breaker,
                pods,
                config_maps,
                changes: watch::Sender::new(0),
                stop: stop.clone(),
            }),
        };
        // Every pod of the namespace, not only labelled ones: ConfigMap entries may name any pod,
        // and a running command must notice its pod vanish either way.
        let pods_api = Api::namespaced(client.clone(), &namespace);
        cluster.spawn_watch(pods_api, watcher::Config::default(), pod_writer, stop.clone());
        let config_map_watch = watcher::Config::default().fields(&format!("metadata.name={}", settings.config_map));
        cluster.spawn_watch(
            Api::namespaced(client, &namespace),
            config_map_watch,
            config_map_writer,
            stop,
        );
        Ok(cluster)
    }

    /// Mirrors one kind of object into a store, counting its errors and successes on the
    /// breaker, and announcing every change.
    fn spawn_watch<K>(
        &self,
        api: Api<K>,
        config: watcher::Config,
        writer: reflector::store::Writer<K>,
        stop: CancellationToken,
    ) where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let cluster = self.clone();
        let events = watcher(api, config).backoff(RetryBackoff::default()).reflect(writer);
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    event = events.next() => event,
                };
                match event {
                    None => return,
                    Some(Ok(watcher::Event::Init)) => {}
                    Some(Ok(_)) => {
                        cluster.inner.breaker.reachable();
                        cluster.inner.changes.send_modify(|n| *n += 1);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "Kubernetes watch failed; retrying");
                        cluster.inner.breaker.record(Err(e.to_string()));
                    }
                }
            }
        });
    }

    /// Waits (a few seconds at most) for the first lists, so that startup knows the projects.
    pub async fn wait_synced(&self) {
        let synced = async {
            let _ = self.inner.pods.wait_until_ready().await;
            let _ = self.inner.config_maps.wait_until_ready().await;
        };
        if tokio::time::timeout(INITIAL_SYNC, synced).await.is_err() {
            tracing::warn!("the Kubernetes API did not answer within {INITIAL_SYNC:?}; projects appear once it does");
        }
    }

    /// Runs one API call through the breaker, within the API timeout. When the breaker is
    /// half-open, a cheap probe with the probe deadline goes first, so that a call does not
    /// wait the whole API timeout to learn the server is still unreachable.
    pub async fn call<T>(&self, call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, ExecError> {
        let breaker = &self.inner.breaker;
        let permit = breaker.admit().map_err(ExecError::Unavailable)?;
        if permit.is_probe() {
            let version = timed(self.probe_timeout(), self.inner.client.apiserver_version());
            let reachable = health(&version.await);
            breaker.finish(permit, reachable.clone());
            reachable.map_err(ExecError::Unavailable)?;
            return self.record(timed(self.api_timeout(), call).await);
        }
        let outcome = timed(self.api_timeout(), call).await;
        breaker.finish(permit, health(&outcome));
        outcome.map_err(Unreachable::into_exec_error)
    }

    /// Asks the API server for its version through the breaker, within the probe deadline:
    /// what `/ready` checks.
    pub async fn probe(&self) -> Result<(), ExecError> {
        let breaker = &self.inner.breaker;
        let permit = breaker.admit().map_err(ExecError::Unavailable)?;
        let outcome = timed(self.probe_timeout(), self.inner.client.apiserver_version()).await;
        breaker.finish(permit, health(&outcome));
        outcome.map(drop).map_err(Unreachable::into_exec_error)
    }

    /// Records a call made outside a permit.
    fn record<T>(&self, outcome: Result<T, Unreachable>) -> Result<T, ExecError> {
        self.inner.breaker.record(health(&outcome));
        outcome.map_err(Unreachable::into_exec_error)
    }

    fn api_timeout(&self) -> Duration {
        Duration::from_secs(self.inner.settings.api_timeout_secs)
    }

    fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.settings.probe_timeout_ms)
    }

    /// How long an exec connection may stay silent before it is given up as lost.
    pub fn liveness(&self) -> Duration {
        Duration::from_secs(self.inner.settings.exec_liveness_secs)
    }

    /// Records on the breaker that a connection to the API server went silent.
    pub fn connection_lost(&self, why: String) {
        tracing::warn!(error = %why, "lost a connection to the Kubernetes API server");
        self.inner.breaker.record(Err(why));
    }

    /// Cancelled when the gateway stops: background work (kill retries) ends with it.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    /// The API for pods in the workspace namespace.
    pub fn pods_api(&self) -> Api<Pod> {
        Api::namespaced(self.inner.client.clone(), &self.inner.namespace)
    }

    /// The client (for probes and benchmarks).
    pub fn client(&self) -> &kube::Client {
        &self.inner.client
    }

    /// The watched project pods.
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        self.inner.pods.state()
    }

    /// A watched pod by name.
    pub fn pod(&self, name: &str) -> Option<Arc<Pod>> {
        let key = reflector::ObjectRef::new(name).within(&self.inner.namespace);
        self.inner.pods.get(&key)
    }

    /// The projects ConfigMap, if it exists.
    pub fn projects_config_map(&self) -> Option<Arc<ConfigMap>> {
        self.inner.config_maps.state().into_iter().next()
    }

    /// Changes whenever a watched object changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// How pods say they are projects, for the inventory.
    pub fn labelling(&self) -> crate::projects::kubernetes::Labelling {
        let settings = &self.inner.settings;
        crate::projects::kubernetes::Labelling {
            label_prefix: settings.label_prefix.clone(),
            default_workspace: settings.default_workspace.clone(),
        }
    }

    /// The backend settings.
    pub fn settings(&self) -> &KubernetesConfig {
        &self.inner.settings
    }

    /// The workspace namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Whether calls are admitted now.
    pub fn available(&self) -> Result<(), String> {
        self.inner.breaker.check()
    }

    /// The breaker, for `/ready`.
    pub fn breaker(&self) -> BreakerView {
        self.inner.breaker.view()
    }
}

/// Watch retries: quick at first, never slower than every 5 s, so a recovered API server is
/// noticed soon (client-go's default waits up to 30 s).
struct RetryBackoff {
    next: Duration,
}

const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);

impl Default for RetryBackoff {
    fn default() -> Self {
        Self { next: FIRST_RETRY }
    }
}

impl Iterator for RetryBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = (current * 2).min(MAX_RETRY);
        Some(current)
    }
}

impl Backoff for RetryBackoff {
    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

impl crate::projects::kubernetes::WorkspaceWatch for Cluster {
    fn pods(&self) -> Vec<Arc<Pod>> {
        Cluster::pods(self)
    }

    fn projects_config_map(&self) -> Option<Arc<ConfigMap>> {
        Cluster::projects_config_map(self)
    }

    fn changes(&self) -> watch::Receiver<u64> {
        Cluster::changes(self)
    }
}
