//! The fixture format: JSON test cases for one plugin, shared by the native harness
//! ([`crate::testing`]), bundled self-tests and the component harness.
//!
//! One file per plugin, with an optional `config` (any JSON, handed to `configure`; absent means
//! the default) and exactly one list of cases, named after the plugin's kind:
//!
//! ```json
//! {
//!   "config": {"extra_programs": ["just"]},
//!   "sanitizer": [
//!     {"name": "plain ls", "command": {"kind": "shell", "script": "ls -l"}, "expect": "allow"},
//!     {"name": "no rm of root", "command": {"kind": "shell", "script": "rm -rf /"},
//!      "expect": "deny", "reason_contains": "rm"},
//!     {"name": "rewritten", "command": {"kind": "git", "args": ["st"], "env": {"A": "1"}},
//!      "context": {"project": "web"}, "expect": {"rewrite": {"kind": "git", "args": ["status"]}}}
//!   ]
//! }
//! ```
//!
//! - `sanitizer` cases ([`sanitizer::Case`]): `name`; `command` (`kind` plus `script`, `args` or
//!   `prompt`, and an optional `env` object); optional `context` (`project`, `workdir`, `key_id`,
//!   `scopes`, each defaulting to `demo`, `/workspaces/demo`, `key_test`, `["commands:run"]`);
//!   `expect`: `"allow"`, `"deny"` or `{"rewrite": command}`; optional `reason_contains`.
//! - `validator` cases ([`validator::Case`]): `name`, `resource`, `request` (JSON) or
//!   `request_raw` (text, e.g. malformed JSON), `valid`, optional `fields` that must be reported.
//! - `formatter` cases ([`formatter::Case`]): `name`, `event_type`, `event` (JSON) or `event_raw`,
//!   optional `target` (`subscription`, `url`), optional `content_type` (default
//!   `application/json`), optional `body_contains` (strings the body must contain).
//! - `discovery` cases ([`discovery::Case`]): `name`, `inventory` (items with `source`, `name`,
//!   `workspace`, optional `labels` object), `projects` (the names discovery must return, any order).
//! - `tool_policy` cases ([`tool::Case`]): `name`, `tool` (e.g. `Bash`), optional `input` (the
//!   tool's JSON input, default `{}`), optional `context` (`project`, `workdir`, `command_id`,
//!   `key_id`, defaulting to `demo`, `/workspaces/demo`, `cmd_test`, `key_test`), `expect`:
//!   `"allow"` or `"deny"`, optional `reason_contains`.
//!
//! Unknown fields are errors. The `*_cases` functions turn a fixture into the WIT case records a
//! plugin returns from `self_test` (dropping what WIT cannot carry, such as `reason_contains`).

pub mod discovery;
pub mod formatter;
pub mod sanitizer;
pub mod tool;
pub mod validator;

use crate::{DiscoveryCase, FormatterCase, SanitizerCase, ToolCase, ValidatorCase};
use serde::Deserialize;
use std::fmt;

/// A parsed fixture file.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    /// The configuration handed to `configure`; `None` means the default.
    pub config: Option<serde_json::Value>,
    /// The cases.
    pub cases: Cases,
}

/// The cases of a fixture, for one world.
#[derive(Debug, Clone, PartialEq)]
pub enum Cases {
    /// Command-sanitizer cases.
    Sanitizer(Vec<sanitizer::Case>),
    /// Request-validator cases.
    Validator(Vec<validator::Case>),
    /// Webhook-formatter cases.
    Formatter(Vec<formatter::Case>),
    /// Project-discovery cases.
    Discovery(Vec<discovery::Case>),
    /// Tool-policy cases.
    Tool(Vec<tool::Case>),
}

/// Why a fixture could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureError(String);

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid fixture: {}", self.0)
    }
}

impl std::error::Error for FixtureError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureRepr {
    #[serde(default)]
    config: Option<serde_json::Value>,
    sanitizer: Option<Vec<sanitizer::Case>>,
    validator: Option<Vec<validator::Case>>,
    formatter: Option<Vec<formatter::Case>>,
    discovery: Option<Vec<discovery::Case>>,
    tool_policy: Option<Vec<tool::Case>>,
}

impl Fixture {
    /// Parses a fixture; it must name exactly one kind of cases.
    pub fn parse(json: &str) -> Result<Self, FixtureError> {
        let repr: FixtureRepr = serde_json::from_str(json).map_err(|e| FixtureError(e.to_string()))?;
        let lists = [
            repr.sanitizer.map(Cases::Sanitizer),
            repr.validator.map(Cases::Validator),
            repr.formatter.map(Cases::Formatter),
            repr.discovery.map(Cases::Discovery),
            repr.tool_policy.map(Cases::Tool),
        ];
        let mut present = lists.into_iter().flatten();
        match (present.next(), present.next()) {
            (Some(cases), None) => Ok(Self {
                config: repr.config,
                cases,
            }),
            (None, _) => Err(FixtureError(
                "expected one of `sanitizer`, `validator`, `formatter`, `discovery` or `tool_policy`".into(),
            )),
            (Some(_), Some(_)) => Err(FixtureError("a fixture holds the cases of one plugin kind only".into())),
        }
    }

