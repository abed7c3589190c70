//! Reads an OpenAI chat/completions stream chunk in one pass, without building it:
//! what its `choices` say (count, generated-text bytes, whether one finished) and
//! where its raw `usage` value is. Parsing each chunk into [`ChatChunk`] with
//! serde_json cost about 6k instructions an event, most of it spent on members
//! nobody reads (`id`, `model`, `system_fingerprint`, `logprobs`…); this walk skips
//! them with `memchr`, and only the `usage` value, which comes once a stream, goes
//! to serde.
//!
//! It answers what `serde_json::from_slice::<ChatChunk>` would on well-formed JSON
//! (`chunk_tests` checks this on fixtures and generated chunks), including the refusal
//! of a duplicated member. Members it skips are checked only for balanced brackets,
//! strings and literals: a malformed chunk may still be read where serde would drop
//! it, which changes nothing but a cut stream's estimate.
//!
//! [`ChatChunk`]: super::wire::ChatChunk

use std::borrow::Cow;

use super::wire::Choices;
use crate::jsonbytes::find_quote_or_backslash;

/// What one chunk says.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// `None` when the chunk has no `choices` member, or `null`.
    pub choices: Option<Choices>,
    /// The raw `usage` value (maybe `null`), for serde.
    pub usage: Option<&'a [u8]>,
}

/// Reads a chunk; `None` if it is not a JSON object of the expected shape.
pub(crate) fn read(data: &[u8]) -> Option<Facts<'_>> {
    let mut w = Walk { b: data, i: 0 };
    let mut facts = Facts::default();
    let (mut choices, mut usage) = (false, false);
    w.object(|w, key| match key {
        b"choices" => {
            once(&mut choices)?;
            facts.choices = w.choices()?;
            Some(())
        }
        b"usage" => {
            once(&mut usage)?;
            let start = w.value_start()?;
            w.skip()?;
            facts.usage = Some(&data[start..w.i]);
            Some(())
        }
        _ => w.skip(),
    })?;
    w.end().then_some(facts)
}

/// The fast path for the chunks that carry no usage, all but one of a stream: their
/// generated-text bytes, or `None` if the chunk has a non-null `usage` (then [`read`] it).
///
/// One pass visits each `:`; a key ends just before one. A quote preceded by
/// an even run of backslashes delimits a string, and in valid JSON a delimiter that
/// follows a letter closes a string, so `"name"` then `:` is exactly a key. Keys are
/// matched at any depth, unlike [`read`]; in a chat chunk they occur only where `read`
/// looks, so the two agree (`chunk_tests`). A malformed chunk gives an estimate here
/// where serde would give nothing.
pub(crate) fn text_bytes(data: &[u8]) -> Option<u64> {
    let mut total = 0;
    each_colon(data, |colon| {
        let Some(key) = key_before(data, colon) else {
            return Some(());
        };
        let mut w = Walk {
            b: data,
            i: colon + 1,
        };
        if *key == Key::Usage {
            // OpenAI puts `"usage":null` on every chunk of a stream that asked for usage.
            if w.peek() != Some(b'n') {
                return None;
            }
        } else if w.peek() == Some(b'"') {
            total += w.text_len().unwrap_or(0);
        }
        Some(())
    })?;
    Some(total)
}

/// Calls `f` with the offset of each `:` in `data`, in order, until it returns `None`.
///
/// A word at a time: a chunk is a few hundred bytes with a colon every twenty, where
/// `memchr_iter`'s set-up per match cost more than the search.
fn each_colon(data: &[u8], mut f: impl FnMut(usize) -> Option<()>) -> Option<()> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = data.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let v = u64::from_le_bytes(word.try_into().unwrap_or([0; 8])) ^ (ONES * u64::from(b':'));
        // High bit set where the byte is a colon; borrows may flag bytes above a real
        // hit, so each flag is checked.
        let mut hits = v.wrapping_sub(ONES) & !v & HIGH;
        while hits != 0 {
            let at = base + (hits.trailing_zeros() / 8) as usize;
            if data[at] == b':' {
                f(at)?;
            }
            hits &= hits - 1;
        }
        base += 8;
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        if b == b':' {
            f(base + i)?;
        }
    }
    Some(())
}

/// A key [`text_bytes`] looks for.
#[derive(PartialEq)]
enum Key {
    Usage,
    Text,
}

/// The names of [`Key`]s; `content` is a suffix of `reasoning_content`, so a key is
/// the name between two quotes.
const KEYS: [(&[u8], Key); 6] = [
    (b"content", Key::Text),
    (b"usage", Key::Usage),
    (b"reasoning_content", Key::Text),
    (b"reasoning", Key::Text),
    (b"text", Key::Text),
    (b"arguments", Key::Text),
];

