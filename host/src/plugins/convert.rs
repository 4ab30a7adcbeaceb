//! Converts between the gateway's types and the WIT types plugins see, bounding what comes back:
//! plugins are untrusted code even when they are policy.

use super::bindings::{tools, types};
use super::{DiscoveredProject, InventoryItem};
use super::{FieldError, PluginCommand, SanitizeInput, ToolCallVerdict, ToolInput, Verdict};

/// Longest deny reason or field message accepted from a plugin, in bytes.
const MAX_REASON_BYTES: usize = 4096;
/// Most field errors accepted from one validation.
const MAX_FIELD_ERRORS: usize = 256;
/// Most projects accepted from one discovery.
const MAX_PROJECTS: usize = 10_000;

/// A formatter's rendering, checked: the content type must be a plain `type/subtype[; params]`
/// header value (no line breaks, so nothing can smuggle a header of its own) and the body at
/// most `max_body` bytes.
pub fn rendered(r: types::Rendered, max_body: usize) -> Result<super::Rendered, String> {
    let ct = r.content_type.trim();
    let media = ct.split(';').next().unwrap_or_default().trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let header_safe = ct.len() <= 256 && ct.bytes().all(|b| (b' '..=b'~').contains(&b));
    if !header_safe || !media.split_once('/').is_some_and(|(t, sub)| token(t) && token(sub)) {
        return Err(format!("rendered an invalid content type {:?}", r.content_type));
    }
    if r.body.len() > max_body {
        return Err(format!(
            "rendered a body of {} bytes, more than the {max_body} allowed",
            r.body.len()
        ));
    }
    Ok(super::Rendered {
        content_type: ct.to_owned(),
        body: r.body,
    })
}

