//! Projects: the workspaces commands run in. A [`ProjectSource`] yields the raw inventory, the
//! discovery policy turns it into projects, and the [`ProjectRegistry`] serves the current list
//! with the settings from the configuration.

pub mod kubernetes;
mod local;
mod settings;

pub use kubernetes::ClusterInventory;
pub use local::LocalDirectories;
pub use settings::{ClaudePermissionMode, ProjectConfig, ProjectOverride, ProjectSettings};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::plugins::ProjectDiscovery;
pub use crate::plugins::{DiscoveredProject, InventoryItem, Placement};

/// A project the gateway serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// Name (the `{project}` in URLs).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Workspace location.
    pub workspace: PathBuf,
    /// Where its commands run.
    pub placement: Placement,
    /// Effective settings.
    pub settings: ProjectSettings,
}

/// Where the raw inventory comes from (local directories, pods, ConfigMaps…).
#[async_trait]
pub trait ProjectSource: Send + Sync {
    /// The current inventory.
    async fn inventory(&self) -> std::io::Result<Vec<InventoryItem>>;
    /// A receiver that changes whenever the inventory may have; `None` for sources that cannot
    /// tell, which the registry polls instead.
    fn changes(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

/// The inventory item a discovered project came from: one offering its workspace, preferably
/// one whose name or a label value is the project's name (discovery may rename; pods often
/// share a workspace path).
fn origin<'a>(found: &DiscoveredProject, items: &'a [InventoryItem]) -> Option<&'a InventoryItem> {
    let mut offering = items.iter().filter(|i| i.workspace == found.workspace).peekable();
    let first = offering.peek().copied();
    offering
        .find(|i| i.name == found.name || i.labels.values().any(|v| *v == found.name))
        .or(first)
}

type ProjectMap = BTreeMap<String, Arc<Project>>;

/// The current project list.
#[derive(Clone)]
pub struct ProjectRegistry {
    current: Arc<RwLock<Arc<ProjectMap>>>,
    source: Arc<dyn ProjectSource>,
    discovery: Arc<dyn ProjectDiscovery>,
    config: ProjectConfig,
}

impl std::fmt::Debug for ProjectRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectRegistry")
            .field("projects", &self.list().len())
            .finish()
    }
}

impl ProjectRegistry {
    /// An empty registry; call [`refresh`](Self::refresh) to fill it.
    pub fn new(source: Arc<dyn ProjectSource>, discovery: Arc<dyn ProjectDiscovery>, config: ProjectConfig) -> Self {
        Self {
            current: Arc::default(),
            source,
            discovery,
            config,
        }
    }

    /// A project by name.
    pub fn get(&self, name: &str) -> Option<Arc<Project>> {
        self.snapshot().get(name).cloned()
    }

    /// All projects, by name.
    pub fn list(&self) -> Vec<Arc<Project>> {
        self.snapshot().values().cloned().collect()
    }

    fn snapshot(&self) -> Arc<ProjectMap> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the inventory and runs discovery. On any failure the last good list stays.
    pub async fn refresh(&self) -> Result<(), String> {
        let inventory = self.source.inventory().await.map_err(|e| format!("inventory: {e}"))?;
        let discovered = self.discovery.discover(&inventory).await.map_err(|e| e.to_string())?;
        let mut map = ProjectMap::new();
        for found in discovered.into_iter().filter(|p| crate::names::is_valid_name(&p.name)) {
            let (description, settings) = self.config.settings_of(&found.name);
            let placement = origin(&found, &inventory)
                .map(|i| i.placement.clone())
                .unwrap_or_default();
            let project = Project {
                description: description.or(found.description),
                name: found.name.clone(),
                workspace: found.workspace,
                placement,
                settings,
            };
            map.insert(found.name, Arc::new(project));
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        Ok(())
    }

    /// Refreshes whenever the source reports a change, or every `every` for sources that
    /// cannot, until the returned task is aborted.
    pub fn spawn_refresher(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        let changes = self.source.changes();
        tokio::spawn(async move {
            match changes {
                Some(mut changes) => {
                    while changes.changed().await.is_ok() {
                        registry.refresh_logged().await;
                    }
                }
                None => {
                    let mut tick = tokio::time::interval(every);
                    loop {
                        tick.tick().await;
                        registry.refresh_logged().await;
                    }
                }
            }
        })
    }

    async fn refresh_logged(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "project discovery failed; keeping the last good list");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, workspace: &str, pod: &str, labels: &[(&str, &str)]) -> InventoryItem {
        InventoryItem {
            source: "pod".into(),
            name: name.into(),
            workspace: workspace.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            placement: Placement {
                pod: Some(pod.into()),
                container: None,
            },
        }
    }

    #[test]
    fn a_project_runs_where_its_inventory_item_is() {
        let items = [
            item("web-0", "/workspace", "web-0", &[("x/name", "web")]),
            item("api-0", "/workspace", "api-0", &[("x/name", "api")]),
            item("docs", "/srv/docs", "docs-0", &[]),
        ];
        let found = |name: &str, workspace: &str| DiscoveredProject {
            name: name.into(),
            workspace: workspace.into(),
            description: None,
        };
        let pod = |f: DiscoveredProject| origin(&f, &items).and_then(|i| i.placement.pod.clone());
        assert_eq!(pod(found("api", "/workspace")).as_deref(), Some("api-0"));
        assert_eq!(pod(found("web-0", "/workspace")).as_deref(), Some("web-0"));
        assert_eq!(pod(found("renamed", "/srv/docs")).as_deref(), Some("docs-0"));
        assert_eq!(pod(found("x", "/elsewhere")), None);
    }
}
