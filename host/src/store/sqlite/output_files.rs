//! Command output in append-only files beside the SQLite database (`<db>.output/<id>.log`, one
//! per command). SQLite rows take 64 KiB chunks at about 130 MB/s on our machines; a file takes
//! them at the speed of the page cache, so the database no longer bounds live output.
//!
//! A chunk is in the file (the kernel's page cache) before it is published, so a crash of the
//! gateway never loses what a follower saw. Files are synced in groups in the background: within
//! [`SYNC_EVERY`] of a write, sooner past [`SYNC_BYTES`], and a write waits for the sync once
//! [`MAX_UNSYNCED`] is waiting; a command's file is synced completely when its output is sealed,
//! before its end is reported. A crash of the machine loses at most that unsynced window of a
//! running command's output, never any of an ended command.

mod record;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use self::record::{INDEX_ENTRY, Records};
use crate::store::OutputChunk;

/// The longest a written chunk waits for its sync.
const SYNC_EVERY: Duration = Duration::from_millis(50);
/// Unsynced output that starts a sync at once.
const SYNC_BYTES: u64 = 8 << 20;
/// Unsynced output at which a write waits for a sync.
const MAX_UNSYNCED: u64 = 32 << 20;
/// Output between two records of the index.
const INDEX_EVERY: u64 = 1 << 20;
/// Slices in one vectored write (below every system's `IOV_MAX`).
const SLICES_PER_WRITE: usize = 512;

/// The output files of one database, with the logs that are open for writing.
#[derive(Debug)]
pub(super) struct OutputFiles {
    dir: PathBuf,
    open: Mutex<HashMap<String, Arc<Log>>>,
    dirty: Notify,
}

/// Where a log's complete records end, and what is not synced yet.
#[derive(Debug, Default)]
struct Tail {
    end: u64,
    index_len: u64,
    indexed_at: Option<u64>,
    text_bytes: u64,
    unsynced: u64,
    /// A sync failed: what was written may never reach the disk, so nothing more is accepted.
    failed: bool,
}

/// One command's log open for writing.
#[derive(Debug)]
struct Log {
    file: File,
    index: File,
    tail: Mutex<Tail>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn append_only(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).append(true).create(true).open(path)
}

