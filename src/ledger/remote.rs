//! `RedisLedger`: spent totals and reservations in Redis, shared by every gateway node using it.
//!
//! Each reserve and each settle is one Lua script call (see `scripts`), so admission is atomic
//! across nodes. When a call fails or times out the node marks Redis down: from then on requests
//! follow the [`Fallback`] policy without waiting on Redis, writes are queued locally (see
//! `fallback`), and a background task probes Redis, replays the queue once it answers and only
//! then marks it up again. The connection is a `ConnectionManager`, which reconnects after a
//! Redis restart and reloads the scripts when Redis forgot them; it and the background task run on
//! the ledger's own runtime thread (see `engine`).
//!
//! Queued writes live in this process's memory only: a node that stops during an outage loses
//! the spending it had not yet written to Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::engine::Engine;
use super::fallback::{Deferred, Fallback, Outage};
use super::scripts::{RedisStore, Tuning};
use super::{DropRelease, Held, Ledger, LedgerError, Reservation};

/// How long spending recorded without a reservation waits to be sent: every key's records of
/// that interval go to Redis as one settle call, so a busy key costs no Redis call per request.
const RECORD_BATCH: Duration = Duration::from_millis(20);

/// The key prefix used unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "tollgate:";

/// Shared across gateway nodes: balances' spent totals and reservations in Redis, admitted and
/// settled atomically by Lua scripts (one round trip each).
///
/// Its Redis I/O runs on a thread of its own (see `engine`), so `connect` may be called from any
/// Tokio runtime, including a temporary one at startup, and before a daemonizing fork.
pub struct RedisLedger {
    inner: Arc<Inner>,
}

/// The state reservations and the background task share.
struct Inner {
    /// This `Inner` itself, for tasks that must outlive the caller's future.
    me: Weak<Inner>,
    engine: Engine<RedisStore>,
    fallback: Fallback,
    next_id: AtomicU64,
    down: Arc<AtomicBool>,
    wake: Arc<Notify>,
    outage: Outage,
    /// Recorded spending not sent yet, per key (see [`RECORD_BATCH`]).
    records: Mutex<HashMap<Arc<str>, u64>>,
    /// Whether a send of `records` is scheduled.
    records_armed: AtomicBool,
}

fn unavailable(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(format!("redis: {e}"))
}

impl RedisLedger {
    /// `url` like redis://127.0.0.1:6379/0; `prefix` namespaces keys (default "tollgate:");
    /// `fallback` decides what happens when Redis cannot be reached.
    ///
    /// Fails only for an unusable URL: if Redis cannot be reached yet, the ledger starts in the
    /// fallback state and connects as soon as Redis answers.
    pub async fn connect(
        url: &str,
        prefix: &str,
        fallback: Fallback,
    ) -> Result<Arc<RedisLedger>, LedgerError> {
        Self::connect_with(url, prefix, fallback, Tuning::default()).await
    }

    pub(super) async fn connect_with(
        url: &str,
        prefix: &str,
        fallback: Fallback,
        tuning: Tuning,
    ) -> Result<Arc<RedisLedger>, LedgerError> {
        RedisStore::new(url, prefix, tuning).map_err(unavailable)?;
        let (url, prefix) = (url.to_string(), prefix.to_string());
        let inner = Arc::new_cyclic(|me: &Weak<Inner>| {
            let task_me = me.clone();
            Inner {
                me: me.clone(),
                engine: Engine::new(move |handle| {
                    let store = Arc::new(RedisStore::new(&url, &prefix, tuning)?);
                    handle.spawn(maintain(task_me.clone(), store.clone()));
                    Ok(store)
                }),
                fallback,
                next_id: AtomicU64::new(1),
                down: Arc::new(AtomicBool::new(false)),
                wake: Arc::new(Notify::new()),
                outage: Outage::new(),
                records: Mutex::new(HashMap::new()),
                records_armed: AtomicBool::new(false),
            }
        });
        if let Err(e) = inner.engine.run(|s| async move { s.ping().await }).await {
            inner.went_down(&e);
        }
        Ok(Arc::new(RedisLedger { inner }))
    }
}

