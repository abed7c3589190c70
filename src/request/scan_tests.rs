//! Tests for the request-body scanner, checked against serde_json as the reference parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::request::json_gen::{config, emit, Rng, J};
use proptest::prelude::*;
use serde_json::Value;

// ---------------------------------------------------------------------------
// Oracle: what the scan must report, derived from serde_json alone.
// ---------------------------------------------------------------------------

/// The top-level members of an object in document order, duplicates kept.
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The outcome serde_json implies, with error details reduced to the variant.
#[derive(Debug, PartialEq)]
enum Expect {
    Ok {
        model: String,
        stream: bool,
        stream_options: Option<Value>,
        include_usage: Option<bool>,
        output_cap: Option<u64>,
    },
    Invalid,
    NotObject,
    MissingModel,
    ModelNotString,
    EmptyModel,
    DuplicateModel,
}

fn oracle(body: &[u8]) -> Expect {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Expect::Invalid;
    };
    if !v.is_object() {
        return Expect::NotObject;
    }
    let members: Members = serde_json::from_slice(body).expect("serde accepted it as Value");
    let models: Vec<&Value> = members
        .0
        .iter()
        .filter(|(k, _)| k == "model")
        .map(|(_, v)| v)
        .collect();
    // Keys matching `model` only case-insensitively count as duplicates (Go reads them as `model`).
    let lookalikes = members
        .0
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("model"))
        .count();
    if lookalikes > 1 {
        return Expect::DuplicateModel;
    }
    match models.as_slice() {
        [] => Expect::MissingModel,
        [Value::String(s)] if s.is_empty() => Expect::EmptyModel,
        [Value::String(s)] => Expect::Ok {
            model: s.clone(),
            // serde_json's map keeps the last of duplicate keys, as the scan does for these.
            stream: v.get("stream") == Some(&Value::Bool(true)),
            stream_options: v.get("stream_options").cloned(),
            include_usage: v
                .get("stream_options")
                .and_then(|o| o.get("include_usage"))
                .and_then(Value::as_bool),
            output_cap: ["max_completion_tokens", "max_tokens", "max_output_tokens"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_u64)),
        },
        [_] => Expect::ModelNotString,
        _ => Expect::DuplicateModel,
    }
}

/// Runs the scan, checks every reported detail against serde_json, and returns the scan's outcome.
fn check(body: &[u8]) -> Result<Scan<'_>, ScanError> {
    let got = scan(body);
    let expect = oracle(body);
    let reduced = match &got {
        Ok(s) => Expect::Ok {
            model: s.model.to_string(),
            stream: s.stream,
            stream_options: s
                .stream_options
                .clone()
                .map(|r| serde_json::from_slice(&body[r]).expect("stream_options span parses")),
            include_usage: s.include_usage,
            output_cap: s.output_cap,
        },
        Err(ScanError::Invalid { offset, .. }) => {
            assert!(*offset <= body.len(), "offset {offset} past end");
            Expect::Invalid
        }
        Err(ScanError::NotObject) => Expect::NotObject,
        Err(ScanError::MissingModel) => Expect::MissingModel,
        Err(ScanError::ModelNotString) => Expect::ModelNotString,
        Err(ScanError::EmptyModel) => Expect::EmptyModel,
        Err(ScanError::DuplicateModel) => Expect::DuplicateModel,
    };
    assert_eq!(
        reduced,
        expect,
        "body {:?}: got {got:?}",
        String::from_utf8_lossy(body)
    );
    if let Ok(s) = &got {
        let literal: String = serde_json::from_slice(&body[s.model_span.clone()]).unwrap();
        assert_eq!(literal, s.model);
        assert_eq!(body[s.object_end], b'}');
        assert!(body[s.object_end + 1..]
            .iter()
            .all(|b| b" \t\r\n".contains(b)));
        let borrowed = matches!(s.model, Cow::Borrowed(_));
        assert_eq!(borrowed, !body[s.model_span.clone()].contains(&b'\\'));
    }
    got
}

fn ok(body: &str) -> Scan<'_> {
    check(body.as_bytes()).unwrap_or_else(|e| panic!("{body:?}: {e}"))
}

