//! Turns raw process output into numbered, persisted, published chunks. Bytes are decoded as
//! UTF-8 per stream, holding back a multi-byte character split across reads; invalid bytes
//! become U+FFFD. Whatever is available is persisted in one batch, then published.
//!
//! A `claude` run's stdout is also read as `stream-json`: each typed event it yields is
//! numbered as a chunk of the `event` stream right after the raw output it came from, and the
//! run's tool decisions join the same sequence, so replay and live streams show them in order.
//!
//! While the database is unavailable, chunks wait in memory and are stored in order once it is
//! back, so the stored sequence never has a gap. An outage longer than its bound (time or bytes)
//! loses the output: the writer stops and says so, and the runner interrupts the command.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::claude::RunSummary;
use super::claude::stream_json::StreamJson;
use super::events::OutputPublisher;
use crate::exec::StreamKind;
use crate::store::{Fault, OutputChunk, Store};

const MAX_BATCH: usize = 64;
/// The stream of typed events (JSON) beside `stdout` and `stderr`.
pub const EVENT_STREAM: &str = "event";
const MAX_CHUNK_BYTES: usize = 64 * 1024;
/// First and longest wait between attempts to store held output.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// How long, and how much, output may wait for the database.
#[derive(Debug, Clone, Copy)]
pub(super) struct OutageBound {
    /// Longest outage survived.
    pub(super) time: Duration,
    /// Most output held in memory meanwhile.
    pub(super) bytes: u64,
}

/// Why a command's output could not be kept; the runner interrupts the command with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct OutputLost(String);

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

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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
    fn push(&mut self, mut bytes: Vec<u8>) -> String {
        if self.pending.is_empty() {
            // The usual case, a read that starts on a character: no copy unless it is invalid.
            let complete = bytes.len() - incomplete_tail_len(&bytes);
            self.pending.extend_from_slice(&bytes[complete..]);
            bytes.truncate(complete);
            return String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        }
        self.pending.extend_from_slice(&bytes);
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
    publisher: OutputPublisher,
    command_id: String,
    next_seq: i64,
    stdout: Utf8Carry,
    stderr: Utf8Carry,
    kept_bytes: u64,
    max_bytes: u64,
    /// Numbered chunks not stored yet (only while the database is unavailable).
    held: Vec<OutputChunk>,
    held_bytes: u64,
    /// When the current outage began, and when to try again.
    outage: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Duration,
    bound: OutageBound,
    /// Cancelled when the output is lost, so that the runner stops the command at once.
    lost: CancellationToken,
    /// Counts the batches of output received, for the runner's idle watchdog.
    activity: watch::Sender<u64>,
    /// For a `claude` run: its stdout read as `stream-json`, and its tool decisions.
    claude: Option<(StreamJson, mpsc::Receiver<String>)>,
}

/// What woke the writer.
enum Input {
    Read((StreamKind, Vec<u8>)),
    Event(String),
    Closed,
    Retry,
}

impl OutputWriter {
    pub(super) fn new(
        store: Arc<dyn Store>,
        publisher: OutputPublisher,
        command_id: &str,
        max_bytes: u64,
        bound: OutageBound,
    ) -> Self {
        Self {
            store,
            publisher,
            command_id: command_id.to_owned(),
            next_seq: 1,
            stdout: Utf8Carry::default(),
            stderr: Utf8Carry::default(),
            kept_bytes: 0,
            max_bytes,
            held: Vec::new(),
            held_bytes: 0,
            outage: None,
            retry_at: None,
            backoff: RETRY_MIN,
            bound,
            lost: CancellationToken::new(),
            activity: watch::Sender::new(0),
            claude: None,
        }
    }

    /// Reads the output as a `claude` run's, with its tool decisions (typed events) from `decisions`.
    pub(super) fn for_claude(mut self, decisions: mpsc::Receiver<String>) -> Self {
        self.claude = Some((StreamJson::default(), decisions));
        self
    }

    /// Cancelled once the output is lost.
    pub(super) fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Changes whenever output arrives; closed once the writer is done.
    pub(super) fn activity(&self) -> watch::Receiver<u64> {
        self.activity.subscribe()
    }

