//! OpenAI's `usage` object read without serde when it has its usual shape.
//!
//! Every answer's usage is read once, and serde's derive spent about 5k instructions
//! on it (nine keys, two nested objects); this walk spends a fraction of that. It
//! only answers when the object is plain: counts that are non-negative integers
//! without leading zeros (or `null`), detail objects (or `null`), no counted key
//! twice. Anything else (a count given as a float or a string, a duplicate) is left
//! to serde, whose lenient reading stays the rule (`counts_tests` compares the two).

use super::Usage;
use crate::jsonbytes::{skip_ws, Walk};

/// `Some(None)` for `null`, `Some(Some(usage))` for a plain usage object, `None`
/// when serde must decide.
pub(crate) fn openai_usage(raw: &[u8]) -> Option<Option<Usage>> {
    let (usage, end) = openai_usage_prefix(raw)?;
    (skip_ws(raw, end) == raw.len()).then_some(usage)
}

/// [`openai_usage`] for the value `data` starts with, whatever follows it (a stream
/// chunk's next members); also where the value ends.
pub(crate) fn openai_usage_prefix(data: &[u8]) -> Option<(Option<Usage>, usize)> {
    let mut w = Walk { b: data, i: 0 };
    if w.null()? {
        return Some((None, w.i));
    }
    let mut u = Usage::default();
    let mut seen = [false; 4];
    w.object(|w, key| {
        let slot = match key {
            b"prompt_tokens" => 0,
            b"completion_tokens" => 1,
            b"prompt_tokens_details" => 2,
            b"completion_tokens_details" => 3,
            _ => return w.skip(),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        match slot {
            0 => u.input = w.count()?,
            1 => u.output = w.count()?,
            2 => u.cached_input = w.detail(b"cached_tokens")?,
            _ => u.reasoning = w.detail(b"reasoning_tokens")?,
        }
        Some(())
    })?;
    Some((Some(u), w.i))
}

impl Walk<'_> {
    /// A plain count: `null` (0) or digits, no sign, fraction, exponent or leading zero.
    fn count(&mut self) -> Option<u64> {
        if self.null()? {
            return Some(0);
        }
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(&d) = self.b.get(self.i).filter(|d| d.is_ascii_digit()) {
            // More than u64 holds is left to serde.
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let plain = match &self.b[start..self.i] {
            [] => false,
            [b'0', _, ..] => false,
            _ => !matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')),
        };
        plain.then_some(n)
    }

    /// The count under `key` in a details object (or `null`, or without it: 0).
    fn detail(&mut self, key: &[u8]) -> Option<u64> {
        if self.null()? {
            return Some(0);
        }
        let (mut n, mut seen) = (0, false);
        self.object(|w, k| {
            if k != key {
                return w.skip();
            }
            if std::mem::replace(&mut seen, true) {
                return None;
            }
            n = w.count()?;
            Some(())
        })?;
        Some(n)
    }
}

#[cfg(test)]
#[path = "counts_tests.rs"]
mod tests;
