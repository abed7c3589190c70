//! Locates, and rewrites in place, the top-level `model` of a JSON request body in one validating pass, without building a tree.
//!
//! The scan accepts exactly the documents `serde_json::from_slice::<serde_json::Value>`
//! accepts (same grammar, string, number-range and nesting rules), so the model the
//! gateway bills is the model a strict JSON parser at the provider sees. On top of that
//! it refuses a body with two top-level keys that unescape to `model`, because parsers
//! disagree on which of the two wins; keys differing from `model` only in ASCII case
//! count too, because case-insensitive parsers (Go's `encoding/json`, for one) read them
//! as `model`.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;

/// Deepest container nesting accepted, the top-level object counting as 1.
/// serde_json's default recursion limit (128) refuses the 128th level.
const MAX_DEPTH: usize = 127;

const EOF: &str = "unexpected end of input";
const LONE_SURROGATE: &str = "unpaired surrogate in \\u escape";
const BAD_UNICODE_ESCAPE: &str = "invalid \\u escape";

/// What the scan learnt about a request body's top-level object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan<'a> {
    /// The top-level `model` value, unescaped (borrowed when it had no escapes).
    pub model: Cow<'a, str>,
    /// Byte range of the `model` value's JSON string literal, quotes included.
    pub model_span: Range<usize>,
    /// Top-level `"stream": true` (false when absent, false, or not a boolean).
    pub stream: bool,
    /// Byte range of the top-level `stream_options` value, if present.
    pub stream_options: Option<Range<usize>>,
    /// `stream_options.include_usage` when stream_options is an object holding that key as a boolean.
    pub include_usage: Option<bool>,
    /// Offset of the closing `}` of the top-level object.
    pub object_end: usize,
    /// The output-token cap asked for: top-level `max_completion_tokens`, else
    /// `max_tokens`, else `max_output_tokens` (Responses), when a plain integer.
    pub output_cap: Option<u64>,
}

/// Why a request body was refused; each message is fit to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The body is not valid JSON (a truncated body reports "unexpected end of input").
    #[error("request body is not valid JSON: {what} at offset {offset}")]
    Invalid {
        /// Byte offset of the first problem.
        offset: usize,
        /// What is wrong there.
        what: &'static str,
    },
    /// The body is valid JSON but not an object.
    #[error("request body must be a JSON object")]
    NotObject,
    /// The object has no top-level `model` key.
    #[error("request body has no top-level \"model\" field")]
    MissingModel,
    /// The top-level `model` value is not a string.
    #[error("\"model\" must be a string")]
    ModelNotString,
    /// The top-level `model` value is the empty string.
    #[error("\"model\" must not be empty")]
    EmptyModel,
    /// Two top-level keys unescape to `model`, ignoring ASCII case (`"Model"` counts).
    #[error("request body has more than one top-level \"model\" field")]
    DuplicateModel,
}

/// A JSON number literal that is a plain non-negative integer, as u64.
fn plain_u64(lit: &[u8]) -> Option<u64> {
    if lit.is_empty() || !lit.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(lit).ok()?.parse().ok()
}

/// A malformed-JSON error.
fn invalid(offset: usize, what: &'static str) -> ScanError {
    ScanError::Invalid { offset, what }
}

/// Validates `body` as one JSON document and reports its top-level `model`,
/// `stream` and `stream_options` (the last occurrence wins for the latter two).
pub fn scan(body: &[u8]) -> Result<Scan<'_>, ScanError> {
    // Outside strings only ASCII is grammatical, so the body is valid UTF-8 exactly
    // when every string is: one fast whole-body check replaces per-string checks.
    // A sequence cut short by the end of the body is left to the parser, which then
    // reports the truncation itself.
    let bad_utf8 = std::str::from_utf8(body)
        .err()
        .filter(|e| e.error_len().is_some())
        .map(|e| e.valid_up_to());
    let result = Parser { b: body, pos: 0 }.document();
    match (result, bad_utf8) {
        (Err(ScanError::Invalid { offset, what }), bad) if bad.is_none_or(|u| offset < u) => {
            Err(ScanError::Invalid { offset, what })
        }
        (_, Some(offset)) => Err(invalid(offset, "invalid UTF-8")),
        (result, None) => result,
    }
}

