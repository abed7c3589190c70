//! Tests for the streaming member scanner, checked against serde_json on random documents, whitespace, escapes and chunkings.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// The value the scanner captures from `doc` cut at `cuts`, parsed; the same
/// whether the scanner knows the document's length (as a Content-Length tells
/// it, so that an uncut document is read as a whole one) or not.
fn scan(path: &'static [&'static str], doc: &[u8], cuts: &[usize]) -> Option<Value> {
    let sized = scan_as(path, doc, cuts, Some(doc.len() as u64));
    let streamed = scan_as(path, doc, cuts, None);
    assert_eq!(sized, streamed, "{}", String::from_utf8_lossy(doc));
    sized
}

fn scan_as(
    path: &'static [&'static str],
    doc: &[u8],
    cuts: &[usize],
    whole_len: Option<u64>,
) -> Option<Value> {
    let mut s = MemberScanner::new(path);
    if let Some(len) = whole_len {
        s.set_whole_len(len);
    }
    let mut last = None;
    let mut from = 0;
    for &cut in cuts.iter().chain([&doc.len()]) {
        s.feed(&doc[from..cut]);
        if let Some(v) = s.take() {
            last = Some(serde_json::from_slice(v).unwrap());
        }
        from = cut;
    }
    last
}

/// What serde_json finds at `path` in `doc`.
fn oracle(path: &[&str], doc: &[u8]) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(doc).unwrap();
    for key in path {
        v = v.as_object_mut()?.remove(*key)?;
    }
    Some(v)
}

#[test]
fn finds_top_level_and_nested_paths() {
    let doc = br#" { "a" : [ {"usage":1} ], "response" : { "x" : "usage", "usage" : { "n" : [1, {"m":2}] } } , "usage" : "top" } "#;
    assert_eq!(scan(&["usage"], doc, &[]), Some(Value::from("top")));
    assert_eq!(
        scan(&["response", "usage"], doc, &[]),
        Some(serde_json::json!({"n": [1, {"m": 2}]}))
    );
    assert_eq!(
        scan(&["a"], doc, &[]),
        Some(serde_json::json!([{"usage": 1}]))
    );
    assert_eq!(
        scan(&["response", "x"], doc, &[]),
        Some(Value::from("usage"))
    );
}

