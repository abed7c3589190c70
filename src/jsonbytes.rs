//! Byte-level helpers shared by the JSON readers that skip what they do not need
//! (`request::vision`, `usage::chunk`, `usage::wire`).

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

    /// Only whitespace is left.
    pub(crate) fn end(&mut self) -> bool {
        self.peek().is_none()
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
