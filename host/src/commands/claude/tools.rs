//! Judges one tool call of a `claude` run: the project's tool allowlist first, then the rules
//! of the tool — a `Bash` command through the sanitizer chain as a `shell` script (the same
//! parsed-script rules), a file tool by its path — and then the tool policies. The first
//! refusal wins; a failing plugin refuses (fail closed).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paths::{self, Access};
use crate::plugins::{Decision, PluginCommand, Policies, SanitizeInput};
use crate::projects::Project;

/// The host's own checks, as they appear beside the plugins' decisions.
const GATEWAY: &str = "gateway";

/// What Claude Code posts to a `PreToolUse` hook (the fields the gateway reads).
#[derive(Debug, Clone, Deserialize)]
pub struct ToolCall {
    /// Tool name (`Bash`, `Write`, `mcp__server__tool`…).
    pub tool_name: String,
    /// Tool input.
    #[serde(default)]
    pub tool_input: Value,
    /// Id of the tool use in the transcript.
    #[serde(default)]
    pub tool_use_id: Option<String>,
    /// Claude Code's session.
    #[serde(default)]
    pub session_id: Option<String>,
    /// `PreToolUse`.
    #[serde(default)]
    pub hook_event_name: Option<String>,
}

/// The outcome of a tool call's judgement.
#[derive(Debug, Clone, Serialize)]
pub struct ToolVerdict {
    /// Whether the call may run.
    pub allowed: bool,
    /// Why not (shown to Claude), or a note on a rewrite.
    pub reason: Option<String>,
    /// The input to run instead (a sanitizer rewrote the command).
    pub updated_input: Option<Value>,
    /// Every decision taken, in order, with the plugin versions that took them.
    pub decisions: Vec<Decision>,
}

impl ToolVerdict {
    /// Refused by the gateway's own rules, before any plugin ran.
    fn refused_by_gateway(reason: String) -> Self {
        let decisions = vec![gateway_decision("deny", Some(reason.clone()))];
        Self::denied(reason, decisions)
    }

    /// Refused with the decisions taken up to the refusal.
    fn denied(reason: String, decisions: Vec<Decision>) -> Self {
        Self {
            allowed: false,
            reason: Some(reason),
            updated_input: None,
            decisions,
        }
    }
}

fn gateway_decision(verdict: &'static str, reason: Option<String>) -> Decision {
    Decision {
        plugin: GATEWAY.into(),
        digest: None,
        verdict,
        reason,
        duration_us: 0,
    }
}

/// The path field of a tool that touches files, and how.
fn file_access(tool: &str, input: &Value) -> Option<(Option<String>, Access)> {
    let field = |name: &str| input.get(name).and_then(Value::as_str).map(str::to_owned);
    match tool {
        "Write" | "Edit" | "MultiEdit" => Some((field("file_path"), Access::Write)),
        "NotebookEdit" => Some((field("notebook_path"), Access::Write)),
        "Read" => Some((field("file_path"), Access::Read)),
        "NotebookRead" => Some((field("notebook_path"), Access::Read)),
        // Searches default to the working directory when they name no path.
        "Glob" | "Grep" | "LS" => field("path").map(|p| (Some(p), Access::Read)),
        _ => None,
    }
}

/// Whether `tool` matches an allowlist entry (an exact name, or a prefix ending in `*`).
fn listed(allowed: &[String], tool: &str) -> bool {
    allowed.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => tool.starts_with(prefix),
        None => entry == tool,
    })
}

