//! Tests for `UsageTracker` over recorded-looking provider bodies: every format, every split point, stripping.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::prelude::*;

use super::fixtures::{self, Fixture, Framing, CR, CRLF, LF, LF_NO_SPACE};
use super::*;

const FRAMINGS: [Framing; 4] = [LF, CRLF, CR, LF_NO_SPACE];

/// Feeds `body` cut at `cuts` (ascending offsets); returns what the client receives, and the tracker.
fn run(format: Format, strip: bool, body: &[u8], cuts: &[usize]) -> (Vec<u8>, UsageTracker) {
    let mut t = UsageTracker::new(format, strip);
    if !strip {
        // As the meter does for a Content-Length framed answer (never stripped).
        t.set_body_len(body.len() as u64);
    }
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([&body.len()]) {
        let chunk = Bytes::copy_from_slice(&body[from..cut]);
        match t.observe(&chunk) {
            None => out.extend_from_slice(&chunk),
            Some(b) => out.extend_from_slice(&b),
        }
        from = cut;
    }
    if let Some(rest) = t.finish() {
        out.extend_from_slice(&rest);
    }
    (out, t)
}

/// The body without its usage-only event.
fn stripped(fx: &Fixture) -> Vec<u8> {
    let r = fx.usage_event.clone().unwrap();
    [&fx.body[..r.start], &fx.body[r.end..]].concat()
}

fn assert_read(name: &str, t: &UsageTracker, fx: &Fixture, at: usize) {
    assert_eq!(t.usage(), Some(fx.usage), "{name}: usage, split at {at}");
    assert!(t.complete(), "{name}: complete, split at {at}");
    assert_eq!(
        t.output_text_bytes(),
        fx.text_bytes,
        "{name}: text bytes, split at {at}"
    );
}

#[test]
fn every_stream_reads_usage_when_split_at_every_offset() {
    for f in FRAMINGS {
        for (name, format, fx) in fixtures::streams(f) {
            for at in 0..=fx.body.len() {
                let (out, t) = run(format, false, &fx.body, &[at]);
                assert_eq!(out, fx.body, "{name}: relayed bytes, split at {at}");
                assert_read(name, &t, &fx, at);
            }
        }
    }
}

#[test]
fn every_stream_reads_usage_one_byte_at_a_time() {
    for f in FRAMINGS {
        for (name, format, fx) in fixtures::streams(f) {
            let cuts: Vec<usize> = (1..fx.body.len()).collect();
            let (out, t) = run(format, false, &fx.body, &cuts);
            assert_eq!(out, fx.body, "{name}");
            assert_read(name, &t, &fx, 1);
        }
    }
}

#[test]
fn observing_never_touches_the_relayed_chunk() {
    let fx = fixtures::openai_chat(LF);
    let mut t = UsageTracker::new(Format::OpenAiSse, false);
    for piece in fx.body.chunks(7) {
        assert_eq!(t.observe(&Bytes::copy_from_slice(piece)), None);
    }
    assert_eq!(t.finish(), None);
}

#[test]
fn every_json_body_reads_usage_when_split_at_every_offset() {
    for (name, format, fx) in fixtures::bodies() {
        let step = if fx.body.len() > 4096 { 97 } else { 1 };
        for at in (0..=fx.body.len()).step_by(step) {
            let (out, t) = run(format, false, &fx.body, &[at]);
            assert_eq!(out, fx.body);
            assert_read(name, &t, &fx, at);
        }
        let cuts: Vec<usize> = (1..fx.body.len()).collect();
        let (_, t) = run(format, false, &fx.body, &cuts);
        assert_read(name, &t, &fx, 1);
    }
}

#[test]
fn json_usage_in_a_string_or_nested_object_is_not_the_top_level_one() {
    let body = br#"{"a":"\"usage\":{\"prompt_tokens\":1}","usage":{"prompt_tokens":4,"completion_tokens":5},"b":{"usage":{"prompt_tokens":2}},"c":[{"usage":{"prompt_tokens":3}}],"d":"{\"usage\":6}"}"#;
    let (_, t) = run(Format::OpenAiJson, false, body, &[]);
    assert_eq!(t.usage().map(|u| (u.input, u.output)), Some((4, 5)));

    let only_decoys =
        br#"{"a":"usage","b":{"usage":{"prompt_tokens":2}},"usage_x":{"prompt_tokens":9}}"#;
    let (_, t) = run(Format::OpenAiJson, false, only_decoys, &[]);
    assert_eq!(t.usage(), None);
    assert!(!t.complete());
}