    /// The configuration as the text handed to `configure` (empty for the default).
    pub fn config_json(&self) -> String {
        self.config
            .as_ref()
            .map(|config| config.to_string())
            .unwrap_or_default()
    }
}

impl Cases {
    /// The WIT world these cases are for.
    pub fn world(&self) -> &'static str {
        match self {
            Self::Sanitizer(_) => "command-sanitizer",
            Self::Validator(_) => "request-validator",
            Self::Formatter(_) => "webhook-formatter",
            Self::Discovery(_) => "project-discovery",
            Self::Tool(_) => "tool-policy",
        }
    }

    /// How many cases there are.
    pub fn len(&self) -> usize {
        match self {
            Self::Sanitizer(cases) => cases.len(),
            Self::Validator(cases) => cases.len(),
            Self::Formatter(cases) => cases.len(),
            Self::Discovery(cases) => cases.len(),
            Self::Tool(cases) => cases.len(),
        }
    }

    /// Whether there is no case.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn bundled(json: &str) -> Cases {
    match Fixture::parse(json) {
        Ok(fixture) => fixture.cases,
        // Bundled cases are part of the plugin; the plugin's native tests catch a broken file.
        Err(e) => panic!("bundled self-test cases: {e}"),
    }
}

fn wrong_kind(cases: &Cases, wanted: &str) -> ! {
    panic!(
        "bundled self-test cases: expected {wanted} cases, found {} cases",
        cases.world()
    )
}

/// The sanitizer cases of a fixture as WIT records, for [`crate::Sanitizer::self_test`].
///
/// # Panics
/// If `json` is not a fixture of sanitizer cases: bundled cases are part of the plugin.
pub fn sanitizer_cases(json: &str) -> Vec<SanitizerCase> {
    match bundled(json) {
        Cases::Sanitizer(cases) => cases.into_iter().map(SanitizerCase::from).collect(),
        other => wrong_kind(&other, "command-sanitizer"),
    }
}

/// The validator cases of a fixture as WIT records, for [`crate::Validator::self_test`].
///
/// # Panics
/// If `json` is not a fixture of validator cases.
pub fn validator_cases(json: &str) -> Vec<ValidatorCase> {
    match bundled(json) {
        Cases::Validator(cases) => cases.into_iter().map(ValidatorCase::from).collect(),
        other => wrong_kind(&other, "request-validator"),
    }
}

/// The formatter cases of a fixture as WIT records, for [`crate::Formatter::self_test`].
///
/// # Panics
/// If `json` is not a fixture of formatter cases.
pub fn formatter_cases(json: &str) -> Vec<FormatterCase> {
    match bundled(json) {
        Cases::Formatter(cases) => cases.into_iter().map(FormatterCase::from).collect(),
        other => wrong_kind(&other, "webhook-formatter"),
    }
}

/// The discovery cases of a fixture as WIT records, for [`crate::Discovery::self_test`].
///
/// # Panics
/// If `json` is not a fixture of discovery cases.
pub fn discovery_cases(json: &str) -> Vec<DiscoveryCase> {
    match bundled(json) {
        Cases::Discovery(cases) => cases.into_iter().map(DiscoveryCase::from).collect(),
        other => wrong_kind(&other, "project-discovery"),
    }
}

/// The tool-policy cases of a fixture as WIT records, for [`crate::ToolPolicy::self_test`].
///
/// # Panics
/// If `json` is not a fixture of tool-policy cases.
pub fn tool_cases(json: &str) -> Vec<ToolCase> {
    match bundled(json) {
        Cases::Tool(cases) => cases.into_iter().map(ToolCase::from).collect(),
        other => wrong_kind(&other, "tool-policy"),
    }
}

/// A JSON value given either as JSON (`<key>`) or as raw text (`<key>_raw`), as the text a
/// plugin receives.
fn json_or_raw(value: Option<serde_json::Value>, raw: Option<String>, key: &str) -> Result<String, String> {
    match (value, raw) {
        (Some(value), None) => Ok(value.to_string()),
        (None, Some(raw)) => Ok(raw),
        _ => Err(format!("give exactly one of `{key}` and `{key}_raw`")),
    }
}

#[cfg(test)]
mod tests;
