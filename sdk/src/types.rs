//! Constructors and accessors for the WIT record types, so that plugins and tests build values
//! without spelling out every field, and reports can print them.

use crate::{
    Command, CommandContext, EnvVar, ExpectedVerdict, FieldError, InventoryItem, Project, Rendered, ToolContext,
    ToolVerdict, Verdict, WebhookTarget,
};
use std::fmt;

impl Command {
    /// A `shell` command running `script` with `sh -c`.
    pub fn shell(script: impl Into<String>) -> Self {
        Self {
            kind: "shell".into(),
            script: Some(script.into()),
            args: None,
            prompt: None,
            env: Vec::new(),
        }
    }

    /// An argv command of `kind` (e.g. `git`) with `args` after the program.
    pub fn argv<I, S>(kind: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args = args.into_iter().map(Into::into).collect();
        Self {
            kind: kind.into(),
            script: None,
            args: Some(args),
            prompt: None,
            env: Vec::new(),
        }
    }

    /// A `claude` command with `prompt`.
    pub fn claude(prompt: impl Into<String>) -> Self {
        Self {
            kind: "claude".into(),
            script: None,
            args: None,
            prompt: Some(prompt.into()),
            env: Vec::new(),
        }
    }

    /// The same command with one more environment variable.
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push(EnvVar::new(name, value));
        self
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(script) = &self.script {
            write!(f, " {script:?}")?;
        }
        if let Some(args) = &self.args {
            write!(f, " {args:?}")?;
        }
        if let Some(prompt) = &self.prompt {
            write!(f, " prompt {prompt:?}")?;
        }
        for var in &self.env {
            write!(f, " {}={:?}", var.name, var.value)?;
        }
        Ok(())
    }
}

impl EnvVar {
    /// A variable `name=value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl CommandContext {
    /// A context for `project` running in `workdir`, with no key id and no scopes.
    pub fn new(project: impl Into<String>, workdir: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            workdir: workdir.into(),
            key_id: String::new(),
            scopes: Vec::new(),
        }
    }
}

impl Verdict {
    /// Refuses the command, telling the client `reason`.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self::Deny(reason.into())
    }

    /// Whether the command is allowed unchanged.
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow)
    }

    /// The reason of a denial.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Deny(reason) => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow => f.write_str("allow"),
            Self::Deny(reason) => write!(f, "deny: {reason}"),
            Self::Rewrite(command) => write!(f, "rewrite to {command}"),
        }
    }
}

impl ExpectedVerdict {
    /// Whether `verdict` is what this expects: the same kind, and for a rewrite the same command.
    pub fn matches(&self, verdict: &Verdict) -> bool {
        match (self, verdict) {
            (Self::Allow, Verdict::Allow) | (Self::Deny, Verdict::Deny(_)) => true,
            (Self::Rewrite(expected), Verdict::Rewrite(actual)) => expected == actual,
            _ => false,
        }
    }
}

impl fmt::Display for ExpectedVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow => f.write_str("allow"),
            Self::Deny => f.write_str("deny"),
            Self::Rewrite(command) => write!(f, "rewrite to {command}"),
        }
    }
}

impl FieldError {
    /// An error on the field at JSON path `field` (e.g. `scopes[1]`).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl InventoryItem {
    /// The value of label (or annotation) `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Project {
    /// A project `name` whose workspace is `workspace`, without a description.
    pub fn new(name: impl Into<String>, workspace: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            workspace: workspace.into(),
            description: None,
        }
    }

    /// The same project with a description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

impl WebhookTarget {
    /// The target of subscription `subscription` at `url`.
    pub fn new(subscription: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            subscription: subscription.into(),
            url: url.into(),
        }
    }
}

impl Rendered {
    /// A JSON body with content type `application/json`.
    pub fn json(body: &serde_json::Value) -> Self {
        Self {
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
        }
    }
}

impl ToolContext {
    /// The context of a run of command `command_id` in `project`, working in `workdir`, with no
    /// key id.
    pub fn new(project: impl Into<String>, workdir: impl Into<String>, command_id: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            workdir: workdir.into(),
            command_id: command_id.into(),
            key_id: String::new(),
        }
    }
}

impl ToolVerdict {
    /// Refuses the tool call, telling the agent `reason`.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self::Deny(reason.into())
    }

    /// Whether the call is allowed.
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow)
    }

    /// The reason of a denial.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Deny(reason) => Some(reason),
            Self::Allow => None,
        }
    }
}

impl fmt::Display for ToolVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow => f.write_str("allow"),
            Self::Deny(reason) => write!(f, "deny: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_rewrite_matches_only_the_same_command() {
        let expected = ExpectedVerdict::Rewrite(Command::argv("git", ["status"]));
        assert!(expected.matches(&Verdict::Rewrite(Command::argv("git", ["status"]))));
        assert!(!expected.matches(&Verdict::Rewrite(Command::argv("git", ["log"]))));
        assert!(!expected.matches(&Verdict::Allow));
    }

    #[test]
    fn expected_deny_matches_any_reason() {
        assert!(ExpectedVerdict::Deny.matches(&Verdict::deny("anything")));
        assert!(!ExpectedVerdict::Deny.matches(&Verdict::Allow));
    }

    #[test]
    fn commands_print_kind_payload_and_env() {
        let command = Command::shell("ls -l").with_env("RUST_LOG", "debug");
        assert_eq!(command.to_string(), r#"shell "ls -l" RUST_LOG="debug""#);
        assert_eq!(Command::argv("git", ["status"]).to_string(), r#"git ["status"]"#);
    }

    #[test]
    fn inventory_labels_are_looked_up_by_key() {
        let item = InventoryItem {
            source: "pod".into(),
            name: "web-0".into(),
            workspace: "/workspace".into(),
            labels: vec![("app".into(), "web".into())],
        };
        assert_eq!(item.label("app"), Some("web"));
        assert_eq!(item.label("tier"), None);
    }
}
