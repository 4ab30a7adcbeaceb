//! The default plugins' components, built with the gateway and carried in its binary, so that an
//! installation without the source (a release binary, a package) can write them into its plugin
//! directory: `rdev plugins defaults --out DIR`.

use std::path::{Path, PathBuf};

macro_rules! component {
    ($file:literal) => {
        (
            $file,
            include_bytes!(concat!(env!("RDEV_DEFAULT_PLUGINS_DIR"), "/", $file)) as &[u8],
        )
    };
}

/// The file of every default plugin (`manifest::defaults`) and its bytes.
pub const DEFAULT_COMPONENTS: [(&str, &[u8]); 6] = [
    component!("request_validator.wasm"),
    component!("shell_sanitizer.wasm"),
    component!("label_discovery.wasm"),
    component!("slack_formatter.wasm"),
    component!("discord_formatter.wasm"),
    component!("generic_formatter.wasm"),
];

/// Writes the default components into `dir` (created if needed), each through a temporary file
/// renamed into place; returns the files written.
pub fn write_defaults(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, bytes) in DEFAULT_COMPONENTS {
        let path = dir.join(name);
        let temp = dir.join(format!(".{name}.new"));
        std::fs::write(&temp, bytes)?;
        std::fs::rename(&temp, &path)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_manifest_has_its_component_embedded() {
        for manifest in crate::plugins::manifest::defaults() {
            let file = manifest.file.display().to_string();
            let embedded = DEFAULT_COMPONENTS.iter().find(|(name, _)| *name == file);
            let (_, bytes) = embedded.unwrap_or_else(|| panic!("{file} is not embedded"));
            assert!(bytes.starts_with(b"\0asm"), "{file} is a WebAssembly file");
        }
        let dir = tempfile::tempdir().unwrap();
        let written = write_defaults(dir.path()).unwrap();
        assert_eq!(written.len(), DEFAULT_COMPONENTS.len());
        assert_eq!(std::fs::read(&written[1]).unwrap(), DEFAULT_COMPONENTS[1].1);
    }
}
