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
pub(crate) fn scan(data: &[u8]) -> Scan<'_> {
    let mut s = Scan::default();
    let (mut choice_text, mut chat) = (0, false);
    each_colon(data, |colon| {
        let Some(key) = key_before(data, colon) else {
            return;
        };
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
                    s.choices_empty = Some(w.peek() == Some(b']'));
                }
            }
            Key::FinishReason => s.finished |= w.null() == Some(false),
        }
    });
    if !chat {
        s.text_bytes += choice_text;
    }
    s
}

/// Calls `f` with the offset of each `:` in `data`, in order.
///
/// A word at a time: a chunk is a few hundred bytes with a colon every twenty, where
/// `memchr_iter`'s set-up per match cost more than the search.
fn each_colon(data: &[u8], mut f: impl FnMut(usize)) {
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
                f(at);
            }
            hits &= hits - 1;
        }
        base += 8;
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        if b == b':' {
            f(base + i);
        }
    }
}

/// The key that ends at the `:` at `colon`, if the scan reads it.
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
    // Most keys are ruled out by their last letter, before any comparison.
    let names: &[(&[u8], Key)] = match data[..close].last()? {
        b't' => &[
            (b"content", Key::Text),
            (b"reasoning_content", Key::Text),
            (b"text", Key::ChoiceText),
        ],
        b'a' => &[(b"delta", Key::Delta)],
        b'g' => &[(b"reasoning", Key::Text)],
        b's' => &[(b"arguments", Key::Text), (b"choices", Key::Choices)],
        b'e' => &[(b"usage", Key::Usage)],
        b'n' => &[(b"finish_reason", Key::FinishReason)],
        _ => return None,
    };
    if escaped(data, close) {
        return None;
    }
    // `content` is a suffix of `reasoning_content`: a key is the name between two quotes.
    names.iter().find_map(|(name, key)| {
        let open = close.checked_sub(name.len() + 1)?;
        let quoted = data[open] == b'"' && data[open + 1..close] == **name;
        (quoted && !escaped(data, open)).then_some(*key)
    })
}

/// Whether the quote at `at` is escaped (an odd run of backslashes before it).
fn escaped(data: &[u8], at: usize) -> bool {
    data[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

#[cfg(test)]
#[path = "chunk_tests.rs"]
mod tests;
