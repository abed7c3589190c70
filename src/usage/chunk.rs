//! Reads an OpenAI chat/completions stream chunk without parsing it: its generated-text
//! bytes, whether its `choices` are empty or one finished, and where its `usage` value
//! is. Parsing each chunk into [`ChatChunk`] with serde_json cost about 6k instructions
//! an event, almost all of it on members nobody reads (`id`, `model`,
//! `system_fingerprint`, `logprobs`…). Only the `usage` value, which comes once a
//! stream, is parsed (see `counts`).
//!
//! One pass visits each `:`, and a key ends just before one. A quote preceded by an
//! even run of backslashes delimits a string, and in valid JSON a delimiter that
//! follows a letter closes one. So `"name"` followed by `:` is exactly a key, and
//! text that merely looks like one (inside a string, its quotes are escaped) is never
//! taken for it. Keys are found at any depth, where serde looks only at
//! `choices[].delta…` and `choices[].text`. The text keys occur nowhere else, except
//! `text`: a chat chunk (one with a `delta`) can hold it in content parts or in
//! OpenRouter's `reasoning_details`, which repeat `reasoning`, so `text` counts only
//! in completions chunks. The two readers agree on well-formed chunks (`chunk_tests`
//! checks fixtures and generated chunks). A malformed chunk still gives what its keys
//! say, where serde would drop it. Keys written with escapes are not recognised.
//! A stream's chunks share their start up to `"choices":[`; [`Envelope`] skips the
//! colons of that start once it is known to hold no key the scan reads.
//!
//! [`ChatChunk`]: super::wire::ChatChunk

use crate::jsonbytes::Walk;

/// What one chunk says.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scan<'a> {
    /// Bytes of generated text: content, reasoning and tool-call arguments.
    pub text_bytes: u64,
    /// A `usage` value that is not `null`: the bytes from its start to the chunk's end
    /// (its reader stops where the value does, so it is not skipped here first).
    pub usage: Option<&'a [u8]>,
    /// `choices` is an array (not missing or `null`), and whether it is empty.
    pub choices_empty: Option<bool>,
    /// Some `finish_reason` is not `null`.
    pub finished: bool,
}

/// The keys the scan reads.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// Generated text wherever it is (`content`, `reasoning…`, `arguments`).
    Text,
    /// `text`: a completions choice's text, but inside a chat `delta` a repeat or a
    /// part (OpenRouter's `reasoning_details[].text` repeats `reasoning`).
    ChoiceText,
    /// Marks a chat chunk, whose `text` keys are not counted.
    Delta,
    Usage,
    Choices,
    FinishReason,
}

/// Reads a chunk's keys (see the module docs).
#[cfg(test)]
pub(crate) fn scan(data: &[u8]) -> Scan<'_> {
    scan_from(data, 0, Scan::default()).0
}

/// The bytes a stream's chunks start with, up to `"choices":[`: `id`, `object`,
/// `created`, `model`… repeat in every chunk, so once a chunk's start held no key the
/// scan reads but `choices`, later chunks that begin with the same bytes are scanned
/// from there on. About half the scan of a chunk is spent in that envelope.
#[derive(Debug, Default)]
pub(crate) struct Envelope {
    prefix: Vec<u8>,
}

/// Longest envelope kept.
const MAX_ENVELOPE: usize = 1024;

impl Envelope {
    /// What `data`, a chunk of the stream this envelope belongs to, says (as a full
    /// scan would read it).
    pub(crate) fn scan<'a>(&mut self, data: &'a [u8]) -> Scan<'a> {
        if !self.prefix.is_empty() && data.starts_with(&self.prefix) {
            let start = self.prefix.len();
            let mut w = Walk { b: data, i: start };
            let known = Scan {
                choices_empty: Some(w.peek() == Some(b']')),
                ..Scan::default()
            };
            return scan_from(data, start, known).0;
        }
        let (s, envelope) = scan_from(data, 0, Scan::default());
        if let Some(end) = envelope.filter(|&end| end <= MAX_ENVELOPE) {
            self.prefix.clear();
            self.prefix.extend_from_slice(&data[..end]);
        }
        s
    }
}

