//! `chunk::scan` against serde_json's reading of the same chunk into `ChatChunk`.

use std::fmt;

use proptest::prelude::*;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::fixtures;
use super::super::wire::{OpenAiUsage, TextLen};
use super::*;

fn len(t: Option<TextLen>) -> u64 {
    t.map_or(0, |t| t.0)
}

/// What a reader makes of a chunk, as `Extract` uses it: text bytes, and for a chunk
/// with usage, the usage, whether choices are empty and whether it completes the report.
type Said = (u64, Option<(OpenAiUsage, bool, bool)>);

fn by_serde(data: &[u8]) -> Option<Said> {
    let c = serde_json::from_slice::<ChatChunk>(data).ok()?;
    let choices = c.choices.unwrap_or_default();
    let usage = c.usage.map(|u| {
        let empty = c.choices.is_some() && choices.count == 0;
        (u, empty, choices.count == 0 || choices.finished)
    });
    Some((choices.text_bytes, usage))
}

fn by_scan(data: &[u8]) -> Said {
    let s = scan(data);
    let usage = s.usage.and_then(|rest| {
        let mut de = serde_json::Deserializer::from_slice(rest);
        OpenAiUsage::deserialize(&mut de).ok()
    });
    let usage = usage.map(|u| {
        let complete = s.choices_empty != Some(false) || s.finished;
        (u, s.choices_empty == Some(true), complete)
    });
    (s.text_bytes, usage)
}

/// Where serde reads a chunk, the scan reads the same.
fn same(data: &[u8]) {
    if let Some(said) = by_serde(data) {
        assert_eq!(
            format!("{:?}", by_scan(data)),
            format!("{said:?}"),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
}

#[test]
fn fixture_chunks_read_as_serde_reads_them() {
    let (mut n, mut usages) = (0, 0);
    for f in [
        fixtures::openai_chat(fixtures::LF),
        fixtures::openai_tool_call(fixtures::LF),
        fixtures::openai_completions(fixtures::LF),
    ] {
        for line in f.body.split(|&b| b == b'\n') {
            if let Some(data) = line.strip_prefix(b"data: ") {
                if data != b"[DONE]" {
                    assert!(by_serde(data).is_some());
                    same(data);
                    n += 1;
                    usages += usize::from(scan(data).usage.is_some());
                }
            }
        }
    }
    assert!(n > 10 && usages == 3, "{n} chunks, {usages} with usage");
}

#[test]
fn shapes_and_edge_cases() {
    let cases: &[&str] = &[
        r#"{"choices":[{"delta":{"content":"héllo"}}]}"#,
        r#"{"choices":[{"delta":{"content":"a\"b\\c\u00e9\ud83d\ude00"}}]}"#,
        r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#,
        r#"{"choices" : [ ] , "usage" : {"prompt_tokens":3}}"#,
        r#"{"usage":{"prompt_tokens":3}}"#,
        r#"{"choices":null,"usage":null}"#,
        r#" { "choices" : [ { "text" : "abc" , "finish_reason" : null } ] } "#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":null,"content":null,"reasoning":"r","reasoning_content":"rc"}}]}"#,
        r#"{"choices":[{"delta":{"reasoning_content":"\\"}}]}"#,
        r#"{"choices":[{"delta":{"content":7}},{"delta":{"content":[1,"a"]}},{"delta":{"content":{"x":"y"}}}]}"#,
        r#"{"choices":[{"text":true,"finish_reason":0}]}"#,
        // OpenRouter repeats reasoning in `reasoning_details`; content parts carry `text`.
        r#"{"choices":[{"index":0,"delta":{"reasoning":"abc","reasoning_details":[{"type":"reasoning.text","text":"abc","format":"unknown"}]}}]}"#,
        r#"{"choices":[{"delta":{"content":[{"type":"text","text":"part"}]}}]}"#,
        r#"{"id":"x","choices":[{"logprobs":{"content":[{"token":"a","bytes":[97]}]},"delta":{"content":"a"}}]}"#,
        r#"{"id":"usage","object":"choices","choices":[{"delta":{"content":"\"usage\": {\"prompt_tokens\": 9} \\"}}]}"#,
        // Keys within the first eight bytes, long keys right after a quote.
        r#"{"usage":{"prompt_tokens":1},"choices":[]}"#,
        r#"{"choices":[{"delta":{"reasoning_content":"a","xreasoning_content":"b","reasoning_contentx":"c"}}]}"#,
        r#"{"choices":[{"delta":{"xcontent":"a","content_":"b","tool_calls":[{"function":{"arguments":"c","rguments":"d"}}]}}]}"#,
    ];
    for c in cases {
        assert!(by_serde(c.as_bytes()).is_some(), "serde refuses {c}");
        same(c.as_bytes());
    }
    // Text that only looks like keys is not read as keys.
    let tricky =
        br#"{"choices":[{"delta":{"content":"\"usage\":{\"prompt_tokens\":1},\"text\":\"x\""}}]}"#;
    let s = scan(tricky);
    assert_eq!(s.usage, None);
    assert_eq!(Some(s.text_bytes), by_serde(tricky).map(|(text, _)| text));
    assert_eq!(
        s.text_bytes,
        r#""usage":{"prompt_tokens":1},"text":"x""#.len() as u64
    );
    // Malformed chunks never panic.
    for bad in [
        "",
        "{",
        r#"{"choices":[{"delta":{"content":"unterminated}}]}"#,
        r#"{"usage":"#,
    ] {
        let _ = scan(bad.as_bytes());
    }
}

/// Chunk-like values: the members that matter, mixed with others, at varied types.
fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z \"\\\\é😀\n]{0,12}".prop_map(Value::from),
        Just(Value::Null),
        any::<i32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(json!([1, "x"])),
        Just(json!({"k": "v"})),
    ]
}