/// The body with the model value's literal replaced by `model` as a JSON string (escaped as needed); every other byte unchanged.
///
/// `span` is normally [`Scan::model_span`]; a span reaching outside `body` is clamped to it.
pub fn replace_model(body: &[u8], span: Range<usize>, model: &str) -> Bytes {
    let start = span.start.min(body.len());
    let end = span.end.clamp(start, body.len());
    let head = body.get(..start).unwrap_or_default();
    let tail = body.get(end..).unwrap_or_default();
    let mut out = Vec::with_capacity(head.len() + tail.len() + model.len() + 8);
    out.extend_from_slice(head);
    push_json_string(&mut out, model);
    out.extend_from_slice(tail);
    Bytes::from(out)
}

/// Appends `s` as a JSON string literal: `"` and `\` and control characters escaped, the rest raw.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => {
                let hex = |nibble: u8| HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// The top-level `model` as seen so far.
enum Model {
    /// Not seen.
    Absent,
    /// A string literal: the literal's span, and whether it holds escapes.
    Str(Range<usize>, bool),
    /// Some other kind of value.
    Other,
}

/// Facts gathered from the top-level object's members.
struct Top {
    model: Model,
    /// Keys equal to `model` ignoring ASCII case.
    model_keys: usize,
    stream: bool,
    stream_options: Option<Range<usize>>,
    include_usage: Option<bool>,
    /// `max_completion_tokens`, `max_tokens`, `max_output_tokens`, in that order.
    caps: [Option<u64>; 3],
}

