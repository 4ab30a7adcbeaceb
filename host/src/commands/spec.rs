//! What a command is: the request clients send, its validated form ([`CommandSpec`]) and the
//! process it becomes ([`Invocation`]). Argv kinds never pass through a shell.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::CommandsConfig;
use crate::exec::Invocation;
use crate::plugins::PluginCommand;
use crate::projects::ProjectSettings;

const MAX_SCRIPT_BYTES: usize = 64 * 1024;
const MAX_ARGS: usize = 256;
const MAX_ARG_BYTES: usize = 8 * 1024;
const MAX_ENV: usize = 32;
const MAX_ENV_VALUE_BYTES: usize = 4 * 1024;
/// Allowed priority range.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -100..=100;

/// Body of `POST /v1/projects/{project}/commands`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// `shell`, `claude`, or an argv kind such as `git`.
    pub kind: String,
    /// Script for `shell` (run by `sh -c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Arguments for argv kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Prompt for `claude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Higher starts first (-100..=100, default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Seconds before the command is killed (default: the project's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Extra environment (allowlisted names only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// `claude` only: resume this Claude Code session, which a command of the same project ran in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// `claude` only: continue the project's most recent session.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_session: Option<bool>,
    /// `claude` only: branch a new session off the one resumed (`resume` or `continue`; alone,
    /// the project's most recent session), leaving that one as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork: Option<bool>,
}

impl CommandRequest {
    /// Whether the request asks to go on from an earlier session.
    pub fn resumes(&self) -> bool {
        self.resume.is_some() || self.continue_session == Some(true) || self.fork == Some(true)
    }
}

/// The Claude Code session a `claude` command runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaudeSession {
    /// The session it runs in; for a fork, unknown until the run reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The earlier session it goes on from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// Whether it branches a new session off `resume`.
    #[serde(default)]
    pub fork: bool,
}

impl ClaudeSession {
    /// A new session, with an id of its own.
    pub fn fresh() -> Self {
        Self {
            id: Some(uuid::Uuid::new_v4().to_string()),
            resume: None,
            fork: false,
        }
    }

    /// Going on from `earlier`: in it, or (forking) in a new one.
    pub fn after(earlier: String, fork: bool) -> Self {
        Self {
            id: (!fork).then(|| earlier.clone()),
            resume: Some(earlier),
            fork,
        }
    }

    fn args(&self) -> Vec<String> {
        match (&self.resume, &self.id) {
            (Some(resume), _) if self.fork => vec!["--resume".into(), resume.clone(), "--fork-session".into()],
            (Some(resume), _) => vec!["--resume".into(), resume.clone()],
            (None, Some(id)) => vec!["--session-id".into(), id.clone()],
            (None, None) => Vec::new(),
        }
    }
}

/// A command as accepted: kind, what to run, and its environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// Kind.
    pub kind: String,
    /// Shell script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Argv arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Claude prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Extra environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The Claude Code session of a `claude` command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<ClaudeSession>,
}

impl From<&CommandSpec> for PluginCommand {
    fn from(spec: &CommandSpec) -> Self {
        Self {
            kind: spec.kind.clone(),
            script: spec.script.clone(),
            args: spec.args.clone(),
            prompt: spec.prompt.clone(),
            env: spec.env.clone(),
        }
    }
}

impl From<PluginCommand> for CommandSpec {
    fn from(command: PluginCommand) -> Self {
        Self {
            kind: command.kind,
            script: command.script,
            args: command.args,
            prompt: command.prompt,
            env: command.env,
            session: None,
        }
    }
}

/// A field-level problem with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Field.
    pub field: &'static str,
    /// Problem.
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> SpecError {
    SpecError {
        field,
        message: message.into(),
    }
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), SpecError> {
    if text.trim().is_empty() {
        return Err(err(field, "must not be empty"));
    }
    if text.len() > max {
        return Err(err(field, format!("must be at most {max} bytes")));
    }
    if text.contains('\0') {
        return Err(err(field, "must not contain NUL"));
    }
    Ok(())
}

