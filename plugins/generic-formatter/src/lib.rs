//! Renders rdev events as a plain JSON envelope for any HTTP receiver:
//! `{"event_type", "event", "subscription"}` plus configured static fields.

use rdev_plugin_sdk::{FormatterCase, Rendered, WebhookTarget, fixtures};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Keys of the envelope that static fields may not replace.
const ENVELOPE: &[&str] = &["event_type", "event", "subscription"];

/// The formatter's configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Extra top-level fields added to every envelope, e.g. `{"source": "rdev-prod"}`.
    pub static_fields: Map<String, Value>,
}

/// The formatter.
pub struct GenericFormatter;

impl rdev_plugin_sdk::Formatter for GenericFormatter {
    type Config = Config;

    fn check(config: &Config) -> Result<(), String> {
        match ENVELOPE.iter().find(|key| config.static_fields.contains_key(**key)) {
            Some(key) => Err(format!("static field `{key}` would replace the envelope's own")),
            None => Ok(()),
        }
    }

    fn format(config: &Config, event_type: &str, event: &Value, target: &WebhookTarget) -> Result<Rendered, String> {
        let mut envelope = config.static_fields.clone();
        envelope.insert("event_type".into(), Value::from(event_type));
        envelope.insert("event".into(), event.clone());
        envelope.insert("subscription".into(), Value::from(target.subscription.as_str()));
        Ok(Rendered::json(&Value::Object(envelope)))
    }

    fn self_test() -> Vec<FormatterCase> {
        fixtures::formatter_cases(include_str!("../invariants.json"))
    }
}

rdev_plugin_sdk::export_formatter!(GenericFormatter);

#[cfg(test)]
mod tests {
    use super::*;
    use rdev_plugin_sdk::testing;

    #[test]
    fn fixtures_pass() {
        testing::run_formatter::<GenericFormatter>("fixtures.json").assert_passed();
    }

    #[test]
    fn invariants_hold_under_default_and_configured_fields() {
        for config in ["", r#"{"static_fields": {"source": "rdev", "v": 1}}"#] {
            testing::self_test_formatter::<GenericFormatter>(config).assert_passed();
        }
    }

    #[test]
    fn refuses_static_fields_that_replace_the_envelope() {
        let report = testing::run_formatter::<GenericFormatter>(
            r#"{"config": {"static_fields": {"event": 1}}, "formatter": []}"#,
        );
        assert!(report.cases[0].actual.contains("static field `event`"), "{report}");
    }
}
