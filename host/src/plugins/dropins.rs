//! Deployed plugins: a plugin added to a running gateway (`PUT /v1/plugins/{name}`, `rdev
//! plugins deploy`) is a component and a manifest file in the gateway's own directory of
//! deployed plugins (`DATA_DIR/plugins`, writable even where the configured plugin directory is
//! a read-only mount): `NAME.wasm` and `NAME.plugin.toml` (one `[[plugins]]` entry, without the
//! header). They add to the plugins in effect — the configured ones or the defaults — and
//! survive restarts; an entry of the config file with the same name wins.

use std::path::{Path, PathBuf};

use super::manifest::PluginManifest;

/// How a manifest file's name ends.
pub const SUFFIX: &str = ".plugin.toml";

/// The manifest file of deployed plugin `name`.
pub fn manifest_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{SUFFIX}"))
}

/// The component file of deployed plugin `name`, relative to the plugin directory.
pub fn component_file(name: &str) -> PathBuf {
    PathBuf::from(format!("{name}.wasm"))
}

/// Whether `path` is a deployed plugin's manifest file.
pub fn is_manifest(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.'))
}

/// The manifest file of `manifest`, its component named relative to the file's directory.
pub fn render(manifest: &PluginManifest) -> String {
    let mut relative = manifest.clone();
    relative.file = component_file(&manifest.name);
    format!(
        "# Deployed plugin `{}` (written by the gateway; `DELETE /v1/plugins/{}` removes it).\n{}",
        manifest.name,
        manifest.name,
        toml::to_string(&relative).expect("a manifest serializes")
    )
}

/// The deployed plugins in `dir`, in name order, leaving out those named like one of
/// `configured`. A file that does not parse, or whose name is not its plugin's, is skipped with
/// a warning: one bad file keeps no other plugin from loading.
pub fn read(dir: &Path, configured: &[PluginManifest]) -> Vec<PluginManifest> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut deployed: Vec<PluginManifest> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| is_manifest(path))
        .filter_map(|path| match parse(&path) {
            Ok(mut manifest) => {
                manifest.file = dir.join(&manifest.file);
                Some(manifest)
            }
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "deployed plugin skipped");
                None
            }
        })
        .filter(|manifest| {
            let shadowed = configured.iter().any(|c| c.name == manifest.name);
            if shadowed {
                tracing::warn!(plugin = %manifest.name, "deployed plugin skipped: the config file has an entry of that name");
            }
            !shadowed
        })
        .collect();
    deployed.sort_by(|a, b| a.name.cmp(&b.name));
    deployed
}

fn parse(path: &Path) -> Result<PluginManifest, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let manifest: PluginManifest = toml::from_str(&text).map_err(|e| e.to_string())?;
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(SUFFIX));
    if stem != Some(manifest.name.as_str()) {
        return Err(format!("the file is not named after its plugin `{}`", manifest.name));
    }
    manifest.check()?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::manifest::World;

    fn manifest(name: &str) -> PluginManifest {
        toml::from_str(&format!(
            "name = \"{name}\"\nworld = \"command-sanitizer\"\nfile = \"{name}.wasm\""
        ))
        .unwrap()
    }

    #[test]
    fn reads_what_it_renders_and_skips_what_it_cannot_trust() {
        let dir = tempfile::tempdir().unwrap();
        let mut mine = manifest("no-rm");
        mine.config = serde_json::json!({"refused_programs": ["rm"]});
        std::fs::write(manifest_path(dir.path(), "no-rm"), render(&mine)).unwrap();
        mine.file = dir.path().join("no-rm.wasm");
        std::fs::write(manifest_path(dir.path(), "other"), render(&manifest("misnamed"))).unwrap();
        std::fs::write(manifest_path(dir.path(), "broken"), "name = ").unwrap();
        std::fs::write(manifest_path(dir.path(), "taken"), render(&manifest("taken"))).unwrap();
        let read = read(dir.path(), &[manifest("taken")]);
        assert_eq!(read, vec![mine]);
        assert_eq!(read[0].world, World::CommandSanitizer);
        assert!(is_manifest(Path::new("/p/no-rm.plugin.toml")));
        assert!(!is_manifest(Path::new("/p/.no-rm.plugin.toml")) && !is_manifest(Path::new("/p/rdev.toml")));
    }
}
