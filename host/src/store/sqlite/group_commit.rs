//! Group commit on SQLite's one writer connection. Writes that arrive while a commit is being
//! synced wait in a queue and go into the next transaction together: one sync for all of them,
//! so `synchronous = FULL` costs a sync per batch, not per write. A write's statements commit
//! with its batch or not at all; the writes of the command path open no savepoint of their own
//! (each would cost two more round trips to sqlx's worker thread). Every write of a batch is answered
//! only once the batch is committed; a failed batch fails all of its writes with the same error
//! and closes the connection. Checkpoints that make the log start over run here too, between
//! batches: on any other connection they would hold the write lock while writes wait for it in
//! SQLite's busy handler, whose sleeps grow to tens of milliseconds.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::FileIdentity;
use crate::store::{StoreError, StoreResult};

/// Most writes in one transaction.
const MAX_BATCH: usize = 128;
/// Writes waiting for the writer; more make their callers wait.
const QUEUE: usize = 1024;

/// One write: runs on the batch's connection and returns its value.
pub(in crate::store) type Work<T> =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send>;

type Value = Box<dyn Any + Send>;

struct Job {
    work: Work<Value>,
    reply: oneshot::Sender<StoreResult<Value>>,
}

/// A statement run on its own between batches, outside any transaction.
struct Exclusive {
    sql: &'static str,
    reply: oneshot::Sender<StoreResult<()>>,
}

/// The queue in front of the writer connection.
#[derive(Debug, Clone)]
pub(in crate::store) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    exclusive: mpsc::Sender<Exclusive>,
}

impl GroupCommit {
    /// Starts the writer task on `pool` (one connection); it stops when the last handle is gone.
    pub(super) fn start(pool: SqlitePool, file: Arc<FileIdentity>, writes: Arc<AtomicU64>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let (exclusive, exclusives) = mpsc::channel(1);
        tokio::spawn(serve(pool, queue, exclusives, file, writes));
        Self { jobs, exclusive }
    }

    /// Runs `sql` on the writer connection once the current batch is committed, before the next.
    pub(super) async fn run_exclusive(&self, sql: &'static str) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Vanished("the SQLite writer stopped".into());
        self.exclusive
            .send(Exclusive { sql, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `work` in the next batch and answers once that batch is committed.
    pub(in crate::store) async fn run<T: Send + 'static>(&self, work: Work<T>) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        let work: Work<Value> =
            Box::new(move |conn| Box::pin(async move { work(conn).await.map(|value| Box::new(value) as Value) }));
        let stopped = || StoreError::Vanished("the SQLite writer stopped".into());
        self.jobs.send(Job { work, reply }).await.map_err(|_| stopped())?;
        let value = answer.await.map_err(|_| stopped())??;
        Ok(*value
            .downcast::<T>()
            .expect("a write answers the type it was asked for"))
    }
}

async fn serve(
    pool: SqlitePool,
    mut queue: mpsc::Receiver<Job>,
    mut exclusives: mpsc::Receiver<Exclusive>,
    file: Arc<FileIdentity>,
    writes: Arc<AtomicU64>,
) {
    loop {
        let first = tokio::select! {
            biased;
            Some(exclusive) = exclusives.recv() => {
                let _ = exclusive.reply.send(run_alone(&pool, exclusive.sql).await);
                continue;
            }
            job = queue.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (works, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.work, j.reply)).unzip();
        let count = works.len() as u64;
        match commit(&pool, &file, works).await {
            Ok(values) => {
                writes.fetch_add(count, Ordering::Relaxed);
                for (reply, value) in replies.into_iter().zip(values) {
                    let _ = reply.send(Ok(value));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One transaction for a batch. A connection whose transaction failed is closed instead of going
/// back to the pool: after a failed `COMMIT` (a full disk, an I/O error) neither sqlx nor we know
/// whether its transaction is still open, and reusing it would acknowledge later writes that never
/// commit while its lock keeps everyone else out.
async fn commit(pool: &SqlitePool, file: &FileIdentity, works: Vec<Work<Value>>) -> StoreResult<Vec<Value>> {
    file.check()?;
    let mut conn = pool.acquire().await?;
    let result = async {
        let mut tx = conn.begin().await?;
        let mut values = Vec::with_capacity(works.len());
        for work in works {
            values.push(work(&mut tx).await?);
        }
        tx.commit().await?;
        Ok(values)
    }
    .await;
    if result.is_err() {
        conn.close_on_drop();
    }
    result
}

async fn run_alone(pool: &SqlitePool, sql: &'static str) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(sql).execute(&mut *conn).await?;
    Ok(())
}
