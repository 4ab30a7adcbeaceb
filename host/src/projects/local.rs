//! Local project source: each visible subdirectory of the workspaces root is a project.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{InventoryItem, ProjectSource};

/// Lists the directories under a root.
#[derive(Debug, Clone)]
pub struct LocalDirectories {
    root: PathBuf,
}

impl LocalDirectories {
    /// A source over `root`.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }
}

#[async_trait]
impl ProjectSource for LocalDirectories {
    async fn inventory(&self) -> std::io::Result<Vec<InventoryItem>> {
        let mut entries = tokio::fs::read_dir(&self.root).await?;
        let mut items = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type().await?.is_dir() {
                continue;
            }
            items.push(InventoryItem {
                source: "directory".into(),
                name,
                workspace: entry.path(),
                labels: Default::default(),
                placement: Default::default(),
            });
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(items)
    }
}
