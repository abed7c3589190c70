//! Byte-level helpers shared by the JSON readers that skip what they do not need
//! (`request::vision`, and in `usage` the body scanner, the stream chunk scan, the
//! usage-object walk and the `include_usage` injection).

use std::borrow::Cow;

/// Offset of the first `"` or `\` in `s`.
///
/// Runs between escapes are often short, so the first 32 bytes are searched a word at a
/// time; a longer run is left to memchr2.
pub(crate) fn find_quote_or_backslash(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let head = s.get(..32).unwrap_or(s);
    let mut words = head.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let v = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        // Per byte: high bit set where the byte is zero. Borrows can only flag bytes
        // above a genuine hit, so the lowest flag is exact.
        let hits = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash))
            & HIGH;
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let special = |&b: &u8| b == b'"' || b == b'\\';
    if let Some(i) = words.remainder().iter().position(special) {
        return Some(offset + i);
    }
    let tail = s.get(head.len()..).unwrap_or_default();
    memchr::memchr2(b'"', b'\\', tail).map(|i| head.len() + i)
}

/// The offset of the first byte at or after `i` that is not JSON whitespace.
pub(crate) fn skip_ws(doc: &[u8], mut i: usize) -> usize {
    while doc
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The offset just past the string literal whose opening quote is at `open`, and
/// whether it holds escapes.
pub(crate) fn string_end(doc: &[u8], open: usize) -> Option<(usize, bool)> {
    if doc.get(open) != Some(&b'"') {
        return None;
    }
    let mut from = open + 1;
    let mut escaped = false;
    loop {
        let at = from + find_quote_or_backslash(doc.get(from..)?)?;
        if doc[at] == b'"' {
            return Some((at + 1, escaped));
        }
        escaped = true;
        from = at + 2;
    }
}

/// The offset just past the value starting at `i`: a string, a container (skipped by
/// bracket depth), or a scalar (up to the next delimiter or whitespace).
pub(crate) fn value_end(doc: &[u8], mut i: usize) -> Option<usize> {
    match *doc.get(i)? {
        b'"' => Some(string_end(doc, i)?.0),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                i += next_bracket_or_quote_near(doc.get(i..)?);
                match *doc.get(i)? {
                    b'"' => i = string_end(doc, i)?.0,
                    b'{' | b'[' => {
                        depth += 1;
                        i += 1;
                    }
                    _ => {
                        depth -= 1;
                        i += 1;
                        if depth == 0 {
                            return Some(i);
                        }
                    }
                }
            }
        }
        _ => {
            // A number or a literal. Any other byte (a stray quote, a control byte) is
            // not JSON: the caller's slower reader decides, so that a malformed body is
            // read the same whether it came whole or in pieces.
            let start = i;
            while doc
                .get(i)
                .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            {
                i += 1;
            }
            let delimited = doc
                .get(i)
                .is_none_or(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            (i > start && delimited).then_some(i)
        }
    }
}

/// [`next_bracket_or_quote`] for where the next one is usually a few bytes away (inside
/// an answer's objects): the first 16 bytes are looked at one by one, since a 32-byte
/// block costs as much as a short hop many times over.
fn next_bracket_or_quote_near(s: &[u8]) -> usize {
    let head = s.get(..16).unwrap_or(s);
    match head
        .iter()
        .position(|&b| b == b'"' || b & 0xDF == b'[' || b & 0xDF == b']')
    {
        Some(i) => i,
        None => head.len() + next_bracket_or_quote(s.get(head.len()..).unwrap_or_default()),
    }
}

/// Offset of the first `"`, `[`, `]`, `{` or `}` in `s`, or `s.len()`.
///
/// Checks 32 bytes at a time without early exit inside a block, which vectorises: the
/// numbers of an embeddings array are skipped at several GB/s.
pub(crate) fn next_bracket_or_quote(s: &[u8]) -> usize {
    // Clearing bit 5 maps `{` onto `[` and `}` onto `]`, and nothing else onto either.
    let hit = |b: u8| b == b'"' || b & 0xDF == b'[' || b & 0xDF == b']';
    let mut blocks = s.chunks_exact(32);
    let mut offset = 0;
    for block in &mut blocks {
        if block.iter().fold(false, |any, &b| any | hit(b)) {
            return offset + block.iter().position(|&b| hit(b)).unwrap_or(0);
        }
        offset += 32;
    }
    let rest = blocks.remainder();
    offset + rest.iter().position(|&b| hit(b)).unwrap_or(rest.len())
}

/// A cursor over JSON bytes that reads what it is asked for and skips the rest.
pub(crate) struct Walk<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

impl<'a> Walk<'a> {
    /// The next byte after whitespace, not consumed.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    pub(crate) fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// The string at the cursor: its bytes between the quotes, and whether it holds escapes.
    pub(crate) fn string(&mut self) -> Option<(&'a [u8], bool)> {
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
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>,
    ) -> Option<()> {
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

    /// `null` at the cursor is consumed and gives true.
    pub(crate) fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(true);
        }
        Some(false)
    }

    pub(crate) fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Skips any value. Containers are skipped by bracket depth, strings whole.
    pub(crate) fn skip(&mut self) -> Option<()> {
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
    pub(crate) fn text_len(&mut self) -> Option<u64> {
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
}
