//! `{{name}}`: a webhook formatter that renders each event as one line of text, for receivers
//! that show plain messages: `[rdev] command.failed cmd_2 in web, exit code 1 (sub_ops)`.
//!
//! Configuration: `{"prefix": "rdev"}` (the default).

use rdev_plugin_sdk::{Formatter, Rendered, WebhookTarget};
use serde::Deserialize;
use serde_json::Value;

/// The plugin.
pub struct Plugin;

/// The configuration. `deny_unknown_fields`: a misspelt option is refused, not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Written in brackets before each message.
    pub prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { prefix: "rdev".into() }
    }
}

impl Formatter for Plugin {
    type Config = Config;

    fn format(config: &Config, event_type: &str, event: &Value, target: &WebhookTarget) -> Result<Rendered, String> {
        let mut line = format!("[{}] {event_type}", config.prefix);
        let command = &event["command"];
        if let Some(id) = command["id"].as_str() {
            line.push_str(&format!(" {id}"));
            if let Some(project) = command["project"].as_str() {
                line.push_str(&format!(" in {project}"));
            }
            if let Some(code) = command["exit_code"].as_i64() {
                line.push_str(&format!(", exit code {code}"));
            }
        }
        line.push_str(&format!(" ({})", target.subscription));
        Ok(Rendered {
            content_type: "text/plain; charset=utf-8".into(),
            body: line.into_bytes(),
        })
    }

    // `self_test` is left to the trait's default, no case. Cases returned here run against every
    // new version before it goes live, so they must hold under any configuration it accepts.
}

rdev_plugin_sdk::export_formatter!(Plugin);
