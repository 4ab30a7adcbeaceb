//! What project discovery works on: the raw inventory entries a project source yields, and the
//! projects a discovery policy makes of them. The placement of an entry (pod, container) stays
//! with the host: it is never shown to plugins.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

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
    /// Where its commands would run (for pods); the host's business, never shown to plugins.
    #[serde(skip)]
    pub placement: Placement,
}

/// Where a project's commands run, beyond its workspace path: for the Kubernetes backend, the
/// pod and container. Empty for local directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Pod name.
    pub pod: Option<String>,
    /// Container name; unset means the pod's only (or first) container.
    pub container: Option<String>,
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
