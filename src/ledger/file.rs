//! `FileLedger`: the embedded default ledger, in-memory totals made durable by an append-only log.
//!
//! Reserve, settle and release are a few operations under one shard lock of an in-memory table.
//! Settled and recorded spending is also sent to a background thread (see `writer`) that appends it
//! to the log and fsyncs at most once per flush interval. Reservations live in memory only: a
//! restart forgets requests that were in flight, and their settlements never happen.
//!
//! What a crash can lose: the writer hands records to the kernel as soon as it wakes (normally
//! microseconds after `settle`), so a killed process (kill -9) loses only the records still queued
//! inside it at that instant; a power loss or kernel crash loses at most what was settled during
//! the last flush interval plus the fsync under way. Only spending is at risk, never a refusal, and
//! `settle` runs after a request's response was sent: a loss undercharges requests that were
//! already answered. [`FileLedger::flush`] waits until everything settled so far is on disk.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::record::{self, HeaderCheck, Op};
use super::table::Table;
use super::writer::{self, Msg, Writer, COMPACT_SLACK};
use super::{DropRelease, Held, Ledger, LedgerError, Reservation};

/// How often the log is fsynced at most, unless configured otherwise.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// One key's spending as the ledger sees it.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    spent: u64,
    reserved: u64,
}

/// The in-memory table, shared with reservations so that a dropped one can release itself.
struct Accounts(Table<Totals>);

impl DropRelease for Accounts {
    fn release_dropped(&self, r: &Reservation) {
        self.0.with(&r.key, |_, t| {
            t.reserved = t.reserved.saturating_sub(r.amount)
        });
    }
}

/// The embedded default: in-memory totals and reservations (sharded; no lock held across an
/// await; reserve/settle are memory operations), made durable by an append-only log file written
/// by a background writer (not on the request path) that batches records and fsyncs at most every
/// `flush_interval` (default 10 ms). On open it replays the log (tolerating a torn last record),
/// compacts it into a snapshot when it grows past a size, and resumes.
///
/// One process may have a given file open at a time (a second one appending is detected and
/// stops compaction, but each process should have its own file). The writer thread starts with
/// the first write, not in `open`, so that a ledger opened before a daemonizing fork (which keeps
/// no threads) still writes in the child. Dropping the ledger waits for the writer to write and
/// sync what is queued.
pub struct FileLedger {
    accounts: Arc<Accounts>,
    /// Set on first use (starting the writer thread).
    tx: OnceLock<mpsc::Sender<Msg>>,
    /// The writer until its thread starts.
    idle: Mutex<Option<Writer>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn io_error(path: &Path, what: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(format!("{}: {what}: {e}", path.display()))
}

/// What replaying a log found.
struct Loaded {
    totals: HashMap<Arc<str>, u64>,
    /// Valid bytes in the file.
    len: u64,
    /// Bytes of the header and leading snapshot records.
    snapshot_len: u64,
}

/// Reads `path` (creating it when missing), cuts off a torn tail and compacts a long log.
fn load(path: &Path, compact_slack: u64) -> Result<Loaded, LedgerError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error(path, "cannot read", e)),
    };
    match record::check_header(&bytes) {
        HeaderCheck::Valid => {}
        HeaderCheck::Fresh => {
            let (len, _) = writer::write_snapshot(path, std::iter::empty())
                .map_err(|e| io_error(path, "cannot create", e))?;
            return Ok(Loaded {
                totals: HashMap::new(),
                len,
                snapshot_len: len,
            });
        }
        HeaderCheck::OtherVersion(v) => {
            let supported = record::VERSION;
            return Err(LedgerError::Unavailable(format!(
                "{}: ledger format version {v} (this build reads version {supported})",
                path.display()
            )));
        }
        HeaderCheck::Foreign => return Err(io_error(path, "not a ledger file", "bad magic")),
    }
    let body = &bytes[record::HEADER_LEN..];
    let mut totals: HashMap<Arc<str>, u64> = HashMap::new();
    let mut snapshot_len = record::HEADER_LEN as u64;
    let mut in_snapshot = true;
    let good = record::replay(body, |r| {
        let total = totals.entry(Arc::from(r.key)).or_insert(0);
        match r.op {
            Op::Add => {
                *total = total.saturating_add(r.amount);
                in_snapshot = false;
            }
            Op::Set => {
                *total = r.amount;
                if in_snapshot {
                    snapshot_len += record::encoded_len(r.key) as u64;
                }
            }
        }
    });
    let len = (record::HEADER_LEN + good) as u64;
    if good < body.len() {
        let tail = &body[good..];
        log::warn!(
            "ledger {}: ignoring {} bytes of torn or corrupt records after byte {len} (kept in {})",
            path.display(),
            tail.len(),
            writer::sibling(path, "discarded").display()
        );
        keep_discarded(path, tail);
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io_error(path, "cannot open", e))?;
        f.set_len(len)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_error(path, "cannot cut the torn tail", e))?;
    }
    if len > snapshot_len.saturating_mul(2) + compact_slack {
        let snapshot = totals.iter().map(|(k, v)| (&**k, *v));
        let (new_len, _) = writer::write_snapshot(path, snapshot)
            .map_err(|e| io_error(path, "cannot compact", e))?;
        return Ok(Loaded {
            totals,
            len: new_len,
            snapshot_len: new_len,
        });
    }
    Ok(Loaded {
        totals,
        len,
        snapshot_len,
    })
}

