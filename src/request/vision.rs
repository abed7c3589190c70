//! Tells whether a JSON request body carries image content, looking only inside its top-level `messages` and `input`, in one pass without building a tree.
//!
//! The rules, for all three API shapes at once (Chat Completions, Responses, Anthropic
//! Messages), applied to the value of every top-level member whose key unescapes to
//! `messages` or `input` (duplicates included: some parser may read either):
//!
//! - an object, at any depth, with a member `type` whose value is a string unescaping to
//!   `image`, `image_url` or `input_image` is an image part;
//! - an object that is an array element (a content part), at any depth, with a member
//!   `image_url` whose value is not `null` is an image part too. An `image_url` member of
//!   an object that is no array element is left alone: it is what an Anthropic `tool_use`
//!   block's `input` object looks like when a tool takes an image URL as an argument, and
//!   clients that serialise unset fields write `"image_url": null` into text parts.
//!
//! Keys and `type` values are compared after JSON unescaping (`"typ\u0065"` is `type`),
//! exactly and case-sensitively. String contents are skipped with memchr and never
//! searched, so words inside text (or a JSON document escaped into a string) never count.
//! Everything outside `messages` and `input` (`tools`, `metadata`, `response_format`, …)
//! is skipped, and a body that is not an object has no image.
//!
//! The body is expected to have passed [`super::scan::scan`]; on any other input the
//! answer is unspecified, but the walk still never panics, never recurses and ends.

use crate::jsonbytes::find_quote_or_backslash;

/// `type` values that mark an image part.
const IMAGE_TYPES: [&[u8]; 3] = [b"image", b"image_url", b"input_image"];

/// Deepest container nesting followed, the top-level object counting as 1; the bit
/// stack of container kinds holds exactly this many levels. A validated body nests at
/// most 127 levels, so a deeper one is not a request: it has no image.
const MAX_DEPTH: u32 = 128;

/// Whether `body` carries image content in its top-level `messages` or `input` (see the module docs for the rules).
pub fn has_image(body: &[u8]) -> bool {
    Walker { b: body, pos: 0 }.run()
}

/// A cursor over the body; `pos` only moves forward.
struct Walker<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Walker<'a> {
    /// Walks the whole body, token by token, until an image part is found or the top-level object closes.
    fn run(mut self) -> bool {
        if self.next_token() != Some(b'{') {
            return false;
        }
        self.pos += 1;
        // Open containers; bit `level - 1` of `arrays` tells whether the container at that level is an array.
        let mut depth: u32 = 1;
        let mut arrays: u128 = 0;
        // Whether the next string is an object key.
        let mut expect_key = true;
        // Whether the top-level member being walked is `messages` or `input`.
        let mut searching = false;
        while let Some(byte) = self.next_token() {
            match byte {
                b'{' | b'[' => {
                    if depth >= MAX_DEPTH {
                        return false;
                    }
                    depth += 1;
                    if byte == b'[' {
                        arrays |= level_bit(depth);
                    } else {
                        arrays &= !level_bit(depth);
                    }
                    expect_key = byte == b'{';
                    self.pos += 1;
                }
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return false;
                    }
                    self.pos += 1;
                }
                b',' => {
                    expect_key = arrays & level_bit(depth) == 0;
                    self.pos += 1;
                }
                b':' => {
                    expect_key = false;
                    self.pos += 1;
                }
                b'"' => {
                    let literal = self.string();
                    if !expect_key {
                        continue;
                    }
                    expect_key = false;
                    if depth == 1 {
                        searching = literal.is(b"messages") || literal.is(b"input");
                    } else if searching {
                        let element = arrays & level_bit(depth - 1) != 0;
                        if self.image_member(literal, element) {
                            return true;
                        }
                    }
                }
                _ => self.scalar(),
            }
        }
        false
    }

    /// Skips whitespace and returns the next byte without consuming it.
    fn next_token(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
        self.b.get(self.pos).copied()
    }

    /// With the cursor just past the key `key` of an object (an array element when
    /// `element`), tells whether this member makes the object an image part. Consumes
    /// the `:` and a string value when it looks at them, and nothing else of the value.
    fn image_member(&mut self, key: Literal<'_>, element: bool) -> bool {
        let is_type = key.is(b"type");
        if !(is_type || element && key.is(b"image_url")) {
            return false;
        }
        if self.next_token() != Some(b':') {
            return false;
        }
        self.pos += 1;
        match self.next_token() {
            Some(b'"') if is_type => {
                let value = self.string();
                IMAGE_TYPES.iter().any(|t| value.is(t))
            }
            None | Some(b'n') => false,
            Some(_) => !is_type,
        }
    }

    /// Consumes the string literal whose opening quote is at the cursor and returns its
    /// contents (up to the end of the body if it is unterminated).
    fn string(&mut self) -> Literal<'a> {
        let b: &'a [u8] = self.b;
        let start = self.pos + 1;
        let mut at = start;
        loop {
            let rest = b.get(at..).unwrap_or_default();
            let Some(i) = find_quote_or_backslash(rest) else {
                self.pos = b.len();
                let raw = b.get(start..).unwrap_or_default();
                return Literal {
                    raw,
                    escaped: at > start,
                    closed: false,
                };
            };
            if rest.get(i) == Some(&b'"') {
                self.pos = at + i + 1;
                let raw = b.get(start..at + i).unwrap_or_default();
                return Literal {
                    raw,
                    escaped: at > start,
                    closed: true,
                };
            }
            // A backslash: the byte after it is never the end of the string.
            at += i + 2;
        }
    }

    /// Consumes a number, `true`, `false` or `null` (or, in an invalid body, any run of
    /// bytes that are not structural), always at least one byte.
    fn scalar(&mut self) {
        self.pos += 1;
        while let Some(&b) = self.b.get(self.pos) {
            if matches!(
                b,
                b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' | b'"' | b'{' | b'}' | b'[' | b']'
            ) {
                return;
            }
            self.pos += 1;
        }
    }
}

