//! The SSE frames of an output stream. An output chunk's JSON is written by hand, byte for byte
//! what `serde_json` writes, because escaping its text is most of the work of streaming it:
//! the text is scanned 32 bytes at a time for the few bytes JSON must escape.

use std::io::Write;

use axum::body::Bytes;

use crate::commands::EVENT_STREAM;
use crate::store::{CommandState, Fault, OutputChunk, StoreError};

pub(super) const HEARTBEAT_COMMENT: &[u8] = b": heartbeat\n\n";

/// Appends one SSE event; `data` is serialized as a single line of JSON.
fn push_event(out: &mut Vec<u8>, event: &str, data: &impl serde::Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut *out, data).is_err() {
        out.extend_from_slice(b"null");
    }
    out.extend_from_slice(b"\n\n");
}

fn single_event(event: &str, data: &impl serde::Serialize) -> Bytes {
    let mut out = Vec::new();
    push_event(&mut out, event, data);
    out.into()
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends the escape of one byte that needs it, as `serde_json` writes it.
fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
    }
}

/// Appends `text` as a JSON string.
fn push_json_string(out: &mut Vec<u8>, text: &str) {
    const BLOCK: usize = 32;
    let bytes = text.as_bytes();
    out.push(b'"');
    // Start of the bytes not copied yet.
    let mut copied = 0;
    let mut escape = |at: usize, out: &mut Vec<u8>| {
        out.extend_from_slice(&bytes[copied..at]);
        push_escape(out, bytes[at]);
        copied = at + 1;
    };
    let blocks = bytes.chunks_exact(BLOCK);
    let rest_at = bytes.len() - blocks.remainder().len();
    for (n, block) in blocks.enumerate() {
        // One bit per byte that needs an escape, computed without branches (so, vectorized).
        let mut mask = block
            .iter()
            .enumerate()
            .fold(0u32, |mask, (i, &b)| mask | (u32::from(needs_escape(b)) << i));
        while mask != 0 {
            escape(n * BLOCK + mask.trailing_zeros() as usize, out);
            mask &= mask - 1;
        }
    }
    for (at, &b) in bytes.iter().enumerate().skip(rest_at) {
        if needs_escape(b) {
            escape(at, out);
        }
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// Appends one chunk: raw output as an `output` event, a typed event of a `claude` run (its
/// text is a line of JSON the gateway wrote) as a `claude` event. The JSON is written straight
/// into the frame, sized for it once.
pub(super) fn push_chunk(out: &mut Vec<u8>, chunk: &OutputChunk) {
    out.reserve(chunk.text.len() + chunk.text.len() / 16 + 96);
    let seq = chunk.seq;
    if chunk.stream == EVENT_STREAM {
        let _ = write!(out, "event: claude\nid: {seq}\ndata: {{\"seq\":{seq},\"event\":");
        out.extend_from_slice(chunk.text.as_bytes());
    } else {
        let _ = write!(out, "event: output\nid: {seq}\ndata: {{\"seq\":{seq},\"stream\":");
        push_json_string(out, &chunk.stream);
        out.extend_from_slice(b",\"text\":");
        push_json_string(out, &chunk.text);
    }
    out.extend_from_slice(b"}\n\n");
}

pub(super) fn output_event(chunk: &OutputChunk) -> Bytes {
    let mut out = Vec::new();
    push_chunk(&mut out, chunk);
    out.into()
}

/// The last event of a command's stream: its terminal state, exit code, and the reason it
/// ended as it did (`claude` not installed, timed out after 60 s…), so that a client needs no
/// second call to say why.
pub(super) fn end_event(state: CommandState, exit_code: Option<i32>, reason: Option<&str>) -> Bytes {
    single_event(
        "end",
        &serde_json::json!({ "state": state, "exit_code": exit_code, "reason": reason }),
    )
}

pub(super) fn error_event(code: &str, message: &str) -> Bytes {
    single_event("error", &serde_json::json!({ "code": code, "message": message }))
}

/// The last event of a stream that storage failed: a fault that passes says `unavailable` (the
/// client resumes later with `Last-Event-ID`), anything else `internal`.
pub(super) fn store_error_event(e: &StoreError) -> Bytes {
    match e.fault() {
        Fault::Unavailable => unavailable_event(),
        Fault::Internal => error_event("internal", "internal error"),
    }
}

pub(super) fn unavailable_event() -> Bytes {
    error_event("unavailable", "storage is unavailable; resume later with Last-Event-ID")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_frames_are_what_serde_json_writes() {
        let all_bytes: String = (0u8..0x80).map(char::from).collect();
        let texts = [
            String::new(),
            "plain".into(),
            all_bytes.clone(),
            all_bytes.repeat(3),
            format!("{}\"\\\n{}", "x".repeat(31), "é€😀".repeat(20)),
            "a".repeat(32),
            "\u{1f}".repeat(33),
            "\n".repeat(64) + "tail",
        ];
        for text in texts {
            let chunk = OutputChunk {
                command_id: "c".into(),
                seq: 42,
                stream: "stderr".into(),
                text,
            };
            let expected = format!(
                "event: output\nid: 42\ndata: {}\n\n",
                serde_json::to_string(&chunk).unwrap()
            );
            assert_eq!(String::from_utf8(output_event(&chunk).to_vec()).unwrap(), expected);
        }
    }
}