fn delta() -> impl Strategy<Value = Value> {
    let call = (text(), any::<bool>()).prop_map(|(args, null_fn)| {
        if null_fn {
            json!({"index": 0, "function": null})
        } else {
            json!({"index": 0, "id": "call_1", "function": {"name": "f", "arguments": args}})
        }
    });
    (
        text(),
        text(),
        text(),
        prop::option::of(prop::collection::vec(call, 0..3)),
        any::<u8>(),
    )
        .prop_map(|(content, reasoning, rc, calls, mask)| {
            let mut d = serde_json::Map::new();
            if mask & 1 != 0 {
                d.insert("content".into(), content);
            }
            if mask & 2 != 0 {
                d.insert("reasoning".into(), reasoning);
            }
            if mask & 4 != 0 {
                d.insert("reasoning_content".into(), rc);
            }
            if mask & 8 != 0 {
                d.insert("role".into(), "assistant".into());
            }
            if let Some(calls) = calls {
                d.insert("tool_calls".into(), calls.into());
            }
            Value::Object(d)
        })
}

/// A chat choice (`delta`, maybe) or a completions one (`text`, maybe): never both, as
/// no provider sends a chunk mixing them.
fn choice(chat: bool) -> impl Strategy<Value = Value> {
    (delta(), text(), text(), any::<u8>()).prop_map(move |(delta, text, finish, mask)| {
        let mut c = serde_json::Map::new();
        c.insert("index".into(), 0.into());
        if mask & 1 != 0 && chat {
            c.insert("delta".into(), delta);
        }
        if mask & 2 != 0 && !chat {
            c.insert("text".into(), text);
        }
        if mask & 4 != 0 {
            c.insert("finish_reason".into(), finish);
        }
        if mask & 8 != 0 {
            c.insert("logprobs".into(), json!({"content": [{"token": "a"}]}));
        }
        Value::Object(c)
    })
}