/// Appends bytes cut from the log to a side file, for inspection (best effort).
fn keep_discarded(path: &Path, tail: &[u8]) {
    let side = writer::sibling(path, "discarded");
    let kept = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&side)
        .and_then(|mut f| f.write_all(tail));
    if let Err(e) = kept {
        log::warn!(
            "ledger {}: cannot keep discarded bytes: {e}",
            side.display()
        );
    }
}

impl FileLedger {
    /// Opens (or creates) the log at `path`, replays it and starts the background writer, which
    /// fsyncs at most every `flush_interval` ([`DEFAULT_FLUSH_INTERVAL`] is the usual choice).
    pub fn open(path: &Path, flush_interval: Duration) -> Result<Arc<FileLedger>, LedgerError> {
        Self::open_with(path, flush_interval, COMPACT_SLACK)
    }

    fn open_with(
        path: &Path,
        flush_interval: Duration,
        compact_slack: u64,
    ) -> Result<Arc<FileLedger>, LedgerError> {
        let loaded = load(path, compact_slack)?;
        let accounts = Arc::new(Accounts(Table::new()));
        accounts.0.load(loaded.totals.iter().map(|(k, v)| {
            let totals = Totals {
                spent: *v,
                reserved: 0,
            };
            (k.to_string(), totals)
        }));
        let writer = Writer::open(
            path,
            loaded.totals,
            loaded.len,
            loaded.snapshot_len,
            flush_interval,
            compact_slack,
        )
        .map_err(|e| io_error(path, "cannot open for append", e))?;
        Ok(Arc::new(FileLedger {
            accounts,
            tx: OnceLock::new(),
            idle: Mutex::new(Some(writer)),
            thread: Mutex::new(None),
        }))
    }

    /// The writer's channel, starting its thread on first use. If the thread cannot start, the
    /// channel has no receiver and every write reports the ledger unavailable.
    fn writer(&self) -> &mpsc::Sender<Msg> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(writer) = idle {
                let spawned = std::thread::Builder::new()
                    .name("tollgate-ledger".into())
                    .spawn(move || writer.run(rx));
                match spawned {
                    Ok(handle) => {
                        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
                        *thread = Some(handle);
                    }
                    Err(e) => log::error!("ledger: cannot start the writer thread: {e}"),
                }
            }
            tx
        })
    }

    /// Blocks until everything settled so far is on disk (for shutdown and tests).
    pub async fn flush(&self) -> Result<(), LedgerError> {
        let (done, wait) = oneshot::channel();
        self.send(Msg::Flush(done))?;
        match wait.await {
            Ok(result) => result.map_err(LedgerError::Unavailable),
            Err(_) => Err(LedgerError::Unavailable("ledger writer stopped".into())),
        }
    }

    fn send(&self, msg: Msg) -> Result<(), LedgerError> {
        self.writer()
            .send(msg)
            .map_err(|_| LedgerError::Unavailable("ledger writer stopped".into()))
    }

    /// Queues `amount` more spending of `key` for the log.
    fn log(&self, key: Arc<str>, amount: u64) -> Result<(), LedgerError> {
        if amount == 0 {
            return Ok(());
        }
        self.send(Msg::Add(key, amount))
    }
}

impl Drop for FileLedger {
    /// Lets the writer write and sync what is queued, and waits for it.
    fn drop(&mut self) {
        drop(self.tx.take());
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = thread.take() {
            let _ = handle.join();
        }
    }
}

#[async_trait::async_trait]
impl Ledger for FileLedger {
    async fn flush(&self) -> Result<(), LedgerError> {
        FileLedger::flush(self).await
    }

    async fn reserve(
        &self,
        key: &str,
        balance: u64,
        estimate: u64,
    ) -> Result<Reservation, LedgerError> {
        let name = self.accounts.0.with(key, |name, t| {
            let used = t.spent.saturating_add(t.reserved);
            if used >= balance {
                return Err(LedgerError::Insufficient {
                    balance,
                    spent: used,
                });
            }
            t.reserved = t.reserved.saturating_add(estimate);
            Ok(name.clone())
        })?;
        let hook: Arc<dyn DropRelease> = self.accounts.clone();
        Ok(Reservation::new(name, estimate, 0, Held::Memory, hook))
    }

    async fn settle(&self, mut r: Reservation, actual: u64) -> Result<(), LedgerError> {
        r.disarm();
        self.accounts.0.with(&r.key, |_, t| {
            t.reserved = t.reserved.saturating_sub(r.amount);
            t.spent = t.spent.saturating_add(actual);
        });
        self.log(r.key.clone(), actual)
    }

    async fn release(&self, mut r: Reservation) {
        r.disarm();
        self.accounts.release_dropped(&r);
    }

    async fn record(&self, key: &str, amount: u64) -> Result<(), LedgerError> {
        let name = self.accounts.0.with(key, |name, t| {
            t.spent = t.spent.saturating_add(amount);
            name.clone()
        });
        self.log(name, amount)
    }

    async fn spent(&self, key: &str) -> Result<u64, LedgerError> {
        Ok(self.accounts.0.get(key, |t| t.spent).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests;
