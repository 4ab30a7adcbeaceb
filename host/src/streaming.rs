//! Live fan-out of command output to subscribers. Chunks are persisted before they are
//! published, so a subscriber that subscribes first and then replays from the store sees every
//! chunk exactly once (it skips live chunks it already replayed). Output of a command running on
//! another replica arrives as [`StreamEvent::Stored`]: subscribers read it from the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::store::{CommandState, OutputChunk};

const CHANNEL_CAPACITY: usize = 1024;

/// Something that happened to a command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A persisted chunk.
    Output(Arc<OutputChunk>),
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

    /// Publishes a persisted chunk.
    pub fn publish(&self, chunk: Arc<OutputChunk>) {
        if let Some(tx) = self.lock().get(&chunk.command_id) {
            let _ = tx.send(StreamEvent::Output(chunk));
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

    fn chunk(seq: i64) -> Arc<OutputChunk> {
        Arc::new(OutputChunk {
            command_id: "c".into(),
            seq,
            stream: "stdout".into(),
            text: "x".into(),
        })
    }

    #[tokio::test]
    async fn subscribers_get_chunks_then_the_end() {
        let hub = OutputHub::default();
        let mut a = hub.subscribe("c");
        let mut b = hub.subscribe("c");
        hub.publish(chunk(1));
        hub.close("c", CommandState::Succeeded, Some(0));
        for rx in [&mut a, &mut b] {
            assert_eq!(rx.recv().await.unwrap(), StreamEvent::Output(chunk(1)));
            assert!(matches!(
                rx.recv().await.unwrap(),
                StreamEvent::End { exit_code: Some(0), .. }
            ));
        }
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