fn chunk() -> impl Strategy<Value = Value> {
    let usage = prop_oneof![
        Just(Value::Null),
        (0u32..1000, 0u32..1000).prop_map(
            |(p, c)| json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
        ),
        Just(json!("not usage")),
    ];
    (
        any::<bool>()
            .prop_flat_map(|chat| prop::option::of(prop::collection::vec(choice(chat), 0..3))),
        usage,
        any::<u8>(),
    )
        .prop_map(|(choices, usage, mask)| {
            let mut o = serde_json::Map::new();
            o.insert("id".into(), "chatcmpl-1".into());
            o.insert("object".into(), "chat.completion.chunk".into());
            if let Some(choices) = choices {
                o.insert("choices".into(), choices.into());
            } else if mask & 1 != 0 {
                o.insert("choices".into(), Value::Null);
            }
            if mask & 2 != 0 {
                o.insert("usage".into(), usage);
            }
            Value::Object(o)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]
    #[test]
    fn reads_generated_chunks_as_serde_does(v in chunk(), pretty in any::<bool>()) {
        let data = if pretty {
            serde_json::to_vec_pretty(&v).unwrap()
        } else {
            serde_json::to_vec(&v).unwrap()
        };
        same(&data);
    }

    #[test]
    fn an_envelope_reads_a_stream_as_scan_reads_each_chunk(
        chunks in prop::collection::vec((chunk(), 0..6usize), 1..6),
        mixed in any::<bool>(),
    ) {
        // Members before the rest of each chunk: usual ones, ones that hold keys the scan
        // reads or text that looks like them, and whitespace.
        const ENVELOPES: [&str; 6] = [
            "",
            r#""id":"chatcmpl-1","model":"m","#,
            r#""id":"a\"choices\":[","#,
            r#""usage":null,"#,
            r#""x":{"choices":[1]},"#,
            r#" "id" : "c" , "#,
        ];
        let mut envelope = Envelope::default();
        let first_env = chunks[0].1;
        for (v, env) in chunks {
            let body = serde_json::to_string(&v).unwrap();
            let env = if mixed { env } else { first_env };
            let data = format!("{{{}{}", ENVELOPES[env], &body[1..]);
            prop_assert_eq!(envelope.scan(data.as_bytes()), scan(data.as_bytes()), "{}", data);
        }
    }

    #[test]
    fn colons_are_found_where_they_are(data in prop::collection::vec(prop_oneof![Just(b':'), Just(b';'), Just(b'z'), any::<u8>()], 0..80)) {
        let found: Vec<usize> = Colons::new(&data).collect();
        let expected: Vec<usize> = (0..data.len()).filter(|&i| data[i] == b':').collect();
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn never_panics_on_any_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = scan(&data);
    }

    #[test]
    fn never_panics_on_cut_chunks(v in chunk(), cut in any::<prop::sample::Index>()) {
        let data = serde_json::to_vec(&v).unwrap();
        let _ = scan(&data[..cut.index(data.len() + 1)]);
    }
}

/// One `data:` payload of an OpenAI chat/completions or completions stream, as serde reads
/// it: the reference `scan` is held to (this was the production reader before it).
#[derive(Debug, Deserialize)]
pub(super) struct ChatChunk {
    #[serde(default)]
    pub choices: Option<Choices>,
    #[serde(default)]
    pub usage: Option<OpenAiUsage>,
}

/// What the `choices` array of a stream chunk says, summed over its elements.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Choices {
    pub count: u64,
    /// Bytes of generated text: content, reasoning and tool-call arguments.
    pub text_bytes: u64,
    /// Some choice carries a non-null `finish_reason`.
    pub finished: bool,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    /// Completions (legacy) put the text here.
    #[serde(default)]
    text: Option<TextLen>,
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<TextLen>,
    /// DeepSeek and others stream reasoning here; OpenRouter uses `reasoning`.
    #[serde(default)]
    reasoning_content: Option<TextLen>,
    #[serde(default)]
    reasoning: Option<TextLen>,
    #[serde(default)]
    tool_calls: Option<ToolCalls>,
}

/// Bytes of `arguments` summed over a `tool_calls` delta array.
#[derive(Debug, Default)]
struct ToolCalls(u64);

#[derive(Debug, Deserialize)]
struct ToolCall {
    #[serde(default)]
    function: Option<Function>,
}

#[derive(Debug, Deserialize)]
struct Function {
    #[serde(default)]
    arguments: Option<TextLen>,
}

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Choices, A::Error> {
                let mut out = Choices::default();
                while let Some(c) = a.next_element::<Choice>()? {
                    out.count += 1;
                    out.finished |= c.finish_reason.is_some();
                    out.text_bytes += len(c.text);
                    if let Some(d) = c.delta {
                        out.text_bytes += len(d.content) + len(d.reasoning_content);
                        out.text_bytes += len(d.reasoning) + d.tool_calls.map_or(0, |t| t.0);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> Deserialize<'de> for ToolCalls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ToolCalls;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of tool calls")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<ToolCalls, A::Error> {
                let mut sum = 0;
                while let Some(c) = a.next_element::<ToolCall>()? {
                    sum += c.function.map_or(0, |f| len(f.arguments));
                }
                Ok(ToolCalls(sum))
            }
        }
        d.deserialize_seq(V)
    }
}

#[test]
fn an_envelope_is_kept_only_when_choices_is_the_first_key_read() {
    let first = br#"{"id":"c1","model":"m","choices":[{"delta":{"content":"ab"}}]}"#;
    let mut envelope = Envelope::default();
    assert_eq!(envelope.scan(first).text_bytes, 2);
    assert_eq!(envelope.prefix, br#"{"id":"c1","model":"m","choices":["#);
    let usage = br#"{"id":"c1","model":"m","choices":[],"usage":{"prompt_tokens":1}}"#;
    let s = envelope.scan(usage);
    assert_eq!((s.choices_empty, s.usage.is_some()), (Some(true), true));
    let mut other = Envelope::default();
    let _ = other.scan(br#"{"usage":null,"choices":[]}"#);
    assert!(other.prefix.is_empty());
}
