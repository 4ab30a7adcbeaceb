//! Reading a `text/event-stream` answer as it arrives: events of `event:`, `id:` and `data:`
//! lines, comments (heartbeats) skipped.

use futures::StreamExt;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Event {
    /// Its `event:` name (`message` when it has none).
    pub(super) name: String,
    /// Its `id:`.
    pub(super) id: Option<String>,
    /// Its `data:` lines, joined by newlines.
    pub(super) data: String,
}

/// The events of a response body, in order; the stream ends when the body does (or breaks: the
/// error is the last item).
pub(super) fn events(response: reqwest::Response) -> impl futures::Stream<Item = Result<Event, reqwest::Error>> {
    let body = response.bytes_stream();
    futures::stream::unfold(
        (body, Vec::new(), Parser::default()),
        |(mut body, mut buffer, mut parser)| async move {
            loop {
                if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line[..end]);
                    if let Some(event) = parser.line(line.trim_end_matches('\r')) {
                        return Some((Ok(event), (body, buffer, parser)));
                    }
                    continue;
                }
                match body.next().await {
                    Some(Ok(bytes)) => buffer.extend_from_slice(&bytes),
                    Some(Err(e)) => return Some((Err(e), (body, buffer, parser))),
                    None => return None,
                }
            }
        },
    )
}

/// The fields of the event being read.
#[derive(Debug, Default)]
struct Parser {
    name: Option<String>,
    id: Option<String>,
    data: Vec<String>,
}

impl Parser {
    /// Takes one line; an empty line completes an event.
    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            if self.data.is_empty() && self.name.is_none() {
                return None;
            }
            let event = Event {
                name: self.name.take().unwrap_or_else(|| "message".into()),
                id: self.id.take(),
                data: std::mem::take(&mut self.data).join("\n"),
            };
            return Some(event);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = Some(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_make_events_and_comments_are_skipped() {
        let mut parser = Parser::default();
        let lines = [
            ": heartbeat",
            "",
            "event: output",
            "id: 7",
            "data: {\"a\":1}",
            "",
            "event: end",
            "data: x",
            "data: y",
            "",
        ];
        let events: Vec<Event> = lines.iter().filter_map(|l| parser.line(l)).collect();
        assert_eq!(
            events,
            [
                Event {
                    name: "output".into(),
                    id: Some("7".into()),
                    data: "{\"a\":1}".into()
                },
                Event {
                    name: "end".into(),
                    id: None,
                    data: "x\ny".into()
                },
            ]
        );
    }
}