/// A cursor over the body; `pos` only moves forward and never passes `b.len()`.
struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    /// An `Invalid` error at the cursor, or "unexpected end of input" when the cursor is at the end.
    fn fail(&self, what: &'static str) -> ScanError {
        if self.pos >= self.b.len() {
            invalid(self.b.len(), EOF)
        } else {
            invalid(self.pos, what)
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Skips whitespace and returns the next byte without consuming it.
    fn next_token(&mut self) -> Result<u8, ScanError> {
        self.skip_ws();
        self.peek().ok_or_else(|| self.fail(EOF))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Parses the whole body: one value, then only whitespace.
    fn document(mut self) -> Result<Scan<'a>, ScanError> {
        if self.b.starts_with(b"\xEF\xBB\xBF") {
            return Err(self.fail("byte order mark is not allowed"));
        }
        if self.next_token()? != b'{' {
            self.value(0)?;
            self.end()?;
            return Err(ScanError::NotObject);
        }
        self.pos += 1;
        let mut top = Top {
            model: Model::Absent,
            model_keys: 0,
            stream: false,
            stream_options: None,
            include_usage: None,
            caps: [None; 3],
        };
        let object_end = self.members(1, |p, key| p.top_member(key, &mut top))?;
        self.end()?;
        let (span, escaped) = match top.model {
            _ if top.model_keys > 1 => return Err(ScanError::DuplicateModel),
            Model::Absent => return Err(ScanError::MissingModel),
            Model::Other => return Err(ScanError::ModelNotString),
            Model::Str(span, escaped) => (span, escaped),
        };
        let raw = self.b.get(span.start + 1..span.end - 1).unwrap_or_default();
        let model = if escaped {
            Cow::Owned(unescape(raw).ok_or(invalid(span.start, "invalid string"))?)
        } else {
            let bad =
                |e: std::str::Utf8Error| invalid(span.start + 1 + e.valid_up_to(), "invalid UTF-8");
            Cow::Borrowed(std::str::from_utf8(raw).map_err(bad)?)
        };
        if model.is_empty() {
            return Err(ScanError::EmptyModel);
        }
        Ok(Scan {
            model,
            model_span: span,
            stream: top.stream,
            stream_options: top.stream_options,
            include_usage: top.include_usage,
            object_end,
            output_cap: top.caps.into_iter().flatten().next(),
        })
    }

    /// Requires that only whitespace follows.
    fn end(&mut self) -> Result<(), ScanError> {
        match self.next_token() {
            Err(_) => Ok(()),
            Ok(_) => Err(self.fail("trailing characters after the JSON value")),
        }
    }

    /// Handles one top-level member whose value starts at the cursor.
    fn top_member(&mut self, key: Key<'a>, top: &mut Top) -> Result<(), ScanError> {
        let name = key.name()?;
        let start = self.pos;
        if name.eq_ignore_ascii_case(b"model") {
            top.model_keys = top.model_keys.saturating_add(1);
        }
        match &*name {
            b"model" => {
                if self.next_token()? == b'"' {
                    let escaped = self.string()?;
                    top.model = Model::Str(start..self.pos, escaped);
                } else {
                    self.value(1)?;
                    top.model = Model::Other;
                }
            }
            b"stream" => {
                self.value(1)?;
                top.stream = self.b.get(start..self.pos) == Some(b"true");
            }
            b"stream_options" => {
                let mut include_usage = None;
                if self.next_token()? == b'{' {
                    self.pos += 1;
                    self.members(2, |p, key| {
                        let at = p.pos;
                        p.value(2)?;
                        if &*key.name()? == b"include_usage" {
                            include_usage = match p.b.get(at..p.pos) {
                                Some(b"true") => Some(true),
                                Some(b"false") => Some(false),
                                _ => None,
                            };
                        }
                        Ok(())
                    })?;
                } else {
                    self.value(1)?;
                }
                top.stream_options = Some(start..self.pos);
                top.include_usage = include_usage;
            }
            b"max_completion_tokens" | b"max_tokens" | b"max_output_tokens" => {
                self.value(1)?;
                let slot = match &*name {
                    b"max_completion_tokens" => 0,
                    b"max_tokens" => 1,
                    _ => 2,
                };
                top.caps[slot] = self.b.get(start..self.pos).and_then(plain_u64);
            }
            _ => self.value(1)?,
        }
        Ok(())
    }

    /// Parses the members of an object at nesting level `depth` whose `{` was just
    /// consumed, calling `on_member` with the cursor at each value (which it must
    /// consume); returns the offset of the closing `}`, which is consumed too.
    fn members(
        &mut self,
        depth: usize,
        mut on_member: impl FnMut(&mut Self, Key<'a>) -> Result<(), ScanError>,
    ) -> Result<usize, ScanError> {
        if depth > MAX_DEPTH {
            return Err(self.fail("nesting deeper than 127 levels"));
        }
        if self.next_token()? == b'}' {
            self.pos += 1;
            return Ok(self.pos - 1);
        }
        loop {
            let key = self.key()?;
            on_member(self, key)?;
            match self.next_token()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Ok(self.pos - 1);
                }
                _ => return Err(self.fail("expected ',' or '}' after object member")),
            }
        }
    }

    /// Parses an object key, its `:` and the whitespace after it.
    fn key(&mut self) -> Result<Key<'a>, ScanError> {
        match self.next_token()? {
            b'"' => {}
            b'}' => return Err(self.fail("trailing comma in object")),
            _ => return Err(self.fail("expected '\"' to start an object key")),
        }
        let start = self.pos + 1;
        let escaped = self.string()?;
        let raw = self.b.get(start..self.pos - 1).unwrap_or_default();
        if self.next_token()? != b':' {
            return Err(self.fail("expected ':' after object key"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(Key {
            raw,
            escaped,
            at: start - 1,
        })
    }

    /// Validates one value of any kind, nested `outer` containers deep, without recursion.
    fn value(&mut self, outer: usize) -> Result<(), ScanError> {
        // Bit i of `objects` tells whether the container open at level outer+1+i is an object.
        let mut open: usize = 0;
        let mut objects: u128 = 0;
        'value: loop {
            match self.next_token()? {
                byte @ (b'{' | b'[') => {
                    if outer + open >= MAX_DEPTH {
                        return Err(self.fail("nesting deeper than 127 levels"));
                    }
                    let bit = 1u128.checked_shl(open as u32).unwrap_or(0);
                    self.pos += 1;
                    open += 1;
                    let close = if byte == b'{' {
                        objects |= bit;
                        b'}'
                    } else {
                        objects &= !bit;
                        b']'
                    };
                    if self.next_token()? == close {
                        self.pos += 1;
                        open -= 1;
                    } else if byte == b'{' {
                        self.key()?;
                        continue 'value;
                    } else {
                        continue 'value;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return Err(self.fail("expected a JSON value")),
            }
            // A value is complete: close the containers it completes.
            while open > 0 {
                let in_object = objects & 1u128.checked_shl(open as u32 - 1).unwrap_or(0) != 0;
                match (self.next_token()?, in_object) {
                    (b',', true) => {
                        self.pos += 1;
                        self.key()?;
                        continue 'value;
                    }
                    (b',', false) => {
                        self.pos += 1;
                        if self.next_token()? == b']' {
                            return Err(self.fail("trailing comma in array"));
                        }
                        continue 'value;
                    }
                    (b'}', true) | (b']', false) => {
                        self.pos += 1;
                        open -= 1;
                    }
                    (_, true) => return Err(self.fail("expected ',' or '}' after object member")),
                    (_, false) => return Err(self.fail("expected ',' or ']' after array element")),
                }
            }
            return Ok(());
        }
    }

    /// Consumes the literal `lit` (`true`, `false` or `null`).
    fn literal(&mut self, lit: &'static [u8]) -> Result<(), ScanError> {
        let have = self.b.get(self.pos..).unwrap_or_default();
        if have.starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else if lit.starts_with(have) {
            self.pos = self.b.len();
            Err(self.fail(EOF))
        } else {
            Err(self.fail("expected a JSON value"))
        }
    }

    /// Consumes the digits at the cursor and returns how many there were.
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Consumes a number: RFC 8259 grammar, and refused where serde_json finds it out of range.
    fn number(&mut self) -> Result<(), ScanError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_digits = match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.fail("leading zeros are not allowed in numbers"));
                }
                1
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.fail("invalid number")),
        };
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.fail("invalid number"));
            }
        }
        let mut exp_digits = 0;
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            exp_digits = self.digits();
            if exp_digits == 0 {
                return Err(self.fail("invalid number"));
            }
        }
        // Overflow needs a decimal exponent above 288 (see serde_json_out_of_range), out of
        // reach of an exponent below 100 plus at most 189 integer digits.
        if (exp_digits > 2 || int_digits > 189)
            && serde_json_out_of_range(self.b.get(start..self.pos).unwrap_or_default())
        {
            return Err(invalid(start, "number out of range"));
        }
        Ok(())
    }

    /// Consumes a string literal whose opening quote is at the cursor, validating
    /// escapes and control characters (UTF-8 is checked once for the whole body);
    /// returns whether it holds escapes.
    fn string(&mut self) -> Result<bool, ScanError> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            let rest = self.b.get(self.pos..).unwrap_or_default();
            let i = find_special(rest);
            self.pos += i;
            match rest.get(i) {
                None => return Err(self.fail(EOF)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match decode_escape(rest.get(i..).unwrap_or_default()) {
                        Ok((_, len)) => self.pos += len,
                        Err(EOF) => {
                            self.pos = self.b.len();
                            return Err(self.fail(EOF));
                        }
                        Err(what) => return Err(self.fail(what)),
                    }
                }
                Some(_) => return Err(self.fail("control character in string (must be escaped)")),
            }
        }
    }
}

