//! Fuzzes the request body scanner against serde_json, the strict parser it claims to
//! match, and checks that rewriting the model (and adding `include_usage`) changes
//! nothing else a JSON parser can see.
//!
//! Input: the request body, optionally followed by `0xFF` and the model to rewrite to.
//! `0xFF` never occurs in UTF-8, so the seeds are plain JSON bodies and the fuzzer can
//! still put any byte, `0xFF` included, in the body before the last `0xFF`.

#![no_main]

use std::fmt;

use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use tollgate::request::scan::{replace_model, scan, Scan, ScanError};
use tollgate::usage::inject_include_usage;

/// Models to rewrite to when the input names none.
const MODELS: &[&str] = &[
    "gpt-4o",
    "claude-sonnet-4-6",
    "a \"quoted\" \\ model\n\u{1}\u{7f}",
    "ünïcödé/模型:😀",
    "",
];

fuzz_target!(|data: &[u8]| {
    let (body, model) = match data.iter().rposition(|&b| b == 0xFF) {
        Some(i) => (
            &data[..i],
            String::from_utf8_lossy(&data[i + 1..]).into_owned(),
        ),
        None => (data, MODELS[data.len() % MODELS.len()].to_string()),
    };
    let parsed = serde_json::from_slice::<Value>(body);
    let result = scan(body);
    check_verdict(body, parsed.as_ref().ok(), &result);
    if let (Ok(s), Ok(v)) = (&result, &parsed) {
        check_report(body, v, s);
        check_rewrite(body, v, s, &model);
        check_inject(body, v, s);
    }
});

/// `scan` succeeds exactly when serde_json accepts the body as an object with one
/// top-level `model` (ignoring ASCII case) that is a non-empty string, and otherwise
/// says which of those failed.
fn check_verdict(body: &[u8], parsed: Option<&Value>, result: &Result<Scan<'_>, ScanError>) {
    let expected = match parsed {
        None => {
            assert!(
                matches!(result, Err(ScanError::Invalid { .. })),
                "serde_json refuses the body, scan says {result:?}"
            );
            return;
        }
        Some(v) => expected_verdict(body, v),
    };
    match (result, expected) {
        (Ok(s), Ok(())) => {
            let model = parsed.and_then(|v| v.get("model")).and_then(Value::as_str);
            assert_eq!(Some(&*s.model), model, "scan reports another model");
        }
        (Err(got), Err(want)) => assert_eq!(*got, want, "scan refuses for another reason"),
        (got, want) => panic!("scan says {got:?}, serde_json implies {want:?}"),
    }
}

/// What `scan` must answer for a body serde_json parsed as `v`.
fn expected_verdict(body: &[u8], v: &Value) -> Result<(), ScanError> {
    let Value::Object(map) = v else {
        return Err(ScanError::NotObject);
    };
    let keys: TopKeys = serde_json::from_slice(body).expect("keys of a parsed object");
    let model_keys = keys
        .0
        .iter()
        .filter(|k| k.eq_ignore_ascii_case("model"))
        .count();
    if model_keys > 1 {
        return Err(ScanError::DuplicateModel);
    }
    match map.get("model") {
        None => Err(ScanError::MissingModel),
        Some(Value::String(s)) if s.is_empty() => Err(ScanError::EmptyModel),
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(ScanError::ModelNotString),
    }
}

/// The other facts the scan reports agree with the parsed body.
fn check_report(body: &[u8], v: &Value, s: &Scan<'_>) {
    let literal = &body[s.model_span.clone()];
    let unquoted: String = serde_json::from_slice(literal).expect("model span is a JSON string");
    assert_eq!(unquoted, s.model, "model span holds another string");

    assert_eq!(
        s.stream,
        v.get("stream") == Some(&Value::Bool(true)),
        "stream"
    );

    let options = v.get("stream_options");
    let span_value = s.stream_options.clone().map(|r| {
        serde_json::from_slice::<Value>(&body[r]).expect("stream_options span is a JSON value")
    });
    assert_eq!(span_value.as_ref(), options, "stream_options span");
    let include_usage = options
        .and_then(|o| o.as_object())
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool);
    assert_eq!(s.include_usage, include_usage, "include_usage");

    let cap = ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_u64));
    assert_eq!(s.output_cap, cap, "output cap");

    assert_eq!(
        body.get(s.object_end),
        Some(&b'}'),
        "object_end is not a `}}`"
    );
    let after = &body[s.object_end + 1..];
    assert!(
        after
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')),
        "more than whitespace after object_end"
    );
}

/// The rewritten body differs from the original in `model` alone.
fn check_rewrite(body: &[u8], v: &Value, s: &Scan<'_>, model: &str) {
    let out = replace_model(body, s.model_span.clone(), model);
    assert!(
        out.starts_with(&body[..s.model_span.start]),
        "bytes before the model changed"
    );
    assert!(
        out.ends_with(&body[s.model_span.end..]),
        "bytes after the model changed"
    );
    let got: Value = match serde_json::from_slice(&out) {
        Ok(got) => got,
        Err(e) => panic!(
            "rewritten body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(
        got.get("model").and_then(Value::as_str),
        Some(model),
        "new model"
    );
    let mut want = v.clone();
    want["model"] = Value::String(model.to_string());
    assert_eq!(got, want, "the rewrite changed more than the model");
    // The gateway's own rewrite must pass its own scan, at the same place.
    match scan(&out) {
        Ok(again) => {
            assert_eq!(again.model, model, "rescan model");
            assert_eq!(again.model_span.start, s.model_span.start, "rescan span");
        }
        Err(ScanError::EmptyModel) if model.is_empty() => {}
        Err(e) => panic!("the rewritten body fails the scan: {e:?}"),
    }
}

/// `include_usage` is added exactly to streaming bodies lacking it, changing nothing else.
fn check_inject(body: &[u8], v: &Value, s: &Scan<'_>) {
    let Some(injected) = inject_include_usage(body, s) else {
        assert!(
            !s.stream || s.include_usage == Some(true),
            "a streaming body without include_usage was left alone"
        );
        return;
    };
    assert!(
        s.stream && s.include_usage != Some(true),
        "injected needlessly"
    );
    let out = &injected.body;
    let got: Value = match serde_json::from_slice(out) {
        Ok(got) => got,
        Err(e) => panic!(
            "injected body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(out)
        ),
    };
    let mut want = v.clone();
    match want.get_mut("stream_options") {
        Some(Value::Object(o)) => {
            o.insert("include_usage".into(), Value::Bool(true));
        }
        _ => want["stream_options"] = serde_json::json!({ "include_usage": true }),
    }
    assert_eq!(
        got, want,
        "injection changed more than stream_options.include_usage"
    );
    let again = scan(out).expect("the injected body fails the scan");
    assert_eq!(again.model, s.model, "injection changed the model");
    assert_eq!(
        injected.moved(s.model_span.clone()),
        again.model_span,
        "the model literal is not where the edits say it moved"
    );
    assert_eq!(
        again.include_usage,
        Some(true),
        "injected include_usage not seen by the scan"
    );
}

/// The top-level object's keys, duplicates kept (serde_json's `Value` keeps only the last).
struct TopKeys(Vec<String>);

impl<'de> Deserialize<'de> for TopKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = TopKeys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(TopKeys(keys))
            }
        }
        d.deserialize_map(Keys)
    }
}
