//! Adds `stream_options.include_usage: true` to a streaming request body, changing no other byte.

use std::ops::Range;

use bytes::Bytes;

use crate::jsonbytes::{skip_ws, string_end, value_end};
use crate::request::scan::Scan;

const MEMBER: &[u8] = br#""include_usage":true"#;
const OPTIONS: &[u8] = br#""stream_options":{"include_usage":true}"#;
const OPTIONS_VALUE: &[u8] = br#"{"include_usage":true}"#;
const TRUE: &[&[u8]] = &[b"true"];

/// For a streaming chat/completions or completions request whose body lacks
/// `stream_options.include_usage: true`, the body with it added (returns `None` when
/// nothing must change: not streaming, or already true).
///
/// `scan` is the result of [`crate::request::scan::scan`] on `body`. Only the top-level
/// `stream_options` the scan reports (the last, which strict parsers use) is touched:
/// - absent: `,"stream_options":{"include_usage":true}` goes before the closing `}`;
/// - an object without `include_usage`: the member is added before its closing `}`;
/// - an object whose `include_usage` is not `true`: that value becomes `true` (every
///   occurrence, should the key repeat, so first-wins parsers agree);
/// - any other value (`null`, …): it becomes `{"include_usage":true}`.
///
/// The caller decides which endpoints this applies to (chat/completions, completions).
pub fn inject_include_usage(body: &[u8], scan: &Scan<'_>) -> Option<Injection> {
    if !scan.stream || scan.include_usage == Some(true) {
        return None;
    }
    let Some(range) = scan.stream_options.clone() else {
        let end = scan.object_end;
        let comma = if has_members_before(body, end) {
            ","
        } else {
            ""
        };
        return splice(body, &[(end..end, &[comma.as_bytes(), OPTIONS])]);
    };
    let value = body.get(range.clone())?;
    if value.first() != Some(&b'{') {
        return splice(body, &[(range, &[OPTIONS_VALUE])]);
    }
    let members = object_members(value)?;
    let targets: Vec<_> = members
        .iter()
        .filter(|m| key_is_include_usage(m.key))
        .map(|m| &m.value)
        .filter(|v| value.get((*v).clone()) != Some(b"true"))
        .map(|v| (range.start + v.start..range.start + v.end, TRUE))
        .collect();
    if !targets.is_empty() {
        return splice(body, &targets);
    }
    if members.iter().any(|m| key_is_include_usage(m.key)) {
        // Already `true` everywhere (the scan would have said so); nothing to change.
        return None;
    }
    let close = range.end.checked_sub(1)?;
    let comma = if members.is_empty() { "" } else { "," };
    splice(body, &[(close..close, &[comma.as_bytes(), MEMBER])])
}

/// Whether the object whose closing `}` is at `end` has a member (the byte before it,
/// whitespace aside, is not its opening `{`).
fn has_members_before(body: &[u8], end: usize) -> bool {
    let head = body.get(..end).unwrap_or_default();
    head.iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b != b'{')
}

/// A request body with `include_usage` added, and where its bytes moved.
#[derive(Debug)]
pub struct Injection {
    pub body: Bytes,
    /// Each edit, in order: the range of the original body replaced, and the length of
    /// what replaced it.
    edits: Vec<(Range<usize>, usize)>,
}

impl Injection {
    /// Where bytes `span` of the original body (which no edit touches, such as the
    /// `model` value) are in the new body: the new body need not be scanned again.
    pub fn moved(&self, span: Range<usize>) -> Range<usize> {
        let before = self.edits.iter().filter(|(r, _)| r.end <= span.start);
        let (added, removed) = before.fold((0, 0), |(a, d), (r, n)| (a + n, d + r.len()));
        span.start + added - removed..span.end + added - removed
    }
}

/// `body` with each range (in order, not overlapping) replaced by the concatenated parts.
fn splice(body: &[u8], edits: &[(Range<usize>, &[&[u8]])]) -> Option<Injection> {
    let added: usize = edits
        .iter()
        .flat_map(|(_, parts)| parts.iter().map(|p| p.len()))
        .sum();
    let mut out = Vec::with_capacity(body.len() + added);
    let mut from = 0;
    for (range, parts) in edits {
        out.extend_from_slice(body.get(from..range.start)?);
        for part in *parts {
            out.extend_from_slice(part);
        }
        from = range.end;
    }
    out.extend_from_slice(body.get(from..)?);
    let edits = edits
        .iter()
        .map(|(range, parts)| (range.clone(), parts.iter().map(|p| p.len()).sum()))
        .collect();
    Some(Injection {
        body: Bytes::from(out),
        edits,
    })
}

/// One member of an object: its key's raw text (between the quotes) and its value's span.
struct Member<'a> {
    key: &'a [u8],
    value: Range<usize>,
}

/// The members of the valid JSON object `obj` (which starts with `{`), in order.
fn object_members(obj: &[u8]) -> Option<Vec<Member<'_>>> {
    let mut out = Vec::new();
    let mut pos = skip_ws(obj, 1);
    if obj.get(pos) == Some(&b'}') {
        return Some(out);
    }
    loop {
        let (key_end, _) = string_end(obj, pos)?;
        let key = obj.get(pos + 1..key_end - 1)?;
        pos = skip_ws(obj, key_end);
        if obj.get(pos) != Some(&b':') {
            return None;
        }
        let start = skip_ws(obj, pos + 1);
        let end = value_end(obj, start)?;
        out.push(Member {
            key,
            value: start..end,
        });
        pos = skip_ws(obj, end);
        match obj.get(pos) {
            Some(b',') => pos = skip_ws(obj, pos + 1),
            Some(b'}') => return Some(out),
            _ => return None,
        }
    }
}

/// Whether a raw key decodes to `include_usage`.
fn key_is_include_usage(raw: &[u8]) -> bool {
    if memchr::memchr(b'\\', raw).is_none() {
        return raw == b"include_usage";
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).is_ok_and(|k| k == "include_usage")
}

#[cfg(test)]
#[path = "inject_tests.rs"]
mod tests;