fn err(body: &[u8]) -> ScanError {
    match check(body) {
        Ok(s) => panic!("{:?} accepted: {s:?}", String::from_utf8_lossy(body)),
        Err(e) => e,
    }
}

fn invalid_at(body: &[u8]) -> (usize, &'static str) {
    match err(body) {
        ScanError::Invalid { offset, what } => (offset, what),
        e => panic!(
            "{:?}: expected Invalid, got {e:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

// ---------------------------------------------------------------------------
// Unit tests
// ---------------------------------------------------------------------------

#[test]
fn finds_model_after_messages() {
    let body = r#"{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o"}"#;
    let s = ok(body);
    assert_eq!(s.model, "gpt-4o");
    assert!(matches!(s.model, Cow::Borrowed(_)));
    assert_eq!(&body[s.model_span.clone()], "\"gpt-4o\"");
    assert!(!s.stream);
    assert_eq!(s.stream_options, None);
    assert_eq!(s.include_usage, None);
    assert_eq!(s.object_end, body.len() - 1);
}

#[test]
fn output_cap_prefers_max_completion_tokens() {
    let cases: &[(&str, Option<u64>)] = &[
        (r#"{"model":"m"}"#, None),
        (r#"{"model":"m","max_tokens":300}"#, Some(300)),
        (r#"{"max_output_tokens":7,"model":"m"}"#, Some(7)),
        (
            r#"{"model":"m","max_tokens":300,"max_completion_tokens":20}"#,
            Some(20),
        ),
        (r#"{"model":"m","max_tokens":1,"max_tokens":2}"#, Some(2)),
        (r#"{"model":"m","max_tokens":"300"}"#, None),
        (r#"{"model":"m","max_tokens":-3}"#, None),
        (r#"{"model":"m","max_tokens":3.5}"#, None),
        (r#"{"model":"m","max_tokens":1e3}"#, None),
        (
            r#"{"model":"m","max_tokens":null,"max_output_tokens":9}"#,
            Some(9),
        ),
        (r#"{"model":"m","max_tokens":18446744073709551616}"#, None),
        (r#"{"model":"m","o":{"max_tokens":5}}"#, None),
        (r#"{"model":"m","max\u005ftokens":5}"#, Some(5)),
    ];
    for (body, cap) in cases {
        assert_eq!(check(body.as_bytes()).unwrap().output_cap, *cap, "{body}");
    }
}

#[test]
fn nested_model_keys_are_ignored() {
    let body = r#"{"messages":[{"model":"fake","x":{"model":"f2"}}],"model":"real","meta":{"model":"f3"}}"#;
    assert_eq!(ok(body).model, "real");
    assert_eq!(
        err(br#"{"messages":[{"model":"fake"}],"tools":[["model"]]}"#),
        ScanError::MissingModel
    );
}

#[test]
fn model_inside_string_values_is_ignored() {
    let body = r#"{"messages":[{"content":"\"model\": \"x\", {\"model\":\"y\"}"}],"model":"real"}"#;
    assert_eq!(ok(body).model, "real");
    let only_in_string = br#"{"messages":[{"content":"\"model\": \"x\""}]}"#;
    assert_eq!(err(only_in_string), ScanError::MissingModel);
    let key_lookalike = br#"{"prompt":"\",\"model\":\"evil","model":"good"}"#;
    assert_eq!(check(key_lookalike).unwrap().model, "good");
}

#[test]
fn escaped_keys_are_unescaped() {
    assert_eq!(ok(r#"{"mod\u0065l":"m1"}"#).model, "m1");
    assert_eq!(ok(r#"{"\u006d\u006F\u0064\u0065\u006c":"m2"}"#).model, "m2");
    assert!(ok(r#"{"str\u0065am":true,"model":"m"}"#).stream);
    // Lookalikes are different keys.
    assert_eq!(err(br#"{"model ":"m"}"#), ScanError::MissingModel);
    assert_eq!(err(br#"{"Model":"m"}"#), ScanError::MissingModel);
    assert_eq!(err(br#"{"model\u0000":"m"}"#), ScanError::MissingModel);
}

#[test]
fn escaped_model_values_are_unescaped() {
    let s = ok(r#"{"model":"a\"b\\c\/d\u00e9\ud83d\ude00\n\t\b\f\r"}"#);
    assert_eq!(s.model, "a\"b\\c/d\u{e9}\u{1f600}\n\t\u{8}\u{c}\r");
    assert!(matches!(s.model, Cow::Owned(_)));
    let raw = ok("{\"model\":\"caf\u{e9} \u{1f600}\"}");
    assert_eq!(raw.model, "caf\u{e9} \u{1f600}");
    assert!(matches!(raw.model, Cow::Borrowed(_)));
}

#[test]
fn all_whitespace_is_accepted_between_tokens() {
    let ws = " \t\r\n";
    let body = format!(
        "{ws}{{{ws}\"model\"{ws}:{ws}\"m\"{ws},{ws}\"stream\"{ws}:{ws}true{ws},{ws}\"a\"{ws}:{ws}[{ws}1{ws},{ws}{{{ws}}}{ws}]{ws}}}{ws}"
    );
    let s = ok(&body);
    assert_eq!(s.model, "m");
    assert!(s.stream);
    for bad in ["\u{b}", "\u{c}", "\u{a0}", "\u{feff}", "\u{2028}", "\0"] {
        let body = format!("{{{bad}\"model\":\"m\"}}");
        invalid_at(body.as_bytes());
        let body = format!("{{\"model\":\"m\"}}{bad}");
        invalid_at(body.as_bytes());
    }
}

#[test]
fn model_of_wrong_kind() {
    assert_eq!(err(br#"{"messages":[]}"#), ScanError::MissingModel);
    assert_eq!(err(b"{}"), ScanError::MissingModel);
    for v in [
        "1",
        "-2.5e3",
        "null",
        "true",
        "false",
        "{}",
        r#"{"model":"m"}"#,
        "[]",
        r#"["m"]"#,
    ] {
        let body = format!(r#"{{"a":1,"model":{v},"b":2}}"#);
        assert_eq!(err(body.as_bytes()), ScanError::ModelNotString, "{body}");
    }
    assert_eq!(err(br#"{"model":""}"#), ScanError::EmptyModel);
    assert_eq!(ok(r#"{"model":" "}"#).model, " ");
}

#[test]
fn non_objects_are_refused() {
    for body in [
        &b"[]"[..],
        b"[{\"model\":\"m\"}]",
        b"\"model\"",
        b"12",
        b"-0.5",
        b"true",
        b"null",
        b" [1] ",
    ] {
        assert_eq!(err(body), ScanError::NotObject);
    }
    // An invalid non-object is reported as invalid, not as a non-object.
    invalid_at(b"[1,]");
    invalid_at(b"[1] x");
    assert_eq!(invalid_at(b""), (0, EOF));
    assert_eq!(invalid_at(b" \n"), (2, EOF));
}

#[test]
fn every_prefix_of_a_valid_body_is_truncated() {
    let bodies = [
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"h\u00e9\"\\ \ud83d\ude00 caf"}]}"#,
        "{\"a\" : [1, -2.5e+3, 0.25E-2, true, false, null, {}, [], {\"b\":[[]]}] , \"model\" : \"m\u{e9}\u{1f600}\"}",
        r#"{"stream":true,"stream_options":{"include_usage":false},"model":"m\/x"}"#,
    ];
    for body in bodies {
        ok(body);
        for cut in 0..body.len() {
            let prefix = &body.as_bytes()[..cut];
            assert_eq!(invalid_at(prefix), (cut, EOF), "prefix {cut} of {body}");
        }
    }
}

#[test]
fn duplicate_model_keys_are_refused() {
    for body in [
        r#"{"model":"a","model":"a"}"#,
        r#"{"model":"a","x":1,"model":"b"}"#,
        r#"{"model":"a","m\u006fdel":"b"}"#,
        r#"{"\u006dodel":"a","model":"b"}"#,
        r#"{"model":1,"model":"b"}"#,
        r#"{"model":"a","model":null}"#,
        r#"{"model":"a","Model":"b"}"#,
        r#"{"MODEL":"b","model":"a"}"#,
        r#"{"model":"a","mode\u004C":"b"}"#,
        r#"{"Model":"a","mOdEl":"b"}"#,
    ] {
        assert!(serde_json::from_str::<Value>(body).is_ok());
        assert_eq!(err(body.as_bytes()), ScanError::DuplicateModel, "{body}");
    }
    // A case variant alone is not `model` to serde_json, nor to us.
    assert_eq!(err(br#"{"Model":"a"}"#), ScanError::MissingModel);
    // Duplicates of other keys are not our concern.
    assert_eq!(ok(r#"{"a":1,"a":2,"model":"m"}"#).model, "m");
}

#[test]
fn lenient_json_extensions_are_refused() {
    let cases: &[(&[u8], usize)] = &[
        (b"\xef\xbb\xbf{\"model\":\"m\"}", 0),
        (b"{\"model\":\"m\"/*c*/}", 12),
        (b"// c\n{\"model\":\"m\"}", 0),
        (b"{\"model\":\"m\",}", 13),
        (b"{\"model\":\"m\",\"a\":[1,]}", 20),
        (b"{\"model\":\"m\"}x", 13),
        (b"{\"model\":\"m\"}{}", 13),
        (b"{\"model\":\"m\"},", 13),
        (b"{'model':'m'}", 1),
        (b"{model:\"m\"}", 1),
        (b"{\"model\":\"m\",\"t\":NaN}", 17),
        (b"{\"model\":\"m\",\"t\":Infinity}", 17),
        (b"{\"model\":\"m\",\"t\":01}", 18),
        (b"{\"model\":\"m\",\"t\":-01}", 19),
        (b"{\"model\":\"m\",\"t\":+1}", 17),
        (b"{\"model\":\"m\",\"t\":.5}", 17),
        (b"{\"model\":\"m\",\"t\":1.}", 19),
        (b"{\"model\":\"m\",\"t\":1e}", 19),
        (b"{\"model\":\"m\",\"t\":0x10}", 18),
        (b"{\"model\":\"m\",\"t\":tru}", 17),
        (b"{\"model\":\"m\",\"t\":True}", 17),
        (b"{\"model\":\"m\" \"t\":1}", 13),
        (b"{\"model\" \"m\"}", 9),
        (b"{\"model\":\"m\",\"t\":\"\\x41\"}", 18),
        (b"{\"model\":\"m\",\"t\":\"\\u00g1\"}", 18),
        (b"{\"model\":\"m\",\"t\":\"\\U0041\"}", 18),
        (b"{\"model\":\"m\",\"t\":\"a\tb\"}", 19),
        (b"{\"model\":\"m\",\"t\":\"a\nb\"}", 19),
        (b"{\"model\":\"m\"}\0", 13),
    ];
    for &(body, offset) in cases {
        assert_eq!(
            invalid_at(body).0,
            offset,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    // Trailing whitespace is fine.
    assert_eq!(ok("{\"model\":\"m\"} \t\r\n").model, "m");
}

#[test]
fn stream_flag() {
    let stream = |body: &str| ok(body).stream;
    assert!(stream(r#"{"model":"m","stream":true}"#));
    assert!(!stream(r#"{"model":"m","stream":false}"#));
    assert!(!stream(r#"{"model":"m"}"#));
    assert!(!stream(r#"{"model":"m","stream":"true"}"#));
    assert!(!stream(r#"{"model":"m","stream":1}"#));
    assert!(!stream(r#"{"model":"m","stream":null}"#));
    assert!(!stream(r#"{"model":"m","stream":[true]}"#));
    assert!(!stream(r#"{"model":"m","x":{"stream":true}}"#));
    // The last occurrence wins, as in serde_json.
    assert!(!stream(r#"{"stream":true,"model":"m","stream":false}"#));
    assert!(stream(r#"{"stream":false,"model":"m","stream":true}"#));
}

#[test]
fn stream_options_and_include_usage() {
    let body = r#"{"model":"m","stream_options": {"include_usage":true, "x":[1]} ,"stream":true}"#;
    let s = ok(body);
    assert_eq!(
        &body[s.stream_options.clone().unwrap()],
        r#"{"include_usage":true, "x":[1]}"#
    );
    assert_eq!(s.include_usage, Some(true));
    let usage = |body: &str| ok(body).include_usage;
    assert_eq!(
        usage(r#"{"model":"m","stream_options":{"include_usage":false}}"#),
        Some(false)
    );
    assert_eq!(usage(r#"{"model":"m","stream_options":{}}"#), None);
    assert_eq!(
        usage(r#"{"model":"m","stream_options":{"x":{"include_usage":true}}}"#),
        None
    );
    assert_eq!(
        usage(r#"{"model":"m","stream_options":{"include_usage":"true"}}"#),
        None
    );
    assert_eq!(
        usage(r#"{"model":"m","stream_options":{"include_usage":null}}"#),
        None
    );
    assert_eq!(
        usage(r#"{"model":"m","stream_options":{"incl\u0075de_usage":true}}"#),
        Some(true)
    );
    assert_eq!(
        usage(r#"{"model":"m","stream_options":{"include_usage":true,"include_usage":false}}"#),
        Some(false)
    );
    assert_eq!(usage(r#"{"model":"m","include_usage":true}"#), None);
    let s = ok(r#"{"model":"m","stream_options":null}"#);
    assert_eq!(s.stream_options, Some(30..34));
    assert_eq!(s.include_usage, None);
    // Last occurrence wins, including its absence of include_usage.
    let s = ok(r#"{"stream_options":{"include_usage":true},"model":"m","stream_options":[]}"#);
    assert_eq!(s.include_usage, None);
    assert_eq!(s.stream_options, Some(70..72));
    assert_eq!(
        err(br#"{"model":"m","stream_options":{"include_usage":tru}}"#).to_string(),
        "request body is not valid JSON: expected a JSON value at offset 47"
    );
}

/// `levels` nested arrays as the value of a top-level key (the object is level 1).
fn nested(levels: usize) -> String {
    format!(
        r#"{{"model":"m","a":{}1{}}}"#,
        "[".repeat(levels - 1),
        "]".repeat(levels - 1)
    )
}

#[test]
fn nesting_limit_matches_serde_json() {
    // serde_json's recursion limit of 128 admits 127 nested containers.
    ok(&nested(127));
    assert_eq!(
        invalid_at(nested(128).as_bytes()),
        (17 + 126, "nesting deeper than 127 levels")
    );
    invalid_at(nested(129).as_bytes());
    invalid_at(nested(100_000).as_bytes());
    let objects = |n: usize| {
        format!(
            r#"{{"model":"m","a":{}1{}}}"#,
            r#"{"b":"#.repeat(n - 1),
            "}".repeat(n - 1)
        )
    };
    ok(&objects(127));
    invalid_at(objects(128).as_bytes());
    let so = |n: usize| {
        format!(
            r#"{{"model":"m","stream_options":{{"a":{}{}}}}}"#,
            "[".repeat(n - 2),
            "]".repeat(n - 2)
        )
    };
    ok(&so(127));
    invalid_at(so(128).as_bytes());
    let top = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(err(top(127).as_bytes()), ScanError::NotObject);
    invalid_at(top(128).as_bytes());
}

#[test]
fn invalid_utf8_anywhere_is_refused() {
    let cases: &[&[u8]] = &[
        b"{\"model\":\"m\",\"messages\":[{\"content\":\"ok \xff\"}]}",
        b"{\"model\":\"m\",\"messages\":[{\"content\":\"\xc3\x28\"}]}",
        b"{\"model\":\"m\",\"x\":\"\xc0\x80\"}",
        b"{\"model\":\"m\",\"x\":\"\xed\xa0\x80\"}",
        b"{\"model\":\"m\",\"x\":\"\xf4\x90\x80\x80\"}",
        b"{\"model\":\"m\",\"x\xfe\":1}",
        b"{\"model\":\"m\xe9\"}",
        b"{\"model\":\"m\"}\xff",
        b"\xff{\"model\":\"m\"}",
    ];
    for &body in cases {
        let (offset, _) = invalid_at(body);
        assert!(body[offset] >= 0x80, "{body:?} at {offset}");
    }
    assert_eq!(
        invalid_at(b"{\"model\":\"m\",\"x\":[\"\xe2\x82\"]}"),
        (19, "invalid UTF-8")
    );
    // The earlier problem is the one reported.
    assert_eq!(invalid_at(b"{\"model\":\"m\",,\"x\":\"\xff\"}").0, 13);
    // DEL and raw non-ASCII are fine.
    assert_eq!(
        ok("{\"model\":\"m\",\"x\":\"\u{7f}\u{10ffff}\"}").model,
        "m"
    );
}

#[test]
fn control_characters_in_strings_are_refused() {
    for c in 0u8..0x20 {
        let body = [
            &b"{\"model\":\"m\",\"messages\":[{\"content\":\"a"[..],
            &[c],
            b"\"}]}",
        ]
        .concat();
        assert_eq!(
            invalid_at(&body),
            (38, "control character in string (must be escaped)")
        );
        let body = [&b"{\"mo"[..], &[c], b"del\":\"m\"}"].concat();
        assert_eq!(invalid_at(&body).0, 4);
    }
    // A control byte deep inside a long string is still found.
    let mut long = format!("{{\"model\":\"m\",\"x\":\"{}", "a".repeat(1000)).into_bytes();
    long.push(0x1f);
    long.extend_from_slice(b"\"}");
    assert_eq!(invalid_at(&long).0, 1018);
}

#[test]
fn surrogate_escapes_follow_serde_json() {
    let ok_pair = r#"{"model":"m","x":"\ud83d\ude00\uD83D\uDE00"}"#;
    ok(ok_pair);
    for s in [
        r#"\ud800"#,
        r#"\udc00"#,
        r#"\ud800\u0041"#,
        r#"\ud800x"#,
        r#"\ud800\n"#,
        r#"\ude00\ud83d"#,
        r#"\ud83d\ud83d"#,
    ] {
        for body in [
            format!(r#"{{"model":"m","x":["{s}"]}}"#),
            format!(r#"{{"model":"m","{s}":1}}"#),
            format!(r#"{{"model":"{s}"}}"#),
        ] {
            let (_, what) = invalid_at(body.as_bytes());
            assert!(what.contains("surrogate"), "{body}: {what}");
        }
    }
    assert_eq!(ok(r#"{"model":"\ud83d\ude00"}"#).model, "\u{1f600}");
    assert_eq!(ok(r#"{"model":"\u0000"}"#).model, "\0");
}

#[test]
fn number_range_follows_serde_json() {
    let numbers = [
        "1e308",
        "1.7976931348623157e308",
        "1.7976931348623158e308",
        "1.7976931348623159e308",
        "1.797693134862315808e308",
        "17976931348623157e292",
        "1e309",
        "-1e309",
        "1e400",
        "10e308",
        "0.1e310",
        "0.01e310",
        "1e-400",
        "0e99999999999",
        "0.0e99999999999",
        "1e99999999999",
        "1e-99999999999",
        "-0",
        "-0.0",
        "18446744073709551615",
        "18446744073709551616",
        "18446744073709551616.5e289",
        "184467440737095516150e288",
        "1844674407370955161.5e289",
        "123456789012345678901234567890e280",
    ];
    let mut long_ints = vec![
        format!("9{}", "0".repeat(308)),
        format!("1{}", "0".repeat(308)),
    ];
    long_ints.push(format!("1{}.5", "0".repeat(309)));
    long_ints.push(format!("0.{}1e400", "0".repeat(100)));
    long_ints.push(format!("1{}e-10", "0".repeat(315)));
    long_ints.push(format!("1{}e60", "0".repeat(249)));
    long_ints.push(format!("9{}e99", "9".repeat(188)));
    long_ints.push(format!("9{}.9e99", "9".repeat(189)));
    for n in numbers.iter().map(|s| s.to_string()).chain(long_ints) {
        let body = format!(r#"{{"model":"m","n":{n}}}"#);
        let _ = check(body.as_bytes());
        let body = format!(r#"{{"model":"m","n":[{n}]}}"#);
        let _ = check(body.as_bytes());
    }
    // The boundary sweep: every significand/exponent pair near f64::MAX agrees with serde_json.
    for sig in [
        "1",
        "17",
        "179",
        "1797693134862315",
        "17976931348623157",
        "17976931348623158",
        "9",
    ] {
        for exp in 280..=320 {
            let _ = check(format!(r#"{{"model":"m","n":{sig}e{exp}}}"#).as_bytes());
        }
    }
    assert_eq!(
        invalid_at(br#"{"model":"m","n":-1e999}"#),
        (17, "number out of range")
    );
}

#[test]
fn replace_model_rewrites_only_the_value() {
    let body = br#" {"messages":[{"model":"x"}], "model" : "gpt-4o" , "n":1} "#;
    let s = scan(body).unwrap();
    for new in [
        "canonical/gpt-4o-2024-08-06",
        "a\"b\\c",
        "ctl\u{0}\u{1}\u{1f}\n\r\t\u{8}\u{c}",
        "caf\u{e9} \u{1f600}",
        "",
        "\u{7f}/",
    ] {
        let out = replace_model(body, s.model_span.clone(), new);
        let start = s.model_span.start;
        assert_eq!(&out[..start], &body[..start]);
        let tail = &body[s.model_span.end..];
        assert_eq!(&out[out.len() - tail.len()..], tail);
        let mut want: Value = serde_json::from_slice(body).unwrap();
        want["model"] = Value::String(new.to_string());
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), want);
        if !new.is_empty() {
            assert_eq!(check(&out).unwrap().model, new);
        }
    }
    assert_eq!(
        &replace_model(b"{\"model\":\"m\"}", 9..12, "\u{1}\u{1b}")[..],
        b"{\"model\":\"\\u0001\\u001b\"}"
    );
    assert_eq!(
        &replace_model(b"{\"model\":\"m\"}", 9..12, "caf\u{e9}")[..],
        "{\"model\":\"caf\u{e9}\"}".as_bytes()
    );
    // Nonsense spans are clamped rather than panicking.
    assert_eq!(&replace_model(b"abc", 5..9, "x")[..], b"abc\"x\"");
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 2..1;
    assert_eq!(&replace_model(b"abc", reversed, "x")[..], b"ab\"x\"c");
}

#[test]
fn error_messages_are_client_facing() {
    assert_eq!(
        err(br#"{"model":"m",}"#).to_string(),
        "request body is not valid JSON: trailing comma in object at offset 13"
    );
    assert_eq!(
        err(br#"{"model":"m""#).to_string(),
        "request body is not valid JSON: unexpected end of input at offset 12"
    );
    assert_eq!(
        invalid_at(br#"{"model":"m","t":01}"#),
        (18, "leading zeros are not allowed in numbers")
    );
    assert_eq!(
        invalid_at(b"\xef\xbb\xbf{}"),
        (0, "byte order mark is not allowed")
    );
    assert_eq!(err(b"[]").to_string(), "request body must be a JSON object");
    assert_eq!(
        err(b"{}").to_string(),
        "request body has no top-level \"model\" field"
    );
    assert_eq!(
        err(br#"{"model":1}"#).to_string(),
        "\"model\" must be a string"
    );
    assert_eq!(
        err(br#"{"model":""}"#).to_string(),
        "\"model\" must not be empty"
    );
    assert_eq!(
        err(br#"{"model":"a","model":"b"}"#).to_string(),
        "request body has more than one top-level \"model\" field"
    );
}

/// A chat-completions body of about `size` bytes of message text, `model` last.
fn big_text_body(size: usize) -> String {
    let line = "The quick brown fox \\\"jumps\\\" over the lazy dog; caf\u{e9} \u{4f60}\u{597d} \u{1f600}. \\n";
    let mut content = String::with_capacity(size + line.len());
    while content.len() < size {
        content.push_str(line);
    }
    format!(
        r#"{{"messages":[{{"role":"system","content":"You are helpful."}},{{"role":"user","content":"{content}"}}],"temperature":0.7,"stream":true,"stream_options":{{"include_usage":true}},"model":"gpt-4o-mini"}}"#
    )
}

#[test]
fn one_mebibyte_body_with_model_last() {
    let body = big_text_body(1 << 20);
    let s = ok(&body);
    assert_eq!(s.model, "gpt-4o-mini");
    assert!(s.stream);
    assert_eq!(s.include_usage, Some(true));
    assert_eq!(s.model_span.end, body.len() - 1);
    let out = replace_model(
        body.as_bytes(),
        s.model_span,
        "openai/gpt-4o-mini-2024-07-18",
    );
    assert_eq!(scan(&out).unwrap().model, "openai/gpt-4o-mini-2024-07-18");
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_]{0,8}",
        2 => any::<String>(),
        1 => "[\"\\\\/\u{0}-\u{1f}\u{7f}\u{e9}\u{2028}\u{ffff}\u{10000}\u{1f600}\u{10ffff}a]{0,6}",
        1 => prop::sample::select(vec!["model", "stream", "stream_options", "include_usage", "Model", "MODEL", "model "])
            .prop_map(str::to_string),
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => any::<i64>().prop_map(|n| n.to_string()),
        4 => any::<u64>().prop_map(|n| n.to_string()),
        8 => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::to_string(&f).unwrap()),
        12 => "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,22})?([eE][+-]?[0-9]{1,2})?",
        // Near and past f64::MAX, where serde_json refuses numbers as out of range.
        1 => "-?[1-9][0-9]{0,3}[eE][+]?3[0-2][0-9]",
    ]
}

fn value() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        number().prop_map(J::Num),
        text().prop_map(J::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(J::Arr),
            prop::collection::vec((text(), inner), 0..6).prop_map(J::Obj),
        ]
    })
}

/// A top-level object, usually with `model`, often with `stream` and `stream_options`,
/// sometimes with a second `model`, all placed at random among other members.
fn body() -> impl Strategy<Value = J> {
    let model = prop_oneof![
        6 => text().prop_map(J::Str),
        1 => value(),
    ];
    let flag = || prop_oneof![3 => any::<bool>().prop_map(J::Bool), 1 => value()];
    let stream_options = prop_oneof![
        3 => (prop::collection::vec((text(), value()), 0..3), prop::option::of(flag()), any::<prop::sample::Index>())
            .prop_map(|(mut members, usage, at)| {
                if let Some(u) = usage {
                    members.insert(at.index(members.len() + 1), ("include_usage".to_string(), u));
                }
                J::Obj(members)
            }),
        1 => value(),
    ];
    let extra = prop_oneof![
        3 => flag().prop_map(|v| ("stream", v)),
        3 => stream_options.prop_map(|v| ("stream_options", v)),
        1 => model.clone().prop_map(|v| ("model", v)),
    ];
    (
        prop::collection::vec((text(), value()), 0..6),
        prop::option::weighted(0.9, model),
        prop::collection::vec((extra, any::<prop::sample::Index>()), 0..3),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut members, model, extras, at)| {
            if let Some(m) = model {
                members.insert(at.index(members.len() + 1), ("model".to_string(), m));
            }
            for ((key, v), at) in extras {
                members.insert(at.index(members.len() + 1), (key.to_string(), v));
            }
            J::Obj(members)
        })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn agrees_with_serde_json(j in body(), seed in any::<u64>(), new_model in text()) {
        let mut text = String::new();
        emit(&j, &mut text, &mut Rng(seed | 1));
        let body = text.as_bytes();
        if let Ok(s) = check(body) {
            let out = replace_model(body, s.model_span.clone(), &new_model);
            let mut want: Value = serde_json::from_slice(body).unwrap();
            want["model"] = Value::String(new_model.clone());
            prop_assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), want);
            prop_assert_eq!(&out[..s.model_span.start], &body[..s.model_span.start]);
            prop_assert_eq!(&out[out.len() - (body.len() - s.model_span.end)..], &body[s.model_span.end..]);
        }
    }

    #[test]
    fn mutated_bodies_never_panic_and_agree(
        j in body(),
        seed in any::<u64>(),
        edits in prop::collection::vec(
            (0u8..3, any::<prop::sample::Index>(), prop_oneof![
                any::<u8>(),
                prop::sample::select(b"{}[]\",:\\ 0-+eE.tfnu\x00\x1f\x7f\x80\xc3\xed\xff".to_vec()),
            ]),
            1..4,
        ),
    ) {
        let mut text = String::new();
        emit(&j, &mut text, &mut Rng(seed | 1));
        let mut body = text.into_bytes();
        for (kind, at, byte) in edits {
            match kind {
                0 if !body.is_empty() => {
                    let i = at.index(body.len());
                    body[i] = byte;
                }
                1 => body.insert(at.index(body.len() + 1), byte),
                _ if !body.is_empty() => {
                    body.remove(at.index(body.len()));
                }
                _ => {}
            }
        }
        // `check` asserts the full classification and every detail against serde_json.
        let _ = check(&body);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = check(&body);
    }
}
