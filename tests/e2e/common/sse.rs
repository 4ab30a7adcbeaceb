//! A small SSE client for tests: parses `event:`, `id:` and `data:` fields.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

/// One received event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// An open stream.
pub struct SseStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    pub status: reqwest::StatusCode,
}

impl SseStream {
    pub async fn open(url: &str, token: &str, last_event_id: Option<&str>) -> SseStream {
        let mut req = rdev::http_client().get(url).bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        SseStream {
            body: resp.bytes_stream().boxed(),
            buffer: String::new(),
            status,
        }
    }

    /// The next event, skipping comments; `None` when the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.body.next())
                .await
                .expect("stream stalled")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }

    /// Every remaining event until the stream ends.
    pub async fn collect(mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(e) = self.next().await {
            events.push(e);
        }
        events
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let mut event = String::from("message");
    let mut id = None;
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
        }
    }
    if data.is_empty() {
        return None;
    }
    let data = data.join("\n");
    Some(SseEvent {
        event,
        id,
        data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
    })
}

/// The complete events of raw SSE text (a cut-off last event is left out).
pub fn parse_complete(text: &str) -> Vec<SseEvent> {
    let complete = &text[..text.rfind("\n\n").map_or(0, |at| at + 2)];
    complete.split("\n\n").filter_map(parse).collect()
}

/// The concatenated text of `output` events.
pub fn output_text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.event == "output")
        .map(|e| e.data["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Every event of a stream, read as one body before decoding, so that a character split
/// across network chunks is never mangled by the client. Only for streams that end.
pub async fn collect_whole(url: &str, token: &str) -> Vec<SseEvent> {
    let resp = rdev::http_client().get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(60), resp.bytes())
        .await
        .expect("stream did not end")
        .unwrap();
    let text = String::from_utf8(body.to_vec()).expect("an SSE body is UTF-8");
    text.split("\n\n").filter_map(parse).collect()
}
