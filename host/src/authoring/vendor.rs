//! The Rust SDK inside a Rust project: `vendor/rdev-plugin-sdk` and the shell parser it runs
//! natively, `vendor/rdev-shell`, so that a project builds anywhere, outside an rdev checkout and
//! without a registry holding the SDK. Their manifests are made standalone (the values they
//! inherit from rdev's workspace written out) and the SDK reads the project's own `wit/`.

use std::path::PathBuf;

use toml::{Table, Value};

use super::sources;

/// The vendored crates' files, paths relative to the project.
pub fn rust_sdk() -> Vec<(PathBuf, Vec<u8>)> {
    let workspace: Table = toml::from_str(sources::text("Cargo.toml")).expect("rdev's manifest is TOML");
    let workspace = workspace["workspace"]
        .as_table()
        .expect("rdev's manifest has a [workspace]");
    let mut files = Vec::new();
    for (crate_dir, vendored) in [("sdk", "rdev-plugin-sdk"), ("shell", "rdev-shell")] {
        let manifest = standalone(sources::text(&format!("{crate_dir}/Cargo.toml")), workspace);
        let dir = PathBuf::from("vendor").join(vendored);
        files.push((dir.join("Cargo.toml"), manifest.into_bytes()));
        for (path, bytes) in sources::under(&format!("{crate_dir}/src")) {
            let bytes = match path {
                // The SDK's bindings read `../wit` in rdev's tree; here the WIT is the project's.
                "bindings.rs" => String::from_utf8_lossy(bytes)
                    .replace("path: \"../wit\"", "path: \"../../wit\"")
                    .into_bytes(),
                _ => bytes.to_vec(),
            };
            files.push((dir.join("src").join(path), bytes));
        }
    }
    files
}

/// `manifest` with every `workspace = true` replaced by the workspace's value, the shell parser
/// found beside the SDK, and no examples (they stay in rdev's tree).
fn standalone(manifest: &str, workspace: &Table) -> String {
    let mut manifest: Table = toml::from_str(manifest).expect("a vendored manifest is TOML");
    manifest.remove("example");
    if let Some(Value::Table(package)) = manifest.get_mut("package") {
        inherit(package, workspace.get("package"));
    }
    if let Some(Value::Table(dependencies)) = manifest.get_mut("dependencies") {
        inherit(dependencies, workspace.get("dependencies"));
        if let Some(Value::Table(shell)) = dependencies.get_mut("rdev-shell") {
            shell.insert("path".into(), Value::String("../rdev-shell".into()));
        }
    }
    if manifest.get("lints").and_then(|l| l.get("workspace")).is_some()
        && let Some(lints) = workspace.get("lints")
    {
        manifest.insert("lints".into(), lints.clone());
    }
    format!(
        "# Vendored by `rdev plugins new` from rdev {}: edit the plugin, not this crate.\n{}",
        env!("CARGO_PKG_VERSION"),
        toml::to_string(&manifest).expect("a table serializes")
    )
}

/// Replaces each `key = { workspace = true, ... }` of `table` with the workspace's `key`, keeping
/// keys it adds (features).
fn inherit(table: &mut Table, inherited: Option<&Value>) {
    let Some(Value::Table(inherited)) = inherited else {
        return;
    };
    for (key, value) in table.iter_mut() {
        let Value::Table(entry) = value else { continue };
        if entry.remove("workspace").is_none() {
            continue;
        }
        let Some(base) = inherited.get(key) else { continue };
        let mut merged = match base {
            Value::Table(base) => base.clone(),
            Value::String(version) => Table::from_iter([("version".to_owned(), Value::String(version.clone()))]),
            other => {
                *value = other.clone();
                continue;
            }
        };
        merged.extend(std::mem::take(entry));
        *value = if merged.len() == 1 && merged.contains_key("version") {
            merged.remove("version").expect("checked")
        } else {
            Value::Table(merged)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_manifests_inherit_nothing() {
        let files = rust_sdk();
        let manifest = |dir: &str| {
            let (_, bytes) = files
                .iter()
                .find(|(path, _)| path == &PathBuf::from(format!("vendor/{dir}/Cargo.toml")))
                .expect("vendored");
            String::from_utf8(bytes.clone()).unwrap()
        };
        for dir in ["rdev-plugin-sdk", "rdev-shell"] {
            let text = manifest(dir);
            assert!(!text.contains("workspace"), "{dir}: {text}");
            let table: Table = toml::from_str(&text).unwrap();
            assert!(table["package"]["rust-version"].is_str(), "{text}");
        }
        let sdk: Table = toml::from_str(&manifest("rdev-plugin-sdk")).unwrap();
        assert_eq!(
            sdk["dependencies"]["rdev-shell"]["path"].as_str(),
            Some("../rdev-shell")
        );
        assert!(sdk["dependencies"]["serde"]["features"].is_array());
        assert!(sdk.get("example").is_none());
        let bindings = files
            .iter()
            .find(|(path, _)| path.ends_with("rdev-plugin-sdk/src/bindings.rs"))
            .unwrap();
        assert!(String::from_utf8_lossy(&bindings.1).contains("path: \"../../wit\""));
    }
}
