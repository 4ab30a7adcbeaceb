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

use super::breaker::{Breaker, BreakerView};
use crate::config::KubernetesConfig;
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
}

/// Why an API call failed, and whether it says anything about the API server's health.
fn classify(error: &kube::Error) -> Result<(), String> {
    match error {
        // The server answered: it is up, whatever it thinks of the request.
        kube::Error::Api(status) if status.code < 500 && status.code != 429 => Ok(()),
        other => Err(other.to_string()),
    }
}

/// The message a client sees for a failed call.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => format!("Kubernetes API call failed: {other}"),
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

    /// Runs one API call through the breaker, within the API timeout.
    pub async fn call<T>(&self, call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, ExecError> {
        let breaker = &self.inner.breaker;
        let permit = breaker.admit().map_err(ExecError::Unavailable)?;
        let limit = Duration::from_secs(self.inner.settings.api_timeout_secs);
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => {
                breaker.finish(permit, Ok(()));
                Ok(value)
            }
            Ok(Err(e)) => {
                let health = classify(&e);
                let unavailable = health.is_err();
                breaker.finish(permit, health);
                Err(match unavailable {
                    true => ExecError::Unavailable(describe(&e)),
                    false => ExecError::Remote(describe(&e)),
                })
            }
            Err(_) => {
                let message = format!("Kubernetes API call timed out after {}s", limit.as_secs());
                breaker.finish(permit, Err(message.clone()));
                Err(ExecError::Unavailable(message))
            }
        }
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