impl CommandSpec {
    /// A shell command.
    pub fn shell(script: &str) -> Self {
        Self {
            kind: "shell".into(),
            script: Some(script.into()),
            args: None,
            prompt: None,
            env: BTreeMap::new(),
            session: None,
        }
    }

    /// The spec part of a request.
    pub fn from_request(req: &CommandRequest) -> Self {
        Self {
            kind: req.kind.clone(),
            script: req.script.clone(),
            args: req.args.clone(),
            prompt: req.prompt.clone(),
            env: req.env.clone().unwrap_or_default(),
            session: None,
        }
    }

    /// Checks the spec against the gateway's programs and the project's settings.
    pub fn validate(&self, commands: &CommandsConfig, project: &ProjectSettings) -> Result<(), SpecError> {
        let kind = self.kind.as_str();
        let known = kind == "shell" || commands.programs.contains_key(kind);
        if !known {
            return Err(err("kind", format!("unknown command kind `{kind}`")));
        }
        if !project.allowed_kinds.iter().any(|k| k == kind) {
            return Err(err("kind", format!("kind `{kind}` is not allowed in this project")));
        }
        let (needs, forbidden): (&str, [(&str, bool); 2]) = match kind {
            "shell" => (
                "script",
                [("args", self.args.is_some()), ("prompt", self.prompt.is_some())],
            ),
            "claude" => (
                "prompt",
                [("args", self.args.is_some()), ("script", self.script.is_some())],
            ),
            _ => (
                "args",
                [("script", self.script.is_some()), ("prompt", self.prompt.is_some())],
            ),
        };
        if let Some((field, _)) = forbidden.iter().find(|(_, present)| *present) {
            return Err(err("kind", format!("`{field}` cannot be used with kind `{kind}`")));
        }
        match needs {
            "script" => check_text("script", self.script.as_deref().unwrap_or_default(), MAX_SCRIPT_BYTES)?,
            "prompt" => check_text("prompt", self.prompt.as_deref().unwrap_or_default(), MAX_SCRIPT_BYTES)?,
            _ => self.validate_args()?,
        }
        self.validate_env(commands)
    }

    fn validate_args(&self) -> Result<(), SpecError> {
        let args = self.args.as_deref().unwrap_or_default();
        if args.len() > MAX_ARGS {
            return Err(err("args", format!("at most {MAX_ARGS} arguments")));
        }
        for arg in args {
            if arg.len() > MAX_ARG_BYTES || arg.contains('\0') {
                return Err(err(
                    "args",
                    format!("each argument must be at most {MAX_ARG_BYTES} bytes without NUL"),
                ));
            }
        }
        Ok(())
    }

    fn validate_env(&self, commands: &CommandsConfig) -> Result<(), SpecError> {
        if self.env.len() > MAX_ENV {
            return Err(err("env", format!("at most {MAX_ENV} variables")));
        }
        for (name, value) in &self.env {
            if !commands.env_allowlist.iter().any(|allowed| allowed == name) {
                return Err(err("env", format!("variable `{name}` is not allowed")));
            }
            if value.len() > MAX_ENV_VALUE_BYTES || value.contains('\0') {
                return Err(err("env", format!("value of `{name}` is too long or contains NUL")));
            }
        }
        Ok(())
    }