/// The background task on the engine's runtime: replays queued writes, and probes Redis while
/// it is down. Ends when the ledger is gone.
async fn maintain(me: Weak<Inner>, store: Arc<RedisStore>) {
    let Some((wake, down)) = me.upgrade().map(|i| (i.wake.clone(), i.down.clone())) else {
        return;
    };
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(store.tuning.probe_interval) => {}
        }
        let Some(inner) = me.upgrade() else {
            return;
        };
        if !inner.outage.is_empty() && !inner.replay(&store).await {
            continue;
        }
        if down.load(Ordering::Acquire) && store.ping().await.is_ok() {
            // Writes queued while the probe ran go first, so that admissions see them.
            if inner.replay(&store).await {
                down.store(false, Ordering::Release);
                log::info!("redis ledger: redis answers again; using it");
            }
        }
    }
}

impl Inner {
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn went_down(&self, e: &str) {
        if !self.down.swap(true, Ordering::AcqRel) {
            log::warn!(
                "redis ledger: redis unreachable ({e}); fallback {:?} until it answers",
                self.fallback
            );
        }
        self.wake.notify_one();
    }

    /// The reserve script, run on the engine: (admitted, spent, held).
    async fn call_reserve(
        &self,
        key: Arc<str>,
        balance: u64,
        estimate: u64,
        id: u64,
    ) -> Result<(bool, u64, u64), String> {
        let run = move |s: Arc<RedisStore>| async move {
            s.run_reserve(&key, balance, estimate, id).await
        };
        self.engine.run(run).await
    }

    /// Queues a write for the background task.
    fn defer(&self, d: Deferred) {
        self.outage.defer(d);
        self.wake.notify_one();
    }

    /// Ends id `d.id` in Redis, or queues it when Redis is down or fails. The attempt runs on the
    /// engine to its end even if the caller's future is dropped meanwhile.
    async fn end(&self, d: Deferred) {
        let Some(me) = self.me.upgrade().filter(|_| !self.is_down()) else {
            return self.defer(d);
        };
        let copy = d.clone();
        let attempt = self.engine.run(move |s| async move {
            match s.run_settle(&d).await {
                Ok(spent) => {
                    me.outage.observe(&d.key, Some(spent));
                }
                Err(e) => {
                    me.went_down(&e);
                    me.defer(d);
                }
            }
            Ok(())
        });
        if let Err(e) = attempt.await {
            // The engine could not run it (ids count once, should it have run after all).
            self.went_down(&e);
            self.defer(copy);
        }
    }

    /// Adds spending to the next batch, and schedules the batch if none is.
    async fn add_record(&self, key: Arc<str>, amount: u64) {
        {
            let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
            let total = records.entry(key).or_default();
            *total = total.saturating_add(amount);
        }
        if self.records_armed.swap(true, Ordering::AcqRel) {
            return;
        }
        match (self.me.upgrade(), self.engine.get()) {
            (Some(me), Ok((handle, _))) => {
                handle.spawn(async move {
                    tokio::time::sleep(RECORD_BATCH).await;
                    me.send_records().await;
                });
            }
            _ => self.send_records().await,
        }
    }

    /// Sends every key's recorded spending as one settle each (queued if Redis is down).
    async fn send_records(&self) {
        // Disarmed first: a record added after the take below schedules the next batch.
        self.records_armed.store(false, Ordering::Release);
        let batch =
            std::mem::take(&mut *self.records.lock().unwrap_or_else(PoisonError::into_inner));
        for (key, amount) in batch {
            let id = self.next_id();
            self.end(Deferred { key, id, amount }).await;
        }
    }

    /// Applies queued writes in order; false if Redis failed (the rest stays queued).
    async fn replay(&self, store: &RedisStore) -> bool {
        while let Some(d) = self.outage.next() {
            match store.run_settle(&d).await {
                Ok(spent) => self.outage.applied(&d, spent),
                Err(e) => {
                    self.outage.put_back(d);
                    self.went_down(&e);
                    return false;
                }
            }
        }
        true
    }
}

