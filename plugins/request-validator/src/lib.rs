//! rdev's default request validator: names, sizes and formats of the requests that create keys
//! (`key`), start commands (`command`) and write Claude configuration items (`claude-item`).
//! Every field error is reported, not just the first; unknown resources have none.

mod checks;
pub mod config;
mod resources;

use config::Config;
use rdev_plugin_sdk::{FieldError, ValidatorCase, fixtures};
use serde_json::Value;

/// The validator.
pub struct RequestValidator;

impl rdev_plugin_sdk::Validator for RequestValidator {
    type Config = Config;

    fn check(config: &Config) -> Result<(), String> {
        config.check()
    }

    fn validate(config: &Config, resource: &str, request: &Value) -> Vec<FieldError> {
        let validate = match resource {
            "key" => resources::key,
            "command" => resources::command,
            "claude-item" => resources::claude_item,
            _ => return Vec::new(),
        };
        match request.as_object() {
            Some(fields) => {
                let mut errors = Vec::new();
                validate(config, fields, &mut errors);
                errors
            }
            None => vec![FieldError::new("$", "the request must be a JSON object")],
        }
    }

    fn self_test() -> Vec<ValidatorCase> {
        fixtures::validator_cases(include_str!("../invariants.json"))
    }
}

rdev_plugin_sdk::export_validator!(RequestValidator);

#[cfg(test)]
mod tests {
    use super::RequestValidator;
    use rdev_plugin_sdk::testing;

    #[test]
    fn fixtures_pass() {
        testing::run_validator::<RequestValidator>("fixtures.json").assert_passed();
    }

    #[test]
    fn configured_limits_apply() {
        testing::run_validator::<RequestValidator>("fixtures-limits.json").assert_passed();
    }

    #[test]
    fn invariants_hold_under_default_and_configured_limits() {
        for config in ["", r#"{"max_args": 1, "max_script_bytes": 10, "max_env": 1}"#] {
            testing::self_test_validator::<RequestValidator>(config).assert_passed();
        }
    }

    #[test]
    fn refuses_zero_limits() {
        let report = testing::run_validator::<RequestValidator>(r#"{"config": {"max_args": 0}, "validator": []}"#);
        assert!(
            report.cases[0].actual.contains("`max_args` must be at least 1"),
            "{report}"
        );
    }
}