#[test]
fn json_usage_key_escaped_repeated_or_null() {
    let escaped = br#"{"us\u0061ge":{"prompt_tokens":7,"completion_tokens":1}}"#;
    let (_, t) = run(Format::OpenAiJson, false, escaped, &[]);
    assert_eq!(t.usage().map(|u| u.input), Some(7));

    let repeated = br#"{"usage":{"prompt_tokens":1},"x":1,"usage":{"prompt_tokens":2}}"#;
    let (_, t) = run(Format::OpenAiJson, false, repeated, &[]);
    assert_eq!(
        t.usage().map(|u| u.input),
        Some(2),
        "last wins, as in serde_json"
    );

    let null = br#"{"id":"x","usage":null}"#;
    let (_, t) = run(Format::OpenAiJson, false, null, &[]);
    assert_eq!(t.usage(), None);

    let odd =
        br#"{"usage":{"prompt_tokens":"12","completion_tokens":-1,"prompt_tokens_details":null}}"#;
    let (_, t) = run(Format::OpenAiJson, false, odd, &[]);
    assert_eq!(t.usage().map(|u| (u.input, u.output)), Some((12, 0)));

    let error =
        br#"{"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}}"#;
    let (_, t) = run(Format::OpenAiJson, false, error, &[]);
    assert_eq!(t.usage(), None);
}

#[test]
fn strip_removes_exactly_the_usage_chunk_at_every_split() {
    for f in FRAMINGS {
        for fx in [
            fixtures::openai_chat(f),
            fixtures::openai_tool_call(f),
            fixtures::openai_completions(f),
        ] {
            let want = stripped(&fx);
            for at in 0..=fx.body.len() {
                let (out, t) = run(Format::OpenAiSse, true, &fx.body, &[at]);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&want),
                    "split at {at}"
                );
                assert_read("strip", &t, &fx, at);
            }
        }
    }
}

#[test]
fn strip_without_a_usage_chunk_relays_everything_zero_copy() {
    let fx = fixtures::openai_chat_with(LF, false);
    let mut t = UsageTracker::new(Format::OpenAiSse, true);
    // One chunk per event: every chunk ends on a boundary.
    for event in fx
        .body
        .split_inclusive(|&b| b == b'\n')
        .collect::<Vec<_>>()
        .chunks(2)
    {
        assert_eq!(t.observe(&Bytes::from(event.concat())), None);
    }
    assert_eq!(t.finish(), None);
    assert_eq!(t.usage(), None);
    assert!(!t.complete());
    assert_eq!(t.output_text_bytes(), fx.text_bytes);
}

#[test]
fn strip_holds_back_only_the_incomplete_trailing_event() {
    let fx = fixtures::openai_chat(LF);
    let first_end = fx.body.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    let mut t = UsageTracker::new(Format::OpenAiSse, true);
    // A chunk ending inside the second event: the first goes out now, as a slice.
    let out = t.observe(&Bytes::copy_from_slice(&fx.body[..first_end + 10]));
    assert_eq!(out.as_deref(), Some(&fx.body[..first_end]));
    // The next chunk completes it: it goes out with that chunk.
    let second_end = first_end
        + fx.body[first_end..]
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap()
        + 2;
    let out = t.observe(&Bytes::copy_from_slice(
        &fx.body[first_end + 10..second_end],
    ));
    assert_eq!(out.as_deref(), Some(&fx.body[first_end..second_end]));
}

#[test]
fn strip_keeps_usage_that_rides_on_a_content_chunk() {
    // Some OpenAI-compatible providers put usage on the finishing chunk: not usage-only.
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
        "data: [DONE]\n\n",
    );
    let (out, t) = run(Format::OpenAiSse, true, body.as_bytes(), &[40]);
    assert_eq!(out, body.as_bytes());
    assert_eq!(t.usage().map(|u| (u.input, u.output)), Some((3, 1)));
    assert!(t.complete());
}

#[test]
fn running_usage_on_every_chunk_is_complete_only_at_the_end() {
    let mut body = String::new();
    for n in 1..=3 {
        body.push_str(&format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"x\"}},\"finish_reason\":null}}],\"usage\":{{\"prompt_tokens\":9,\"completion_tokens\":{n}}}}}\n\n"));
    }
    let (_, t) = run(Format::OpenAiSse, false, body.as_bytes(), &[]);
    assert_eq!(t.usage().map(|u| u.output), Some(3));
    assert!(!t.complete(), "cut before the final report");
    body.push_str("data: [DONE]\n\n");
    let (_, t) = run(Format::OpenAiSse, false, body.as_bytes(), &[]);
    assert!(t.complete());
}

