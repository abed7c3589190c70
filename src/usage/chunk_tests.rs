//! `chunk::read` against serde_json's reading of the same chunk into `ChatChunk`.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::super::fixtures;
use super::super::wire::{ChatChunk, OpenAiUsage};
use super::*;

/// What serde says of a chunk: choices (count, text bytes, finished) and usage.
type Said = Option<(Option<(u64, u64, bool)>, Option<OpenAiUsage>)>;

fn by_serde(data: &[u8]) -> Said {
    let c = serde_json::from_slice::<ChatChunk>(data).ok()?;
    Some((
        c.choices.map(|c| (c.count, c.text_bytes, c.finished)),
        c.usage,
    ))
}

fn by_walk(data: &[u8]) -> Said {
    let f = read(data)?;
    let usage = match f.usage {
        Some(raw) => serde_json::from_slice::<Option<OpenAiUsage>>(raw).ok()?,
        None => None,
    };
    Some((
        f.choices.map(|c| (c.count, c.text_bytes, c.finished)),
        usage,
    ))
}

fn same(data: &[u8]) {
    assert_eq!(
        format!("{:?}", by_walk(data)),
        format!("{:?}", by_serde(data)),
        "{}",
        String::from_utf8_lossy(data)
    );
}

#[test]
fn fixture_chunks_read_as_serde_reads_them() {
    let mut n = 0;
    for f in [
        fixtures::openai_chat(fixtures::LF),
        fixtures::openai_tool_call(fixtures::LF),
        fixtures::openai_completions(fixtures::LF),
    ] {
        for line in f.body.split(|&b| b == b'\n') {
            if let Some(data) = line.strip_prefix(b"data: ") {
                if data != b"[DONE]" {
                    same(data);
                    n += 1;
                }
            }
        }
    }
    assert!(n > 10, "only {n} chunks");
}

#[test]
fn shapes_and_edge_cases() {
    let cases: &[&str] = &[
        r#"{"choices":[{"delta":{"content":"héllo"}}]}"#,
        r#"{"choices":[{"delta":{"content":"a\"b\\c\u00e9\ud83d\ude00"}}]}"#,
        r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#,
        r#"{"choices":null,"usage":null}"#,
        r#" { "choices" : [ { "text" : "abc" , "finish_reason" : null } ] } "#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":null,"content":null,"reasoning":"r","reasoning_content":"rc"}}]}"#,
        r#"{"choices":[{"delta":{"content":7}},{"delta":{"content":[1,"a"]}},{"delta":{"content":{"x":"y"}}}]}"#,
        r#"{"choices":[{"text":true,"finish_reason":0}]}"#,
        r#"{"cho\u0069ces":[{"delta":{"content":"escaped key"}}]}"#,
        r#"{"id":"x","choices":[{"logprobs":{"content":[{"token":"a","bytes":[97]}]},"delta":{"content":"a"}}]}"#,
        // Refused by both: duplicates, wrong types, broken or trailing text.
        r#"{"choices":[],"choices":[]}"#,
        r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
        r#"{"choices":[{"finish_reason":null,"finish_reason":"stop"}]}"#,
        r#"{"choices":[null]}"#,
        r#"{"choices":{"0":{}}}"#,
        r#"{"choices":[{"delta":"text"}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"function":"f"}]}}]}"#,
        r#"{"usage":"many"}"#,
        r#"{"choices":[]} x"#,
        r#"{"choices":[{"delta":{"content":"a\ud800"}}]}"#,
        r#"{"choices":[{"delta":{"content":"unterminated}}]}"#,
        r#"[1,2]"#,
        "",
        "{",
    ];
    for c in cases {
        same(c.as_bytes());
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

fn choice() -> impl Strategy<Value = Value> {
    (delta(), text(), text(), any::<u8>()).prop_map(|(delta, text, finish, mask)| {
        let mut c = serde_json::Map::new();
        c.insert("index".into(), 0.into());
        if mask & 1 != 0 {
            c.insert("delta".into(), delta);
        }
        if mask & 2 != 0 {
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
        prop::option::of(prop::collection::vec(choice(), 0..3)),
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
    #![proptest_config(ProptestConfig::with_cases(2048))]
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
    fn never_panics_on_any_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = read(&data);
    }

    #[test]
    fn never_panics_on_cut_chunks(v in chunk(), cut in any::<prop::sample::Index>()) {
        let data = serde_json::to_vec(&v).unwrap();
        let _ = read(&data[..cut.index(data.len() + 1)]);
    }
}

/// The fast path agrees with the full read (and so with serde) on chunks without usage.
fn same_text(data: &[u8]) {
    let full = by_serde(data).map(|(c, _)| c.map_or(0, |c| c.1));
    if let Some(full) = full {
        assert_eq!(
            text_bytes(data),
            Some(full),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
}

#[test]
fn the_fast_path_finds_the_text_of_fixture_chunks_and_leaves_usage_to_read() {
    let (mut texts, mut usages) = (0, 0);
    for f in [
        fixtures::openai_chat(fixtures::LF),
        fixtures::openai_tool_call(fixtures::LF),
        fixtures::openai_completions(fixtures::LF),
    ] {
        for line in f.body.split(|&b| b == b'\n') {
            let Some(data) = line.strip_prefix(b"data: ") else {
                continue;
            };
            if data == b"[DONE]" {
                continue;
            }
            match text_bytes(data) {
                Some(_) => {
                    same_text(data);
                    texts += 1;
                }
                None => {
                    assert!(read(data).unwrap().usage.is_some());
                    usages += 1;
                }
            }
        }
    }
    assert!(
        texts > 10 && usages == 3,
        "{texts} text chunks, {usages} usage chunks"
    );
    // Text that looks like keys is not taken for them.
    let tricky = br#"{"choices":[{"delta":{"content":"\"content\":\"xx\" \\\"usage\": 1"}}]}"#;
    same_text(tricky);
    assert!(text_bytes(br#"{"id":"usage","choices":[]}"#).is_some());
    assert!(text_bytes(br#"{"choices":[] , "usage" : null}"#).is_some());
    assert!(text_bytes(br#"{"choices":[] , "usage" : {}}"#).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]
    #[test]
    fn the_fast_path_agrees_on_generated_chunks(v in chunk(), pretty in any::<bool>()) {
        let data = if pretty {
            serde_json::to_vec_pretty(&v).unwrap()
        } else {
            serde_json::to_vec(&v).unwrap()
        };
        match text_bytes(&data) {
            None => prop_assert!(v.get("usage").is_some_and(|u| !u.is_null())),
            Some(_) => same_text(&data),
        }
    }
}
