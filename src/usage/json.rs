//! Finds one member of a JSON document by its key path while the bytes stream past, and keeps only that member's raw value.
//!
//! The scanner tracks strings, escapes and nesting, nothing else: it never validates and
//! never buffers the document, so a body of any size costs O(1) memory plus the captured
//! value (at most [`MAX_CAPTURE`] bytes). A key is matched only where the path puts it:
//! `"usage"` inside a string, inside an array, or one object too deep is not it. When the
//! path occurs more than once, the last occurrence wins, as with serde_json.

use std::mem;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::jsonbytes::{
    find_quote_or_backslash, next_bracket_or_quote, skip_ws, string_end, value_end,
};

/// Largest value captured; a longer one is dropped (usage objects are a few hundred bytes).
pub(crate) const MAX_CAPTURE: usize = 64 * 1024;

/// Longest raw key compared against the path (longer keys cannot be path keys, even escaped).
const MAX_KEY: usize = 256;

/// Nesting levels whose container kind is remembered; the path never reaches deeper.
const TRACKED_LEVELS: u32 = 64;

/// Streams a JSON document and captures the raw value at `path` (object keys from the top).
#[derive(Debug)]
pub(crate) struct MemberScanner {
    path: &'static [&'static str],
    /// Containers currently open; the top-level value's container is level 1.
    depth: u32,
    /// Bit `i` set when the container at level `i + 1` is an object.
    objects: u64,
    /// Path keys matched along the open containers: the container at level `matched + 1`
    /// is the value of `path[matched - 1]` (or the top level), the only place a key can match.
    matched: u32,
    in_string: bool,
    /// Inside a string, the previous byte was an unconsumed backslash.
    escape: bool,
    /// At the target level, the next string is a key.
    expect_key: bool,
    /// The current string is a key at the target level.
    in_key: bool,
    key: Vec<u8>,
    /// The last key read at the target level is the next path key.
    key_hit: bool,
    /// A `:` at the target level was seen and its value has not started yet.
    awaiting_value: bool,
    /// The bytes since the matched value started are being kept.
    capturing: bool,
    capture: Vec<u8>,
    /// The last complete capture, and whether it arrived since [`Self::take`].
    found: Vec<u8>,
    fresh: bool,
    /// Bytes were fed already (the whole-document fast path applies to the first chunk).
    started: bool,
    /// The document's length when known beforehand (a `Content-Length`): a first
    /// chunk that long is the whole document.
    whole_len: Option<u64>,
}