#[test]
fn a_stream_cut_short_reports_partial_usage() {
    for f in FRAMINGS {
        for (name, format, fx) in fixtures::streams(f) {
            let half = fx.body.len() / 2;
            let (_, t) = run(format, false, &fx.body[..half], &[half / 3]);
            assert!(!t.complete(), "{name}");
            assert!(t.output_text_bytes() > 0, "{name}");
            assert!(t.output_text_bytes() < fx.text_bytes, "{name}");
            let want = match format {
                // Anthropic reports input (and the first output token) up front.
                Format::AnthropicSse => Some(Usage {
                    output: 2,
                    ..fx.usage
                }),
                _ => None,
            };
            assert_eq!(t.usage(), want, "{name}");
        }
    }
}

#[test]
fn anthropic_message_delta_may_repeat_input_counts() {
    let mut fx = fixtures::anthropic(LF);
    let old = br#""usage":{"output_tokens":37}"#;
    let new = br#""usage":{"input_tokens":500,"cache_creation_input_tokens":null,"cache_read_input_tokens":1024,"output_tokens":40}"#;
    let at = fx.body.windows(old.len()).position(|w| w == old).unwrap();
    fx.body.splice(at..at + old.len(), new.iter().copied());
    let (_, t) = run(Format::AnthropicSse, false, &fx.body, &[]);
    let u = t.usage().unwrap();
    assert_eq!(
        (u.input, u.output, u.cached_input, u.cache_write),
        (500 + 1024 + 2048, 40, 1024, 2048)
    );
}

#[test]
fn done_and_unterminated_final_event() {
    let body = b"data:{\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}\r\n\r\ndata:[DONE]";
    let (out, t) = run(Format::OpenAiSse, true, body, &[]);
    assert_eq!(out, b"data:[DONE]");
    assert_eq!(t.usage().map(|u| u.output), Some(3));

    // A usage chunk lacking its blank line at the end of the body is still read, and still stripped.
    let body = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}\n";
    let (out, t) = run(Format::OpenAiSse, true, body, &[5]);
    assert_eq!(out, b"");
    assert_eq!(t.usage().map(|u| u.input), Some(2));
}

#[test]
fn oversized_events_pass_through_and_final_usage_is_still_found() {
    // A Responses stream whose final event repeats 1.5 MiB of output text.
    let big = "Zürich 🎉 ".repeat(1_500_000 / 13);
    let fx = fixtures::responses_with_output(LF, &big);
    for chunk in [fx.body.len(), 65_536, 16_411] {
        let cuts: Vec<usize> = (chunk..fx.body.len()).step_by(chunk).collect();
        let (out, t) = run(Format::ResponsesSse, false, &fx.body, &cuts);
        assert_eq!(out, fx.body);
        assert_read("responses oversized", &t, &fx, chunk);
    }

    // In stripping mode an oversized event is relayed as it arrives, and parsing resumes after it.
    let huge = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
        "a".repeat(sse::MAX_EVENT + 10)
    );
    let tail = fixtures::openai_chat(LF);
    let body = [huge.as_bytes(), &tail.body].concat();
    let mut t = UsageTracker::new(Format::OpenAiSse, true);
    let cut = sse::MAX_EVENT + 20;
    let first = Bytes::copy_from_slice(&body[..cut]);
    assert!(t.observe(&first).is_none(), "oversized: relayed at once");
    let rest = Bytes::copy_from_slice(&body[cut..]);
    let mut out = first.to_vec();
    out.extend_from_slice(&t.observe(&rest).unwrap_or(rest));
    out.extend_from_slice(&t.finish().unwrap_or_default());
    assert!(out == [huge.as_bytes(), &stripped(&tail)].concat());
    assert_eq!(t.usage(), Some(tail.usage));
    assert_eq!(
        t.output_text_bytes(),
        tail.text_bytes,
        "the oversized event is not counted"
    );
}

