//! Kubernetes project source: running pods labelled `<prefix>/project: "true"` and the entries
//! of the projects ConfigMap, read from the cluster's watches (so changes arrive without
//! polling). ConfigMap entries come first in the inventory: discovery keeps the first project of
//! a name, so an entry overrides what a pod's labels say.

use std::collections::BTreeMap;

use async_trait::async_trait;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde::Deserialize;
use tokio::sync::watch;

use super::{InventoryItem, Placement, ProjectSource};

/// One entry of the projects ConfigMap (the key is the project name), written as YAML.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The pod that serves the project.
    pod: String,
    /// Its container; default: the pod's first.
    container: Option<String>,
    /// Workspace path in the container; default: `default_workspace`.
    workspace: Option<String>,
    /// Description.
    description: Option<String>,
}

/// The watched pods and projects ConfigMap of the workspace namespace (the Kubernetes
/// backend's connection provides them).
pub trait WorkspaceWatch: Send + Sync {
    /// The pods, as last seen.
    fn pods(&self) -> Vec<Arc<Pod>>;
    /// The projects ConfigMap, if it exists.
    fn projects_config_map(&self) -> Option<Arc<ConfigMap>>;
    /// Changes whenever a watched object changes.
    fn changes(&self) -> watch::Receiver<u64>;
}

/// How pods say they are projects.
#[derive(Debug, Clone)]
pub struct Labelling {
    /// Prefix of the project labels and annotations (`<prefix>/project: "true"`, …).
    pub label_prefix: String,
    /// Workspace path inside a pod that does not name one.
    pub default_workspace: String,
}

/// The inventory of a cluster namespace.
#[derive(Clone)]
pub struct ClusterInventory {
    cluster: Arc<dyn WorkspaceWatch>,
    labelling: Labelling,
}

impl ClusterInventory {
    /// A source reading the watches of a cluster connection.
    pub fn new(cluster: Arc<dyn WorkspaceWatch>, labelling: Labelling) -> Self {
        Self { cluster, labelling }
    }

    fn config_map_items(&self, running: &BTreeMap<String, &Pod>) -> Vec<InventoryItem> {
        let Some(config_map) = self.cluster.projects_config_map() else {
            return Vec::new();
        };
        let default_workspace = &self.labelling.default_workspace;
        let data = config_map.data.clone().unwrap_or_default();
        data.into_iter()
            .filter_map(|(name, text)| match serde_saphyr::from_str::<Entry>(&text) {
                Ok(entry) => Some((name, entry)),
                Err(e) => {
                    tracing::warn!(entry = %name, error = %e, "ignoring an invalid projects ConfigMap entry");
                    None
                }
            })
            .filter(|(_, entry)| running.contains_key(&entry.pod))
            .map(|(name, entry)| {
                let workspace = entry.workspace.clone().unwrap_or_else(|| default_workspace.clone());
                let mut labels = BTreeMap::from([("pod".to_owned(), entry.pod.clone())]);
                labels.insert("workspace".into(), workspace.clone());
                labels.extend(entry.description.map(|d| ("description".to_owned(), d)));
                labels.extend(entry.container.clone().map(|c| ("container".to_owned(), c)));
                InventoryItem {
                    source: "config-map".into(),
                    name,
                    workspace: workspace.into(),
                    labels,
                    placement: Placement {
                        pod: Some(entry.pod),
                        container: entry.container,
                    },
                }
            })
            .collect()
    }

    fn pod_item(&self, pod: &Pod) -> Option<InventoryItem> {
        let settings = &self.labelling;
        let meta = &pod.metadata;
        let mut labels = meta.labels.clone().unwrap_or_default();
        let key = |name: &str| format!("{}/{name}", settings.label_prefix);
        if labels.get(&key("project")).map(String::as_str) != Some("true") {
            return None;
        }
        labels.extend(meta.annotations.clone().unwrap_or_default());
        let workspace = labels
            .get(&key("workspace"))
            .cloned()
            .unwrap_or_else(|| settings.default_workspace.clone());
        Some(InventoryItem {
            source: "pod".into(),
            name: meta.name.clone()?,
            workspace: workspace.into(),
            placement: Placement {
                pod: meta.name.clone(),
                container: labels.get(&key("container")).cloned(),
            },
            labels,
        })
    }
}

/// Pods that can run commands now: running, and not on their way out.
fn is_running(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    phase == Some("Running") && pod.metadata.deletion_timestamp.is_none()
}

#[async_trait]
impl ProjectSource for ClusterInventory {
    async fn inventory(&self) -> std::io::Result<Vec<InventoryItem>> {
        let pods = self.cluster.pods();
        let running: BTreeMap<String, &Pod> = pods
            .iter()
            .filter(|p| is_running(p))
            .filter_map(|p| Some((p.metadata.name.clone()?, p.as_ref())))
            .collect();
        let mut items = self.config_map_items(&running);
        items.extend(running.values().filter_map(|pod| self.pod_item(pod)));
        Ok(items)
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.cluster.changes())
    }
}
