//! Hot reload: watches the plugin directory and the config file, and reloads the plugins once
//! the files have been quiet for the debounce delay (editors and `cp` write in several steps).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::manager::PluginManager;

/// Watches for changes until `stop` is cancelled. Failing to watch is logged, not fatal:
/// `POST /v1/plugins/reload` still works.
pub fn spawn(host: PluginManager, debounce: Duration, stop: CancellationToken) {
    let (tx, rx) = mpsc::unbounded_channel();
    let config = host.config_path().map(absolute);
    let watched = [
        Some(absolute(host.plugins_dir())),
        config.as_ref().map(|c| parent_dir(c)),
    ];
    let filter_config = config.clone();
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if is_change(&event.kind) && event.paths.iter().any(|p| relevant(p, filter_config.as_deref())) {
            let _ = tx.send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch plugin files; use POST /v1/plugins/reload");
            return;
        }
    };
    for dir in watched.into_iter().flatten() {
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch for plugin changes");
        }
    }
    tokio::spawn(async move {
        let _watcher = watcher;
        debounced_reloads(host, rx, debounce, stop).await;
    });
}

/// Events carry absolute paths: compare them with absolute ones, even for `--config rdev.toml`.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Writes, creations, renames and removals count; reads and opens do not.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
        _ => true,
    }
}

/// Plugin components, the config file itself (its directory may hold other files), and the
/// `..data` link through which a mounted Kubernetes ConfigMap swaps all its files at once (the
/// files themselves are links that never change).
fn relevant(path: &Path, config: Option<&Path>) -> bool {
    let is_config = config.is_some_and(|c| c.file_name() == path.file_name() && path.parent() == Some(&parent_dir(c)));
    let is_config_map_swap = path.file_name().is_some_and(|n| n == "..data");
    is_config || is_config_map_swap || path.extension().is_some_and(|e| e == "wasm")
}

async fn debounced_reloads(
    host: PluginManager,
    mut rx: mpsc::UnboundedReceiver<()>,
    debounce: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            event = rx.recv() => if event.is_none() { return },
        }
        while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
        let report = host.reload().await;
        tracing::info!(
            loaded = ?report.loaded,
            failed = report.failed.len(),
            "plugins reloaded after a file change"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_config_path_matches_the_absolute_paths_of_events() {
        let config = absolute(Path::new("rdev.toml"));
        let event = std::env::current_dir().unwrap().join("rdev.toml");
        assert!(relevant(&event, Some(&config)));
        assert!(!relevant(&event.with_file_name("other.toml"), Some(&config)));
        assert!(relevant(Path::new("/anywhere/plugin.wasm"), Some(&config)));
    }

    #[test]
    fn a_config_map_volume_swap_counts_as_a_change() {
        assert!(relevant(Path::new("/etc/rdev/plugins/..data"), None));
        assert!(!relevant(Path::new("/etc/rdev/plugins/..data_tmp"), None));
    }
}
