//! `NameMap`: a case-insensitive name table, compiled once, looked up without allocating.

use std::collections::HashMap;

/// Names longer than this are folded on the heap; catalog names are far shorter.
const STACK_FOLD: usize = 128;

/// Calls `f` with `name` ASCII-lower-cased, using a stack buffer for short names.
pub fn with_folded<R>(name: &str, f: impl FnOnce(&str) -> R) -> R {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(name);
    }
    if name.len() <= STACK_FOLD {
        let mut buf = [0u8; STACK_FOLD];
        let folded = &mut buf[..name.len()];
        folded.copy_from_slice(name.as_bytes());
        folded.make_ascii_lowercase();
        // ASCII lower-casing keeps UTF-8 valid; the fallback is never taken.
        match std::str::from_utf8(folded) {
            Ok(s) => f(s),
            Err(_) => f(&name.to_ascii_lowercase()),
        }
    } else {
        f(&name.to_ascii_lowercase())
    }
}

/// A map from case-insensitive (ASCII) names to values.
#[derive(Debug, Clone)]
pub struct NameMap<V> {
    map: HashMap<Box<str>, V, ahash::RandomState>,
}

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap {
            map: HashMap::default(),
        }
    }
}

impl<V> NameMap<V> {
    /// Inserts `name`; returns the value it displaced, if any.
    pub fn insert(&mut self, name: &str, value: V) -> Option<V> {
        self.map.insert(name.to_ascii_lowercase().into(), value)
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        with_folded(name, |folded| self.map.get(folded))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The folded names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(|k| &**k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_ascii_case() {
        let mut m = NameMap::default();
        m.insert("GPT-4o", 1);
        assert_eq!(m.get("gpt-4o"), Some(&1));
        assert_eq!(m.get("Gpt-4O"), Some(&1));
        assert_eq!(m.get("gpt-4"), None);
        let long = "X".repeat(300);
        m.insert(&long, 2);
        assert_eq!(m.get(&long.to_lowercase()), Some(&2));
    }
}