#[test]
fn scalars_at_the_end_of_an_object_are_captured() {
    assert_eq!(
        scan(&["usage"], br#"{"usage":12}"#, &[]),
        Some(Value::from(12))
    );
    assert_eq!(
        scan(&["usage"], br#"{"usage":null }"#, &[9]),
        Some(Value::Null)
    );
    assert_eq!(
        scan(&["usage"], br#"{"usage":"a\"}b"}"#, &[11]),
        Some(Value::from("a\"}b"))
    );
}

#[test]
fn no_match_in_arrays_strings_or_other_levels() {
    for doc in [
        &br#"[{"usage":1}]"#[..],
        br#"{"a":"{\"usage\":1}"}"#,
        br#"{"a":{"usage":1}}"#,
        br#"{"usage_":1,"Usage":2,"usag":3}"#,
        br#""usage""#,
    ] {
        assert_eq!(
            scan(&["usage"], doc, &[]),
            None,
            "{}",
            String::from_utf8_lossy(doc)
        );
    }
}

#[test]
fn a_whole_answer_is_read_from_its_first_usage_key_only_when_that_key_is_top_level() {
    // Each document arrives whole, so the whole-document path answers; the answer
    // is serde_json's whether the shortcut from the first `"usage":` holds or not.
    for doc in [
        &br#"{"choices":[{"usage":1}],"usage":2}"#[..],
        br#"{"a":{"usage":1},"usage":2,"b":[3]}"#,
        br#"{"usage":1,"usage":2}"#,
        br#"{"usage":1,"\u0075sage":2}"#,
        br#"{"usage":1,"x":{"usage":3},"y":"usage"}"#,
        br#"{"kind":"usage","usage":{"n":4}}"#,
        br#"{"a":"\"usage\":5}","usage":6}"#,
        br#"{"a":"\\","usage":7 , "z" : null }"#,
        br#"{"usage":{"usage":8}}"#,
        br#"{"usage":9}  "#,
    ] {
        assert_eq!(
            scan(&["usage"], doc, &[]),
            oracle(&["usage"], doc),
            "{}",
            String::from_utf8_lossy(doc)
        );
    }
    // A first piece that ends in a nested object's `}` is not the whole answer.
    let doc = br#"{"a":{"usage":null},"usage":2}"#;
    assert_eq!(scan(&["usage"], doc, &[19]), Some(Value::from(2)));
    // Not a whole object: the shortcut does not answer, the streaming scan does.
    assert_eq!(
        scan(&["usage"], br#"{"usage":1,"b":2"#, &[]),
        Some(Value::from(1))
    );
}

#[test]
fn a_value_over_the_capture_cap_is_dropped() {
    let big = format!(r#"{{"usage":"{}"}}"#, "x".repeat(MAX_CAPTURE));
    assert_eq!(scan(&["usage"], big.as_bytes(), &[100]), None);
    let ok = format!(r#"{{"usage":"{}"}}"#, "x".repeat(MAX_CAPTURE - 2));
    assert!(scan(&["usage"], ok.as_bytes(), &[100]).is_some());
}

/// Random JSON values whose keys often are the ones the paths look for.
fn value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("usage".to_string()),
        Just("response".to_string()),
        Just("Usage".to_string()),
        Just("usage\"".to_string()),
        "[a-z\"\\\\é]{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop_oneof![
            Just("usage".to_string()),
            "[a-z{}\\[\\]:,\"\\\\ é🎉\n]{0,10}"
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Serializes `v` with whitespace, and \u escapes in strings, chosen by `seed`.
fn render(v: &Value, seed: &mut u64, out: &mut String) {
    let mut roll = |n: u64| {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) % n
    };
    let ws = ["", " ", "\n  ", "\t", "\r\n"][roll(5) as usize];
    out.push_str(ws);
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(item, seed, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(&Value::from(k.as_str()), seed, out);
                out.push(':');
                render(item, seed, out);
            }
            out.push('}');
        }
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c if c.is_ascii_alphabetic() && roll(4) == 0 => {
                        out.push_str(&format!("\\u{:04X}", c as u32))
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        other => out.push_str(&other.to_string()),
    }
    out.push_str(ws);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn matches_serde_json_for_any_document_and_chunking(
        (doc, cuts) in (value(), any::<u64>()).prop_flat_map(|(v, mut seed)| {
            let mut doc = String::new();
            render(&v, &mut seed, &mut doc);
            let len = doc.len();
            (Just(doc), proptest::collection::vec(0..=len, 0..6))
        })
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        for path in [&["usage"][..], &["response", "usage"][..]] {
            prop_assert_eq!(scan(path, doc.as_bytes(), &cuts), oracle(path, doc.as_bytes()), "path {:?}", path);
        }
    }

    #[test]
    fn finds_usage_placed_anywhere_among_decoys(
        (doc, cuts) in (proptest::collection::vec(("[a-z]{1,4}", value()), 0..6), value(), any::<u64>(), 0..6usize)
            .prop_flat_map(|(mut members, usage, mut seed, at)| {
                let mut map = Map::new();
                let at = at.min(members.len());
                members.insert(at, ("usage".to_string(), usage));
                for (k, v) in members {
                    map.insert(k, v);
                }
                let mut doc = String::new();
                render(&Value::Object(map), &mut seed, &mut doc);
                let len = doc.len();
                (Just(doc), proptest::collection::vec(0..=len, 0..6))
            })
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(scan(&["usage"], doc.as_bytes(), &cuts), oracle(&["usage"], doc.as_bytes()));
    }
}
