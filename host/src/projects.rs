//! Projects: the workspaces commands run in. A [`ProjectSource`] yields the raw inventory, the
//! discovery policy turns it into projects, and the [`ProjectRegistry`] serves the current list
//! with the settings from the configuration.

mod local;

pub use local::LocalDirectories;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::config::{Config, ProjectSettings};
use crate::plugins::ProjectDiscovery;

/// Whether `name` is a usable project (or command kind) name: 1–63 characters of
/// `[A-Za-z0-9._-]`, starting with a letter or digit.
pub fn is_valid_name(name: &str) -> bool {
    is_safe_name(name, 63)
}

/// Whether `name` has 1–`max_len` characters of `[A-Za-z0-9._-]` and starts with a letter or
/// digit: never hidden, never a path.
pub fn is_safe_name(name: &str, max_len: usize) -> bool {
    let mut chars = name.chars();
    name.len() <= max_len
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// One raw inventory entry, before discovery decides what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InventoryItem {
    /// Where the entry comes from: `directory`, `pod` or `config-map`.
    pub source: String,
    /// Proposed project name.
    pub name: String,
    /// Where its workspace is.
    pub workspace: PathBuf,
    /// Labels or other metadata from the source.
    pub labels: BTreeMap<String, String>,
}

/// A project as discovery returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredProject {
    /// Name.
    pub name: String,
    /// Workspace location.
    pub workspace: PathBuf,
    /// Description, if the inventory had one.
    pub description: Option<String>,
}

/// A project the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Name (the `{project}` in URLs).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Workspace location.
    pub workspace: PathBuf,
    /// Effective settings.
    pub settings: ProjectSettings,
}

/// Where the raw inventory comes from (local directories, pods, ConfigMaps…).
#[async_trait]
pub trait ProjectSource: Send + Sync {
    /// The current inventory.
    async fn inventory(&self) -> std::io::Result<Vec<InventoryItem>>;
}

type ProjectMap = BTreeMap<String, Arc<Project>>;

/// The current project list.
#[derive(Clone)]
pub struct ProjectRegistry {
    current: Arc<RwLock<Arc<ProjectMap>>>,
    source: Arc<dyn ProjectSource>,
    discovery: Arc<dyn ProjectDiscovery>,
    config: Arc<Config>,
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
    pub fn new(source: Arc<dyn ProjectSource>, discovery: Arc<dyn ProjectDiscovery>, config: Arc<Config>) -> Self {
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
        for found in discovered.into_iter().filter(|p| is_valid_name(&p.name)) {
            let (description, settings) = self.config.project_settings(&found.name);
            let project = Project {
                description: description.or(found.description),
                name: found.name.clone(),
                workspace: found.workspace,
                settings,
            };
            map.insert(found.name, Arc::new(project));
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        Ok(())
    }

    /// Refreshes every `every` until the returned task is aborted.
    pub fn spawn_refresher(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = registry.refresh().await {
                    tracing::warn!(error = %e, "project discovery failed; keeping the last good list");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        for ok in ["demo", "a", "my-proj_1.2"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "..", "a b", &"x".repeat(64)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