impl MemberScanner {
    /// A scanner for the value at `path`, which must name at least one key.
    pub(crate) fn new(path: &'static [&'static str]) -> Self {
        MemberScanner {
            path,
            depth: 0,
            objects: 0,
            matched: 0,
            in_string: false,
            escape: false,
            expect_key: false,
            in_key: false,
            key: Vec::new(),
            key_hit: false,
            awaiting_value: false,
            capturing: false,
            capture: Vec::new(),
            found: Vec::new(),
            fresh: false,
            started: false,
            whole_len: None,
        }
    }

    /// Tells the scanner how long the whole document is, before the first bytes.
    pub(crate) fn set_whole_len(&mut self, len: u64) {
        self.whole_len = Some(len);
    }

    /// The raw value captured since the last call, if a new one completed.
    pub(crate) fn take(&mut self) -> Option<&[u8]> {
        if mem::take(&mut self.fresh) {
            Some(&self.found)
        } else {
            None
        }
    }

    /// The shortcut for a document that is whole in its first chunk `s`, with
    /// the value of its last top-level key read by `read` in place (see
    /// [`member_before_end_with`]): what `read` gave, and the document is done.
    /// `None`: not decided here, and `s` must go to [`Self::feed`].
    pub(crate) fn feed_whole_with<T>(
        &mut self,
        s: &[u8],
        read: impl FnOnce(&[u8]) -> Option<(T, usize)>,
    ) -> Option<T> {
        let [key] = self.path else { return None };
        if self.started || self.whole_len != Some(s.len() as u64) {
            return None;
        }
        if s.get(skip_ws(s, 0)) != Some(&b'{') {
            return None;
        }
        let (value, _) = member_before_end_with(s, key.as_bytes(), read)?;
        self.started = true;
        Some(value)
    }

    /// Scans the next bytes of the document.
    pub(crate) fn feed(&mut self, s: &[u8]) {
        if !mem::replace(&mut self.started, true) {
            if let [key] = self.path {
                let whole = self.whole_len == Some(s.len() as u64);
                if let Some(found) = whole_object_member(s, key.as_bytes(), whole) {
                    if let Some(value) = found {
                        self.found.clear();
                        self.found.extend_from_slice(value);
                        self.fresh = true;
                    }
                    return;
                }
            }
        }
        let mut cap_from = self.capturing.then_some(0);
        let mut key_from = self.in_key.then_some(0);
        let mut i = 0;
        while i < s.len() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                let rest = s.get(i..).unwrap_or_default();
                let Some(k) = find_quote_or_backslash(rest) else {
                    break;
                };
                let j = i + k;
                if s.get(j) == Some(&b'\\') {
                    self.escape = true;
                } else {
                    self.in_string = false;
                    if let Some(from) = key_from.take() {
                        self.push_key(s.get(from..j).unwrap_or_default());
                        self.end_key();
                    }
                }
                i = j + 1;
                continue;
            }
            if self.depth > self.matched + 1 {
                // Below the target level only nesting and strings matter.
                i += next_bracket_or_quote(s.get(i..).unwrap_or_default());
            }
            let Some(&b) = s.get(i) else { break };
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => {}
                b'"' => {
                    self.in_string = true;
                    if self.at_target() && self.expect_key {
                        self.expect_key = false;
                        self.in_key = true;
                        self.key.clear();
                        key_from = Some(i + 1);
                    } else {
                        self.value_starts(b, i, &mut cap_from);
                    }
                }
                b'{' | b'[' => {
                    self.value_starts(b, i, &mut cap_from);
                    self.depth = self.depth.saturating_add(1);
                    let is_object = b == b'{';
                    if self.depth <= TRACKED_LEVELS {
                        let bit = 1u64 << (self.depth - 1);
                        if is_object {
                            self.objects |= bit;
                        } else {
                            self.objects &= !bit;
                        }
                    }
                    if self.depth == self.matched + 1 {
                        self.expect_key = is_object;
                    }
                }
                b'}' | b']' => {
                    if self.depth == self.matched + 1 {
                        self.end_member(s, i, &mut cap_from);
                    }
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth < self.matched + 1 {
                        // Left the matched member's object: back at its parent's level.
                        self.matched = self.depth.saturating_sub(1);
                        self.key_hit = false;
                        self.awaiting_value = false;
                        self.expect_key = false;
                    }
                }
                b',' => {
                    if self.depth == self.matched + 1 {
                        self.end_member(s, i, &mut cap_from);
                        self.expect_key = self.at_target();
                    }
                }
                b':' => {
                    if self.at_target() {
                        self.awaiting_value = true;
                    }
                }
                _ => self.value_starts(b, i, &mut cap_from),
            }
            i += 1;
        }
        if let Some(from) = cap_from {
            self.push_capture(s.get(from..).unwrap_or_default());
        }
        if let Some(from) = key_from {
            self.push_key(s.get(from..).unwrap_or_default());
        }
    }

    /// Whether the cursor is directly inside the object where the next path key can appear.
    fn at_target(&self) -> bool {
        self.depth == self.matched + 1
            && self.depth <= TRACKED_LEVELS
            && self.objects & (1u64 << (self.depth - 1)) != 0
    }

    /// A value's first byte `b` at offset `i`: starts the capture, or descends the path.
    fn value_starts(&mut self, b: u8, i: usize, cap_from: &mut Option<usize>) {
        if !(self.awaiting_value && self.depth == self.matched + 1) {
            return;
        }
        self.awaiting_value = false;
        if !mem::take(&mut self.key_hit) {
            return;
        }
        if self.matched as usize + 1 == self.path.len() {
            self.capturing = true;
            self.capture.clear();
            *cap_from = Some(i);
        } else if b == b'{' {
            // The caller opens the object next, one level down, where the next key must match.
            self.matched += 1;
        }
    }

    /// The member at the target level ends at offset `i` (a `,` or the closing bracket).
    fn end_member(&mut self, s: &[u8], i: usize, cap_from: &mut Option<usize>) {
        self.key_hit = false;
        self.awaiting_value = false;
        if let Some(from) = cap_from.take() {
            self.push_capture(s.get(from..i).unwrap_or_default());
        }
        if mem::take(&mut self.capturing) && self.capture.len() <= MAX_CAPTURE {
            mem::swap(&mut self.found, &mut self.capture);
            self.fresh = true;
        }
    }

    fn push_capture(&mut self, bytes: &[u8]) {
        if self.capture.len() + bytes.len() <= MAX_CAPTURE {
            self.capture.extend_from_slice(bytes);
        } else {
            // Marks the capture as too long without keeping more of it.
            self.capture.resize(MAX_CAPTURE + 1, 0);
        }
    }

    fn push_key(&mut self, bytes: &[u8]) {
        if self.key.len() + bytes.len() <= MAX_KEY {
            self.key.extend_from_slice(bytes);
        } else {
            self.key.resize(MAX_KEY + 1, 0);
        }
    }

    /// A key at the target level is complete: compare it with the next path key.
    fn end_key(&mut self) {
        self.in_key = false;
        let want = self
            .path
            .get(self.matched as usize)
            .copied()
            .unwrap_or_default();
        self.key_hit = if self.key.len() > MAX_KEY {
            false
        } else if memchr::memchr(b'\\', &self.key).is_none() {
            self.key == want.as_bytes()
        } else {
            unescaped_key_is(&self.key, want)
        };
    }
}

