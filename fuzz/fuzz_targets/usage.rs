//! Fuzzes the response usage reader (`UsageTracker`) over arbitrary bodies cut into
//! chunks at fuzz-chosen points: never a panic; without stripping every byte is relayed
//! as is; with stripping only bytes are removed, never added or reordered; and however
//! the body is cut, the client gets the same bytes and the same usage is read.
//!
//! Input: `mode`, `n`, `n` chunk lengths (one byte each), then the body.
//! `mode & 7` picks the format (mod 6, in the order of `FORMATS`), `mode & 8` asks to
//! strip the usage chunk tollgate injected (meaningful for OpenAI SSE only). The last
//! chunk takes whatever the lengths leave; a length may be 0 (an empty chunk).

#![no_main]

use std::fmt;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate::usage::{Format, Usage, UsageTracker};

const FORMATS: [Format; 6] = [
    Format::OpenAiJson,
    Format::OpenAiSse,
    Format::ResponsesJson,
    Format::ResponsesSse,
    Format::AnthropicJson,
    Format::AnthropicSse,
];

/// What one pass over the body produced.
#[derive(PartialEq, Eq)]
struct Seen {
    /// The bytes the client would receive.
    relayed: Vec<u8>,
    usage: Option<Usage>,
    complete: bool,
    text_bytes: u64,
}

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seen")
            .field(
                "relayed",
                &format_args!("b\"{}\"", self.relayed.escape_ascii()),
            )
            .field("usage", &self.usage)
            .field("complete", &self.complete)
            .field("text_bytes", &self.text_bytes)
            .finish()
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, n, rest @ ..] = data else {
        return;
    };
    let format = FORMATS[usize::from(mode & 7) % FORMATS.len()];
    let strip = mode & 8 != 0;
    let n = usize::from(n % 17).min(rest.len());
    let (lens, body) = rest.split_at(n);
    let body = Bytes::copy_from_slice(body);

    let whole = relay(format, strip, &body, &[body.len()]);
    let lens: Vec<usize> = lens.iter().map(|&l| usize::from(l)).collect();
    let split = relay(format, strip, &body, &lens);
    let bytewise = relay(format, strip, &body, &vec![1; body.len()]);
    assert_eq!(
        whole, split,
        "cutting the body at {lens:?} changes the outcome"
    );
    assert_eq!(
        whole, bytewise,
        "feeding the body byte by byte changes the outcome"
    );

    if strip && format == Format::OpenAiSse {
        let plain = relay(format, false, &body, &[body.len()]);
        assert_eq!(
            (whole.usage, whole.complete, whole.text_bytes),
            (plain.usage, plain.complete, plain.text_bytes),
            "stripping changes the usage read"
        );
        assert!(
            is_subsequence(&whole.relayed, &body),
            "stripping added or reordered bytes"
        );
    }
});

/// Feeds `body` cut after each of `lens` (clamped; the rest is one last chunk).
fn relay(format: Format, strip: bool, body: &Bytes, lens: &[usize]) -> Seen {
    let mut tracker = UsageTracker::new(format, strip);
    let may_change = strip && format == Format::OpenAiSse;
    let mut relayed = Vec::with_capacity(body.len());
    let mut at = 0;
    let mut feed = |tracker: &mut UsageTracker, chunk: Bytes| match tracker.observe(&chunk) {
        None => relayed.extend_from_slice(&chunk),
        Some(out) => {
            assert!(may_change, "{format:?} (strip {strip}) replaced a chunk");
            relayed.extend_from_slice(&out);
        }
    };
    for &len in lens {
        let end = (at + len).min(body.len());
        feed(&mut tracker, body.slice(at..end));
        at = end;
    }
    if at < body.len() {
        feed(&mut tracker, body.slice(at..));
    }
    if let Some(tail) = tracker.finish() {
        assert!(may_change, "{format:?} (strip {strip}) held bytes back");
        relayed.extend_from_slice(&tail);
    }
    if !may_change {
        assert!(
            relayed == body[..],
            "{format:?} (strip {strip}) changed the body"
        );
    }
    Seen {
        relayed,
        usage: tracker.usage(),
        complete: tracker.complete(),
        text_bytes: tracker.output_text_bytes(),
    }
}

/// Whether `small` is `big` with some bytes left out.
fn is_subsequence(small: &[u8], big: &[u8]) -> bool {
    let mut rest = big.iter();
    small.iter().all(|b| rest.any(|c| c == b))
}
