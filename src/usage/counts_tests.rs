//! `counts::openai_usage` against serde's reading of the same value.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::super::wire::OpenAiUsage;
use super::*;

/// What serde makes of a usage value: `None` for `null` or an error.
fn by_serde(raw: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<Option<OpenAiUsage>>(raw)
        .ok()
        .flatten()
        .map(|u| u.to_usage())
}

/// The fast reading where it answers, and it must agree with serde.
fn check(raw: &[u8]) -> bool {
    match openai_usage(raw) {
        Some(fast) => {
            assert_eq!(fast, by_serde(raw), "{}", String::from_utf8_lossy(raw));
            true
        }
        None => false,
    }
}

#[test]
fn plain_usage_objects_are_read_without_serde() {
    let real = br#"{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#;
    assert!(check(real));
    let u = openai_usage(real).unwrap().unwrap();
    assert_eq!(
        (u.input, u.output, u.cached_input, u.reasoning),
        (11, 7, 3, 2)
    );
    for plain in [
        "null",
        " { } ",
        r#"{"prompt_tokens":null,"completion_tokens_details":null}"#,
        r#"{"prompt_tok\u0065ns":5}"#,
        "{\n  \"prompt_tokens\" : 0 ,\n  \"x\" : [1, {\"prompt_tokens\": 9}]\n}",
        r#"{"completion_tokens":18446744073709551615}"#,
    ] {
        assert!(check(plain.as_bytes()), "{plain}");
    }
    // Left to serde: it reads these leniently, or refuses them.
    for odd in [
        r#"{"prompt_tokens":1.5}"#,
        r#"{"prompt_tokens":"12"}"#,
        r#"{"prompt_tokens":-3}"#,
        r#"{"prompt_tokens":1e3}"#,
        r#"{"prompt_tokens":007}"#,
        r#"{"prompt_tokens":18446744073709551616}"#,
        r#"{"prompt_tokens":1,"prompt_tokens":2}"#,
        r#"{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":1}}"#,
        r#"{"prompt_tokens_details":[]}"#,
        r#"{"prompt_tokens":1} x"#,
        r#""usage""#,
        "{",
        "",
    ] {
        assert!(openai_usage(odd.as_bytes()).is_none(), "{odd}");
    }
}

fn count() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any::<u64>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<i64>().prop_map(Value::from),
        1 => (0.0f64..1e6).prop_map(Value::from),
        1 => "[0-9]{1,4}".prop_map(Value::from),
        1 => Just(json!([1])),
    ]
}

fn details(key: &'static str) -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (count(), any::<bool>()).prop_map(move |(n, other)| {
            let mut o = serde_json::Map::new();
            if other {
                o.insert("audio_tokens".into(), 0.into());
            }
            o.insert(key.into(), n);
            Value::Object(o)
        }),
        Just(json!(5)),
    ]
}

prop_compose! {
    fn usage()(p in count(), c in count(), pd in details("cached_tokens"),
               cd in details("reasoning_tokens"), mask in any::<u8>()) -> Value {
        let mut o = serde_json::Map::new();
        for (bit, key, v) in [
            (1, "prompt_tokens", p),
            (2, "completion_tokens", c),
            (4, "prompt_tokens_details", pd),
            (8, "completion_tokens_details", cd),
        ] {
            if mask & bit != 0 {
                o.insert(key.into(), v);
            }
        }
        if mask & 16 != 0 {
            o.insert("total_tokens".into(), 99.into());
        }
        Value::Object(o)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]
    #[test]
    fn agrees_with_serde_wherever_it_answers(v in usage(), pretty in any::<bool>()) {
        let raw = if pretty {
            serde_json::to_vec_pretty(&v).unwrap()
        } else {
            serde_json::to_vec(&v).unwrap()
        };
        check(&raw);
    }

    #[test]
    fn never_panics(raw in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = openai_usage(&raw);
    }
}
