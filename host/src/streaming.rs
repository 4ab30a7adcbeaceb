//! Live fan-out of command output to subscribers. Chunks are persisted before they are
//! published, so a subscriber that subscribes first and then replays from the store sees every
//! chunk exactly once (it skips live chunks it already replayed). Output of a command running on
//! another replica arrives as [`StreamEvent::Stored`]: subscribers read it from the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use tokio::sync::broadcast;

use crate::store::{CommandState, OutputChunk};

mod clock;

pub use clock::StreamClock;

/// Events a command's channel keeps for subscribers that fall behind (who then read the store
/// instead). Each holds up to a 64 KiB chunk and its frame, so this bounds a command's live
/// memory at about 32 MiB however many subscribers it has.
const CHANNEL_CAPACITY: usize = 256;

/// A persisted chunk as it is published: its wire frame is made once, by the first subscriber
/// that sends it, and shared by all the others.
#[derive(Debug)]
pub struct LiveChunk {
    /// The chunk.
    pub chunk: OutputChunk,
    frame: OnceLock<Bytes>,
}

impl LiveChunk {
    /// A chunk to publish.
    pub fn new(chunk: OutputChunk) -> Self {
        Self {
            chunk,
            frame: OnceLock::new(),
        }
    }

    /// Its frame, made by `encode` unless a subscriber made it already.
    pub fn frame(&self, encode: impl FnOnce(&OutputChunk) -> Bytes) -> Bytes {
        self.frame.get_or_init(|| encode(&self.chunk)).clone()
    }
}

impl PartialEq for LiveChunk {
    fn eq(&self, other: &Self) -> bool {
        self.chunk == other.chunk
    }
}

impl Eq for LiveChunk {}

/// Something that happened to a command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A persisted chunk.
    Output(Arc<LiveChunk>),
    /// Output up to this sequence number is stored (by another replica): read it from the store.
    Stored(i64),
    /// The command ended; nothing follows.
    End {
        /// Terminal state.
        state: CommandState,
        /// Exit status.
        exit_code: Option<i32>,
    },
}

/// Per-command broadcast channels.
#[derive(Debug, Clone, Default)]
pub struct OutputHub {
    channels: Arc<Mutex<HashMap<String, broadcast::Sender<StreamEvent>>>>,
}

impl OutputHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<StreamEvent>>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes to a command's live events.
    pub fn subscribe(&self, command_id: &str) -> broadcast::Receiver<StreamEvent> {
        self.lock()
            .entry(command_id.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Forgets a command's channel if nobody listens (after a subscriber found it already ended).
    pub fn release(&self, command_id: &str) {
        let mut channels = self.lock();
        if channels.get(command_id).is_some_and(|tx| tx.receiver_count() == 0) {
            channels.remove(command_id);
        }
    }

    /// Publishes persisted chunks of one command, in order, under one lock.
    pub fn publish(&self, command_id: &str, chunks: impl IntoIterator<Item = OutputChunk>) {
        if let Some(tx) = self.lock().get(command_id) {
            for chunk in chunks {
                let _ = tx.send(StreamEvent::Output(Arc::new(LiveChunk::new(chunk))));
            }
        }
    }

    /// Tells a command's subscribers that its output is stored up to `seq` elsewhere.
    pub fn stored_elsewhere(&self, command_id: &str, seq: i64) {
        if let Some(tx) = self.lock().get(command_id) {
            let _ = tx.send(StreamEvent::Stored(seq));
        }
    }

    /// Tells every subscriber to read the store again (notices from other replicas may have been
    /// missed).
    pub fn resync(&self) {
        for tx in self.lock().values() {
            let _ = tx.send(StreamEvent::Stored(i64::MAX));
        }
    }

    /// Announces the end of a command (after its terminal state is persisted) and drops its channel.
    pub fn close(&self, command_id: &str, state: CommandState, exit_code: Option<i32>) {
        if let Some(tx) = self.lock().remove(command_id) {
            let _ = tx.send(StreamEvent::End { state, exit_code });
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seq: i64) -> OutputChunk {
        OutputChunk {
            command_id: "c".into(),
            seq,
            stream: "stdout".into(),
            text: "x".into(),
        }
    }

    #[tokio::test]
    async fn subscribers_get_chunks_then_the_end() {
        let hub = OutputHub::default();
        let mut a = hub.subscribe("c");
        let mut b = hub.subscribe("c");
        hub.publish("c", [chunk(1)]);
        hub.close("c", CommandState::Succeeded, Some(0));
        let frames = std::sync::atomic::AtomicUsize::new(0);
        for rx in [&mut a, &mut b] {
            let StreamEvent::Output(live) = rx.recv().await.unwrap() else {
                panic!("not output")
            };
            assert_eq!(live.chunk, chunk(1));
            let frame = live.frame(|c| {
                frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Bytes::from(c.text.clone())
            });
            assert_eq!(frame, "x");
            assert!(matches!(
                rx.recv().await.unwrap(),
                StreamEvent::End { exit_code: Some(0), .. }
            ));
        }
        assert_eq!(frames.into_inner(), 1, "one frame made for both subscribers");
        assert_eq!(hub.len(), 0);
    }

    #[test]
    fn release_drops_unused_channels_only() {
        let hub = OutputHub::default();
        let rx = hub.subscribe("c");
        hub.release("c");
        assert_eq!(hub.len(), 1);
        drop(rx);
        hub.release("c");
        assert_eq!(hub.len(), 0);
    }
}