/// Judges `call` for a run in `project` submitted by `key_id`.
pub async fn judge(policies: &Policies, project: &Project, key_id: &str, call: &ToolCall) -> ToolVerdict {
    let tool = call.tool_name.as_str();
    if !listed(&project.settings.claude_allowed_tools, tool) {
        let reason = format!("the tool `{tool}` is not allowed in project `{}`", project.name);
        return ToolVerdict::refused_by_gateway(reason);
    }
    if let Some((path, access)) = file_access(tool, &call.tool_input) {
        let Some(path) = path else {
            return ToolVerdict::refused_by_gateway(format!("`{tool}` names no path"));
        };
        let local = project.placement.pod.is_none();
        if let Err(reason) = paths::check(&project.workspace, &path, access, local) {
            return ToolVerdict::refused_by_gateway(reason);
        }
    }
    let mut decisions = vec![gateway_decision("allow", None)];
    let mut updated_input = None;
    if tool == "Bash" {
        match bash(policies, project, key_id, &call.tool_input).await {
            Ok((rewritten, taken)) => {
                decisions.extend(taken);
                updated_input = rewritten;
            }
            Err((reason, taken)) => {
                decisions.extend(taken);
                return ToolVerdict::denied(reason, decisions);
            }
        }
    }
    ToolVerdict {
        allowed: true,
        reason: None,
        updated_input,
        decisions,
    }
}

/// A `Bash` call through the sanitizer chain; the input to run instead when a sanitizer
/// rewrote the script.
async fn bash(
    policies: &Policies,
    project: &Project,
    key_id: &str,
    input: &Value,
) -> Result<(Option<Value>, Vec<Decision>), (String, Vec<Decision>)> {
    let Some(script) = input.get("command").and_then(Value::as_str) else {
        return Err(("`Bash` names no command".into(), Vec::new()));
    };
    let command = PluginCommand {
        kind: "shell".into(),
        script: Some(script.to_owned()),
        args: None,
        prompt: None,
        env: Default::default(),
    };
    let input_for_chain = SanitizeInput {
        project: project.name.clone(),
        command,
        key_id: key_id.to_owned(),
        scopes: Vec::new(),
        workdir: project.workspace.to_string_lossy().into_owned(),
    };
    let recheck = |c: &PluginCommand| match (&c.kind[..], &c.script) {
        ("shell", Some(s)) if !s.trim().is_empty() => Ok(()),
        _ => Err("a Bash call can only be rewritten to another shell script".to_owned()),
    };
    match policies.sanitize(input_for_chain, recheck).await {
        Ok((final_command, decisions)) => {
            let rewritten = final_command.script.filter(|s| s != script).map(|s| {
                let mut updated = input.clone();
                updated["command"] = Value::String(s);
                updated
            });
            Ok((rewritten, decisions))
        }
        Err((refusal, decisions)) => Err((refusal.to_string(), decisions)),
    }
}

/// Longest part of a tool input repeated on the audit trail.
const MAX_AUDIT_INPUT_CHARS: usize = 2048;

/// What identifies a call on the audit trail and in its event: the tool, its id, and the part
/// of the input that was judged (a command or a path; never file contents).
fn judged_input(call: &ToolCall) -> Value {
    let judged = match call.tool_name.as_str() {
        "Bash" => call
            .tool_input
            .get("command")
            .and_then(Value::as_str)
            .map(str::to_owned),
        tool => file_access(tool, &call.tool_input).and_then(|(path, _)| path),
    };
    judged.map_or(Value::Null, |text| {
        Value::String(text.chars().take(MAX_AUDIT_INPUT_CHARS).collect())
    })
}

impl ToolVerdict {
    /// `allow` or `deny`.
    pub fn decision(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }

    /// The detail of the call's audit row.
    pub fn audit_detail(&self, call: &ToolCall) -> String {
        serde_json::json!({
            "tool": call.tool_name,
            "tool_use_id": call.tool_use_id,
            "input": judged_input(call),
            "reason": self.reason,
            "rewritten": self.updated_input.is_some(),
            "decisions": self.decisions,
        })
        .to_string()
    }