#[test]
fn format_from_endpoint_and_content_type() {
    let sse = Some(&b"text/event-stream; charset=utf-8"[..]);
    assert_eq!(Format::detect(Api::ChatCompletions, sse), Format::OpenAiSse);
    assert_eq!(
        Format::detect(Api::Completions, Some(b" Text/Event-Stream")),
        Format::OpenAiSse
    );
    assert_eq!(
        Format::detect(Api::ChatCompletions, Some(b"application/json")),
        Format::OpenAiJson
    );
    assert_eq!(Format::detect(Api::Embeddings, None), Format::OpenAiJson);
    assert_eq!(Format::detect(Api::Responses, sse), Format::ResponsesSse);
    assert_eq!(Format::detect(Api::Responses, None), Format::ResponsesJson);
    assert_eq!(Format::detect(Api::Messages, sse), Format::AnthropicSse);
    assert_eq!(
        Format::detect(Api::Messages, Some(b"application/json")),
        Format::AnthropicJson
    );
    assert_eq!(
        Format::detect(Api::Messages, Some(b"text/event-streamx")),
        Format::AnthropicJson
    );
}

/// Ascending cut points inside a body of `len` bytes.
fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..=len, 0..24).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

fn framing() -> impl Strategy<Value = Framing> {
    proptest::sample::select(FRAMINGS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn strip_random_chunkings((f, cuts) in framing().prop_flat_map(|f| {
        let len = fixtures::openai_chat(f).body.len();
        (Just(f), cuts(len))
    })) {
        let fx = fixtures::openai_chat(f);
        let (out, t) = run(Format::OpenAiSse, true, &fx.body, &cuts);
        prop_assert_eq!(out, stripped(&fx));
        prop_assert_eq!(t.usage(), Some(fx.usage));
        prop_assert!(t.complete());

        let plain = fixtures::openai_chat_with(f, false);
        let cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(plain.body.len())).collect();
        let (out, _) = run(Format::OpenAiSse, true, &plain.body, &cuts);
        prop_assert_eq!(out, plain.body);
    }

    #[test]
    fn every_format_random_chunkings((i, f, cuts) in (0..5usize, framing()).prop_flat_map(|(i, f)| {
        let len = fixtures::streams(f)[i].2.body.len();
        (Just(i), Just(f), cuts(len))
    })) {
        let (name, format, fx) = fixtures::streams(f).swap_remove(i);
        let (out, t) = run(format, false, &fx.body, &cuts);
        prop_assert_eq!(out, fx.body.clone());
        prop_assert_eq!(t.usage(), Some(fx.usage), "{}", name);
        prop_assert!(t.complete());
        prop_assert_eq!(t.output_text_bytes(), fx.text_bytes);
    }
}

/// Release-mode throughput: `cargo test --release -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    use std::time::Instant;
    let fx = fixtures::openai_chat(LF);
    // ~20 chunks: the 9 events plus one split per event.
    let mut chunks = Vec::new();
    let mut rest = &fx.body[..];
    while let Some(end) = rest.windows(2).position(|w| w == b"\n\n") {
        let (event, tail) = rest.split_at(end + 2);
        let mid = event.len() / 2;
        chunks.push(Bytes::copy_from_slice(&event[..mid]));
        chunks.push(Bytes::copy_from_slice(&event[mid..]));
        rest = tail;
    }
    let body_len: usize = chunks.iter().map(Bytes::len).sum();
    for strip in [false, true] {
        let rounds = 20_000;
        let start = Instant::now();
        for _ in 0..rounds {
            let mut t = UsageTracker::new(Format::OpenAiSse, strip);
            for c in &chunks {
                std::hint::black_box(t.observe(c));
            }
            std::hint::black_box(t.finish());
            assert!(t.complete());
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "SSE {} chunks, {} bytes, strip={strip}: {:.2} us/stream, {:.0} MB/s",
            chunks.len(),
            body_len,
            secs * 1e6 / rounds as f64,
            (body_len * rounds) as f64 / secs / 1e6
        );
    }

    let mut json = fixtures::openai_chat_json().body;
    let filler = format!(
        "{{\"index\":1,\"message\":{{\"content\":{}}}}},",
        serde_json::to_string(&"Lorem ipsum dolor \"sit\" amet, 世界. ".repeat(64)).unwrap()
    );
    let at = json
        .windows(12)
        .position(|w| w == b"\"choices\": [")
        .unwrap()
        + 12;
    while json.len() < 1 << 20 {
        json.splice(at..at, filler.bytes());
    }
    let json_chunks: Vec<Bytes> = json.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut t = UsageTracker::new(Format::OpenAiJson, false);
        for c in &json_chunks {
            std::hint::black_box(t.observe(c));
        }
        t.finish();
        assert_eq!(t.usage().map(|u| u.input), Some(19));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "JSON {} bytes in 16 KiB chunks: {:.0} us/body, {:.0} MB/s",
        json.len(),
        secs * 1e6 / rounds as f64,
        (json.len() * rounds) as f64 / secs / 1e6
    );

    let mut embed = fixtures::embeddings_json().body;
    let item = embed.clone();
    let (s, e) = (
        item.windows(2).position(|w| w == b"[{").unwrap() + 1,
        item.windows(3).position(|w| w == b"}],").unwrap() + 1,
    );
    while embed.len() < 1 << 20 {
        let at = s;
        embed.splice(at..at, item[s..e].iter().copied().chain([b',']));
    }
    let chunks: Vec<Bytes> = embed
        .chunks(16 * 1024)
        .map(Bytes::copy_from_slice)
        .collect();
    let start = Instant::now();
    for _ in 0..rounds {
        let mut t = UsageTracker::new(Format::OpenAiJson, false);
        for c in &chunks {
            std::hint::black_box(t.observe(c));
        }
        assert_eq!(t.usage().map(|u| u.input), Some(8));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "JSON embeddings {} bytes (numbers): {:.0} us/body, {:.0} MB/s",
        embed.len(),
        secs * 1e6 / rounds as f64,
        (embed.len() * rounds) as f64 / secs / 1e6
    );
}

