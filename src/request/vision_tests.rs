//! Tests for the image-content detector, checked against a serde_json-based reference of the same rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::jsonbytes::find_quote_or_backslash;
use crate::request::json_gen::{config, serialise, J};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Reference: the module's rules applied to a tree that serde_json builds.
// ---------------------------------------------------------------------------

/// A JSON value with every object member kept in document order, duplicate keys included.
#[derive(Debug)]
enum Node {
    Null,
    Scalar,
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_str<E>(self, s: &str) -> Result<Node, E> {
                Ok(Node::Str(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Node::Arr(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = m.next_entry::<String, Node>()? {
                    members.push(entry);
                }
                Ok(Node::Obj(members))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The rules on a parsed body; `None` when serde_json refuses the body.
fn reference(body: &[u8]) -> Option<bool> {
    let node: Node = serde_json::from_slice(body).ok()?;
    let Node::Obj(members) = node else {
        return Some(false);
    };
    Some(
        members
            .iter()
            .any(|(k, v)| (k == "messages" || k == "input") && holds_image(v, false)),
    )
}

/// Whether `v` (an array element when `element`) is or holds an image part.
fn holds_image(v: &Node, element: bool) -> bool {
    match v {
        Node::Arr(items) => items.iter().any(|item| holds_image(item, true)),
        Node::Obj(members) => members.iter().any(|(k, v)| {
            let typed = k == "type"
                && matches!(v, Node::Str(s) if ["image", "image_url", "input_image"].contains(&s.as_str()));
            let untyped = element && k == "image_url" && !matches!(v, Node::Null);
            typed || untyped || holds_image(v, false)
        }),
        _ => false,
    }
}

/// `has_image`, after checking that the reference agrees.
fn check(body: &str) -> bool {
    let got = has_image(body.as_bytes());
    let want = reference(body.as_bytes()).unwrap_or_else(|| panic!("not JSON: {body}"));
    assert_eq!(got, want, "reference disagrees on {body}");
    got
}

fn image(body: &str) {
    assert!(check(body), "no image found in {body}");
}

fn no_image(body: &str) {
    assert!(!check(body), "image found in {body}");
}

// ---------------------------------------------------------------------------
// API shapes
// ---------------------------------------------------------------------------

#[test]
fn chat_completions_image_parts() {
    image(
        r#"{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},
        {"role":"user","content":[{"type":"text","text":"what is this?"},
        {"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}}]}]}"#,
    );
    image(
        r#"{"messages":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]}],"model":"m"}"#,
    );
    // An untyped content part with an `image_url` member.
    image(
        r#"{"model":"m","messages":[{"role":"user","content":[{"image_url":{"url":"https://x/y.png"}}]}]}"#,
    );
    image(
        r#"{"model":"m","messages":[{"role":"user","content":[{"text":"hi"},{"image_url":"https://x/y.png"}]}]}"#,
    );
    no_image(
        r#"{"model":"m","messages":[{"role":"user","content":"hello"},{"role":"assistant","content":null}]}"#,
    );
    no_image(
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hello"}]}]}"#,
    );
}

#[test]
fn responses_image_inputs() {
    image(
        r#"{"model":"gpt-4.1","input":[{"role":"user","content":[{"type":"input_text","text":"describe"},
        {"type":"input_image","image_url":"https://example.com/a.jpg"}]}]}"#,
    );
    image(
        r#"{"model":"gpt-4.1","input":[{"type":"input_image","image_url":"data:image/jpeg;base64,/9j/"}]}"#,
    );
    image(
        r#"{"model":"gpt-4.1","input":[{"type":"message","role":"user","content":[{"type":"image_url","image_url":"https://x"}]}]}"#,
    );
    image(
        r#"{"model":"gpt-4.1","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}"#,
    );
    no_image(r#"{"model":"gpt-4.1","input":"a picture of a cat: type image_url"}"#);
    no_image(
        r#"{"model":"gpt-4.1","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],"instructions":"type: image"}"#,
    );
    // Embeddings bodies have a top-level `input` too.
    no_image(r#"{"model":"text-embedding-3-small","input":["image","image_url",[1,2,3]]}"#);
}

#[test]
fn anthropic_messages_image_blocks() {
    image(
        r#"{"model":"claude-sonnet-4","max_tokens":100,"messages":[{"role":"user","content":[
        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
        {"type":"text","text":"What is in this image?"}]}]}"#,
    );
    image(
        r#"{"model":"c","messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}"#,
    );
    no_image(
        r#"{"model":"c","system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
    );
}

#[test]
fn nested_tool_result_images_count() {
    image(
        r#"{"model":"c","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"shot","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[
        {"type":"text","text":"screenshot:"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]}]}"#,
    );
    no_image(
        r#"{"model":"c","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"image"}]}]}]}"#,
    );
    // Typed image parts count at any depth inside `messages` / `input`.
    image(r#"{"model":"c","messages":[{"a":{"b":[[{"c":{"type":"input_image"}}]]}}]}"#);
    image(r#"{"model":"c","input":{"type":"image"}}"#);
}

// ---------------------------------------------------------------------------
// What does not count
// ---------------------------------------------------------------------------

#[test]
fn words_inside_strings_never_count() {
    no_image(r#"{"messages":[{"role":"user","content":"type: image_url"}]}"#);
    no_image(r#"{"messages":[{"role":"user","content":"{\"type\":\"image_url\"}"}]}"#);
    no_image(
        r#"{"messages":[{"role":"user","content":"[{\"type\":\"image\",\"image_url\":{\"url\":\"x\"}}]"}]}"#,
    );
    // Text that would close the string early for a scanner that mishandles `\"` or `\\`.
    no_image(r#"{"messages":[{"role":"user","content":"\",\"type\":\"image\"}"}]}"#);
    no_image(r#"{"messages":[{"role":"user","content":"\\\",\"type\":\"image\"}"}]}"#);
    no_image(r#"{"messages":[{"content":"a\\","text":"\",{\"type\":\"image\"}"}],"model":"m"}"#);
    no_image(
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"{\"type\": \"input_image\"}"}]}]}"#,
    );
    // Keys that only mention image words, and image words as keys.
    no_image(
        r#"{"messages":[{"role":"user","content":[{"type":"text","image":"type","input_image":1}]}]}"#,
    );
    // The image word as a value of some other key.
    no_image(r#"{"messages":[{"role":"user","content":[{"kind":"image_url","name":"image"}]}]}"#);
    // Near-miss values and keys.
    no_image(
        r#"{"messages":[{"content":[{"type":"Image"},{"type":"image "},{"type":"images"},{"type":"input_images"}]}]}"#,
    );
    no_image(
        r#"{"messages":[{"content":[{"Type":"image"},{"types":"image"},{" type":"image"},{"type":["image"]}]}]}"#,
    );
    no_image(r#"{"messages":[{"content":[{"type":{"type_":"image"}},{"TYPE":"image_url"}]}]}"#);
}

#[test]
fn image_parts_outside_messages_and_input_do_not_count() {
    no_image(
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":
        {"img":{"type":"image_url"},"parts":{"type":"array","items":[{"type":"image","image_url":"x"}]}}}}}]}"#,
    );
    no_image(r#"{"model":"m","metadata":{"type":"image"},"messages":[]}"#);
    no_image(
        r#"{"model":"m","response_format":{"type":"json_schema","json_schema":{"schema":{"anyOf":[{"type":"input_image"}]}}},"input":"x"}"#,
    );
    no_image(
        r#"{"model":"m","type":"image","image_url":"https://x","content":[{"type":"image"}]}"#,
    );
    no_image(
        r#"{"model":"m","message":[{"content":[{"type":"image"}]}],"inputs":[{"type":"image"}]}"#,
    );
    no_image(
        r#"{"model":"m","tool_choice":[{"image_url":"x"}],"messages":[{"role":"user","content":"x"}]}"#,
    );
    // The member after `messages` is walked as a top-level member again.
    no_image(
        r#"{"messages":[{"content":"x"}],"tools":[{"type":"image_url","image_url":"x"}],"model":"m"}"#,
    );
    image(
        r#"{"tools":[{"type":"function"}],"messages":[{"content":[{"type":"image_url","image_url":"x"}]}],"model":"m"}"#,
    );
}