    /// The typed event of the call in the run's stream.
    pub fn event(&self, call: &ToolCall) -> String {
        serde_json::json!({
            "type": "tool_decision",
            "tool": call.tool_name,
            "tool_use_id": call.tool_use_id,
            "input": judged_input(call),
            "decision": self.decision(),
            "reason": self.reason,
            "decisions": self.decisions,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{PluginError, Verdict};

    fn project(allowed: &[&str]) -> Project {
        let settings = crate::projects::ProjectSettings {
            claude_allowed_tools: allowed.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        Project {
            name: "demo".into(),
            description: None,
            workspace: "/w/demo".into(),
            placement: crate::plugins::Placement {
                pod: Some("pod".into()),
                container: None,
            },
            settings,
        }
    }

    /// A sanitizer that rewrites `make` into `make -n`, and fails on anything with `trap`.
    struct Rewriter;

    #[async_trait::async_trait]
    impl crate::plugins::CommandSanitizer for Rewriter {
        fn name(&self) -> &str {
            "rewriter"
        }
        async fn sanitize(&self, input: &SanitizeInput) -> Result<crate::plugins::Answer<Verdict>, PluginError> {
            let script = input.command.script.clone().unwrap_or_default();
            if script.contains("trap") {
                return Err(PluginError {
                    plugin: "rewriter".into(),
                    digest: Some("d".into()),
                    message: "trapped".into(),
                    kind: crate::plugins::FailureKind::Failed,
                });
            }
            let value = match script.as_str() {
                "make" => Verdict::Rewrite(PluginCommand {
                    script: Some("make -n".into()),
                    ..input.command.clone()
                }),
                _ => Verdict::Allow,
            };
            Ok(crate::plugins::Answer {
                value,
                digest: "d".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_rewrite_becomes_the_updated_input_and_a_failing_plugin_denies() {
        let policies = Policies::new(crate::plugins::Chains {
            sanitizers: vec![std::sync::Arc::new(Rewriter)],
            validators: vec![],
        });
        let p = project(&["Bash"]);
        let input = serde_json::json!({"command": "make", "description": "build"});
        let v = judge(&policies, &p, "key_1", &call("Bash", input)).await;
        assert!(v.allowed, "{v:?}");
        let updated = v.updated_input.unwrap();
        assert_eq!(
            (updated["command"].as_str(), updated["description"].as_str()),
            (Some("make -n"), Some("build"))
        );
        let v = judge(
            &policies,
            &p,
            "key_1",
            &call("Bash", serde_json::json!({"command": "trap x"})),
        )
        .await;
        assert!(
            !v.allowed && v.reason.unwrap().contains("trapped"),
            "a failed plugin fails closed"
        );
        assert_eq!(v.decisions.last().unwrap().verdict, "failed");
    }

    fn call(tool: &str, input: Value) -> ToolCall {
        serde_json::from_value(serde_json::json!({ "tool_name": tool, "tool_input": input })).unwrap()
    }

    #[tokio::test]
    async fn the_allowlist_and_the_path_rules_come_first() {
        let policies = Policies::default();
        let p = project(&["Bash", "Write", "Read", "mcp__docs__*"]);
        let (policies, p) = (&policies, &p);
        let judged = |c| async move { judge(policies, p, "key_1", &c).await };
        let v = judged(call("WebFetch", serde_json::json!({"url": "https://x"}))).await;
        assert!(
            !v.allowed && v.reason.as_deref().unwrap().contains("not allowed"),
            "{v:?}"
        );
        assert!(judged(call("mcp__docs__search", serde_json::json!({}))).await.allowed);
        let v = judged(call("Write", serde_json::json!({"file_path": "../outside.txt"}))).await;
        assert!(!v.allowed && v.reason.unwrap().contains("outside"));
        assert!(!judged(call("Write", serde_json::json!({}))).await.allowed);
        assert!(
            judged(call("Write", serde_json::json!({"file_path": "a.txt"})))
                .await
                .allowed
        );
        assert!(judged(call("Bash", serde_json::json!({"command": "ls"}))).await.allowed);
        assert!(!judged(call("Bash", serde_json::json!({}))).await.allowed);
    }
}
