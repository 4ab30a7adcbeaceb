//! A plugin project's own file, `rdev-plugin.toml`: the plugin's name, world and language, and
//! the configuration it is deployed with. `rdev plugins build`, `test` and `deploy` read it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plugins::manifest::World;

/// The project file's name.
pub const PROJECT_FILE: &str = "rdev-plugin.toml";

/// The languages a plugin can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Rust, with the SDK (`rdev-plugin-sdk`), built by `cargo` for `wasm32-wasip2`.
    Rust,
    /// Python, built by `componentize-py`.
    Python,
    /// JavaScript, built by `componentize-js` (ComponentizeJS).
    Js,
}

impl Lang {
    /// The name used in templates and in the project file.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

/// `rdev-plugin.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The plugin's name in the gateway.
    pub name: String,
    /// The world it implements.
    pub world: World,
    /// The language it is written in.
    pub lang: Lang,
    /// The configuration `rdev plugins deploy` installs it with (handed to `configure`).
    #[serde(default = "empty_table")]
    pub config: serde_json::Value,
}

fn empty_table() -> serde_json::Value {
    serde_json::json!({})
}

impl Project {
    /// Reads the project file of the project in `dir`.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(PROJECT_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a plugin project ({} cannot be read: {e}); `rdev plugins new` makes one",
                dir.display(),
                path.display()
            )
        })?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Whether `dir` holds a project file.
    pub fn is_project(dir: &Path) -> bool {
        dir.join(PROJECT_FILE).is_file()
    }

    /// The component `rdev plugins build` writes for the project in `dir`.
    pub fn component(&self, dir: &Path) -> PathBuf {
        dir.join("dist").join(format!("{}.wasm", self.name))
    }

    /// The project's fixture file.
    pub fn fixtures(dir: &Path) -> PathBuf {
        dir.join("fixtures.json")
    }
}