/// Scans `data` from `start`, on top of what its bytes before `start` said (`s`).
/// Also gives where the chunk's envelope ends (just past `"choices":[`) when the
/// `choices` key is the first key read.
fn scan_from<'a>(data: &'a [u8], start: usize, s: Scan<'a>) -> (Scan<'a>, Option<usize>) {
    let rest = data.get(start..).unwrap_or_default();
    #[cfg(target_arch = "x86_64")]
    if let Some(avx2) = &*AVX2_COLON {
        return scan_colons(data, s, avx2.iter(rest).map(|c| c + start));
    }
    scan_colons(data, s, Colons::new(rest).map(|c| c + start))
}

/// The colon search of memchr's AVX2 kernel, where the CPU has one: about half the
/// instructions of the word-at-a-time [`Colons`] on a chunk.
#[cfg(target_arch = "x86_64")]
static AVX2_COLON: std::sync::LazyLock<Option<memchr::arch::x86_64::avx2::memchr::One>> =
    std::sync::LazyLock::new(|| memchr::arch::x86_64::avx2::memchr::One::new(b':'));

/// [`scan_from`], given the offsets of the colons to visit, in order.
fn scan_colons<'a>(
    data: &'a [u8],
    mut s: Scan<'a>,
    colons: impl Iterator<Item = usize>,
) -> (Scan<'a>, Option<usize>) {
    let (mut choice_text, mut chat) = (0, false);
    let (mut first, mut envelope) = (true, None);
    for colon in colons {
        let Some(key) = key_before(data, colon) else {
            continue;
        };
        let was_first = std::mem::replace(&mut first, false);
        let mut w = Walk {
            b: data,
            i: colon + 1,
        };
        match key {
            Key::Text => {
                if w.peek() == Some(b'"') {
                    s.text_bytes += w.text_len().unwrap_or(0);
                }
            }
            Key::ChoiceText => {
                if w.peek() == Some(b'"') {
                    choice_text += w.text_len().unwrap_or(0);
                }
            }
            Key::Delta => chat = true,
            // OpenAI puts `"usage":null` on every chunk of a stream that asked for usage.
            Key::Usage => {
                if w.null() == Some(false) {
                    s.usage = Some(&data[w.i..]);
                }
            }
            Key::Choices => {
                if w.eat(b'[').is_some() {
                    envelope = was_first.then_some(w.i);
                    s.choices_empty = Some(w.peek() == Some(b']'));
                }
            }
            Key::FinishReason => s.finished |= w.null() == Some(false),
        }
    }
    if !chat {
        s.text_bytes += choice_text;
    }
    (s, envelope)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The offsets of each `:` in a chunk, in order, found a word at a time: a chunk is a
/// few hundred bytes with a colon every twenty, where `memchr_iter`'s set-up per match
/// cost more than the search. The last partial word is padded with zeros.
struct Colons<'a> {
    data: &'a [u8],
    /// Offset of the word `hits` came from.
    base: usize,
    /// High bit set in each byte of that word that is a colon (exact: no borrow).
    hits: u64,
}

impl<'a> Colons<'a> {
    fn new(data: &'a [u8]) -> Self {
        Colons {
            data,
            base: 0,
            hits: colon_bits(word_at(data, 0)),
        }
    }
}

impl Iterator for Colons<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.hits == 0 {
            self.base += 8;
            if self.base >= self.data.len() {
                return None;
            }
            self.hits = colon_bits(word_at(self.data, self.base));
        }
        let at = self.base + (self.hits.trailing_zeros() / 8) as usize;
        self.hits &= self.hits - 1;
        Some(at)
    }
}

/// The eight bytes from `at`, as a little-endian word; past the end, zeros.
#[inline]
fn word_at(data: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    match data.get(at..at + 8) {
        Some(full) => word.copy_from_slice(full),
        None => {
            let rest = data.get(at..).unwrap_or_default();
            word[..rest.len()].copy_from_slice(rest);
        }
    }
    u64::from_le_bytes(word)
}

/// The high bit of each byte of `word` that is a colon.
#[inline]
fn colon_bits(word: u64) -> u64 {
    let v = word ^ (ONES * u64::from(b':'));
    // A byte is zero exactly when neither its low seven bits carry into the high bit
    // nor its high bit is set.
    !(((v & LOW7) + LOW7) | v | LOW7)
}

