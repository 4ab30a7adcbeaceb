//! Claude Code's `stream-json` output, read line by line into the typed events the gateway
//! streams beside the raw output (`init`, `text`, `tool_use`, `tool_result`, `result`), and the
//! run's summary (session, cost, turns, duration, error) kept on the command. Unknown event
//! types are skipped; a malformed, truncated or oversized line yields no event: the raw output
//! carries it either way.

use serde::Serialize;
use serde_json::{Value, json};

/// Longest line parsed; a longer one passes as raw output only.
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Longest tool result text repeated in a `tool_result` event.
const MAX_RESULT_CHARS: usize = 4096;

/// What a finished run reported in its `result` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// Claude Code's session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `total_cost_usd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// `num_turns`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_turns: Option<u64>,
    /// `duration_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `is_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
}

/// Splits stdout into lines and turns each into typed events.
#[derive(Debug, Default)]
pub(crate) struct StreamJson {
    partial: String,
    /// The current line is past [`MAX_LINE_BYTES`]: skip it up to its end.
    skipping: bool,
    summary: Option<RunSummary>,
}

impl StreamJson {
    /// The typed events (each one line of JSON) of the complete lines in `text`.
    pub(crate) fn push(&mut self, text: &str) -> Vec<String> {
        let mut events = Vec::new();
        let mut rest = text;
        while let Some(end) = rest.find('\n') {
            let (line, tail) = rest.split_at(end);
            rest = &tail[1..];
            if std::mem::take(&mut self.skipping) {
                self.partial.clear();
                continue;
            }
            if self.partial.is_empty() {
                self.line(line, &mut events);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.push_str(line);
                self.line(&whole, &mut events);
            }
        }
        if !self.skipping {
            self.partial.push_str(rest);
            if self.partial.len() > MAX_LINE_BYTES {
                self.partial = String::new();
                self.skipping = true;
            }
        }
        events
    }

    /// The typed events of a last line that had no newline.
    pub(crate) fn finish(&mut self) -> Vec<String> {
        let mut events = Vec::new();
        if !std::mem::take(&mut self.skipping) {
            let last = std::mem::take(&mut self.partial);
            self.line(&last, &mut events);
        }
        events
    }

    /// The summary of the `result` event, if one came.
    pub(crate) fn summary(&self) -> Option<&RunSummary> {
        self.summary.as_ref()
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
            return;
        };
        for typed in self.typed(&event) {
            events.push(typed.to_string());
        }
    }

    fn typed(&mut self, event: &Value) -> Vec<Value> {
        let session = event.get("session_id").cloned().unwrap_or(Value::Null);
        match event["type"].as_str() {
            Some("system") if event["subtype"] == "init" => vec![json!({
                "type": "init",
                "session_id": session,
                "model": event["model"],
                "cwd": event["cwd"],
                "permission_mode": event["permissionMode"],
                "tools": event["tools"],
            })],
            Some("assistant") => content(event).iter().filter_map(assistant_block).collect(),
            Some("user") => content(event).iter().filter_map(tool_result).collect(),
            Some("result") => {
                let summary = RunSummary {
                    session_id: session.as_str().map(str::to_owned),
                    cost_usd: event["total_cost_usd"].as_f64(),
                    num_turns: event["num_turns"].as_u64(),
                    duration_ms: event["duration_ms"].as_u64(),
                    is_error: event["is_error"].as_bool(),
                };
                let typed = json!({
                    "type": "result",
                    "subtype": event["subtype"],
                    "result": event["result"],
                    "summary": summary,
                });
                self.summary = Some(summary);
                vec![typed]
            }
            _ => Vec::new(),
        }
    }
}

fn content(event: &Value) -> &[Value] {
    event["message"]["content"].as_array().map_or(&[], Vec::as_slice)
}

fn assistant_block(block: &Value) -> Option<Value> {
    match block["type"].as_str()? {
        "text" => Some(json!({ "type": "text", "text": block["text"] })),
        "tool_use" => Some(json!({
            "type": "tool_use",
            "id": block["id"],
            "name": block["name"],
            "input": block["input"],
        })),
        _ => None,
    }
}

fn tool_result(block: &Value) -> Option<Value> {
    if block["type"] != "tool_result" {
        return None;
    }
    let text = match &block["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    let truncated = text.chars().count() > MAX_RESULT_CHARS;
    Some(json!({
        "type": "tool_result",
        "tool_use_id": block["tool_use_id"],
        "is_error": block["is_error"].as_bool().unwrap_or(false),
        "content": text.chars().take(MAX_RESULT_CHARS).collect::<String>(),
        "truncated": truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(events: &[String]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                serde_json::from_str::<Value>(e).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn a_run_becomes_typed_events_and_a_summary_across_split_reads() {
        let run = concat!(
            r#"{"type":"system","subtype":"init","session_id":"s1","cwd":"/w","model":"m","permissionMode":"dontAsk","tools":["Bash"]}"#,
            "\n",
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]}}"#,
            "\n",
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"a.txt"}]}]}}"#,
            "\n",
            r#"{"type":"stream_event","event":{}}"#,
            "\n",
            r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":12,"num_turns":2,"result":"done","session_id":"s1","total_cost_usd":0.25}"#,
            "\n"
        );
        let mut parser = StreamJson::default();
        let mut events = Vec::new();
        for piece in run.as_bytes().chunks(7) {
            events.extend(parser.push(std::str::from_utf8(piece).unwrap()));
        }
        assert_eq!(types(&events), ["init", "text", "tool_use", "tool_result", "result"]);
        let summary = parser.summary().unwrap();
        assert_eq!(summary.session_id.as_deref(), Some("s1"));
        assert_eq!(
            (summary.num_turns, summary.cost_usd, summary.is_error),
            (Some(2), Some(0.25), Some(false))
        );
        assert!(events[3].contains("a.txt"), "{}", events[3]);
    }

    #[test]
    fn malformed_truncated_and_oversized_lines_yield_nothing() {
        let mut parser = StreamJson::default();
        assert!(
            parser
                .push("not json {\n{\"type\":\"assistant\",\"message\":{\"content\":[\n")
                .is_empty()
        );
        let huge = "x".repeat(MAX_LINE_BYTES + 10);
        assert!(parser.push(&format!("{{\"type\":\"result\",\"r\":\"{huge}")).is_empty());
        assert!(
            parser.push("\"}\n").is_empty(),
            "the rest of an oversized line is skipped"
        );
        let after =
            parser.push("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}}\n");
        assert_eq!(types(&after), ["text"]);
        assert!(parser.summary().is_none());
    }
}