    /// The process for this (validated) spec in a project with `settings`.
    pub fn invocation(
        &self,
        command_id: &str,
        (commands, settings): (&CommandsConfig, &ProjectSettings),
        inherited: &BTreeMap<String, String>,
    ) -> Invocation {
        let (program, args) = match self.kind.as_str() {
            "shell" => (
                "sh".to_owned(),
                vec!["-c".to_owned(), self.script.clone().unwrap_or_default()],
            ),
            "claude" => {
                let mut args: Vec<String> = [
                    "-p",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    "--max-turns",
                    &settings.claude_max_turns.to_string(),
                    "--permission-mode",
                    settings.claude_permission_mode.as_str(),
                ]
                .map(str::to_owned)
                .to_vec();
                if let Some(budget) = settings.claude_max_budget_usd {
                    args.extend(["--max-budget-usd".to_owned(), budget.to_string()]);
                }
                args.extend(self.session.iter().flat_map(ClaudeSession::args));
                if let Some(base) = &commands.hook_url {
                    args.extend([
                        "--settings".to_owned(),
                        super::claude::hooks::settings_json(base, command_id),
                    ]);
                }
                args.extend(commands.claude_args.iter().cloned());
                // The prompt after `--`: a prompt such as `--dangerously-skip-permissions` would
                // otherwise be taken as that option.
                args.extend(["--".to_owned(), self.prompt.clone().unwrap_or_default()]);
                (
                    commands
                        .programs
                        .get("claude")
                        .cloned()
                        .unwrap_or_else(|| "claude".into()),
                    args,
                )
            }
            kind => (
                commands.programs.get(kind).cloned().unwrap_or_else(|| kind.to_owned()),
                self.args.clone().unwrap_or_default(),
            ),
        };
        Invocation {
            command_id: command_id.to_owned(),
            program,
            args,
            env: self.env.clone(),
            inherited: inherited.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> CommandSpec {
        serde_json::from_str(json).unwrap()
    }

    fn check(json: &str) -> Result<(), SpecError> {
        spec(json).validate(&CommandsConfig::default(), &ProjectSettings::default())
    }

    #[test]
    fn accepts_each_kind_with_its_field() {
        check(r#"{"kind":"shell","script":"ls"}"#).unwrap();
        check(r#"{"kind":"git","args":["status"]}"#).unwrap();
        check(r#"{"kind":"claude","prompt":"hi"}"#).unwrap();
    }

    #[test]
    fn rejects_mismatched_fields_and_unknown_kinds() {
        assert_eq!(check(r#"{"kind":"shell","args":["x"]}"#).unwrap_err().field, "kind");
        assert_eq!(check(r#"{"kind":"shell"}"#).unwrap_err().field, "script");
        assert_eq!(check(r#"{"kind":"rm","args":[]}"#).unwrap_err().field, "kind");
        assert_eq!(check(r#"{"kind":"git","args":["a\u0000"]}"#).unwrap_err().field, "args");
    }

    #[test]
    fn env_names_must_be_allowlisted() {
        assert_eq!(
            check(r#"{"kind":"shell","script":"x","env":{"LD_PRELOAD":"a"}}"#)
                .unwrap_err()
                .field,
            "env"
        );
        check(r#"{"kind":"shell","script":"x","env":{"CI":"1"}}"#).unwrap();
    }

    #[test]
    fn argv_kinds_never_use_a_shell() {
        let (commands, settings) = (CommandsConfig::default(), ProjectSettings::default());
        let inv = spec(r#"{"kind":"git","args":["log","; rm -rf /"]}"#).invocation(
            "cmd_test",
            (&commands, &settings),
            &BTreeMap::new(),
        );
        assert_eq!(inv.program, "git");
        assert_eq!(inv.args, vec!["log", "; rm -rf /"]);
        let inv = CommandSpec::shell("echo hi").invocation("cmd_test", (&commands, &settings), &BTreeMap::new());
        assert_eq!((inv.program.as_str(), inv.args[0].as_str()), ("sh", "-c"));
    }

    #[test]
    fn a_prompt_that_looks_like_an_option_stays_the_prompt() {
        let (commands, settings) = (CommandsConfig::default(), ProjectSettings::default());
        let inv = spec(r#"{"kind":"claude","prompt":"--dangerously-skip-permissions"}"#).invocation(
            "cmd_test",
            (&commands, &settings),
            &BTreeMap::new(),
        );
        assert_eq!(inv.args[inv.args.len() - 2..], ["--", "--dangerously-skip-permissions"]);
        let modes = inv.args.iter().position(|a| a == "--permission-mode").unwrap();
        assert_eq!(inv.args[modes + 1], "dontAsk");
    }
}