/// The key that ends at the `:` at `colon`, if it is `usage` or a text key.
fn key_before(data: &[u8], colon: usize) -> Option<&Key> {
    let close = data[..colon]
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    if data[close] != b'"' || escaped(data, close) {
        return None;
    }
    let head = &data[..close];
    KEYS.iter().find_map(|(name, key)| {
        let open = close.checked_sub(name.len() + 1)?;
        (head.ends_with(name) && data[open] == b'"' && !escaped(data, open)).then_some(key)
    })
}

/// Whether the quote at `at` is escaped (an odd run of backslashes before it).
fn escaped(data: &[u8], at: usize) -> bool {
    data[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Marks a member seen; `None` the second time (serde refuses duplicate fields).
fn once(seen: &mut bool) -> Option<()> {
    (!std::mem::replace(seen, true)).then_some(())
}

struct Walk<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Walk<'a> {
    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Only whitespace is left.
    fn end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Where the value at the cursor starts.
    fn value_start(&mut self) -> Option<usize> {
        self.peek().map(|_| self.i)
    }

    /// The string at the cursor: its bytes between the quotes, and whether it holds escapes.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let at = self.i + find_quote_or_backslash(self.b.get(self.i..)?)?;
            if self.b[at] == b'"' {
                self.i = at + 1;
                return Some((&self.b[start..at], escaped));
            }
            escaped = true;
            self.i = at + 2;
        }
    }

    /// An object's members, each handed to `member` with the cursor on its value
    /// (which `member` must consume).
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let start = self.i;
            let (key, escaped) = self.string()?;
            let key = if escaped {
                let quoted = &self.b[start..self.i];
                Cow::Owned(serde_json::from_slice::<String>(quoted).ok()?.into_bytes())
            } else {
                Cow::Borrowed(key)
            };
            self.eat(b':')?;
            member(self, &key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array's elements, each handed to `element` with the cursor on it.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `null` at the cursor is consumed and gives true.
    fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(true);
        }
        Some(false)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Skips any value. Containers are skipped by bracket depth, strings whole.
    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                        }
                        b'{' | b'[' => {
                            depth += 1;
                            self.i += 1;
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            self.i += 1;
                            if depth == 0 {
                                return Some(());
                            }
                        }
                        _ => self.i += 1,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.b.get(self.i)
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
            _ => None,
        }
    }

    /// Bytes of text in the value at the cursor: a string's UTF-8 length after
    /// unescaping, 0 for anything else (as `TextLen`).
    fn text_len(&mut self) -> Option<u64> {
        if self.peek()? != b'"' {
            return self.skip().map(|()| 0);
        }
        let start = self.i;
        let (raw, escaped) = self.string()?;
        if !escaped {
            return Some(raw.len() as u64);
        }
        let text = serde_json::from_slice::<Cow<'_, str>>(&self.b[start..self.i]).ok()?;
        Some(text.len() as u64)
    }

    /// `choices`: `null`, or an array of choice objects.
    fn choices(&mut self) -> Option<Option<Choices>> {
        if self.null()? {
            return Some(None);
        }
        let mut out = Choices::default();
        self.array(|w| {
            out.count += 1;
            let (mut delta, mut text, mut finish) = (false, false, false);
            w.object(|w, key| match key {
                b"delta" => {
                    once(&mut delta)?;
                    out.text_bytes += w.delta()?;
                    Some(())
                }
                b"text" => {
                    once(&mut text)?;
                    out.text_bytes += w.text_len()?;
                    Some(())
                }
                b"finish_reason" => {
                    once(&mut finish)?;
                    if !w.null()? {
                        out.finished = true;
                        w.skip()?;
                    }
                    Some(())
                }
                _ => w.skip(),
            })
        })?;
        Some(Some(out))
    }

    /// Text bytes of a choice's `delta` (`null` or an object).
    fn delta(&mut self) -> Option<u64> {
        if self.null()? {
            return Some(0);
        }
        let mut bytes = 0;
        let mut seen = [false; 4];
        self.object(|w, key| {
            let slot = match key {
                b"content" => 0,
                b"reasoning_content" => 1,
                b"reasoning" => 2,
                b"tool_calls" => 3,
                _ => return w.skip(),
            };
            once(&mut seen[slot])?;
            bytes += if slot == 3 {
                w.tool_calls()?
            } else {
                w.text_len()?
            };
            Some(())
        })?;
        Some(bytes)
    }

    /// Bytes of `function.arguments` over a `tool_calls` array (or `null`).
    fn tool_calls(&mut self) -> Option<u64> {
        if self.null()? {
            return Some(0);
        }
        let mut bytes = 0;
        self.array(|w| {
            let mut function = false;
            w.object(|w, key| match key {
                b"function" => {
                    once(&mut function)?;
                    if w.null()? {
                        return Some(());
                    }
                    let mut arguments = false;
                    w.object(|w, key| match key {
                        b"arguments" => {
                            once(&mut arguments)?;
                            bytes += w.text_len()?;
                            Some(())
                        }
                        _ => w.skip(),
                    })
                }
                _ => w.skip(),
            })
        })?;
        Some(bytes)
    }
}

#[cfg(test)]
#[path = "chunk_tests.rs"]
mod tests;
