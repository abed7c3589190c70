//! The `FileLedger`'s background writer thread: appends records, fsyncs on a timer, compacts the log.
//!
//! Records arrive over a channel. Whatever is queued is encoded and handed to the kernel with one
//! `write` as soon as the thread wakes (so a killed process loses only what was still queued),
//! and `fdatasync` runs at most once per flush interval (bounding what a power loss can lose).
//! The thread keeps its own copy of every key's total; when the log has grown well past the last
//! snapshot it writes those totals as `Set` records to a new file and renames it over the log.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::record::{self, Op};

/// Log bytes beyond twice the snapshot's size that trigger a compaction.
pub(super) const COMPACT_SLACK: u64 = 4 << 20;
/// Most records encoded into one `write`.
const MAX_BATCH: usize = 8192;

/// What the ledger sends its writer.
pub(super) enum Msg {
    /// `key` spent `amount` more micro-USD.
    Add(Arc<str>, u64),
    /// Answer once everything sent before is written and synced.
    Flush(oneshot::Sender<Result<(), String>>),
}

/// The writer's state: the open log and the totals it holds.
pub(super) struct Writer {
    path: PathBuf,
    file: File,
    totals: HashMap<Arc<str>, u64>,
    /// Bytes known to be whole records in the file (where the next write starts).
    len: u64,
    /// Size of the file right after the last compaction.
    snapshot_len: u64,
    compact_slack: u64,
    interval: Duration,
    /// Encoded but not yet written.
    buf: Vec<u8>,
    /// Written since the last fdatasync.
    unsynced: bool,
    last_sync: Instant,
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
    /// Another process appends to the file too: never cut or replace it.
    shared: bool,
    /// The last write failed (logged once per streak).
    failing: bool,
}

/// Writes a fresh file holding `totals` as `Set` records next to `path` and renames it over
/// `path`, syncing file and directory. Returns the new file's size and a handle appending to it.
pub(super) fn write_snapshot<'a>(
    path: &Path,
    totals: impl IntoIterator<Item = (&'a str, u64)>,
) -> std::io::Result<(u64, File)> {
    let mut buf = record::header().to_vec();
    for (key, total) in totals {
        if total > 0 {
            record::encode(&mut buf, Op::Set, key, total);
        }
    }
    let tmp = sibling(path, "compact");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&tmp)?;
    f.write_all(&buf)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path);
    Ok((buf.len() as u64, f))
}

/// `path` with `.suffix` appended to its file name.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Makes a rename in `path`'s directory durable (best effort: not every platform allows it).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Writer {
    /// A writer appending to `path`, whose valid contents (`len` bytes, `snapshot_len` of them
    /// from the last compaction) hold `totals`.
    pub(super) fn open(
        path: &Path,
        totals: HashMap<Arc<str>, u64>,
        len: u64,
        snapshot_len: u64,
        interval: Duration,
        compact_slack: u64,
    ) -> std::io::Result<Writer> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            totals,
            len,
            snapshot_len,
            compact_slack,
            interval,
            buf: Vec::new(),
            unsynced: false,
            last_sync: Instant::now(),
            waiters: Vec::new(),
            shared: false,
            failing: false,
        })
    }

    /// Runs until every sender is gone, then writes and syncs what is left.
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let first = if self.unsynced || !self.buf.is_empty() {
                let due = self.last_sync + self.interval;
                match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(msg) => Some(msg),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(msg) => Some(msg),
                    Err(_) => break,
                }
            };
            let mut open = true;
            if let Some(msg) = first {
                self.take(msg);
                for _ in 1..MAX_BATCH {
                    match rx.try_recv() {
                        Ok(msg) => self.take(msg),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                }
            }
            self.write();
            if !self.waiters.is_empty() || Instant::now() >= self.last_sync + self.interval {
                self.sync();
            }
            if !open {
                break;
            }
        }
        self.write();
        self.sync();
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Add(key, amount) => {
                record::encode(&mut self.buf, Op::Add, &key, amount);
                let total = self.totals.entry(key).or_insert(0);
                *total = total.saturating_add(amount);
            }
            Msg::Flush(tx) => self.waiters.push(tx),
        }
    }

    /// Hands the encoded records to the kernel. On failure the file is cut back to its last whole
    /// record and the bytes are kept for the next try.
    fn write(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                self.buf.clear();
                self.unsynced = true;
                if std::mem::take(&mut self.failing) {
                    log::warn!("ledger {}: writing again", self.path.display());
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    log::error!(
                        "ledger {}: write failed, retrying every flush interval: {e}",
                        self.path.display()
                    );
                }
                if !self.shared {
                    let _ = self.file.set_len(self.len);
                }
                self.answer(Err(format!("write failed: {e}")));
            }
        }
    }

    fn sync(&mut self) {
        self.last_sync = Instant::now();
        if !self.buf.is_empty() {
            // The last write failed; waiters were answered then.
            return;
        }
        if self.unsynced {
            if let Err(e) = self.file.sync_data() {
                log::error!("ledger {}: fsync failed: {e}", self.path.display());
                self.answer(Err(format!("fsync failed: {e}")));
                return;
            }
            self.unsynced = false;
        }
        if self.len > self.snapshot_len.saturating_mul(2) + self.compact_slack && !self.shared {
            match self.file.metadata() {
                Ok(m) if m.len() == self.len => self.compact(),
                Ok(m) => {
                    log::error!(
                        "ledger {}: another process appends to this file ({} bytes, {} ours): \
                         not compacting it; give each process its own ledger file",
                        self.path.display(),
                        m.len(),
                        self.len
                    );
                    self.shared = true;
                }
                Err(e) => log::error!("ledger {}: cannot stat: {e}", self.path.display()),
            }
        }
        self.answer(Ok(()));
    }

    fn answer(&mut self, result: Result<(), String>) {
        for tx in self.waiters.drain(..) {
            let _ = tx.send(result.clone());
        }
    }

    /// Replaces the log with a snapshot of the totals (the log is synced and empty of pending
    /// bytes when this runs). A failure leaves the old log in place and is retried later.
    fn compact(&mut self) {
        let totals = self.totals.iter().map(|(k, v)| (&**k, *v));
        match write_snapshot(&self.path, totals) {
            Ok((len, file)) => {
                log::info!(
                    "ledger {}: compacted {} bytes into {len}",
                    self.path.display(),
                    self.len
                );
                self.file = file;
                self.len = len;
                self.snapshot_len = len;
            }
            Err(e) => {
                log::error!("ledger {}: compaction failed: {e}", self.path.display());
                // Try again only after as much growth again.
                self.snapshot_len = self.len / 2;
            }
        }
    }
}