/// The fast path for a document that arrives whole in its first chunk, as most answers
/// do: the raw value of the last top-level member `key` (as the streaming scan would
/// capture it, up to its `,` or `}`), found by jumping from quote to bracket instead of
/// stepping through every byte. `None` when `doc` is not one whole object with
/// nothing after it but whitespace: then the streaming scan reads it. `whole`: `doc`
/// is known to be the entire document (its length is the `Content-Length`), which
/// lets [`member_before_end`] try first.
fn whole_object_member<'a>(doc: &'a [u8], key: &[u8], whole: bool) -> Option<Option<&'a [u8]>> {
    let mut i = skip_ws(doc, 0);
    if doc.get(i) != Some(&b'{') {
        return None;
    }
    if whole {
        if let Some(value) = member_before_end(doc, key) {
            return Some(Some(value));
        }
    }
    i = skip_ws(doc, i + 1);
    let mut found = None;
    if doc.get(i) == Some(&b'}') {
        return (skip_ws(doc, i + 1) == doc.len()).then_some(None);
    }
    loop {
        if doc.get(i) != Some(&b'"') {
            return None;
        }
        let (end, escaped) = string_end(doc, i)?;
        let name = &doc[i + 1..end - 1];
        let hit = if escaped {
            std::str::from_utf8(key).is_ok_and(|k| unescaped_key_is(name, k))
        } else {
            name == key
        };
        i = skip_ws(doc, end);
        if doc.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(doc, i + 1);
        i = skip_ws(doc, value_end(doc, start)?);
        let delimiter = *doc.get(i)?;
        if hit && i - start <= MAX_CAPTURE {
            found = Some(&doc[start..i]);
        }
        match delimiter {
            b',' => i = skip_ws(doc, i + 1),
            b'}' => return (skip_ws(doc, i + 1) == doc.len()).then_some(found),
            _ => return None,
        }
    }
}

/// The shortcut of [`whole_object_member`] for a member near the end of the object,
/// where answers put `usage`, when `doc` is known to be the whole document (its
/// `Content-Length`; a piece of one can end in a nested object's `}`): the first
/// `"key":` in `doc` (found by memchr's vector search), taken when what follows its
/// value is members of the same object up to the document's last byte, a `}`. A
/// valid document's final `}` closes the top-level object, so the key is a member
/// of it, and the last one of that name: no later key is `key`, even escaped. An
/// unescaped `"key"` cannot sit inside a string (its quotes would end it), and an
/// escaped quote before it is refused.
///
/// `None`: not decided here (the key is nested, absent, only escaped, used as a
/// value, followed by a key with escapes, or its value is too long; any other `key`
/// than `usage`). The bytes before the key are not read, so a malformed answer can be read
/// differently whole than in pieces (`{"a":{"usage":1}` whole gives 1): only a
/// provider's broken JSON can do that; a client's text arrives inside its strings,
/// escaped, and cannot.
fn member_before_end<'a>(doc: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let (len, start) = member_before_end_with(doc, key, |v| {
        let len = value_end(v, 0)?;
        Some((len, len))
    })?;
    doc.get(start..skip_ws(doc, start + len))
}

/// [`member_before_end`] with the member's value read by `read`, which is given
/// the document from the value's first byte and returns what it read and the
/// value's length (`None`: not decided here). Gives that and where the value
/// starts in `doc`.
fn member_before_end_with<T>(
    doc: &[u8],
    key: &[u8],
    read: impl FnOnce(&[u8]) -> Option<(T, usize)>,
) -> Option<(T, usize)> {
    // Built once: building a searcher costs more than searching an answer with it.
    // `usage` is the one top-level key read from whole answers.
    static USAGE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""usage""#));
    if key != b"usage" {
        return None;
    }
    let at = USAGE.find(doc)?;
    let backslashes = doc[..at].iter().rev().take_while(|&&b| b == b'\\').count();
    if backslashes % 2 == 1 {
        return None;
    }
    let mut i = skip_ws(doc, at + key.len() + 2);
    if doc.get(i) != Some(&b':') {
        return None;
    }
    let start = skip_ws(doc, i + 1);
    let (value, len) = read(doc.get(start..)?)?;
    i = skip_ws(doc, start + len);
    if i - start > MAX_CAPTURE {
        return None;
    }
    loop {
        match *doc.get(i)? {
            b'}' => return (skip_ws(doc, i + 1) == doc.len()).then_some((value, start)),
            b',' => {
                i = skip_ws(doc, i + 1);
                let (end, escaped) = string_end(doc, i)?;
                if escaped || &doc[i + 1..end - 1] == key {
                    return None;
                }
                i = skip_ws(doc, end);
                if doc.get(i) != Some(&b':') {
                    return None;
                }
                i = skip_ws(doc, value_end(doc, skip_ws(doc, i + 1))?);
            }
            _ => return None,
        }
    }
}

/// Whether the raw (escaped) key text decodes to `want`.
fn unescaped_key_is(raw: &[u8], want: &str) -> bool {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).is_ok_and(|k| k == want)
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
