//! The rules of each resource kind. Each pushes every error it finds; fields absent from the
//! request are checked only where the API requires them.

use crate::checks::{
    SCOPES, is_cidr, is_env_name, is_item_name, is_key_name_text, is_kind, is_project_name, is_rfc3339,
};
use crate::config::Config;
use rdev_plugin_sdk::FieldError;
use serde_json::{Map, Value};

type Fields = Map<String, Value>;

fn error(errors: &mut Vec<FieldError>, field: impl Into<String>, message: impl Into<String>) {
    errors.push(FieldError::new(field, message));
}

/// A present, non-null field.
fn present<'a>(fields: &'a Fields, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|value| !value.is_null())
}

/// A required string field.
fn required_string<'a>(fields: &'a Fields, name: &str, errors: &mut Vec<FieldError>) -> Option<&'a str> {
    match present(fields, name) {
        None => error(errors, name, "is required"),
        Some(Value::String(text)) => return Some(text),
        Some(_) => error(errors, name, "must be a string"),
    }
    None
}

/// An optional list of strings; each item is handed to `check` with its JSON path.
fn string_list(
    fields: &Fields,
    name: &str,
    errors: &mut Vec<FieldError>,
    mut check: impl FnMut(String, &str, &mut Vec<FieldError>),
) {
    match present(fields, name) {
        None => {}
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let path = format!("{name}[{index}]");
                match item.as_str() {
                    Some(text) => check(path, text, errors),
                    None => error(errors, path, "must be a string"),
                }
            }
        }
        Some(_) => error(errors, name, "must be a list of strings"),
    }
}

fn max_bytes(fields: &Fields, name: &str, limit: usize, errors: &mut Vec<FieldError>) {
    match present(fields, name) {
        None => {}
        Some(Value::String(text)) if text.len() > limit => {
            error(errors, name, format!("must be at most {limit} bytes"))
        }
        Some(Value::String(_)) => {}
        Some(_) => error(errors, name, "must be a string"),
    }
}

/// `POST /v1/keys`: `name`, `scopes`, `projects`, `allowed_cidrs`, `expires_at`.
pub fn key(config: &Config, fields: &Fields, errors: &mut Vec<FieldError>) {
    if let Some(name) = required_string(fields, "name", errors) {
        let chars = name.chars().count();
        if chars == 0 || chars > config.max_key_name_chars {
            error(
                errors,
                "name",
                format!("must be 1 to {} characters", config.max_key_name_chars),
            );
        } else if !is_key_name_text(name) {
            error(errors, "name", "may contain only letters, digits, spaces and `._-`");
        }
    }
    string_list(fields, "scopes", errors, |path, scope, errors| {
        if !SCOPES.contains(&scope) {
            error(
                errors,
                path,
                format!("unknown scope; expected one of {}", SCOPES.join(", ")),
            );
        }
    });
    string_list(fields, "projects", errors, |path, project, errors| {
        if !is_project_name(project) {
            error(
                errors,
                path,
                "must be 1 to 63 characters of `A-Za-z0-9._-`, starting with a letter or digit",
            );
        }
    });
    string_list(fields, "allowed_cidrs", errors, |path, cidr, errors| {
        if !is_cidr(cidr) {
            error(errors, path, "must be a CIDR block such as 10.0.0.0/8 or 2001:db8::/32");
        }
    });
    match present(fields, "expires_at") {
        None => {}
        Some(Value::String(text)) if is_rfc3339(text) => {}
        Some(_) => error(
            errors,
            "expires_at",
            "must be an RFC 3339 timestamp such as 2030-01-31T12:00:00Z",
        ),
    }
}

/// `POST /v1/projects/{project}/commands`: `kind`, `script`, `prompt`, `args`, `env`.
pub fn command(config: &Config, fields: &Fields, errors: &mut Vec<FieldError>) {
    if let Some(kind) = required_string(fields, "kind", errors)
        && !is_kind(kind)
    {
        error(errors, "kind", "must be 1 to 32 characters of `a-z0-9-`");
    }
    max_bytes(fields, "script", config.max_script_bytes, errors);
    max_bytes(fields, "prompt", config.max_prompt_bytes, errors);
    if let Some(Value::Array(args)) = present(fields, "args")
        && args.len() > config.max_args
    {
        error(errors, "args", format!("must have at most {} items", config.max_args));
    }
    string_list(fields, "args", errors, |path, arg, errors| {
        if arg.len() > config.max_arg_bytes {
            error(errors, path, format!("must be at most {} bytes", config.max_arg_bytes));
        }
    });
    match present(fields, "env") {
        None => {}
        Some(Value::Object(env)) => {
            if env.len() > config.max_env {
                error(errors, "env", format!("must have at most {} variables", config.max_env));
            }
            for (name, value) in env {
                let path = format!("env.{name}");
                if !is_env_name(name) {
                    error(errors, path.clone(), "name must match [A-Z_][A-Z0-9_]*");
                }
                match value.as_str() {
                    Some(text) if text.len() > config.max_env_value_bytes => {
                        error(
                            errors,
                            path,
                            format!("value must be at most {} bytes", config.max_env_value_bytes),
                        );
                    }
                    Some(_) => {}
                    None => error(errors, path, "value must be a string"),
                }
            }
        }
        Some(_) => error(errors, "env", "must be an object of names to values"),
    }
}

/// `PUT /v1/projects/{project}/claude/{type}/{name}`: `type`, `name`, `content`.
pub fn claude_item(config: &Config, fields: &Fields, errors: &mut Vec<FieldError>) {
    if let Some(kind) = required_string(fields, "type", errors)
        && !matches!(kind, "commands" | "skills" | "agents")
    {
        error(errors, "type", "must be one of commands, skills, agents");
    }
    if let Some(name) = required_string(fields, "name", errors)
        && !is_item_name(name)
    {
        error(
            errors,
            "name",
            "must be 1 to 64 characters of `A-Za-z0-9._-`, not starting with `.`",
        );
    }
    if required_string(fields, "content", errors).is_some() {
        max_bytes(fields, "content", config.max_claude_content_bytes, errors);
    }
}