#[test]
fn untyped_image_url_member_rules() {
    // Serialised unset fields.
    no_image(
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"hi","image_url":null}]}]}"#,
    );
    // A tool's argument object is not a content part.
    no_image(
        r#"{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"fetch","input":{"image_url":"https://x/y.png"}}]}]}"#,
    );
    no_image(r#"{"messages":{"image_url":"https://x"}}"#);
    // Any other value of an array element's `image_url` counts.
    image(
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"hi","image_url":""}]}]}"#,
    );
    image(r#"{"messages":[{"role":"user","content":[{"image_url":[]}]}]}"#);
}

#[test]
fn non_object_bodies_have_no_image() {
    for body in [
        r#"[{"messages":[{"content":[{"type":"image"}]}]}]"#,
        r#""{\"messages\":[{\"type\":\"image\"}]}""#,
        "null",
        "12",
        "{}",
        r#"{"messages":null,"input":12}"#,
    ] {
        no_image(body);
    }
}

// ---------------------------------------------------------------------------
// Escapes
// ---------------------------------------------------------------------------

#[test]
fn escaped_keys_and_values_are_unescaped() {
    image(r#"{"messages":[{"content":[{"typ\u0065":"image_url","image_url":{"url":"x"}}]}]}"#);
    image(r#"{"messages":[{"content":[{"\u0074\u0079\u0070\u0065":"image"}]}]}"#);
    image(r#"{"messages":[{"content":[{"type":"image\u005furl"}]}]}"#);
    image(r#"{"messages":[{"content":[{"type":"input\u005Fimage"}]}]}"#);
    image(r#"{"messages":[{"content":[{"type":"\u0069\u006d\u0061\u0067\u0065"}]}]}"#);
    image(r#"{"messages":[{"content":[{"image\u005furl":{"url":"x"}}]}]}"#);
    image(r#"{"m\u0065ssages":[{"content":[{"type":"image"}]}]}"#);
    image(r#"{"inp\u0075t":[{"type":"input_image"}]}"#);
    image(r#"{"\u006dessages":[{"content":[{"type":"image"}]}]}"#);
    // Escapes that decode to something else.
    no_image(r#"{"messages":[{"content":[{"type\u0000":"image"},{"typ\u0065s":"image"}]}]}"#);
    no_image(
        r#"{"messages":[{"content":[{"type":"image\\url"},{"type":"image\u0020"},{"type":"imag\u00e9"}]}]}"#,
    );
    no_image(r#"{"messages":[{"content":[{"type":"\ud83d\ude00image"},{"typ\u0045":"image"}]}]}"#);
    no_image(r#"{"message\u0073s":[{"content":[{"type":"image"}]}]}"#);
    no_image(r#"{"m\/essages":[{"content":[{"type":"image"}]}]}"#);
    image(
        r#"{"messages":[{"content":[{"type":"image\/url"},{"type":"\/image"},{"type":"image"}]}]}"#,
    );
}

#[test]
fn whitespace_between_tokens() {
    image(
        "{ \"model\" : \"m\" ,\n\t\"messages\"\r\n:\n[ { \"content\" : [ { \"type\"\t:\t\"image\" } ] } ] }\n",
    );
    image("{\"messages\":[{\"content\":[ { \"image_url\" \n : \n {\"url\":\"x\"} } ]}]}");
    no_image("{\"messages\":[{\"content\":[ { \"image_url\" \n : \n null } ]}]}");
}

#[test]
fn nesting_limits() {
    // 127 levels, the most a validated body has: found.
    let deep = format!(
        r#"{{"messages":{}{{"type":"image"}}{}}}"#,
        "[".repeat(125),
        "]".repeat(125)
    );
    image(&deep);
    // The bit stack holds 128 levels; beyond them: not a request, no image, no overflow.
    let walk = |levels: usize| {
        let arrays = levels - 2;
        let body = format!(
            r#"{{"messages":{}{{"type":"image"}}{}}}"#,
            "[".repeat(arrays),
            "]".repeat(arrays)
        );
        has_image(body.as_bytes())
    };
    assert!(walk(128));
    assert!(!walk(129));
    assert!(!walk(1000));
    assert!(!has_image("[".repeat(1 << 20).as_bytes()));
    assert!(!has_image(
        format!("{{\"messages\":{}", "{\"a\":".repeat(1 << 16)).as_bytes()
    ));
}

#[test]
fn long_strings_and_many_escapes() {
    let long = "lorem ipsum \\\"image_url\\\" \\n ".repeat(10_000);
    no_image(&format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{long}"}}]}}"#
    ));
    image(&format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"text","text":"{long}"}},{{"type":"image_url","image_url":"x"}}]}}]}}"#
    ));
    // A `type` value far longer than any image type.
    no_image(&format!(r#"{{"messages":[{{"type":"{long}"}}]}}"#));
    let escaped = "\\u0069".repeat(1000);
    no_image(&format!(r#"{{"messages":[{{"type":"{escaped}"}}]}}"#));
}

#[test]
fn truncated_and_invalid_bodies_do_not_panic() {
    let body = r#"{"model":"c","messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"text","text":"a\"b\\c\u00e9"},{"typ\u0065":"image","image_url":{"url":"x"}}]}]}],"tools":[{"type":"image"}]}"#;
    assert!(check(body));
    for end in 0..body.len() {
        let prefix = &body.as_bytes()[..end];
        let found = has_image(prefix);
        // A prefix is found to hold an image exactly when it holds the whole `type` value.
        let needed = body.find(r#""image","image_url""#).unwrap() + r#""image""#.len();
        assert_eq!(
            found,
            end >= needed,
            "prefix {:?}",
            String::from_utf8_lossy(prefix)
        );
    }
    for junk in [
        &b""[..],
        b"{",
        b"}",
        b"]]]]",
        b"{\"messages\"",
        b"{\"messages\":[{\"type\"",
        b"{\"messages\":[{\"type\":",
        b"{\"messages\":[{\"type\":\"ima",
        b"{\"messages\":[{\"type\":\"image\\",
        b"{\"messages\":[{\"typ\\u00",
        b"{\"messages\":[{\"image_url\"",
        b"{\"messages\":[{\"image_url\":",
        b"{\"messages\":[{\"type\":\"im\\u00age\"}]}",
        b"{\"messages\":[{\"type\":\"\\x\"}]}",
        b"{\"messages\":[{\"\xff\xfe\":\"\xc3\"}]}",
        b"{\"messages\"::,,[[}}{\"type\"\"image\"}",
        b"\xef\xbb\xbf{\"messages\":[{\"type\":\"image\"}]}",
        b"{\"messages\":[{\"content\":[{\"type\":\"image\"}]}]}garbage{",
    ] {
        let _ = has_image(junk);
    }
}

// ---------------------------------------------------------------------------
// Generated bodies
// ---------------------------------------------------------------------------

/// Strings that matter to the rules, some near misses, and arbitrary text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "type", "image_url", "image", "input_image", "text", "input_text", "content",
            "role", "user", "source", "url", "tool_result", "tool_use", "messages", "input",
            "Image", "image ", "typ", "types", "type: image_url", "{\"type\":\"image_url\"}",
            "\",\"type\":\"image", "image\\url", "", "\u{e9}", "\u{1f600}",
        ])
        .prop_map(str::to_string),
        1 => "\\PC{0,8}",
        1 => ".{0,4}",
    ]
}

/// A content part's `type`: an image type half of the time.
fn kind() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(vec!["image", "image_url", "input_image"]).prop_map(str::to_string),
        1 => text(),
    ]
}

fn scalar() -> impl Strategy<Value = J> {
    prop_oneof![
        1 => Just(J::Null),
        1 => any::<bool>().prop_map(J::Bool),
        1 => prop::sample::select(vec!["0", "-1", "3.25", "1e5", "-0.5E-3", "12345678901234567890"])
            .prop_map(|n| J::Num(n.to_string())),
        4 => text().prop_map(J::Str),
    ]
}

fn value() -> impl Strategy<Value = J> {
    scalar().prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            2 => prop::collection::vec(inner.clone(), 0..5).prop_map(J::Arr),
            2 => prop::collection::vec((text(), inner.clone()), 0..5).prop_map(J::Obj),
            // Content-part-like objects: a `type` and maybe an `image_url`.
            1 => (kind(), prop::option::of(inner), prop::collection::vec((text(), scalar()), 0..2))
                .prop_map(|(ty, url, rest)| {
                    let mut members = vec![("type".to_string(), J::Str(ty))];
                    if let Some(u) = url {
                        members.push(("image_url".to_string(), u));
                    }
                    members.extend(rest);
                    J::Obj(members)
                }),
        ]
    })
}

