//! What a component says about itself before it is compiled: the `rdev:plugin` package version
//! and the world it was built against (read from its imports and exports), and the name and
//! version its author declared (the `rdev:plugin-info` custom section, JSON, which the SDK's
//! export macros write from the plugin crate's name and version). A component built against an
//! incompatible version of the package is refused with a message saying which one this gateway
//! needs.

use serde::{Deserialize, Serialize};
use wasmparser::{Parser, Payload};

use super::manifest::World;

/// The `rdev:plugin` package version this gateway implements (`wit/worlds.wit`).
pub const PACKAGE_VERSION: &str = "0.1.0";
/// The package's name in import names.
const PACKAGE: &str = "rdev:plugin/";
/// The custom section a plugin declares its name and version in.
pub const INFO_SECTION: &str = "rdev:plugin-info";
/// The longest declared name or version kept.
const MAX_DECLARED: usize = 64;

/// The name and version a component declares of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Declared {
    /// The plugin's name, as its author gave it.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// What a component was built against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The `rdev:plugin` package version, if it imports any of the package's interfaces.
    pub package_version: Option<String>,
    /// The world its exports implement, if they match one.
    pub world: Option<World>,
    /// What it declares of itself.
    pub declared: Option<Declared>,
}

/// Reads what `wasm` was built against, and checks it against `world` and this gateway's
/// package version.
pub fn check(wasm: &[u8], world: World) -> Result<Built, String> {
    let built = inspect(wasm)?;
    if let Some(version) = &built.package_version
        && !compatible(version, PACKAGE_VERSION)
    {
        return Err(format!(
            "was built against rdev:plugin@{version}; this gateway implements rdev:plugin@{PACKAGE_VERSION} \
             and needs a component built against {}",
            series(PACKAGE_VERSION)
        ));
    }
    if let Some(found) = built.world
        && found != world
    {
        return Err(format!(
            "does not implement the {} world (its exports are those of {})",
            world.as_str(),
            found.as_str()
        ));
    }
    Ok(built)
}

/// Reads what `wasm` was built against, checking nothing.
pub fn inspect(wasm: &[u8]) -> Result<Built, String> {
    let mut built = Built {
        package_version: None,
        world: None,
        declared: None,
    };
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| format!("is not a valid WebAssembly component: {e}"))? {
            Payload::Version {
                encoding: wasmparser::Encoding::Module,
                ..
            } if depth == 0 => {
                return Err("is a core WebAssembly module, not a component (build it for wasm32-wasip2)".into());
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(imports) => {
                for import in imports {
                    let import = import.map_err(|e| e.to_string())?;
                    if let Some(version) = package_version(import.name.name) {
                        built.package_version.get_or_insert(version);
                    }
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    exports.push(export.map_err(|e| e.to_string())?.name.name.to_owned());
                }
            }
            Payload::CustomSection(section) if section.name() == INFO_SECTION => {
                built.declared = serde_json::from_slice::<Declared>(section.data())
                    .ok()
                    .filter(|d| d.name.len() <= MAX_DECLARED && d.version.len() <= MAX_DECLARED);
            }
            _ => {}
        }
    }
    built.world = world_of(&exports);
    Ok(built)
}

/// `rdev:plugin/log@0.1.0` → `0.1.0`.
fn package_version(name: &str) -> Option<String> {
    let (_, version) = name.strip_prefix(PACKAGE)?.split_once('@')?;
    Some(version.to_owned())
}

fn world_of(exports: &[String]) -> Option<World> {
    let has = |name: &str| exports.iter().any(|e| e == name);
    [
        ("sanitize", World::CommandSanitizer),
        ("validate", World::RequestValidator),
        ("format", World::WebhookFormatter),
        ("discover", World::ProjectDiscovery),
        ("judge", World::ToolPolicy),
    ]
    .into_iter()
    .find(|(export, _)| has(export))
    .map(|(_, world)| world)
}

/// Whether a component built against `built` runs on a host implementing `host`: the same major
/// version and no newer minor one, or below 1.0 the same minor version (semver's rule for 0.x).
fn compatible(built: &str, host: &str) -> bool {
    match (semver::Version::parse(built), semver::Version::parse(host)) {
        (Ok(b), Ok(h)) if h.major == 0 => b.major == 0 && b.minor == h.minor,
        (Ok(b), Ok(h)) => b.major == h.major && b.minor <= h.minor,
        _ => false,
    }
}

/// `0.1.0` → `0.1.x`, `1.2.0` → `1.x (up to 1.2.0)`.
fn series(version: &str) -> String {
    match semver::Version::parse(version) {
        Ok(v) if v.major == 0 => format!("0.{}.x", v.minor),
        Ok(v) => format!("{}.x up to {}.{}", v.major, v.major, v.minor),
        Err(_) => version.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_compatible_within_a_series() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.0", "0.1.3"));
        assert!(compatible("0.1.4", "0.1.3"), "patch versions change no interface");
        assert!(
            !compatible("1.3.0", "1.2.0"),
            "built against a newer minor of the package"
        );
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.0.0", "0.1.0"));
        assert!(compatible("1.0.0", "1.2.0"));
        assert!(!compatible("2.0.0", "1.2.0"));
        assert!(!compatible("nonsense", "0.1.0"));
        assert_eq!(series("0.1.0"), "0.1.x");
    }

    #[test]
    fn import_names_carry_the_package_version() {
        assert_eq!(package_version("rdev:plugin/log@0.1.0").as_deref(), Some("0.1.0"));
        assert_eq!(package_version("wasi:io/streams@0.2.6"), None);
        assert_eq!(package_version("rdev:plugin/log"), None);
    }

    #[test]
    fn a_core_module_is_refused_as_one() {
        let module = b"\0asm\x01\0\0\0";
        let error = check(module, World::CommandSanitizer).unwrap_err();
        assert!(error.contains("not a component"), "{error}");
    }
}
