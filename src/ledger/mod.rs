//! Spent credits per access key: the `Ledger` seam, its embedded file store and its shared Redis store.
//!
//! A request of a key with a balance is admitted by [`Ledger::reserve`] (refused with
//! [`LedgerError::Insufficient`] once the key's settled spending plus its in-flight reservations
//! reach the balance) and ended by [`Ledger::settle`] with its exact cost, or by
//! [`Ledger::release`] when it failed before any usage. Spending of keys without a balance goes
//! through [`Ledger::record`].
//!
//! - [`FileLedger`] (the default) keeps totals in memory and makes them durable with an
//!   append-only, checksummed log written off the request path (see `record` for the format).
//! - [`RedisLedger`] keeps spent totals and reservations in Redis so that several gateway nodes
//!   enforce one budget, with a [`Fallback`] policy for outages.
//!
//! A [`Reservation`] that is dropped without being settled or released (a cancelled request
//! future) releases itself, so abandoned requests do not hold a key's budget forever.

mod engine;
mod fallback;
mod file;
mod record;
mod remote;
mod scripts;
mod table;
mod writer;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod testredis;

use std::sync::Arc;

pub use fallback::Fallback;
pub use file::{FileLedger, DEFAULT_FLUSH_INTERVAL};
pub use remote::{RedisLedger, DEFAULT_PREFIX};

/// Why a reservation was refused or a store failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The key's balance is used up. `spent` counts settled spending plus the reservations of
    /// requests still in flight (what was held against the balance), so `spent >= balance`.
    #[error("insufficient credits: {spent} of {balance} micro-USD spent")]
    Insufficient {
        /// The key's credit balance, micro-USD.
        balance: u64,
        /// Settled plus reserved micro-USD when the request was refused.
        spent: u64,
    },
    /// The store cannot be used (I/O error, Redis unreachable under [`Fallback::Refuse`], local
    /// allowance used up under [`Fallback::AllowLocal`]).
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
}

/// Where a reservation's credits are held (private to the ledger implementations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// In a `FileLedger`'s memory.
    Memory,
    /// In Redis, under the reservation's id.
    Remote,
    /// In a `RedisLedger`'s local outage allowance.
    Local,
}

/// Ends a reservation that was dropped without `settle` or `release`.
trait DropRelease: Send + Sync {
    /// Releases `r` (called at most once per reservation, from `Drop`; must not block).
    fn release_dropped(&self, r: &Reservation);
}

/// Credits held for one in-flight request; give it back to `settle` or `release`.
pub struct Reservation {
    /// The access-key name the credits are held for.
    pub key: Arc<str>,
    /// Micro-USD held.
    pub amount: u64,
    /// Identifies the reservation in its store (unique per ledger instance).
    id: u64,
    held: Held,
    /// Armed until the reservation is settled or released; releases it on drop otherwise.
    on_drop: Option<Arc<dyn DropRelease>>,
}

impl Reservation {
    fn new(key: Arc<str>, amount: u64, id: u64, held: Held, on_drop: Arc<dyn DropRelease>) -> Self {
        Reservation {
            key,
            amount,
            id,
            held,
            on_drop: Some(on_drop),
        }
    }

    /// Marks the reservation as ended so that dropping it does nothing more.
    fn disarm(&mut self) {
        self.on_drop = None;
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("key", &self.key)
            .field("amount", &self.amount)
            .field("id", &self.id)
            .field("held", &self.held)
            .field("open", &self.on_drop.is_some())
            .finish()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(hook) = self.on_drop.take() {
            hook.release_dropped(self);
        }
    }
}

/// Where spent credits live. Keys are access-key *names* (never secrets).
#[async_trait::async_trait]
pub trait Ledger: Send + Sync {
    /// Admits a request for `key` whose balance is `balance` micro-USD: refused (Insufficient) when
    /// spent + reserved >= balance; otherwise reserves `estimate` (even if it exceeds what is left,
    /// so concurrent requests overdraw by at most their in-flight reservations).
    async fn reserve(
        &self,
        key: &str,
        balance: u64,
        estimate: u64,
    ) -> Result<Reservation, LedgerError>;
    /// Ends a reservation with the exact cost (may be more or less than reserved).
    async fn settle(&self, r: Reservation, actual: u64) -> Result<(), LedgerError>;
    /// Ends a reservation at no cost (the request failed before any usage).
    async fn release(&self, r: Reservation);
    /// Adds spending that had no reservation (keys without a balance are still recorded).
    async fn record(&self, key: &str, amount: u64) -> Result<(), LedgerError>;
    /// Total spent by `key` (settled), micro-USD.
    async fn spent(&self, key: &str) -> Result<u64, LedgerError>;
    /// Waits until everything settled so far is durable (before the process exits).
    async fn flush(&self) -> Result<(), LedgerError> {
        Ok(())
    }
}
