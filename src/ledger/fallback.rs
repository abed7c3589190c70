//! A `RedisLedger` node's outage policy and local memory: allowance bookkeeping, deferred writes.
//!
//! While Redis cannot be reached, settlements, records and releases are queued here (each under
//! the id it would have had in Redis, so replaying one that did reach Redis counts once) and the
//! queued spending counts against the key's local allowance. The node's background task replays
//! the queue when Redis answers again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::table::Table;
use super::LedgerError;

/// What a node does while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Refuse requests of keys that have a balance (503-class: the gateway cannot check the budget).
    Refuse,
    /// Admit them while this node's local spending during the outage stays under `allowance` micro-USD per key; reconcile (add the locally recorded spending to Redis) when it comes back.
    AllowLocal {
        /// Micro-USD per key this node may spend (settled plus held) while Redis is unreachable.
        allowance: u64,
    },
}

/// One key's local view.
#[derive(Debug, Default)]
struct Local {
    /// The highest spent total Redis reported for the key.
    known_spent: u64,
    /// Reservations admitted locally during an outage and still open.
    held: u64,
    /// Spending queued for Redis and not yet applied.
    pending: u64,
}

/// A write Redis has not acknowledged yet: end `id` of `key`, adding `amount` to spent.
#[derive(Debug, Clone)]
pub(super) struct Deferred {
    /// Access-key name.
    pub key: Arc<str>,
    /// The reservation's or operation's id.
    pub id: u64,
    /// Micro-USD to add (0 for a release).
    pub amount: u64,
}

/// The node's local view and its queue of deferred writes.
pub(super) struct Outage {
    keys: Table<Local>,
    queue: Mutex<VecDeque<Deferred>>,
}

impl Outage {
    /// Nothing known, nothing queued.
    pub(super) fn new() -> Self {
        Outage {
            keys: Table::new(),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Deferred>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The shared name of `key`, after noting that Redis reported `spent` for it (when known).
    pub(super) fn observe(&self, key: &str, spent: Option<u64>) -> Arc<str> {
        self.keys.with(key, |name, l| {
            if let Some(s) = spent {
                l.known_spent = l.known_spent.max(s);
            }
            name.clone()
        })
    }

    /// Admits a request locally: refused as Insufficient when what is known spent, queued and held
    /// reaches `balance`, and as Unavailable when what is queued and held during the outage reaches
    /// `allowance`; otherwise holds `estimate`.
    pub(super) fn admit(
        &self,
        key: &str,
        balance: u64,
        estimate: u64,
        allowance: u64,
    ) -> Result<Arc<str>, LedgerError> {
        self.keys.with(key, |name, l| {
            let local = l.pending.saturating_add(l.held);
            let used = l.known_spent.saturating_add(local);
            if used >= balance {
                return Err(LedgerError::Insufficient {
                    balance,
                    spent: used,
                });
            }
            if local >= allowance {
                return Err(LedgerError::Unavailable(format!(
                    "redis unreachable and the local allowance of {allowance} micro-USD for this \
                     key is used up"
                )));
            }
            l.held = l.held.saturating_add(estimate);
            Ok(name.clone())
        })
    }

    /// Ends a locally admitted reservation of `amount`.
    pub(super) fn end_local(&self, key: &str, amount: u64) {
        self.keys
            .with(key, |_, l| l.held = l.held.saturating_sub(amount));
    }

    /// Queues a write for Redis; its amount counts against the key's allowance until applied.
    pub(super) fn defer(&self, d: Deferred) {
        self.keys.with(&d.key, |_, l| {
            l.pending = l.pending.saturating_add(d.amount)
        });
        self.queue().push_back(d);
    }

    /// The oldest queued write, taken off the queue.
    pub(super) fn next(&self) -> Option<Deferred> {
        self.queue().pop_front()
    }

    /// Puts back a write that could not be applied, first in line.
    pub(super) fn put_back(&self, d: Deferred) {
        self.queue().push_front(d);
    }

    /// Records that Redis applied `d` (or already had) and now reports `spent`.
    pub(super) fn applied(&self, d: &Deferred, spent: u64) {
        self.keys.with(&d.key, |_, l| {
            l.pending = l.pending.saturating_sub(d.amount);
            l.known_spent = l.known_spent.max(spent);
        });
    }

    /// Whether writes wait for Redis.
    pub(super) fn is_empty(&self) -> bool {
        self.queue().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_counts_held_and_queued_spending() {
        let o = Outage::new();
        o.observe("k", Some(100));
        let name = o.admit("k", 10_000, 300, 500).unwrap();
        o.admit("k", 10_000, 300, 500).unwrap();
        assert!(matches!(
            o.admit("k", 10_000, 1, 500),
            Err(LedgerError::Unavailable(_))
        ));
        o.end_local("k", 300);
        o.end_local("k", 300);
        o.defer(Deferred {
            key: name.clone(),
            id: 1,
            amount: 450,
        });
        o.admit("k", 10_000, 1, 500).unwrap();
        o.end_local("k", 1);
        o.admit("k", 560, 1, 10_000).unwrap();
        o.end_local("k", 1);
        assert!(matches!(
            o.admit("k", 550, 1, 10_000),
            Err(LedgerError::Insufficient {
                balance: 550,
                spent: 550
            })
        ));
        let d = o.next().unwrap();
        assert!(o.is_empty());
        o.put_back(d.clone());
        assert!(!o.is_empty());
        o.applied(&d, 550);
        assert!(o.next().is_some());
        // Applied spending no longer counts against the allowance but is known spent.
        assert!(o.admit("k", 10_000, 1, 1).is_ok());
        assert!(matches!(
            o.admit("k", 551, 1, 10_000),
            Err(LedgerError::Insufficient { spent: 551, .. })
        ));
    }
}