/// A key the scan reads, matched by the eight bytes before its closing quote.
struct Name {
    name: &'static [u8],
    key: Key,
    /// `"name` (for names of seven bytes or fewer) or the name's last eight bytes, in
    /// the high bytes of a little-endian word…
    word: u64,
    /// …and which bytes of the word those are.
    mask: u64,
}

impl Name {
    const fn new(name: &'static [u8], key: Key) -> Name {
        let (mut word, mut mask) = ([0u8; 8], [0u8; 8]);
        let quoted = name.len() + 1;
        let mut i = 0;
        while i < 8 && i < quoted {
            // Byte `quoted - 1 - i` of `"name`, filled from the end.
            let q = quoted - 1 - i;
            word[7 - i] = if q == 0 { b'"' } else { name[q - 1] };
            mask[7 - i] = 0xff;
            i += 1;
        }
        Name {
            name,
            key,
            word: u64::from_le_bytes(word),
            mask: u64::from_le_bytes(mask),
        }
    }

    /// Whether the key closed by the quote at `close` is this name; `tail` is the word
    /// of the eight bytes before that quote.
    #[inline(always)]
    fn is_before(&self, data: &[u8], close: usize, tail: u64) -> bool {
        if tail & self.mask != self.word {
            return false;
        }
        let Some(open) = close.checked_sub(self.name.len() + 1) else {
            return false;
        };
        // Names longer than seven bytes: the word held their end only.
        let whole = self.name.len() < 8
            || (data.get(open) == Some(&b'"')
                && data.get(open + 1..close - 8) == self.name.get(..self.name.len() - 8));
        whole && !escaped(data, open)
    }
}

const CONTENT: Name = Name::new(b"content", Key::Text);
const REASONING_CONTENT: Name = Name::new(b"reasoning_content", Key::Text);
const TEXT: Name = Name::new(b"text", Key::ChoiceText);
const DELTA: Name = Name::new(b"delta", Key::Delta);
const REASONING: Name = Name::new(b"reasoning", Key::Text);
const ARGUMENTS: Name = Name::new(b"arguments", Key::Text);
const CHOICES: Name = Name::new(b"choices", Key::Choices);
const USAGE: Name = Name::new(b"usage", Key::Usage);
const FINISH_REASON: Name = Name::new(b"finish_reason", Key::FinishReason);

/// The key that ends at the `:` at `colon`, if the scan reads it.
#[inline(always)]
fn key_before(data: &[u8], colon: usize) -> Option<Key> {
    // Compact JSON puts the key's closing quote right before the colon.
    let mut close = colon.checked_sub(1)?;
    if data[close] != b'"' {
        close = data[..colon]
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
        if data[close] != b'"' {
            return None;
        }
    }
    let tail = match close.checked_sub(8) {
        Some(from) => word_at(data, from),
        // Fewer than eight bytes before the quote: they go to the word's high end.
        None => word_at(data, 0)
            .checked_shl(8 * (8 - close as u32))
            .unwrap_or(0),
    };
    // Most keys are ruled out by their last letter, before any comparison; `content`
    // is a suffix of `reasoning_content`, so a key is the name between two quotes.
    let is = |name: &'static Name| name.is_before(data, close, tail).then_some(name.key);
    let key = match (tail >> 56) as u8 {
        b't' => is(&CONTENT)
            .or_else(|| is(&REASONING_CONTENT))
            .or_else(|| is(&TEXT)),
        b'a' => is(&DELTA),
        b'g' => is(&REASONING),
        b's' => is(&ARGUMENTS).or_else(|| is(&CHOICES)),
        b'e' => is(&USAGE),
        b'n' => is(&FINISH_REASON),
        _ => None,
    }?;
    (!escaped(data, close)).then_some(key)
}

/// Whether the quote at `at` is escaped (an odd run of backslashes before it).
#[inline(always)]
fn escaped(data: &[u8], at: usize) -> bool {
    if at == 0 || data[at - 1] != b'\\' {
        return false;
    }
    data[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

#[cfg(test)]
#[path = "chunk_tests.rs"]
mod tests;
