//! Tests for `inject_include_usage`, checked against serde_json on bodies with random `stream_options` shapes and whitespace.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::request::scan::scan;

fn inject(body: &str) -> Option<String> {
    let s = scan(body.as_bytes()).unwrap();
    let injected = inject_include_usage(body.as_bytes(), &s)?;
    // The model's literal moved where a scan of the new body finds it.
    let rescanned = scan(&injected.body).unwrap();
    assert_eq!(injected.moved(s.model_span.clone()), rescanned.model_span);
    Some(String::from_utf8(injected.body.to_vec()).unwrap())
}

/// What serde_json says the injected body must be, or `None` when nothing must change.
fn expected(body: &str) -> Option<Value> {
    let mut v: Value = serde_json::from_str(body).unwrap();
    if v.get("stream") != Some(&Value::Bool(true)) {
        return None;
    }
    let obj = v.as_object_mut().unwrap();
    match obj.get_mut("stream_options") {
        Some(Value::Object(opts)) => {
            if opts.get("include_usage") == Some(&Value::Bool(true)) {
                return None;
            }
            opts.insert("include_usage".into(), Value::Bool(true));
        }
        _ => {
            obj.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    Some(v)
}

#[test]
fn each_shape_of_stream_options() {
    let cases = [
        (
            r#"{"model":"m","stream":true}"#,
            Some(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#),
        ),
        (
            "{\"model\":\"m\",\"stream\":true\n}\n",
            Some(
                "{\"model\":\"m\",\"stream\":true\n,\"stream_options\":{\"include_usage\":true}}\n",
            ),
        ),
        (
            r#"{"model":"m","stream":true,"stream_options":{}}"#,
            Some(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#),
        ),
        (
            r#"{"model":"m","stream":true,"stream_options":{ }}"#,
            Some(r#"{"model":"m","stream":true,"stream_options":{ "include_usage":true}}"#),
        ),
        (
            r#"{"model":"m","stream":true,"stream_options":{"x":1} }"#,
            Some(r#"{"model":"m","stream":true,"stream_options":{"x":1,"include_usage":true} }"#),
        ),
        (
            r#"{"model":"m","stream":true,"stream_options":{"include_usage": false}}"#,
            Some(r#"{"model":"m","stream":true,"stream_options":{"include_usage": true}}"#),
        ),
        (
            r#"{"stream_options":{"include_usage":"yes","x":[1]},"model":"m","stream":true}"#,
            Some(r#"{"stream_options":{"include_usage":true,"x":[1]},"model":"m","stream":true}"#),
        ),
        (
            r#"{"model":"m","stream":true,"stream_options":null}"#,
            Some(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#),
        ),
        (
            r#"{"model":"m","stream":true,"stream_options":[1,{"include_usage":true}]}"#,
            Some(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#),
        ),
        (
            r#"{"model":"m","stream":true,"stream_options":{"include\u005fusage":false}}"#,
            Some(r#"{"model":"m","stream":true,"stream_options":{"include\u005fusage":true}}"#),
        ),
        (
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
            None,
        ),
        (r#"{"model":"m","stream":false}"#, None),
        (r#"{"model":"m","stream":"true"}"#, None),
        (r#"{"model":"m"}"#, None),
    ];
    for (body, want) in cases {
        assert_eq!(inject(body).as_deref(), want, "{body}");
    }
}

#[test]
fn repeated_keys_follow_the_last_occurrence() {
    // serde_json (like most parsers) keeps the last top-level `stream_options`.
    let body = r#"{"model":"m","stream_options":{"include_usage":true},"stream":true,"stream_options":{"x":1}}"#;
    let out = inject(body).unwrap();
    assert_eq!(
        out,
        r#"{"model":"m","stream_options":{"include_usage":true},"stream":true,"stream_options":{"x":1,"include_usage":true}}"#
    );
    // A repeated include_usage is set everywhere, so first-wins parsers agree.
    let body =
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":false,"include_usage":0}}"#;
    assert_eq!(
        inject(body).unwrap(),
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_usage":true}}"#
    );
}

/// JSON whitespace, possibly empty.
fn ws() -> impl Strategy<Value = String> {
    "[ \t\r\n]{0,3}"
}

/// A `stream_options` value of any interesting shape, rendered with random whitespace.
fn stream_options() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("0".to_string()),
        Just("\"include_usage\"".to_string()),
        Just("[]".to_string()),
        Just("[{\"include_usage\":true}]".to_string()),
    ];
    let key = prop_oneof![
        4 => Just("\"include_usage\"".to_string()),
        1 => Just("\"include\\u005fusage\"".to_string()),
        2 => Just("\"x\"".to_string()),
        1 => Just("\"include_usage \"".to_string()),
        1 => Just("\"nested\"".to_string()),
    ];
    let member = (key, ws(), ws(), scalar.clone(), ws())
        .prop_map(|(k, a, b, v, c)| format!("{k}{a}:{b}{v}{c}"));
    let object = (ws(), proptest::collection::vec(member, 0..4))
        .prop_map(|(w, ms)| format!("{{{w}{}}}", ms.join(",")))
        .boxed();
    prop_oneof![
        scalar,
        object.clone(),
        object.prop_map(|o| format!("{{\"nested\":{o}}}"))
    ]
}

/// A request body: model, optional stream, optional stream_options, other fields, in any order.
fn body() -> impl Strategy<Value = String> {
    let stream = prop_oneof![
        Just(None),
        Just(Some("true")),
        Just(Some("false")),
        Just(Some("null"))
    ];
    let options = proptest::option::of(stream_options());
    let other = proptest::collection::vec(
        prop_oneof![
            Just("\"messages\":[{\"role\":\"user\",\"content\":\"}\\\"stream_options\\\":{\"}]"),
            Just("\"temperature\":0.2"),
            Just("\"n\":{\"stream_options\":null,\"stream\":true}"),
        ],
        0..3,
    );
    (stream, options, other, ws(), ws(), any::<u32>()).prop_map(
        |(stream, options, other, w1, w2, order)| {
            let mut members: Vec<String> = vec!["\"model\":\"gpt-4o\"".into()];
            if let Some(s) = stream {
                members.push(format!("\"stream\":{w1}{s}"));
            }
            if let Some(o) = options {
                members.push(format!("\"stream_options\"{w2}:{w1}{o}"));
            }
            members.extend(other.into_iter().map(String::from));
            let n = members.len();
            members.rotate_left(order as usize % n);
            format!(
                "{w2}{{{w1}{}{w2}}}{w1}",
                members.join(&format!("{w1},{w2}"))
            )
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn injection_matches_serde_json(body in body()) {
        let want = expected(&body);
        let got = inject(&body);
        match (&want, &got) {
            (None, None) => {}
            (Some(want), Some(got)) => {
                let parsed: Value = serde_json::from_str(got).unwrap();
                prop_assert_eq!(&parsed, want);
                // The gateway re-scans nothing, but the provider's parser must agree.
                prop_assert!(scan(got.as_bytes()).is_ok());
                // Every byte outside the edited stretch is unchanged.
                let prefix = body.bytes().zip(got.bytes()).take_while(|(a, b)| a == b).count();
                let suffix = body.bytes().rev().zip(got.bytes().rev()).take_while(|(a, b)| a == b).count();
                let removed = body.len().saturating_sub(prefix + suffix);
                let old_options = scan(body.as_bytes()).unwrap().stream_options.map_or(0, |r| r.len());
                prop_assert!(removed <= old_options, "changed {} bytes beyond stream_options: {}", removed, got);
            }
            _ => prop_assert!(false, "want {:?}, got {:?}", want, got),
        }
    }
}