#[test]
fn the_last_top_level_usage_wins_however_the_body_is_cut() {
    // Found by fuzzing: the second `usage` is `null`, as serde_json would keep.
    type Case<'a> = (&'a [u8], Option<(u64, u64)>);
    let cases: [Case; 3] = [
        (
            br#"{"usage":{"prompt_tokens":7,"completion_tokens":3},"usage":null}"#,
            None,
        ),
        (
            br#"{"usage":null,"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
            Some((7, 3)),
        ),
        (
            br#"{"usage":{"prompt_tokens":1,"completion_tokens":1},"x":1,"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
            Some((7, 3)),
        ),
    ];
    for (body, want) in cases {
        for cut in 0..=body.len() {
            let (_, t) = run(Format::OpenAiJson, false, body, &[cut]);
            let got = t.usage().map(|u| (u.input, u.output));
            assert_eq!(got, want, "cut at {cut}: {}", String::from_utf8_lossy(body));
            assert_eq!(t.complete(), want.is_some());
        }
    }
}

/// Whole answers whose usage object is read in place (the shortcut of
/// `MemberScanner::feed_whole_with`), and near misses that must fall back: the
/// same reading whole as in pieces, and the expected one.
#[test]
fn a_whole_openai_answer_reads_its_usage_in_place_as_in_pieces() {
    type Case<'a> = (&'a str, Option<(u64, u64, u64, u64)>);
    let cases: [Case; 7] = [
        // As providers send it: details objects, members after `usage`.
        (
            r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2,"audio_tokens":0}},"system_fingerprint":"fp"}"#,
            Some((11, 7, 3, 2)),
        ),
        (
            " {\n \"usage\" : { \"prompt_tokens\" : 5 , \"completion_tokens\" : 1 } \n}\n",
            Some((5, 1, 0, 0)),
        ),
        (r#"{"id":"x","usage":null}"#, None),
        // Not plain: serde reads it.
        (
            r#"{"usage":{"prompt_tokens":4.0,"completion_tokens":2}}"#,
            Some((4, 2, 0, 0)),
        ),
        // The first `"usage"` is nested: the top-level one is found by the walk.
        (
            r#"{"choices":[{"usage":{"prompt_tokens":9}}],"usage":{"prompt_tokens":6,"completion_tokens":2}}"#,
            Some((6, 2, 0, 0)),
        ),
        // A later top-level `usage` wins, escaped or not.
        (
            r#"{"usage":{"prompt_tokens":1,"completion_tokens":1},"us\u0061ge":{"prompt_tokens":8,"completion_tokens":4}}"#,
            Some((8, 4, 0, 0)),
        ),
        // Cut short: no usage, whole or in pieces.
        (
            r#"{"usage":{"prompt_tokens":3,"completion_tokens":3}"#,
            None,
        ),
    ];
    for (body, want) in cases {
        let body = body.as_bytes();
        for cut in 0..=body.len() {
            let (_, t) = run(Format::OpenAiJson, false, body, &[cut]);
            let got = t
                .usage()
                .map(|u| (u.input, u.output, u.cached_input, u.reasoning));
            assert_eq!(got, want, "cut at {cut}: {}", String::from_utf8_lossy(body));
            assert_eq!(t.complete(), want.is_some());
        }
    }
}
