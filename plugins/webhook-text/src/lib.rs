//! What the webhook formatters share: a summary of an rdev event (title, outcome, fields) read
//! from whatever JSON object the event is, and truncation at character boundaries.

use serde_json::Value;

/// How an event ended, for colours and mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed, timed out, was rejected or interrupted.
    Failure,
    /// It was cancelled.
    Cancelled,
    /// Anything else (started, queued, unknown events).
    Info,
}

/// An event, summarised for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// One line: what happened, where.
    pub title: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Details as name/value pairs, in a stable order.
    pub fields: Vec<(String, String)>,
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn outcome(word: &str) -> Option<Outcome> {
    match word {
        "succeeded" => Some(Outcome::Success),
        "failed" | "timed_out" | "rejected" | "interrupted" => Some(Outcome::Failure),
        "cancelled" => Some(Outcome::Cancelled),
        _ => None,
    }
}

impl Summary {
    /// Summarises `event` (any JSON; a `command` object is used when present) of type `event_type`.
    pub fn of(event_type: &str, event: &Value) -> Self {
        let command = event.get("command").unwrap_or(&Value::Null);
        let field = |name: &str| command.get(name).and_then(text);
        let state = field("state");
        let last_word = event_type.rsplit('.').next().unwrap_or(event_type);
        let outcome = state
            .as_deref()
            .and_then(outcome)
            .or(outcome(last_word))
            .unwrap_or(Outcome::Info);
        let what = event_type.replace(['.', '_'], " ");
        let title = match (field("project"), field("kind")) {
            (Some(project), Some(kind)) => format!("{what}: {kind} in {project}"),
            (Some(project), None) => format!("{what} in {project}"),
            _ => what,
        };
        let mut fields = Vec::new();
        for (label, name) in [
            ("Project", "project"),
            ("Kind", "kind"),
            ("State", "state"),
            ("Exit code", "exit_code"),
            ("Command", "id"),
        ] {
            if let Some(value) = field(name) {
                fields.push((label.to_string(), value));
            }
        }
        if let Some(at) = event.get("at").and_then(text) {
            fields.push(("At".to_string(), at));
        }
        Self { title, outcome, fields }
    }
}

/// `text` cut to at most `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some(_) if max == 0 => String::new(),
        Some(_) => {
            let cut = text.char_indices().nth(max - 1).map_or(text.len(), |(at, _)| at);
            format!("{}…", &text[..cut])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summarises_a_command_event() {
        let event = json!({"type": "command.failed", "command": {"id": "cmd_1", "project": "web", "kind": "shell",
            "state": "failed", "exit_code": 2}, "at": "2030-01-01T00:00:00Z"});
        let summary = Summary::of("command.failed", &event);
        assert_eq!(summary.title, "command failed: shell in web");
        assert_eq!(summary.outcome, Outcome::Failure);
        assert!(summary.fields.contains(&("Exit code".into(), "2".into())));
        assert_eq!(
            summary.fields.last(),
            Some(&("At".into(), "2030-01-01T00:00:00Z".into()))
        );
    }

    #[test]
    fn uses_the_event_type_when_the_event_has_no_command() {
        let summary = Summary::of("command.succeeded", &json!([1, 2]));
        assert_eq!(
            (summary.title.as_str(), summary.outcome),
            ("command succeeded", Outcome::Success)
        );
        assert_eq!(Summary::of("plugin.reloaded", &json!({})).outcome, Outcome::Info);
    }

    #[test]
    fn truncates_at_character_boundaries() {
        assert_eq!(truncate("héllo wörld", 5), "héll…");
        assert_eq!(truncate("short", 5), "short");
        assert_eq!(truncate("éé", 0), "");
        assert_eq!(truncate("ab", 1), "…");
    }
}