/// The contents of a string literal, between its quotes, escapes not yet decoded.
#[derive(Clone, Copy)]
struct Literal<'a> {
    raw: &'a [u8],
    /// Whether `raw` holds a backslash.
    escaped: bool,
    /// Whether the closing quote was found (not so in a truncated body).
    closed: bool,
}

impl Literal<'_> {
    /// Whether the literal is complete and decodes to the ASCII text `want`.
    fn is(self, want: &[u8]) -> bool {
        if !self.closed {
            false
        } else if self.escaped {
            unescapes_to(self.raw, want)
        } else {
            self.raw == want
        }
    }
}

/// The bit of the container-kind stack for nesting level `level` (1-based); 0 outside 1..=128.
fn level_bit(level: u32) -> u128 {
    level
        .checked_sub(1)
        .and_then(|shift| 1u128.checked_shl(shift))
        .unwrap_or(0)
}

/// Whether the string-literal contents `raw` (escapes not yet decoded) decode to the ASCII text `want`.
fn unescapes_to(raw: &[u8], want: &[u8]) -> bool {
    // Each character of an ASCII `want` takes 1 to 6 bytes (`\u0065`) in the literal.
    if raw.len() < want.len() || raw.len() > want.len() * 6 {
        return false;
    }
    let (mut raw, mut want) = (raw, want);
    loop {
        let plain = memchr::memchr(b'\\', raw).unwrap_or(raw.len());
        let (head, tail) = raw.split_at_checked(plain).unwrap_or((raw, &[]));
        let Some(left) = want.strip_prefix(head) else {
            return false;
        };
        if tail.is_empty() {
            return left.is_empty();
        }
        let Some((code, len)) = decode_escape(tail) else {
            return false;
        };
        match left.split_first() {
            Some((&c, rest)) if u32::from(c) == code => want = rest,
            _ => return false,
        }
        raw = tail.get(len..).unwrap_or_default();
    }
}

/// Decodes the escape at the start of `s` (a backslash) to a UTF-16 code unit or ASCII
/// byte and the bytes it spans; a surrogate half is returned as is, never matching ASCII.
fn decode_escape(s: &[u8]) -> Option<(u32, usize)> {
    let simple = match s.get(1)? {
        b'u' => {
            let hex = s.get(2..6)?;
            let mut code = 0;
            for &h in hex {
                code = code * 16 + char::from(h).to_digit(16)?;
            }
            return Some((code, 6));
        }
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        _ => return None,
    };
    Some((u32::from(simple), 2))
}

#[cfg(test)]
#[path = "vision_tests.rs"]
mod tests;
