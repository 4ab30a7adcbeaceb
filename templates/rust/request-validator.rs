//! `{{name}}`: a request validator that refuses commands setting the configured environment
//! variables (for example `LD_PRELOAD`, which would load code into every program the command
//! runs).
//!
//! Configuration: `{"forbidden_env": ["LD_PRELOAD"]}` (the default).

use rdev_plugin_sdk::{FieldError, Validator};
use serde::Deserialize;
use serde_json::Value;

/// The plugin.
pub struct Plugin;

/// The configuration. `deny_unknown_fields`: a misspelt option is refused, not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Environment variables no command may set.
    pub forbidden_env: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            forbidden_env: vec!["LD_PRELOAD".into()],
        }
    }
}

impl Validator for Plugin {
    type Config = Config;

    fn validate(config: &Config, resource: &str, request: &Value) -> Vec<FieldError> {
        if resource != "command" {
            return Vec::new();
        }
        let Some(request) = request.as_object() else {
            return vec![FieldError::new("", "the request is not a JSON object")];
        };
        match request.get("env") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(env)) => env
                .keys()
                .filter(|name| config.forbidden_env.contains(name))
                .map(|name| FieldError::new(format!("env.{name}"), format!("`{name}` may not be set")))
                .collect(),
            Some(_) => vec![FieldError::new("env", "must be an object")],
        }
    }

    // `self_test` is left to the trait's default, no case. Cases returned here run against every
    // new version before it goes live, so they must hold under any configuration it accepts.
}

rdev_plugin_sdk::export_validator!(Plugin);
