//! Judges one tool call of a `claude` run: the project's tool allowlist first, then the rules
//! of the tool — a `Bash` command through the sanitizer chain as a `shell` script (the same
//! parsed-script rules), a file tool by its path — and then the tool-policy plugins, which see
//! every call by name and input (the `Bash` input as the sanitizers left it). The first
//! refusal wins; a failing plugin refuses (fail closed).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paths::{self, Access};
use crate::plugins::{Decision, PluginCommand, Policies, SanitizeInput, ToolInput};
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
        rewrite: None,
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

/// The run a tool call belongs to.
#[derive(Debug, Clone, Copy)]
pub struct RunOf<'a> {
    /// Its project.
    pub project: &'a Project,
    /// The `claude` command.
    pub command_id: &'a str,
    /// The key that submitted it.
    pub key_id: &'a str,
    /// That key's scopes.
    pub scopes: &'a [String],
}

/// Judges `call` of the run `run`.
pub async fn judge(policies: &Policies, run: RunOf<'_>, call: &ToolCall) -> ToolVerdict {
    let tool = call.tool_name.as_str();
    if let Err(reason) = gateway_rules(run.project, call) {
        return ToolVerdict::refused_by_gateway(reason);
    }
    let mut decisions = vec![gateway_decision("allow", None)];
    let mut updated_input = None;
    if tool == "Bash" {
        match bash(policies, &run, &call.tool_input).await {
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
    let input = ToolInput {
        project: run.project.name.clone(),
        workdir: run.project.workspace.to_string_lossy().into_owned(),
        command_id: run.command_id.to_owned(),
        key_id: run.key_id.to_owned(),
        tool_name: call.tool_name.clone(),
        input: updated_input.clone().unwrap_or_else(|| call.tool_input.clone()),
    };
    match policies.judge_tool(&input).await {
        Ok(taken) => decisions.extend(taken),
        Err((refusal, taken)) => {
            decisions.extend(taken);
            return ToolVerdict::denied(refusal.to_string(), decisions);
        }
    }
    ToolVerdict {
        allowed: true,
        reason: None,
        updated_input,
        decisions,
    }
}

/// The gateway's own rules: the project's tool allowlist, then the path rules of file tools.
fn gateway_rules(project: &Project, call: &ToolCall) -> Result<(), String> {
    let tool = call.tool_name.as_str();
    if !listed(&project.settings.claude_allowed_tools, tool) {
        return Err(format!(
            "the tool `{tool}` is not allowed in project `{}`",
            project.name
        ));
    }
    if let Some((path, access)) = file_access(tool, &call.tool_input) {
        let path = path.ok_or_else(|| format!("`{tool}` names no path"))?;
        let local = project.placement.pod.is_none();
        paths::check(&project.workspace, &path, access, local)?;
    }
    Ok(())
}

/// A `Bash` call through the sanitizer chain; the input to run instead when a sanitizer
/// rewrote the script.
async fn bash(
    policies: &Policies,
    run: &RunOf<'_>,
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
        project: run.project.name.clone(),
        command,
        key_id: run.key_id.to_owned(),
        scopes: run.scopes.to_vec(),
        workdir: run.project.workspace.to_string_lossy().into_owned(),
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
                "reboot" if !input.scopes.iter().any(|s| s == "admin") => Verdict::Deny("admins only".into()),
                _ => Verdict::Allow,
            };
            Ok(crate::plugins::Answer {
                value,
                digest: "d".into(),
            })
        }
    }

    #[tokio::test]
    async fn the_sanitizers_see_the_submitters_scopes() {
        let policies = Policies::new(crate::plugins::Chains {
            sanitizers: vec![std::sync::Arc::new(Rewriter)],
            ..Default::default()
        });
        let p = project(&["Bash"]);
        let reboot = call("Bash", serde_json::json!({"command": "reboot"}));
        assert!(!judge(&policies, run(&p), &reboot).await.allowed);
        let admin = ["admin".to_owned()];
        let as_admin = RunOf {
            scopes: &admin,
            ..run(&p)
        };
        assert!(judge(&policies, as_admin, &reboot).await.allowed);
    }

    #[tokio::test]
    async fn a_rewrite_becomes_the_updated_input_and_a_failing_plugin_denies() {
        let policies = Policies::new(crate::plugins::Chains {
            sanitizers: vec![std::sync::Arc::new(Rewriter)],
            ..Default::default()
        });
        let p = project(&["Bash"]);
        let input = serde_json::json!({"command": "make", "description": "build"});
        let v = judge(&policies, run(&p), &call("Bash", input)).await;
        assert!(v.allowed, "{v:?}");
        let updated = v.updated_input.unwrap();
        assert_eq!(
            (updated["command"].as_str(), updated["description"].as_str()),
            (Some("make -n"), Some("build"))
        );
        let v = judge(
            &policies,
            run(&p),
            &call("Bash", serde_json::json!({"command": "trap x"})),
        )
        .await;
        assert!(
            !v.allowed && v.reason.unwrap().contains("trapped"),
            "a failed plugin fails closed"
        );
        assert_eq!(v.decisions.last().unwrap().verdict, "failed");
    }

    const SCOPES: &[String] = &[];

    fn run(project: &Project) -> RunOf<'_> {
        RunOf {
            project,
            command_id: "cmd_1",
            key_id: "key_1",
            scopes: SCOPES,
        }
    }

    /// A tool policy that denies any input mentioning `secret`, fails on the tool `Trap`, and
    /// records what it saw.
    #[derive(Default)]
    struct SecretGuard(std::sync::Mutex<Vec<ToolInput>>);

    #[async_trait::async_trait]
    impl crate::plugins::ToolPolicy for SecretGuard {
        fn name(&self) -> &str {
            "secret-guard"
        }
        async fn judge(
            &self,
            input: &ToolInput,
        ) -> Result<crate::plugins::Answer<crate::plugins::ToolCallVerdict>, PluginError> {
            self.0.lock().unwrap().push(input.clone());
            if input.tool_name == "Trap" {
                return Err(PluginError {
                    plugin: "secret-guard".into(),
                    digest: Some("g".into()),
                    message: "trapped".into(),
                    kind: crate::plugins::FailureKind::Failed,
                });
            }
            let value = match input.input.to_string().contains("secret") {
                true => crate::plugins::ToolCallVerdict::Deny("no secrets".into()),
                false => crate::plugins::ToolCallVerdict::Allow,
            };
            Ok(crate::plugins::Answer {
                value,
                digest: "g".into(),
            })
        }
    }

    #[tokio::test]
    async fn tool_policies_judge_every_tool_last_and_see_the_rewritten_bash_input() {
        let guard = std::sync::Arc::new(SecretGuard::default());
        let policies = Policies::new(crate::plugins::Chains {
            sanitizers: vec![std::sync::Arc::new(Rewriter)],
            tool_policies: vec![guard.clone()],
            ..Default::default()
        });
        let p = project(&["*"]);
        let v = judge(
            &policies,
            run(&p),
            &call("WebFetch", serde_json::json!({"url": "https://secret.example"})),
        )
        .await;
        assert!(!v.allowed, "{v:?}");
        assert!(
            v.reason.as_deref().unwrap().contains("`secret-guard`: no secrets"),
            "{v:?}"
        );
        let last = v.decisions.last().unwrap();
        assert_eq!(
            (last.plugin.as_str(), last.verdict, last.digest.as_deref()),
            ("secret-guard", "deny", Some("g"))
        );
        assert!(
            judge(
                &policies,
                run(&p),
                &call("Bash", serde_json::json!({"command": "make"}))
            )
            .await
            .allowed
        );
        let seen = guard.0.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            (
                seen.tool_name.as_str(),
                seen.input["command"].as_str(),
                seen.command_id.as_str()
            ),
            ("Bash", Some("make -n"), "cmd_1")
        );
        let refused = judge(
            &policies,
            run(&p),
            &call("Write", serde_json::json!({"file_path": "/etc/secret"})),
        )
        .await;
        assert_eq!(
            refused.decisions.len(),
            1,
            "the gateway's refusal never reaches the plugins"
        );
        assert_eq!(guard.0.lock().unwrap().len(), 2);
        let trapped = judge(&policies, run(&p), &call("Trap", serde_json::json!({}))).await;
        assert!(!trapped.allowed, "a failing tool policy fails closed");
        assert_eq!(trapped.decisions.last().unwrap().verdict, "failed");
    }

    fn call(tool: &str, input: Value) -> ToolCall {
        serde_json::from_value(serde_json::json!({ "tool_name": tool, "tool_input": input })).unwrap()
    }

    #[tokio::test]
    async fn the_allowlist_and_the_path_rules_come_first() {
        let policies = Policies::default();
        let p = project(&["Bash", "Write", "Read", "mcp__docs__*"]);
        let (policies, p) = (&policies, &p);
        let judged = |c| async move { judge(policies, run(p), &c).await };
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