/// A `messages` or `input` array shaped like the APIs' (content parts are `value()`s, often typed).
fn messages() -> impl Strategy<Value = J> {
    let content = prop_oneof![
        1 => text().prop_map(J::Str),
        3 => prop::collection::vec(value(), 0..4).prop_map(J::Arr),
    ];
    prop::collection::vec((text(), content), 0..4).prop_map(|msgs| {
        J::Arr(
            msgs.into_iter()
                .map(|(role, content)| {
                    J::Obj(vec![
                        ("role".to_string(), J::Str(role)),
                        ("content".to_string(), content),
                    ])
                })
                .collect(),
        )
    })
}

/// A top-level object, or now and then any value.
fn body() -> impl Strategy<Value = J> {
    let key = prop_oneof![
        3 => prop::sample::select(vec![
            "model", "messages", "input", "messages", "input", "tools", "metadata", "response_format",
            "type", "image_url",
        ])
        .prop_map(str::to_string),
        1 => text(),
    ];
    let member = prop_oneof![
        2 => (key, value()),
        1 => (prop::sample::select(vec!["messages", "input"]).prop_map(str::to_string), messages()),
    ];
    prop_oneof![
        9 => prop::collection::vec(member, 0..5).prop_map(J::Obj),
        1 => value(),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn agrees_with_reference(j in body(), seed in any::<u64>()) {
        let body = serialise(&j, seed);
        let want = reference(body.as_bytes()).expect("generated bodies are JSON");
        prop_assert_eq!(has_image(body.as_bytes()), want, "body {}", body);
    }

    #[test]
    fn mutated_bodies_never_panic_and_agree_when_still_json(
        j in body(),
        seed in any::<u64>(),
        edits in prop::collection::vec(
            (0u8..4, any::<prop::sample::Index>(), prop_oneof![
                any::<u8>(),
                prop::sample::select(b"{}[]\",:\\ 0tfnu\x00\x80\xc3\xff".to_vec()),
            ]),
            1..4,
        ),
    ) {
        let mut body = serialise(&j, seed).into_bytes();
        for (kind, at, byte) in edits {
            match kind {
                0 if !body.is_empty() => {
                    let i = at.index(body.len());
                    body[i] = byte;
                }
                1 => body.insert(at.index(body.len() + 1), byte),
                2 if !body.is_empty() => {
                    body.remove(at.index(body.len()));
                }
                _ => body.truncate(at.index(body.len() + 1)),
            }
        }
        let got = has_image(&body);
        if let Some(want) = reference(&body) {
            prop_assert_eq!(got, want, "body {:?}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn word_search_finds_the_first_quote_or_backslash(
        s in prop::collection::vec(
            prop_oneof![
                // Neighbours of `"` (0x22) and `\` (0x5c) probe the word trick's borrows.
                40 => prop::sample::select(b"ab \x00\x01\x21\x23\x5b\x5d\xa2\xdc\xff".to_vec()),
                1 => prop::sample::select(b"\"\\".to_vec()),
            ],
            0..300,
        ),
    ) {
        let naive = s.iter().position(|&b| b == b'"' || b == b'\\');
        prop_assert_eq!(find_quote_or_backslash(&s), naive);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = has_image(&body);
    }
}
