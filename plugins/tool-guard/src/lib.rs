//! A tool policy for `claude` runs: no tool may touch a protected file (`.env`, keys, `.ssh/`…),
//! by a file tool's path or by any word of a `Bash` command, `WebFetch` may reach only the
//! listed hosts, and listed tools are refused outright. A guard against mistakes and casual
//! exfiltration, beside the gateway's own path rules; not a sandbox.

mod patterns;
mod script;

use patterns::{Pattern, url_host};
use rdev_plugin_sdk::{ToolCase, ToolContext, ToolVerdict, fixtures};
use serde::Deserialize;
use serde_json::Value;

/// Input fields of the file tools that name paths or path patterns.
const PATH_FIELDS: &[&str] = &["file_path", "notebook_path", "path", "pattern", "glob"];

/// The guard's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Names no tool may touch, matched against every segment of a path (split at `/` and `=`);
    /// `*` matches any run of characters, e.g. `*.pem`.
    pub protected: Vec<String>,
    /// Hosts `WebFetch` may fetch from: exact names, or `*.example.com` for its subdomains.
    /// Empty refuses every fetch.
    pub fetch_hosts: Vec<String>,
    /// Tools refused outright: exact names, or a prefix ending in `*` (`mcp__github__*`).
    pub deny_tools: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        let protected = [
            ".env",
            ".env.*",
            "*.pem",
            "*.key",
            "id_rsa*",
            "id_ed25519*",
            ".ssh",
            ".aws",
            ".gnupg",
            ".netrc",
            "secrets",
        ];
        Self {
            protected: protected.map(String::from).to_vec(),
            fetch_hosts: Vec::new(),
            deny_tools: Vec::new(),
        }
    }
}

/// The guard.
pub struct ToolGuard;

impl rdev_plugin_sdk::ToolPolicy for ToolGuard {
    type Config = Config;

    fn check(config: &Config) -> Result<(), String> {
        let lists = [
            ("protected", &config.protected),
            ("fetch_hosts", &config.fetch_hosts),
            ("deny_tools", &config.deny_tools),
        ];
        for (name, list) in lists {
            if list.iter().any(|entry| entry.trim().is_empty() || entry.trim() == "*") {
                return Err(format!("`{name}` has an empty or catch-all entry"));
            }
        }
        Ok(())
    }

    fn judge(config: &Config, tool: &str, input: &Value, _context: &ToolContext) -> ToolVerdict {
        if config.deny_tools.iter().any(|entry| Pattern::new(entry).matches(tool)) {
            return ToolVerdict::deny(format!("the tool `{tool}` is refused by this project's tool guard"));
        }
        let outcome = match tool {
            "Bash" => bash(config, input),
            "WebFetch" => fetch(config, input),
            _ => paths(config, input),
        };
        match outcome {
            Ok(()) => ToolVerdict::Allow,
            Err(reason) => ToolVerdict::Deny(reason),
        }
    }

    fn self_test() -> Vec<ToolCase> {
        fixtures::tool_cases(include_str!("../invariants.json"))
    }
}

rdev_plugin_sdk::export_tool_policy!(ToolGuard);

/// The first protected pattern matching a segment of `path`.
fn protected<'a>(config: &'a Config, path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.split(['/', '=']).filter(|s| !s.is_empty()).collect();
    config
        .protected
        .iter()
        .find(|p| segments.iter().any(|s| Pattern::new(p).matches(s)))
        .map(String::as_str)
}

fn refuse_protected(config: &Config, path: &str) -> Result<(), String> {
    match protected(config, path) {
        Some(pattern) => Err(format!(
            "`{path}` is a protected file (it matches `{pattern}`); secrets stay out of reach of the agent"
        )),
        None => Ok(()),
    }
}

/// A file tool: every path field it names.
fn paths(config: &Config, input: &Value) -> Result<(), String> {
    for field in PATH_FIELDS {
        if let Some(path) = input.get(field).and_then(Value::as_str) {
            refuse_protected(config, path)?;
        }
    }
    Ok(())
}

/// A `Bash` command: every word the script could use as a path, expansions left as written.
fn bash(config: &Config, input: &Value) -> Result<(), String> {
    let command = input.get("command").and_then(Value::as_str).unwrap_or_default();
    for word in script::words(command)? {
        refuse_protected(config, &word)?;
    }
    Ok(())
}

/// A `WebFetch`: its URL's host must be listed.
fn fetch(config: &Config, input: &Value) -> Result<(), String> {
    let url = input.get("url").and_then(Value::as_str).unwrap_or_default();
    let host = url_host(url).ok_or_else(|| format!("`{url}` is not an http(s) URL with a host"))?;
    if config
        .fetch_hosts
        .iter()
        .any(|entry| patterns::host_listed(entry, &host))
    {
        return Ok(());
    }
    Err(format!(
        "fetching from `{host}` is not allowed; the allowed hosts are {:?}",
        config.fetch_hosts
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdev_plugin_sdk::testing;

    #[test]
    fn fixtures_pass() {
        testing::run_tool_policy::<ToolGuard>("fixtures.json").assert_passed();
    }

    #[test]
    fn invariants_hold_under_default_and_configured_lists() {
        let configured =
            r#"{"protected": ["*.sqlite"], "fetch_hosts": ["docs.rs", "*.python.org"], "deny_tools": ["Task"]}"#;
        for config in ["", configured] {
            testing::self_test_tool_policy::<ToolGuard>(config).assert_passed();
        }
    }

    #[test]
    fn refuses_empty_and_catch_all_entries() {
        for config in [
            r#"{"protected": [""]}"#,
            r#"{"deny_tools": ["*"]}"#,
            r#"{"fetch_hosts": [" "]}"#,
        ] {
            let report =
                testing::run_tool_policy::<ToolGuard>(&format!(r#"{{"config": {config}, "tool_policy": []}}"#));
            assert!(report.cases[0].actual.contains("empty or catch-all"), "{report}");
        }
    }
}
