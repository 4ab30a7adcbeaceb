//! Inputs shown in decision diffs and explanations, with what may be secret taken out: every env
//! value, and in scripts, arguments and prompts the tokens of this gateway (`rdev_…`), webhook
//! secrets (`whsec_…`), bearer credentials and the values of assignments to names that look like
//! secrets (`*TOKEN*=`, `*SECRET*=`, `*PASSWORD*=`, `*KEY*=`).

use std::sync::LazyLock;

use regex::Regex;

use crate::plugins::PluginCommand;

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

static SECRETS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?:rdev_key_[0-9a-f_]+|whsec_[A-Za-z0-9+/=_-]+|\bbearer\s+[^\s'\x22]+",
        r"|\b[A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|KEY)[A-Z0-9_]*=[^\s;&|'\x22]+)"
    ))
    .expect("valid pattern")
});

/// `text` with what looks secret replaced.
pub fn text(text: &str) -> String {
    SECRETS.replace_all(text, REDACTED).into_owned()
}

/// A command with env values and what looks secret in its text replaced.
pub fn command(command: &PluginCommand) -> PluginCommand {
    PluginCommand {
        kind: command.kind.clone(),
        script: command.script.as_deref().map(text),
        args: command
            .args
            .as_ref()
            .map(|args| args.iter().map(|a| self::text(a)).collect()),
        prompt: command.prompt.as_deref().map(text),
        env: command.env.keys().map(|k| (k.clone(), REDACTED.to_owned())).collect(),
    }
}

/// A JSON value with every `env` object's values and what looks secret in its strings replaced.
pub fn json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("env", Value::Object(env)) => {
                        let names = env.keys().map(|n| (n.clone(), Value::from(REDACTED)));
                        (k.clone(), Value::Object(names.collect()))
                    }
                    _ => (k.clone(), json(v)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_env_values_are_taken_out() {
        let token = format!("rdev_key_0123456789abcdef_{}", "ab".repeat(32));
        let script = format!(
            "curl -H 'Authorization: Bearer {token}' x; API_TOKEN=s3cr3t make; echo whsec_QUJD ok; GITHUB_KEY=zz"
        );
        let command = PluginCommand {
            kind: "shell".into(),
            script: Some(script),
            args: None,
            prompt: None,
            env: [("DB_URL".to_owned(), "postgres://u:pw@h/db".to_owned())].into(),
        };
        let shown = serde_json::to_string(&super::command(&command)).unwrap();
        for secret in [token.as_str(), "s3cr3t", "QUJD", "zz", "pw@h"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("make") && shown.contains("DB_URL") && shown.contains(" ok"),
            "{shown}"
        );
        let body = serde_json::json!({"kind": "shell", "script": "PASSWORD=hunter2 x", "env": {"A": "secret"}});
        let shown = json(&body).to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("secret") && shown.contains("\"A\""),
            "{shown}"
        );
    }
}
