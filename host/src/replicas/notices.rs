//! Notices between replicas: after a change is committed, the replica that made it tells the
//! others (PostgreSQL `NOTIFY` on one channel, received with `LISTEN`) so they act within
//! milliseconds instead of at their next sweep. A notice carries no state of its own: receivers
//! read the database. Lost notices (a dropped listening connection) cost latency, never
//! correctness: receivers are told to resync, and periodic sweeps catch the rest. On SQLite
//! there is one process, and notices go nowhere.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::store::DatabaseConfig;

/// The PostgreSQL channel every replica listens on.
pub const CHANNEL: &str = "rdev_events";
/// Notices waiting to be sent; past this they are dropped (the sweeps cover them).
const OUTGOING: usize = 4096;
/// Most notices sent in one statement.
const BATCH: usize = 256;
/// Wait before listening again after the connection failed.
const RELISTEN: Duration = Duration::from_millis(500);

/// Something another replica should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// A command was queued in a project.
    Queued { project: String },
    /// A running command of a project ended: a slot may be free.
    SlotFreed { project: String },
    /// A command's output is stored up to `seq`.
    Output { command: String, seq: i64 },
    /// A command ended in a terminal state.
    Ended {
        command: String,
        state: String,
        exit_code: Option<i32>,
    },
    /// A cancel was asked for a command running elsewhere.
    CancelRequested { command: String },
    /// A key was revoked.
    KeyRevoked { key: String },
    /// Notices may have been missed (never sent: the listener says it after reconnecting).
    Resync,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The sending process, whose own notices it ignores.
    from: String,
    #[serde(flatten)]
    notice: Notice,
}

/// The notice bus of this process.
#[derive(Debug, Clone)]
pub struct Notices {
    process: Arc<str>,
    outgoing: Option<mpsc::Sender<Notice>>,
    incoming: broadcast::Sender<Notice>,
    /// Whether other replicas were live at the last heartbeat: a lone replica sends nothing.
    peers: Arc<AtomicBool>,
}

impl Notices {
    /// Notices that go nowhere: one process alone on its database.
    pub fn local() -> Self {
        Self {
            process: Arc::from(""),
            outgoing: None,
            incoming: broadcast::channel(1).0,
            peers: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Notices through PostgreSQL: a listening connection and a small pool for sending, both
    /// outside the store's pool so that notices never wait for a request's connection.
    pub async fn postgres(url: &str, settings: &DatabaseConfig, shutdown: CancellationToken) -> sqlx::Result<Self> {
        let options = PgConnectOptions::from_str(url)?
            .options([("statement_timeout", settings.statement_timeout_ms.to_string())]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(settings.acquire_timeout())
            .connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let (outgoing, rx) = mpsc::channel(OUTGOING);
        let notices = Self {
            process: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
            outgoing: Some(outgoing),
            incoming: broadcast::channel(OUTGOING).0,
            peers: Arc::new(AtomicBool::new(true)),
        };
        tokio::spawn(send_loop(pool, rx, notices.process.clone(), shutdown.clone()));
        tokio::spawn(listen_loop(listener, notices.clone(), shutdown));
        Ok(notices)
    }

    /// Says whether other replicas are live (each heartbeat): while a replica is alone on its
    /// database it sends no notice. One that joins is heard from at once and is told within a
    /// heartbeat; until then the sweeps cover what it would have been told.
    pub fn set_peers(&self, live: bool) {
        self.peers.store(live, Ordering::Relaxed);
    }

    /// Tells the other replicas, without waiting. A full queue drops the notice (logged).
    pub fn publish(&self, notice: Notice) {
        if !self.peers.load(Ordering::Relaxed) {
            return;
        }
        if let Some(tx) = &self.outgoing
            && tx.try_send(notice).is_err()
        {
            tracing::warn!("notice queue full; peers will see the change at their next sweep");
        }
    }

    /// Notices from other replicas.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.incoming.subscribe()
    }
}

/// Sends queued notices in batches, one statement each. Output notices of one command are
/// merged into the newest: a receiver reads everything stored up to it anyway.
async fn send_loop(pool: sqlx::PgPool, mut rx: mpsc::Receiver<Notice>, from: Arc<str>, shutdown: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // Notices queued before the shutdown still go out: the last ones of a stopping replica
        // (its slots freed) are the ones its peers need most.
        let received = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, BATCH) => n,
            () = shutdown.cancelled() => 0,
        };
        if received == 0 {
            return;
        }
        let payloads = payloads(&from, std::mem::take(&mut batch));
        let sent = sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
            .bind(CHANNEL)
            .bind(&payloads)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, count = payloads.len(), "could not notify peers; they will see the changes at their next sweep");
        }
    }
}

fn payloads(from: &str, batch: Vec<Notice>) -> Vec<String> {
    let mut newest_output: HashMap<String, usize> = HashMap::new();
    let mut kept: Vec<Notice> = Vec::with_capacity(batch.len());
    for notice in batch {
        if let Notice::Output { command, .. } = &notice {
            if let Some(&at) = newest_output.get(command) {
                kept[at] = notice;
                continue;
            }
            newest_output.insert(command.clone(), kept.len());
        }
        kept.push(notice);
    }
    kept.into_iter()
        .filter_map(|notice| {
            let envelope = Envelope {
                from: from.to_owned(),
                notice,
            };
            serde_json::to_string(&envelope).ok()
        })
        .collect()
}

async fn listen_loop(mut listener: PgListener, notices: Notices, shutdown: CancellationToken) {
    loop {
        let received = tokio::select! {
            r = listener.try_recv() => r,
            () = shutdown.cancelled() => return,
        };
        match received {
            Ok(Some(message)) => match serde_json::from_str::<Envelope>(message.payload()) {
                Ok(envelope) if *envelope.from != *notices.process => {
                    let _ = notices.incoming.send(envelope.notice);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "ignoring an unreadable notice"),
            },
            // The connection was lost; the next call reconnects and listens again.
            Ok(None) => {
                tracing::warn!("the notice connection was lost; listening again");
                let _ = notices.incoming.send(Notice::Resync);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for notices; retrying");
                tokio::time::sleep(RELISTEN).await;
                let _ = notices.incoming.send(Notice::Resync);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_notices_of_one_command_merge_into_the_newest() {
        let out = |command: &str, seq| Notice::Output {
            command: command.into(),
            seq,
        };
        let batch = vec![
            out("a", 1),
            out("b", 1),
            Notice::Queued { project: "p".into() },
            out("a", 3),
        ];
        let sent: Vec<Notice> = payloads("me", batch)
            .iter()
            .map(|p| serde_json::from_str::<Envelope>(p).unwrap().notice)
            .collect();
        assert_eq!(sent, [out("a", 3), out("b", 1), Notice::Queued { project: "p".into() }]);
    }
}