/// Ends a reservation id whose reserve call got no answer (failed, or its caller went away).
struct Abandon<'a> {
    inner: &'a Inner,
    key: Arc<str>,
    id: u64,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            let (key, id) = (self.key.clone(), self.id);
            self.inner.defer(Deferred { key, id, amount: 0 });
        }
    }
}

impl DropRelease for Inner {
    fn release_dropped(&self, r: &Reservation) {
        match r.held {
            Held::Local => self.outage.end_local(&r.key, r.amount),
            Held::Remote | Held::Memory => {
                let (key, id) = (r.key.clone(), r.id);
                self.defer(Deferred { key, id, amount: 0 });
            }
        }
    }
}

#[async_trait::async_trait]
impl Ledger for RedisLedger {
    async fn reserve(
        &self,
        key: &str,
        balance: u64,
        estimate: u64,
    ) -> Result<Reservation, LedgerError> {
        let inner = &self.inner;
        let id = inner.next_id();
        let hook = || -> Arc<dyn DropRelease> { inner.clone() };
        if !inner.is_down() {
            let name = inner.outage.observe(key, None);
            // Should this future be dropped before the answer, or the call fail, the reserve may
            // still reach Redis: ending its id then makes it hold nothing.
            let mut abandon = Abandon {
                inner,
                key: name.clone(),
                id,
                armed: true,
            };
            let answer = inner
                .call_reserve(name.clone(), balance, estimate, id)
                .await;
            match answer {
                Ok((admitted, spent, held)) => {
                    abandon.armed = false;
                    inner.outage.observe(key, Some(spent));
                    if !admitted {
                        let spent = spent.saturating_add(held);
                        return Err(LedgerError::Insufficient { balance, spent });
                    }
                    return Ok(Reservation::new(name, estimate, id, Held::Remote, hook()));
                }
                Err(e) => {
                    inner.went_down(&e);
                    drop(abandon);
                }
            }
        }
        match inner.fallback {
            Fallback::Refuse => Err(LedgerError::Unavailable(
                "redis unreachable; cannot check the balance".into(),
            )),
            Fallback::AllowLocal { allowance } => {
                let name = inner.outage.admit(key, balance, estimate, allowance)?;
                Ok(Reservation::new(name, estimate, id, Held::Local, hook()))
            }
        }
    }

    async fn settle(&self, mut r: Reservation, actual: u64) -> Result<(), LedgerError> {
        r.disarm();
        let inner = &self.inner;
        let id = match r.held {
            Held::Local => {
                inner.outage.end_local(&r.key, r.amount);
                inner.next_id()
            }
            Held::Remote | Held::Memory => r.id,
        };
        let key = r.key.clone();
        inner
            .end(Deferred {
                key,
                id,
                amount: actual,
            })
            .await;
        Ok(())
    }

    async fn release(&self, mut r: Reservation) {
        r.disarm();
        match r.held {
            Held::Local => self.inner.outage.end_local(&r.key, r.amount),
            Held::Remote | Held::Memory => {
                let key = r.key.clone();
                self.inner
                    .end(Deferred {
                        key,
                        id: r.id,
                        amount: 0,
                    })
                    .await;
            }
        }
    }

    async fn record(&self, key: &str, amount: u64) -> Result<(), LedgerError> {
        let inner = &self.inner;
        let key = inner.outage.observe(key, None);
        inner.add_record(key, amount).await;
        Ok(())
    }

    async fn flush(&self) -> Result<(), LedgerError> {
        self.inner.send_records().await;
        Ok(())
    }

    async fn spent(&self, key: &str) -> Result<u64, LedgerError> {
        let inner = &self.inner;
        // What this node recorded counts before it is read back.
        inner.send_records().await;
        if inner.is_down() {
            return Err(unavailable("unreachable"));
        }
        let key: Arc<str> = Arc::from(key);
        match inner
            .engine
            .run(|s| async move { s.spent(&key).await })
            .await
        {
            Ok(spent) => Ok(spent),
            Err(e) => {
                inner.went_down(&e);
                Err(unavailable(e))
            }
        }
    }
}

#[cfg(test)]
mod tests;