/// An object key as it appears in the body (between its quotes).
struct Key<'a> {
    raw: &'a [u8],
    escaped: bool,
    /// Offset of the key's opening quote.
    at: usize,
}

impl<'a> Key<'a> {
    /// The key's name with escapes decoded.
    fn name(&self) -> Result<Cow<'a, [u8]>, ScanError> {
        if !self.escaped {
            return Ok(Cow::Borrowed(self.raw));
        }
        match unescape(self.raw) {
            Some(s) => Ok(Cow::Owned(s.into_bytes())),
            None => Err(invalid(self.at, "invalid string")),
        }
    }
}

/// Offset of the first `"`, `\` or control byte in `s`, or `s.len()` if none.
///
/// Runs between escapes are usually short, so the first 128 bytes are searched a word
/// at a time; a longer run is skipped with memchr2 and then checked for control bytes.
fn find_special(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let head = s.get(..128).unwrap_or(s);
    let mut words = head.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let v = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        // Per byte: high bit set where the byte is zero (or, for control bytes, below 0x20).
        // Borrows can only flag bytes above a genuine hit, so the lowest flag is exact.
        let hits = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(ONES * 0x20) & !v);
        let hits = hits & HIGH;
        if hits != 0 {
            return offset + (hits.trailing_zeros() / 8) as usize;
        }
        offset += 8;
    }
    let special = |&b: &u8| b == b'"' || b == b'\\' || b < 0x20;
    if let Some(i) = words.remainder().iter().position(special) {
        return offset + i;
    }
    let tail = s.get(head.len()..).unwrap_or_default();
    let run = memchr::memchr2(b'"', b'\\', tail).unwrap_or(tail.len());
    let plain = tail.get(..run).unwrap_or_default();
    // Vectorises: a min over fixed-size chunks, with an early exit per chunk.
    let mut chunks = plain.chunks_exact(32);
    let has_control = chunks.any(|c| c.iter().fold(0xff, |m, &b| m.min(b)) < 0x20)
        || chunks.remainder().iter().any(|&b| b < 0x20);
    let control = if has_control {
        plain.iter().position(|&b| b < 0x20)
    } else {
        None
    };
    head.len() + control.unwrap_or(run)
}