/// A command in WIT form.
pub fn command(spec: &PluginCommand) -> types::Command {
    types::Command {
        kind: spec.kind.clone(),
        script: spec.script.clone(),
        args: spec.args.clone(),
        prompt: spec.prompt.clone(),
        env: spec
            .env
            .iter()
            .map(|(name, value)| types::EnvVar {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    }
}

/// A command from WIT form.
pub fn spec(command: types::Command) -> PluginCommand {
    PluginCommand {
        kind: command.kind,
        script: command.script,
        args: command.args,
        prompt: command.prompt,
        env: command.env.into_iter().map(|v| (v.name, v.value)).collect(),
    }
}

/// The context of a command in WIT form.
pub fn context(input: &SanitizeInput) -> types::CommandContext {
    types::CommandContext {
        project: input.project.clone(),
        workdir: input.workdir.clone(),
        key_id: input.key_id.clone(),
        scopes: input.scopes.clone(),
    }
}

fn bounded(text: String, what: &str) -> Result<String, String> {
    if text.len() > MAX_REASON_BYTES {
        return Err(format!("a {what} of {} bytes (at most {MAX_REASON_BYTES})", text.len()));
    }
    Ok(text)
}

/// A verdict from WIT form; an oversize reason is bad output.
pub fn verdict(v: types::Verdict) -> Result<Verdict, String> {
    Ok(match v {
        types::Verdict::Allow => Verdict::Allow,
        types::Verdict::Deny(reason) => Verdict::Deny(bounded(reason, "deny reason")?),
        types::Verdict::Rewrite(command) => Verdict::Rewrite(spec(command)),
    })
}

/// A tool call and its run in WIT form.
pub fn tool_call(input: &ToolInput) -> (tools::ToolCall, tools::ToolContext) {
    let call = tools::ToolCall {
        tool_name: input.tool_name.clone(),
        input: input.input.to_string(),
    };
    let context = tools::ToolContext {
        project: input.project.clone(),
        workdir: input.workdir.clone(),
        command_id: input.command_id.clone(),
        key_id: input.key_id.clone(),
    };
    (call, context)
}

/// A tool verdict from WIT form, its reason bounded.
pub fn tool_verdict(v: tools::ToolVerdict) -> Result<ToolCallVerdict, String> {
    Ok(match v {
        tools::ToolVerdict::Allow => ToolCallVerdict::Allow,
        tools::ToolVerdict::Deny(reason) => ToolCallVerdict::Deny(bounded(reason, "deny reason")?),
    })
}

/// Field errors from WIT form, bounded in number and size.
pub fn field_errors(errors: Vec<types::FieldError>) -> Result<Vec<FieldError>, String> {
    if errors.len() > MAX_FIELD_ERRORS {
        return Err(format!("{} field errors (at most {MAX_FIELD_ERRORS})", errors.len()));
    }
    errors
        .into_iter()
        .map(|e| {
            Ok(FieldError {
                field: bounded(e.field, "field name")?,
                message: bounded(e.message, "field message")?,
            })
        })
        .collect()
}

/// An inventory in WIT form.
pub fn inventory(items: &[InventoryItem]) -> Vec<types::InventoryItem> {
    items
        .iter()
        .map(|item| types::InventoryItem {
            source: item.source.clone(),
            name: item.name.clone(),
            workspace: item.workspace.to_string_lossy().into_owned(),
            labels: item.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
        .collect()
}

/// The projects discovery returned, checked against the inventory: valid unique names, and
/// only workspaces the inventory offered (discovery may narrow visibility, never widen it).
pub fn projects(found: Vec<types::Project>, items: &[InventoryItem]) -> Result<Vec<DiscoveredProject>, String> {
    if found.len() > MAX_PROJECTS {
        return Err(format!("{} projects (at most {MAX_PROJECTS})", found.len()));
    }
    let offered: std::collections::BTreeSet<_> = items.iter().map(|i| i.workspace.as_path()).collect();
    let mut names = std::collections::BTreeSet::new();
    found
        .into_iter()
        .map(|p| {
            if !crate::names::is_valid_name(&p.name) {
                return Err(format!("a project with the invalid name `{}`", p.name.escape_debug()));
            }
            if !names.insert(p.name.clone()) {
                return Err(format!("the project `{}` twice", p.name));
            }
            let workspace = std::path::PathBuf::from(&p.workspace);
            if !offered.contains(workspace.as_path()) {
                return Err(format!(
                    "project `{}` with a workspace the inventory does not have",
                    p.name
                ));
            }
            let description = p.description.map(|d| bounded(d, "description")).transpose()?;
            Ok(DiscoveredProject {
                name: p.name,
                workspace,
                description,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, workspace: &str) -> InventoryItem {
        InventoryItem {
            source: "directory".into(),
            name: name.into(),
            workspace: workspace.into(),
            labels: Default::default(),
            placement: Default::default(),
        }
    }

    fn project(name: &str, workspace: &str) -> types::Project {
        types::Project {
            name: name.into(),
            workspace: workspace.into(),
            description: None,
        }
    }

    #[test]
    fn discovery_may_rename_and_drop_but_never_invent_a_workspace() {
        let inventory = [item("a", "/w/a"), item("b", "/w/b")];
        let kept = projects(vec![project("alpha", "/w/a")], &inventory).unwrap();
        assert_eq!(kept[0].name, "alpha");
        let invented = projects(vec![project("etc", "/etc")], &inventory).unwrap_err();
        assert!(invented.contains("workspace the inventory does not have"), "{invented}");
    }

    #[test]
    fn discovery_output_needs_valid_unique_names() {
        let inventory = [item("a", "/w/a")];
        assert!(projects(vec![project("../a", "/w/a")], &inventory).is_err());
        let twice = projects(vec![project("a", "/w/a"), project("a", "/w/a")], &inventory).unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
    }

    #[test]
    fn oversize_reasons_and_too_many_field_errors_are_bad_output() {
        assert!(verdict(types::Verdict::Deny("x".repeat(MAX_REASON_BYTES + 1))).is_err());
        assert_eq!(
            verdict(types::Verdict::Deny("no".into())),
            Ok(Verdict::Deny("no".into()))
        );
        let error = || types::FieldError {
            field: "f".into(),
            message: "m".into(),
        };
        assert!(field_errors(vec![error(); MAX_FIELD_ERRORS + 1]).is_err());
        assert_eq!(field_errors(vec![error()]).unwrap().len(), 1);
    }
}
