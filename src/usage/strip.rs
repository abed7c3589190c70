//! Removes chosen events from a relayed SSE stream, passing every other byte through unchanged, in order and without delay past its event's end.
//!
//! Per chunk, the tracker reports each event end (from the [`SseReader`](super::sse::SseReader))
//! and whether that event goes. An event still incomplete at the end of a chunk is held
//! back, since it might be the one to remove, and released with the chunk that completes
//! it; an event that grows past the reader's size cap is released as it comes instead (it
//! is never removed). A chunk that removes nothing and ends on an event boundary is
//! relayed as it is, zero-copy; one that only holds back a tail is relayed as a zero-copy
//! slice.

use std::ops::Range;

use bytes::Bytes;

/// Output assembly for one stripping stream.
#[derive(Debug, Default)]
pub(crate) struct Stripper {
    /// Bytes of the incomplete event carried over from earlier chunks.
    held: Vec<u8>,
    /// Per chunk: ranges of the chunk to drop, in order, merged when adjacent.
    drops: Vec<Range<usize>>,
    /// Per chunk: the first event ending in it (the one `held` belongs to) goes.
    drop_held: bool,
    /// Per chunk: offset just past the last event end seen.
    last_end: usize,
    /// Per chunk: an event ended in it.
    saw_end: bool,
    /// The last event that ended was dropped (its CRLF's LF may still arrive).
    last_dropped: bool,
}

impl Stripper {
    /// Starts a new chunk.
    pub(crate) fn begin(&mut self) {
        self.drops.clear();
        self.drop_held = false;
        self.last_end = 0;
        self.saw_end = false;
    }

    /// An event ends at `end` in the current chunk; `drop` says whether it goes, `None`
    /// for the trailing LF of the previous event, which shares that event's fate.
    pub(crate) fn event_end(&mut self, end: usize, drop: Option<bool>) {
        let start = self.last_end;
        let drop = drop.unwrap_or(self.last_dropped);
        if drop {
            if !self.saw_end {
                self.drop_held = true;
            }
            match self.drops.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => self.drops.push(start..end),
            }
        }
        self.last_dropped = drop;
        self.last_end = end;
        self.saw_end = true;
    }

    /// Ends the chunk: what to relay for it (`None`: the chunk as is). `passthrough` says
    /// the trailing incomplete event is released now rather than held.
    pub(crate) fn end_chunk(&mut self, chunk: &Bytes, passthrough: bool) -> Option<Bytes> {
        let keep_until = if passthrough {
            chunk.len()
        } else {
            self.last_end.min(chunk.len())
        };
        if !passthrough && !self.saw_end && !self.held.is_empty() {
            self.held.extend_from_slice(chunk);
            return Some(Bytes::new());
        }
        let tail = chunk.get(keep_until..).unwrap_or_default();
        if self.held.is_empty() && self.drops.is_empty() {
            self.held.extend_from_slice(tail);
            return (keep_until < chunk.len()).then(|| chunk.slice(..keep_until));
        }
        let mut out = Vec::with_capacity(self.held.len() + keep_until);
        if !self.drop_held {
            out.extend_from_slice(&self.held);
        }
        let mut from = 0;
        for range in &self.drops {
            out.extend_from_slice(chunk.get(from..range.start).unwrap_or_default());
            from = range.end;
        }
        out.extend_from_slice(chunk.get(from..keep_until).unwrap_or_default());
        self.held.clear();
        self.held.extend_from_slice(tail);
        Some(Bytes::from(out))
    }

    /// Ends the body: the held bytes, unless `drop` (the incomplete event was the one to remove).
    pub(crate) fn finish(&mut self, drop: bool) -> Option<Bytes> {
        let held = std::mem::take(&mut self.held);
        (!drop && !held.is_empty()).then(|| Bytes::from(held))
    }
}