    /// Consumes output until both streams close and everything is stored; for a `claude` run,
    /// what its `result` event reported.
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<(StreamKind, Vec<u8>)>,
    ) -> Result<Option<RunSummary>, OutputLost> {
        let pumped = self.pump(&mut rx).await;
        // What was stored becomes durable in full before the command's end can be reported.
        let sealed = self.store.seal_output(&self.command_id).await;
        let result = match (pumped, sealed) {
            (Ok(()), Err(e)) => {
                tracing::error!(command_id = %self.command_id, error = %e, "output could not be made durable");
                Err(OutputLost(format!(
                    "the output could not be made durable ({})",
                    e.summary()
                )))
            }
            (pumped, _) => pumped,
        };
        if result.is_err() {
            self.lost.cancel();
        }
        result.map(|()| self.claude.and_then(|(parser, _)| parser.summary().cloned()))
    }

    /// The next read, typed event, end of output, or the time to retry storing.
    async fn next(&mut self, rx: &mut mpsc::Receiver<(StreamKind, Vec<u8>)>) -> Input {
        let retry_at = self.retry_at;
        let decision = async {
            match &mut self.claude {
                Some((_, decisions)) => decisions.recv().await,
                None => std::future::pending().await,
            }
        };
        // A tool decision is sent before the hook answers, so before the tool's own output:
        // taken first, it is numbered before that output however fast output arrives.
        tokio::select! {
            biased;
            Some(event) = decision => Input::Event(event),
            read = rx.recv() => read.map_or(Input::Closed, Input::Read),
            () = sleep_until(retry_at) => Input::Retry,
        }
    }

    async fn pump(&mut self, rx: &mut mpsc::Receiver<(StreamKind, Vec<u8>)>) -> Result<(), OutputLost> {
        let mut open = true;
        loop {
            if open {
                match self.next(rx).await {
                    Input::Read(first) => self.take(first, rx),
                    Input::Event(event) => {
                        self.activity.send_modify(|n| *n += 1);
                        self.hold_numbered(EVENT_STREAM, event);
                    }
                    Input::Closed => {
                        open = false;
                        self.take_tails();
                    }
                    Input::Retry => {}
                }
            } else if let Some(at) = self.retry_at {
                tokio::time::sleep_until(at).await;
            }
            if self.outage.is_some() && self.held_bytes > self.bound.bytes {
                return Err(self.lost_to_outage());
            }
            if self.retry_at.is_none_or(|at| Instant::now() >= at) {
                self.flush().await?;
            }
            if !open && self.held.is_empty() {
                return Ok(());
            }
        }
    }

    /// Numbers whatever output is available now, starting with `first`.
    fn take(&mut self, first: (StreamKind, Vec<u8>), rx: &mut mpsc::Receiver<(StreamKind, Vec<u8>)>) {
        self.activity.send_modify(|n| *n += 1);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        for (kind, bytes) in coalesce(batch) {
            self.hold_read(kind, bytes);
        }
    }

    /// Numbers what the UTF-8 decoders still hold once both streams closed.
    fn take_tails(&mut self) {
        // Decisions still queued came before the output's last bytes.
        while let Some(decision) = self
            .claude
            .as_mut()
            .and_then(|(_, decisions)| decisions.try_recv().ok())
        {
            self.hold_numbered(EVENT_STREAM, decision);
        }
        let tails = [
            (StreamKind::Stdout, self.stdout.finish()),
            (StreamKind::Stderr, self.stderr.finish()),
        ];
        for (kind, text) in tails {
            self.hold_text(kind, text);
        }
        let events = self
            .claude
            .as_mut()
            .map(|(parser, _)| parser.finish())
            .unwrap_or_default();
        for event in events {
            self.hold_numbered(EVENT_STREAM, event);
        }
    }

    /// Numbers and holds `text` as the next chunk of `stream` (nothing if it is empty).
    fn hold_numbered(&mut self, stream: &str, text: String) {
        if text.is_empty() {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.held_bytes += text.len() as u64;
        self.held.push(OutputChunk {
            command_id: self.command_id.clone(),
            seq,
            stream: stream.to_owned(),
            text,
        });
    }

    /// Holds decoded output, followed by the typed events of the lines it completed.
    fn hold_text(&mut self, kind: StreamKind, text: String) {
        let events = match (&mut self.claude, kind) {
            (Some((parser, _)), StreamKind::Stdout) => parser.push(&text),
            _ => Vec::new(),
        };
        self.hold_numbered(kind.as_str(), text);
        for event in events {
            self.hold_numbered(EVENT_STREAM, event);
        }
    }

    fn hold_read(&mut self, kind: StreamKind, bytes: Vec<u8>) {
        if self.kept_bytes >= self.max_bytes {
            return;
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
            return self.hold_numbered(StreamKind::Stderr.as_str(), notice);
        }
        self.hold_text(kind, text);
    }

    /// Stores the held chunks in one transaction, then publishes them. A fault that passes keeps
    /// them held and schedules another attempt; anything else, or an outage past its bound,
    /// loses the output.
    async fn flush(&mut self) -> Result<(), OutputLost> {
        if self.held.is_empty() {
            return Ok(());
        }
        let batch = Arc::new(std::mem::take(&mut self.held));
        let stored = self.store.append_output(batch.clone()).await;
        // The store is done with its share: the batch goes on (or back) without a copy.
        self.held = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
        match stored {
            Ok(()) => {
                if self.outage.take().is_some() {
                    tracing::info!(command_id = %self.command_id, "output stored again after a storage outage");
                }
                self.retry_at = None;
                self.backoff = RETRY_MIN;
                self.held_bytes = 0;
                self.publisher.stored(&self.command_id, std::mem::take(&mut self.held));
                Ok(())
            }
            Err(e) if e.fault() == Fault::Unavailable => {
                let since = *self.outage.get_or_insert_with(|| {
                    tracing::warn!(command_id = %self.command_id, error = %e, "output held: storage unavailable");
                    Instant::now()
                });
                if since.elapsed() >= self.bound.time {
                    return Err(self.lost_to_outage());
                }
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(RETRY_MAX);
                Ok(())
            }
            Err(e) => {
                tracing::error!(command_id = %self.command_id, error = %e, "output could not be stored");
                Err(OutputLost(format!("the output could not be stored ({})", e.summary())))
            }
        }
    }

    fn lost_to_outage(&self) -> OutputLost {
        let secs = self.outage.map_or(0, |since| since.elapsed().as_secs());
        OutputLost(format!(
            "storage was unavailable for {secs}s with {} bytes of output waiting (bounds: {}s, {} bytes); \
             output after sequence {} was not stored",
            self.held_bytes,
            self.bound.time.as_secs(),
            self.bound.bytes,
            self.held.first().map_or(self.next_seq, |c| c.seq) - 1
        ))
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
        let mut text = carry.push(bytes[..2].to_vec());
        text += &carry.push(bytes[2..8].to_vec());
        text += &carry.push(bytes[8..].to_vec());
        assert_eq!(text, "héllo €");
    }

    #[test]
    fn replaces_invalid_bytes_and_flushes_truncated_tails() {
        let mut carry = Utf8Carry::default();
        assert_eq!(carry.push(b"a\xffb\xe2\x82".to_vec()), "a\u{fffd}b");
        assert_eq!(carry.finish(), "\u{fffd}");
    }
}
