//! The event payload, version 1 (documented in `docs/webhooks.md`): what formatters receive and
//! the generic formatter sends. Built from the event's audit row (its record), the command it is
//! about and, when a subscription asks, the end of the command's output; never environment
//! values, never output unless asked, and the same on every attempt.

use serde_json::{Map, Value, json};

use crate::store::{AuditRecord, CommandRecord, DeliveryRecord, OutputChunk};
use crate::time::to_rfc3339;

/// The payload's version; a change that removes or renames a field makes a new one.
pub const VERSION: u32 = 1;
/// Characters of a command's script, arguments or prompt in its summary.
const SUMMARY_CHARS: usize = 200;

/// What an event is about, read from the store for the payload.
pub struct EventFacts<'a> {
    /// The delivery (event type, project).
    pub delivery: &'a DeliveryRecord,
    /// The event's audit row.
    pub record: &'a AuditRecord,
    /// The command, for `command.*` events (absent for a rejected command, never stored).
    pub command: Option<&'a CommandRecord>,
    /// The end of its output, if the subscription asks for it.
    pub tail: Option<(Vec<OutputChunk>, usize)>,
}

/// The event as JSON text.
pub fn render(facts: &EventFacts<'_>) -> String {
    let entry = &facts.record.entry;
    let detail: Value = entry
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    let kind = facts.delivery.event_type.as_str();
    let mut event = Map::new();
    event.insert("id".into(), json!(format!("evt_{}", facts.record.id)));
    event.insert("type".into(), json!(kind));
    event.insert("version".into(), json!(VERSION));
    event.insert("at".into(), json!(to_rfc3339(entry.at)));
    event.insert("project".into(), json!(facts.delivery.project));
    event.insert("actor".into(), json!({ "key_id": entry.key_id }));
    match kind.split_once('.').map_or(kind, |(family, _)| family) {
        "command" => {
            event.insert("command".into(), command(kind, facts, &detail));
        }
        "key" => {
            event.insert("key".into(), json!({ "id": entry.target }));
        }
        "plugin" => {
            let mut plugin = json!({ "name": entry.target });
            let fields = [
                "digest",
                "error",
                "serving_digest",
                "previous_digest",
                "world",
                "to_digest",
                "reason",
                "forced",
            ];
            for field in fields {
                if let Some(value) = detail.get(field) {
                    plugin[field] = value.clone();
                }
            }
            event.insert("plugin".into(), plugin);
        }
        _ => {}
    }
    if let Some((chunks, max)) = &facts.tail {
        event.insert("output_tail".into(), tail(chunks, *max));
    }
    Value::Object(event).to_string()
}

fn command(kind: &str, facts: &EventFacts<'_>, detail: &Value) -> Value {
    let state = match kind {
        "command.accepted" => "queued",
        "command.started" => "running",
        other => other.strip_prefix("command.").unwrap_or(other),
    };
    let mut command = json!({
        "id": facts.command.map_or(Value::Null, |c| json!(c.id)),
        "project": facts.delivery.project,
        "state": state,
        "exit_code": detail.get("exit_code").cloned().unwrap_or(Value::Null),
        "reason": detail.get("reason").cloned().unwrap_or(Value::Null),
    });
    if let Some(c) = facts.command {
        let spec: Value = serde_json::from_str(&c.spec).unwrap_or(Value::Null);
        command["kind"] = json!(c.kind);
        command["priority"] = json!(c.priority);
        command["key_id"] = json!(c.key_id);
        command["created_at"] = json!(to_rfc3339(c.created_at));
        command["summary"] = json!(summary(&c.kind, &spec));
    }
    if kind == "command.rejected"
        && let Some(decisions) = detail.get("decisions")
    {
        command["decisions"] = decisions.clone();
    }
    command
}

/// The command's script, arguments or prompt, cut short.
fn summary(kind: &str, spec: &Value) -> String {
    let text = if let Some(script) = spec.get("script").and_then(Value::as_str) {
        script.to_owned()
    } else if let Some(args) = spec.get("args").and_then(Value::as_array) {
        let words: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
        format!("{kind} {}", words.join(" "))
    } else {
        spec.get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The last `max` bytes of the chunks (cut at a character boundary).
fn tail(chunks: &[OutputChunk], max: usize) -> Value {
    let text: String = chunks.iter().map(|c| c.text.as_str()).collect();
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    json!({ "text": &text[start..], "truncated": start > 0 || chunks.first().is_some_and(|c| c.seq > 1) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditEntry, CommandState, DeliveryState};

    fn delivery(kind: &str) -> DeliveryRecord {
        DeliveryRecord {
            id: "msg_1".into(),
            subscription_id: "whk_1".into(),
            event_id: 7,
            event_type: kind.into(),
            project: Some("demo".into()),
            state: DeliveryState::Sending,
            attempts: 0,
            attempts_total: 0,
            due_at: 0,
            last_status: None,
            last_error: None,
            created_at: 0,
            finished_at: None,
        }
    }

    fn command() -> CommandRecord {
        CommandRecord {
            id: "cmd_1".into(),
            project: "demo".into(),
            kind: "git".into(),
            spec: r#"{"kind":"git","args":["status"],"env":{"TOKEN":"s3cret"}}"#.into(),
            state: CommandState::Succeeded,
            priority: 0,
            timeout_secs: 60,
            exit_code: Some(0),
            reason: None,
            key_id: "key_1".into(),
            idempotency_key: None,
            request_hash: None,
            queue_seq: 1,
            pgid: None,
            runner: None,
            created_at: 0,
            started_at: None,
            finished_at: None,
            owner: None,
            session_id: None,
            run_summary: None,
        }
    }

    #[test]
    fn a_command_event_has_the_state_of_its_moment_and_no_environment() {
        let record = AuditRecord {
            id: 7,
            entry: AuditEntry {
                action: "command.succeeded".into(),
                detail: Some(r#"{"exit_code":0,"reason":null}"#.into()),
                ..AuditEntry::default()
            },
        };
        let (d, c) = (delivery("command.started"), command());
        let facts = EventFacts {
            delivery: &d,
            record: &record,
            command: Some(&c),
            tail: None,
        };
        let event: Value = serde_json::from_str(&render(&facts)).unwrap();
        assert_eq!(event["id"], "evt_7");
        assert_eq!(event["version"], 1);
        assert_eq!(event["command"]["state"], "running");
        assert_eq!(event["command"]["summary"], "git status");
        assert!(!event.to_string().contains("s3cret"));
        assert!(event.get("output_tail").is_none());
    }

    #[test]
    fn a_tail_is_bounded_and_says_when_it_was_cut() {
        let chunk = |seq, text: &str| OutputChunk {
            command_id: "cmd_1".into(),
            seq,
            stream: "stdout".into(),
            text: text.into(),
        };
        assert_eq!(
            tail(&[chunk(1, "héllo "), chunk(2, "world")], 5),
            json!({"text": "world", "truncated": true})
        );
        assert_eq!(tail(&[chunk(1, "ok")], 10), json!({"text": "ok", "truncated": false}));
    }
}