/// Writes all of `slices`, however the kernel splits the write.
fn write_all(mut file: &File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Log {
    /// Opens (or creates) a log for appending, cutting off a record a crash tore.
    fn open(log: &Path, index: &Path) -> io::Result<Self> {
        let file = append_only(log)?;
        let index = append_only(index)?;
        let (end, text_bytes) = record::complete_end(file.try_clone()?)?;
        if file.metadata()?.len() > end {
            file.set_len(end)?;
        }
        let index_len = index.metadata()?.len() / INDEX_ENTRY * INDEX_ENTRY;
        index.set_len(index_len)?;
        let tail = Tail {
            end,
            index_len,
            indexed_at: (index_len > 0).then_some(end),
            text_bytes,
            unsynced: 0,
            failed: false,
        };
        Ok(Self {
            file,
            index,
            tail: Mutex::new(tail),
        })
    }

    /// Appends `chunks` in one write; on failure the file is cut back to where it was. Whether
    /// the unsynced output just became worth a sync.
    fn append(&self, chunks: &[&OutputChunk]) -> io::Result<bool> {
        let mut tail = lock(&self.tail);
        if tail.failed {
            return Err(record::invalid("an earlier sync of this output failed"));
        }
        let mut headers = Vec::with_capacity(chunks.len() * (record::HEADER + 8));
        let mut spans = Vec::with_capacity(chunks.len());
        let mut marks = Vec::new();
        let (mut offset, mut indexed_at) = (tail.end, tail.indexed_at);
        for chunk in chunks {
            if indexed_at.is_none_or(|at| offset - at >= INDEX_EVERY) {
                marks.extend_from_slice(&chunk.seq.to_le_bytes());
                marks.extend_from_slice(&offset.to_le_bytes());
                indexed_at = Some(offset);
            }
            let start = headers.len();
            record::encode_header(chunk, &mut headers)?;
            spans.push(start..headers.len());
            offset += (headers.len() - start + chunk.text.len()) as u64;
        }
        let mut slices: Vec<IoSlice<'_>> = spans
            .iter()
            .zip(chunks)
            .flat_map(|(span, chunk)| {
                [
                    IoSlice::new(&headers[span.clone()]),
                    IoSlice::new(chunk.text.as_bytes()),
                ]
            })
            .collect();
        for group in slices.chunks_mut(SLICES_PER_WRITE) {
            if let Err(e) = write_all(&self.file, group) {
                // Cutting back is what keeps the file's records whole; if even that fails, the
                // next open cuts the torn record off.
                let _ = self.file.set_len(tail.end);
                return Err(e);
            }
        }
        if !marks.is_empty() {
            // The index is a hint: without a pair, a reader starts earlier.
            if write_all(&self.index, &mut [IoSlice::new(&marks)]).is_ok() {
                tail.index_len += marks.len() as u64;
                tail.indexed_at = indexed_at;
            } else {
                let _ = self.index.set_len(tail.index_len);
            }
        }
        let written = offset - tail.end;
        let was_clean = tail.unsynced == 0;
        tail.end = offset;
        tail.text_bytes += chunks.iter().map(|c| c.text.len() as u64).sum::<u64>();
        tail.unsynced += written;
        let unsynced = tail.unsynced;
        drop(tail);
        if unsynced >= MAX_UNSYNCED {
            self.sync()?;
        }
        Ok(was_clean || (unsynced >= SYNC_BYTES && unsynced - written < SYNC_BYTES))
    }

    /// Syncs what was written so far.
    fn sync(&self) -> io::Result<()> {
        let pending = lock(&self.tail).unsynced;
        if pending == 0 {
            return Ok(());
        }
        let synced = self.file.sync_data();
        let mut tail = lock(&self.tail);
        match synced {
            Ok(()) => {
                tail.unsynced = tail.unsynced.saturating_sub(pending);
                Ok(())
            }
            Err(e) => {
                tail.failed = true;
                Err(e)
            }
        }
    }

    fn unsynced(&self) -> u64 {
        lock(&self.tail).unsynced
    }
}

impl OutputFiles {
    /// The output files in `dir` (created with the first output).
    fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            open: Mutex::new(HashMap::new()),
            dirty: Notify::new(),
        }
    }

    fn paths(&self, command_id: &str) -> io::Result<(PathBuf, PathBuf)> {
        // Ids are generated by the gateway; anything that could leave the directory is refused.
        if command_id.is_empty()
            || !command_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(record::invalid("command id unfit for a file name"));
        }
        Ok((
            self.dir.join(format!("{command_id}.log")),
            self.dir.join(format!("{command_id}.idx")),
        ))
    }

    fn log_for(&self, command_id: &str) -> io::Result<Arc<Log>> {
        if let Some(log) = lock(&self.open).get(command_id) {
            return Ok(log.clone());
        }
        std::fs::create_dir_all(&self.dir)?;
        let (log, index) = self.paths(command_id)?;
        let log = Arc::new(Log::open(&log, &index)?);
        Ok(lock(&self.open).entry(command_id.to_owned()).or_insert(log).clone())
    }

    /// Appends chunks (of any commands) to their logs, blocking.
    pub(super) fn append(&self, chunks: &[OutputChunk]) -> io::Result<()> {
        let mut start = 0;
        while start < chunks.len() {
            let id = &chunks[start].command_id;
            let run = chunks[start..].iter().take_while(|c| &c.command_id == id).count();
            let batch: Vec<&OutputChunk> = chunks[start..start + run].iter().collect();
            if self.log_for(id)?.append(&batch)? {
                self.dirty.notify_one();
            }
            start += run;
        }
        Ok(())
    }

    /// Syncs a command's log completely and closes it: the bytes of text it holds, or `None`
    /// without one. Blocking.
    pub(super) fn seal(&self, command_id: &str) -> io::Result<Option<u64>> {
        let (log_path, index_path) = self.paths(command_id)?;
        let open = lock(&self.open).get(command_id).cloned();
        let log = match open {
            Some(log) => log,
            None if log_path.exists() => Arc::new(Log::open(&log_path, &index_path)?),
            None => return Ok(None),
        };
        log.sync()?;
        lock(&self.open).remove(command_id);
        let text_bytes = lock(&log.tail).text_bytes;
        Ok(Some(text_bytes))
    }

    /// Deletes a command's files; whether there were any. Blocking.
    pub(super) fn remove(&self, command_id: &str) -> io::Result<bool> {
        let (log, index) = self.paths(command_id)?;
        lock(&self.open).remove(command_id);
        let _ = std::fs::remove_file(index);
        match std::fs::remove_file(log) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Opens a command's log and index for reading; `None` if it has no log.
    fn open_for_reading(&self, command_id: &str) -> io::Result<Option<(File, record::Index)>> {
        let (log, index) = self.paths(command_id)?;
        let log = match File::open(log) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let index = match File::open(index) {
            Ok(file) => record::read_index(&file)?,
            Err(_) => Vec::new(),
        };
        Ok(Some((log, index)))
    }

    /// Up to `limit` chunks of a command with `seq > after`, in order; `None` if it has no log.
    /// Blocking.
    pub(super) fn read_after(&self, command_id: &str, after: i64, limit: i64) -> io::Result<Option<Vec<OutputChunk>>> {
        let Some((log, index)) = self.open_for_reading(command_id)? else {
            return Ok(None);
        };
        let start = record::start_for(&log, &index, after);
        let mut records = Records::at(log, start)?;
        let mut chunks = Vec::new();
        let limit = usize::try_from(limit).unwrap_or(0);
        while chunks.len() < limit {
            match records.next_chunk(command_id)? {
                Some(chunk) if chunk.seq > after => chunks.push(chunk),
                Some(_) => {}
                None => break,
            }
        }
        Ok(Some(chunks))
    }

    /// The last `limit` chunks of a command, in order; `None` if it has no log. Blocking.
    pub(super) fn read_tail(&self, command_id: &str, limit: i64) -> io::Result<Option<Vec<OutputChunk>>> {
        let Some((log, index)) = self.open_for_reading(command_id)? else {
            return Ok(None);
        };
        let start = index
            .last()
            .map_or(0, |(seq, _)| record::start_for(&log, &index, *seq - 1));
        let mut records = Records::at(log, start)?;
        let mut last = 0;
        while let Some(seq) = records.skip()? {
            last = seq;
        }
        self.read_after(command_id, last.saturating_sub(limit), limit)
    }

    /// Syncs the logs that have unsynced output, in groups, for as long as it runs.
    async fn sync_in_groups(self: Arc<Self>) {
        let mut behind = false;
        loop {
            if !behind {
                self.dirty.notified().await;
            }
            // A moment for the group to fill, cut short when it is already large.
            let _ = tokio::time::timeout(SYNC_EVERY, self.dirty.notified()).await;
            let logs: Vec<Arc<Log>> = lock(&self.open).values().cloned().collect();
            behind = tokio::task::spawn_blocking(move || {
                for log in &logs {
                    if let Err(e) = log.sync() {
                        tracing::error!(error = %e, "an output file could not be synced; its command's output is lost");
                    }
                }
                logs.iter().any(|log| log.unsynced() > 0)
            })
            .await
            .unwrap_or(false);
        }
    }
}

/// The output files with the task that syncs them; the task stops with the last clone.
#[derive(Debug)]
pub(super) struct OutputLogs {
    files: Arc<OutputFiles>,
    _syncer: tokio_util::task::AbortOnDropHandle<()>,
}

impl OutputLogs {
    /// Output files in `dir`, synced in the background.
    pub(super) fn start(dir: PathBuf) -> Self {
        let files = Arc::new(OutputFiles::new(dir));
        let syncer = tokio::spawn(files.clone().sync_in_groups());
        Self {
            files,
            _syncer: tokio_util::task::AbortOnDropHandle::new(syncer),
        }
    }

    /// The files, for a blocking call on another thread.
    pub(super) fn files(&self) -> Arc<OutputFiles> {
        self.files.clone()
    }
}

#[cfg(test)]
mod tests;
