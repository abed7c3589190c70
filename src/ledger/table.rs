//! A sharded in-memory map from access-key name to per-key state, locked one shard at a time.
//!
//! Each operation takes one shard's `std::sync::Mutex` for a few arithmetic steps and never across
//! an await, so requests of different keys rarely meet and no lock is global.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Shards per table: a power of two well above the core count of an edge node.
const SHARDS: usize = 64;

/// One key's entry: its shared name (handed out in reservations) and its state.
struct Slot<T> {
    name: Arc<str>,
    value: T,
}

/// One shard: the keys whose hash falls on it.
type Shard<T> = HashMap<Arc<str>, Slot<T>>;

/// Per-key state `T`, created on first use with `T::default()`.
pub(super) struct Table<T> {
    shards: Box<[Mutex<Shard<T>>]>,
    hasher: RandomState,
}

impl<T: Default> Table<T> {
    /// An empty table.
    pub(super) fn new() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard<T>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic cannot happen while a shard is held (plain arithmetic), so a poisoned shard
        // still holds consistent data.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on `key`'s state (created if missing) with its shared name, under the shard lock.
    pub(super) fn with<R>(&self, key: &str, f: impl FnOnce(&Arc<str>, &mut T) -> R) -> R {
        let mut shard = self.shard(key);
        if let Some(slot) = shard.get_mut(key) {
            return f(&slot.name, &mut slot.value);
        }
        let name: Arc<str> = Arc::from(key);
        let slot = shard.entry(name.clone()).or_insert(Slot {
            name,
            value: T::default(),
        });
        f(&slot.name, &mut slot.value)
    }

    /// Runs `f` on `key`'s state if it exists.
    pub(super) fn get<R>(&self, key: &str, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.shard(key).get(key).map(|slot| f(&slot.value))
    }

    /// Sets every key's state from `entries` (used once, while nothing else holds the table).
    pub(super) fn load(&self, entries: impl IntoIterator<Item = (String, T)>) {
        for (key, value) in entries {
            self.with(&key, |_, v| *v = value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_created_once_and_share_their_name() {
        let t: Table<u64> = Table::new();
        let a = t.with("k", |name, v| {
            *v += 1;
            name.clone()
        });
        let b = t.with("k", |name, v| {
            *v += 1;
            name.clone()
        });
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(t.get("k", |v| *v), Some(2));
        assert_eq!(t.get("missing", |v| *v), None);
    }

    #[test]
    fn load_sets_values() {
        let t: Table<u64> = Table::new();
        t.load(vec![("a".to_string(), 5), ("b".to_string(), 6)]);
        assert_eq!(t.get("a", |v| *v), Some(5));
        assert_eq!(t.get("b", |v| *v), Some(6));
    }
}