/// Decodes the escape sequence starting at `s[0]` (a backslash) the way serde_json
/// does for strings: `\u` surrogates must pair. Returns the character and the bytes spanned.
fn decode_escape(s: &[u8]) -> Result<(char, usize), &'static str> {
    let simple = match s.get(1) {
        None => return Err(EOF),
        Some(b'u') => {
            let hi = hex4(s.get(2..).unwrap_or_default())?;
            let (code, len) = match hi {
                0xDC00..=0xDFFF => return Err(LONE_SURROGATE),
                0xD800..=0xDBFF => {
                    match (s.get(6), s.get(7)) {
                        (Some(b'\\'), Some(b'u')) => {}
                        (None, _) | (Some(b'\\'), None) => return Err(EOF),
                        _ => return Err(LONE_SURROGATE),
                    }
                    let lo = hex4(s.get(8..).unwrap_or_default())?;
                    if !(0xDC00..=0xDFFF).contains(&lo) {
                        return Err(LONE_SURROGATE);
                    }
                    (0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), 12)
                }
                _ => (hi, 6),
            };
            return char::from_u32(code).map(|c| (c, len)).ok_or(LONE_SURROGATE);
        }
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(_) => return Err("invalid escape in string"),
    };
    Ok((simple, 2))
}

/// Reads the four hex digits of a `\u` escape.
fn hex4(s: &[u8]) -> Result<u32, &'static str> {
    let mut n = 0;
    for i in 0..4 {
        let digit = match s.get(i) {
            None => return Err(EOF),
            Some(&b) => char::from(b).to_digit(16).ok_or(BAD_UNICODE_ESCAPE)?,
        };
        n = n * 16 + digit;
    }
    Ok(n)
}

/// Decodes the contents of an already validated string literal (between its quotes).
fn unescape(raw: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    loop {
        let i = memchr::memchr(b'\\', rest).unwrap_or(rest.len());
        out.push_str(std::str::from_utf8(rest.get(..i)?).ok()?);
        rest = rest.get(i..)?;
        if rest.is_empty() {
            return Some(out);
        }
        let (c, len) = decode_escape(rest).ok()?;
        out.push(c);
        rest = rest.get(len..)?;
    }
}

/// Splits `s` after its leading ASCII digits.
fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    s.split_at_checked(n).unwrap_or((s, &[]))
}

/// Whether serde_json (without `float_roundtrip`) refuses the grammatical number
/// `tok` as out of range, replaying its arithmetic exactly: a u64 significand (digits
/// past its overflow are dropped), an i32 exponent, then `significand * 10^exp`.
fn serde_json_out_of_range(tok: &[u8]) -> bool {
    let digits = tok.strip_prefix(b"-").unwrap_or(tok);
    let (int, rest) = split_digits(digits);
    let mut significand: u64 = 0;
    let mut exp: i32 = 0;
    let mut full = false;
    let push = |sig: u64, d: &u8| {
        sig.checked_mul(10)?
            .checked_add(u64::from(d.wrapping_sub(b'0')))
    };
    for d in int {
        match push(significand, d) {
            Some(s) if !full => significand = s,
            _ => {
                full = true;
                exp = exp.saturating_add(1);
            }
        }
    }
    let (frac, rest) = split_digits(rest.strip_prefix(b".").unwrap_or(rest));
    // Like serde_json, fraction digits keep filling the significand even after integer
    // digits overflowed it; the first one that does not fit ends the fraction.
    for d in frac {
        match push(significand, d) {
            Some(s) => {
                significand = s;
                exp = exp.saturating_sub(1);
            }
            None => break,
        }
    }
    if let Some(e) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let (negative, e) = match e {
            [b'-', e @ ..] => (true, e),
            [b'+', e @ ..] => (false, e),
            e => (false, e),
        };
        let mut e_val: i32 = 0;
        for d in e {
            match e_val
                .checked_mul(10)
                .and_then(|v| v.checked_add(i32::from(d.wrapping_sub(b'0'))))
            {
                Some(v) => e_val = v,
                None => return significand != 0 && !negative,
            }
        }
        exp = if negative {
            exp.saturating_sub(e_val)
        } else {
            exp.saturating_add(e_val)
        };
    }
    // Negative exponents only divide; below 10^289 the u64 significand cannot reach infinity.
    if significand == 0 || exp <= 288 {
        return false;
    }
    if exp > 308 {
        return true;
    }
    // serde_json multiplies by the literal `1e{exp}`; parsing the same text gives the same f64.
    let pow: f64 = format!("1e{exp}").parse().unwrap_or(f64::INFINITY);
    (significand as f64 * pow).is_infinite()
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
