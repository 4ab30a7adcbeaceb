//! Turns raw process output into numbered, persisted, published chunks. Bytes are decoded as
//! UTF-8 per stream, holding back a multi-byte character split across reads; invalid bytes
//! become U+FFFD. Whatever is available is persisted in one batch, then published.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::exec::StreamKind;
use crate::store::{OutputChunk, Store, StoreResult};
use crate::streaming::OutputHub;

const MAX_BATCH: usize = 64;
const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Merges adjacent reads of the same stream (up to [`MAX_CHUNK_BYTES`]), so that output that
/// arrives faster than it is stored travels in fewer, larger chunks instead of piling up.
fn coalesce(batch: Vec<(StreamKind, Vec<u8>)>) -> Vec<(StreamKind, Vec<u8>)> {
    let mut merged: Vec<(StreamKind, Vec<u8>)> = Vec::with_capacity(batch.len());
    for (kind, bytes) in batch {
        match merged.last_mut() {
            Some((last_kind, last)) if *last_kind == kind && last.len() + bytes.len() <= MAX_CHUNK_BYTES => {
                last.extend_from_slice(&bytes);
            }
            _ => merged.push((kind, bytes)),
        }
    }
    merged
}

/// Length of an incomplete UTF-8 sequence at the end of `bytes` (0 if none).
fn incomplete_tail_len(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue;
        }
        let needed = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// UTF-8 decoding that carries split characters over to the next read.
#[derive(Debug, Default)]
struct Utf8Carry {
    pending: Vec<u8>,
}

impl Utf8Carry {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let complete = self.pending.len() - incomplete_tail_len(&self.pending);
        let text = String::from_utf8_lossy(&self.pending[..complete]).into_owned();
        self.pending.drain(..complete);
        text
    }

    fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// Numbers, stores and publishes the output of one command.
pub(super) struct OutputWriter {
    store: Arc<dyn Store>,
    hub: OutputHub,
    command_id: String,
    next_seq: i64,
    stdout: Utf8Carry,
    stderr: Utf8Carry,
    kept_bytes: u64,
    max_bytes: u64,
}

impl OutputWriter {
    pub(super) fn new(store: Arc<dyn Store>, hub: OutputHub, command_id: &str, max_bytes: u64) -> Self {
        Self {
            store,
            hub,
            command_id: command_id.to_owned(),
            next_seq: 1,
            stdout: Utf8Carry::default(),
            stderr: Utf8Carry::default(),
            kept_bytes: 0,
            max_bytes,
        }
    }

    /// Consumes output until both streams close.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<(StreamKind, Vec<u8>)>) -> StoreResult<()> {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            let chunks: Vec<_> = coalesce(batch)
                .into_iter()
                .filter_map(|(kind, bytes)| self.chunk(kind, &bytes))
                .collect();
            self.persist(chunks).await?;
        }
        let tails = [
            (StreamKind::Stdout, self.stdout.finish()),
            (StreamKind::Stderr, self.stderr.finish()),
        ];
        let chunks: Vec<_> = tails
            .into_iter()
            .filter_map(|(kind, text)| self.numbered(kind, text))
            .collect();
        self.persist(chunks).await
    }

    fn chunk(&mut self, kind: StreamKind, bytes: &[u8]) -> Option<OutputChunk> {
        if self.kept_bytes >= self.max_bytes {
            return None;
        }
        self.kept_bytes += bytes.len() as u64;
        let text = match kind {
            StreamKind::Stdout => self.stdout.push(bytes),
            StreamKind::Stderr => self.stderr.push(bytes),
        };
        if self.kept_bytes >= self.max_bytes {
            let notice = format!(
                "{text}\n[rdev: output limit of {} bytes reached; the rest is dropped]\n",
                self.max_bytes
            );
            return self.numbered(StreamKind::Stderr, notice);
        }
        self.numbered(kind, text)
    }

    fn numbered(&mut self, kind: StreamKind, text: String) -> Option<OutputChunk> {
        if text.is_empty() {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(OutputChunk {
            command_id: self.command_id.clone(),
            seq,
            stream: kind.as_str().to_owned(),
            text,
        })
    }

    async fn persist(&self, chunks: Vec<OutputChunk>) -> StoreResult<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        self.store.append_output(&chunks).await?;
        for chunk in chunks {
            self.hub.publish(Arc::new(chunk));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_adjacent_reads_of_one_stream() {
        let out = |b: &[u8]| (StreamKind::Stdout, b.to_vec());
        let err = |b: &[u8]| (StreamKind::Stderr, b.to_vec());
        let merged = coalesce(vec![out(b"a"), out(b"b"), err(b"c"), out(b"d")]);
        assert_eq!(merged, vec![out(b"ab"), err(b"c"), out(b"d")]);
        let big = vec![0u8; MAX_CHUNK_BYTES];
        assert_eq!(coalesce(vec![out(&big), out(b"x")]).len(), 2);
    }

    #[test]
    fn holds_back_split_characters() {
        let mut carry = Utf8Carry::default();
        let bytes = "héllo €".as_bytes();
        let mut text = carry.push(&bytes[..2]);
        text += &carry.push(&bytes[2..8]);
        text += &carry.push(&bytes[8..]);
        assert_eq!(text, "héllo €");
    }

    #[test]
    fn replaces_invalid_bytes_and_flushes_truncated_tails() {
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.push(b"a\xffb\xe2\x82"), "a\u{fffd}b");
        assert_eq!(carry.finish(), "\u{fffd}");
    }
}
