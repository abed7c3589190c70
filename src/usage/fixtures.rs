//! Test fixtures: response bodies shaped like the providers' real wire formats, with the usage each one reports.
#![allow(clippy::unwrap_used)]

use std::ops::Range;

use super::Usage;

/// A response body and what the tracker must read from it.
#[derive(Debug, Clone)]
pub(crate) struct Fixture {
    pub body: Vec<u8>,
    pub usage: Usage,
    /// Generated text bytes in the stream's deltas.
    pub text_bytes: u64,
    /// The usage-only event's bytes (OpenAI streams), blank line included.
    pub usage_event: Option<Range<usize>>,
}

/// How events are framed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    pub eol: &'static str,
    /// `data: x` rather than `data:x`.
    pub space: bool,
}

pub(crate) const LF: Framing = Framing {
    eol: "\n",
    space: true,
};
pub(crate) const CRLF: Framing = Framing {
    eol: "\r\n",
    space: true,
};
pub(crate) const CR: Framing = Framing {
    eol: "\r",
    space: true,
};
pub(crate) const LF_NO_SPACE: Framing = Framing {
    eol: "\n",
    space: false,
};

/// Generated text with multi-byte UTF-8 (2, 3 and 4 bytes) and JSON escapes.
pub(crate) const PIECES: &[&str] = &[
    "Hello",
    "! Voilà",
    " — 世界",
    " 🎉🎉",
    "\n\"quoted\"\t",
    " end.",
];

fn text_bytes() -> u64 {
    PIECES.iter().map(|p| p.len() as u64).sum()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Appends one event; returns its byte range.
fn push_event(out: &mut String, f: Framing, event: Option<&str>, data: &str) -> Range<usize> {
    let start = out.len();
    if let Some(name) = event {
        out.push_str(&format!("event: {name}{}", f.eol));
    }
    let sep = if f.space { " " } else { "" };
    out.push_str(&format!("data:{sep}{data}{}{}", f.eol, f.eol));
    start..out.len()
}

const CHAT_HEAD: &str = r#""id":"chatcmpl-BfQ3vJqZ8lD2pXy7kWm1nR5sT0uVa","object":"chat.completion.chunk","created":1749053215,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8""#;

/// OpenAI chat/completions stream with `include_usage`: role, content, finish, usage-only chunk, `[DONE]`.
pub(crate) fn openai_chat(f: Framing) -> Fixture {
    openai_chat_with(f, true)
}

/// The same stream, with or without its usage-only chunk.
pub(crate) fn openai_chat_with(f: Framing, with_usage: bool) -> Fixture {
    let mut s = String::new();
    let usage_field = if with_usage { r#","usage":null"# } else { "" };
    push_event(
        &mut s,
        f,
        None,
        &format!(
            r#"{{{CHAT_HEAD},"choices":[{{"index":0,"delta":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null}}]{usage_field}}}"#
        ),
    );
    for p in PIECES {
        let c = json_str(p);
        push_event(
            &mut s,
            f,
            None,
            &format!(
                r#"{{{CHAT_HEAD},"choices":[{{"index":0,"delta":{{"content":{c}}},"logprobs":null,"finish_reason":null}}]{usage_field},"obfuscation":"q3Zk"}}"#
            ),
        );
    }
    push_event(
        &mut s,
        f,
        None,
        &format!(
            r#"{{{CHAT_HEAD},"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}]{usage_field}}}"#
        ),
    );
    let usage_event = with_usage.then(|| push_event(&mut s, f, None, &format!(r#"{{{CHAT_HEAD},"choices":[],"usage":{{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{{"cached_tokens":1024,"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}}}"#)));
    push_event(&mut s, f, None, "[DONE]");
    Fixture {
        body: s.into_bytes(),
        usage: if with_usage {
            Usage {
                input: 1117,
                output: 46,
                cached_input: 1024,
                cache_write: 0,
                reasoning: 0,
            }
        } else {
            Usage::default()
        },
        text_bytes: text_bytes(),
        usage_event,
    }
}

/// OpenAI reasoning-model chat stream: tool-call argument deltas, reasoning tokens in usage.
pub(crate) fn openai_tool_call(f: Framing) -> Fixture {
    let head = r#""id":"chatcmpl-C1x","object":"chat.completion.chunk","created":1749053300,"model":"o4-mini-2025-04-16","service_tier":"default","system_fingerprint":null"#;
    let mut s = String::new();
    push_event(
        &mut s,
        f,
        None,
        &format!(
            r#"{{{head},"choices":[{{"index":0,"delta":{{"role":"assistant","content":null,"tool_calls":[{{"index":0,"id":"call_Qm4","type":"function","function":{{"name":"get_weather","arguments":""}}}}],"refusal":null}},"finish_reason":null}}],"usage":null}}"#
        ),
    );
    let args = [r#"{"lo"#, r#"cation":"#, r#" "Zürich"}"#];
    for a in args {
        let a = json_str(a);
        push_event(
            &mut s,
            f,
            None,
            &format!(
                r#"{{{head},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":{a}}}}}]}},"finish_reason":null}}],"usage":null}}"#
            ),
        );
    }
    push_event(
        &mut s,
        f,
        None,
        &format!(
            r#"{{{head},"choices":[{{"index":0,"delta":{{}},"finish_reason":"tool_calls"}}],"usage":null}}"#
        ),
    );
    let usage_event = push_event(
        &mut s,
        f,
        None,
        &format!(
            r#"{{{head},"choices":[],"usage":{{"prompt_tokens":81,"completion_tokens":215,"total_tokens":296,"prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":192}}}}}}"#
        ),
    );
    push_event(&mut s, f, None, "[DONE]");
    Fixture {
        body: s.into_bytes(),
        usage: Usage {
            input: 81,
            output: 215,
            cached_input: 0,
            cache_write: 0,
            reasoning: 192,
        },
        text_bytes: args.iter().map(|a| a.len() as u64).sum(),
        usage_event: Some(usage_event),
    }
}

/// OpenAI legacy completions stream (`choices[].text`).
pub(crate) fn openai_completions(f: Framing) -> Fixture {
    let head = r#""id":"cmpl-BfQ4","object":"text_completion","created":1749053400"#;
    let mut s = String::new();
    for p in PIECES {
        let t = json_str(p);
        push_event(
            &mut s,
            f,
            None,
            &format!(
                r#"{{{head},"choices":[{{"text":{t},"index":0,"logprobs":null,"finish_reason":null}}],"model":"gpt-3.5-turbo-instruct:20230824-v2","usage":null}}"#
            ),
        );
    }
    push_event(
        &mut s,
        f,
        None,
        &format!(
            r#"{{{head},"choices":[{{"text":"","index":0,"logprobs":null,"finish_reason":"length"}}],"model":"gpt-3.5-turbo-instruct:20230824-v2","usage":null}}"#
        ),
    );
    let usage_event = push_event(
        &mut s,
        f,
        None,
        &format!(
            r#"{{{head},"choices":[],"model":"gpt-3.5-turbo-instruct:20230824-v2","usage":{{"prompt_tokens":5,"completion_tokens":16,"total_tokens":21}}}}"#
        ),
    );
    push_event(&mut s, f, None, "[DONE]");
    Fixture {
        body: s.into_bytes(),
        usage: Usage {
            input: 5,
            output: 16,
            ..Usage::default()
        },
        text_bytes: text_bytes(),
        usage_event: Some(usage_event),
    }
}

const RESPONSE_HEAD: &str = r#""id":"resp_68406e1f3b9c819a","object":"response","created_at":1749053471,"background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14""#;
const RESPONSE_TAIL: &str = r#""parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"service_tier":"default","store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled""#;

/// OpenAI Responses stream, `response.created` through `response.completed`.
pub(crate) fn responses(f: Framing) -> Fixture {
    responses_with_output(f, &PIECES.concat())
}

/// A Responses stream whose final event repeats `full_text` (to make it as large as wanted).
pub(crate) fn responses_with_output(f: Framing, full_text: &str) -> Fixture {
    let mut s = String::new();
    let mut seq = 0;
    let mut ev = |s: &mut String, name: &str, body: String| {
        let data = format!(r#"{{"type":"{name}","sequence_number":{seq},{body}}}"#);
        seq += 1;
        push_event(s, f, Some(name), &data);
    };
    for (name, status) in [
        ("response.created", "in_progress"),
        ("response.in_progress", "in_progress"),
    ] {
        ev(
            &mut s,
            name,
            format!(
                r#""response":{{{RESPONSE_HEAD},"output":[],"status":"{status}",{RESPONSE_TAIL},"usage":null,"user":null,"metadata":{{}}}}"#
            ),
        );
    }
    ev(&mut s, "response.output_item.added", r#""output_index":0,"item":{"id":"msg_68406e2","type":"message","status":"in_progress","content":[],"role":"assistant"}"#.into());
    ev(&mut s, "response.content_part.added", r#""item_id":"msg_68406e2","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}"#.into());
    for p in PIECES {
        let d = json_str(p);
        ev(
            &mut s,
            "response.output_text.delta",
            format!(
                r#""item_id":"msg_68406e2","output_index":0,"content_index":0,"delta":{d},"logprobs":[]"#
            ),
        );
    }
    let full = json_str(full_text);
    ev(
        &mut s,
        "response.output_text.done",
        format!(
            r#""item_id":"msg_68406e2","output_index":0,"content_index":0,"text":{full},"logprobs":[]"#
        ),
    );
    ev(
        &mut s,
        "response.completed",
        format!(
            r#""response":{{{RESPONSE_HEAD},"output":[{{"id":"msg_68406e2","type":"message","status":"completed","content":[{{"type":"output_text","annotations":[],"logprobs":[],"text":{full}}}],"role":"assistant"}}],"status":"completed",{RESPONSE_TAIL},"usage":{{"input_tokens":328,"input_tokens_details":{{"cached_tokens":256}},"output_tokens":52,"output_tokens_details":{{"reasoning_tokens":12}},"total_tokens":380}},"user":null,"metadata":{{}}}}"#
        ),
    );
    Fixture {
        body: s.into_bytes(),
        usage: Usage {
            input: 328,
            output: 52,
            cached_input: 256,
            cache_write: 0,
            reasoning: 12,
        },
        text_bytes: text_bytes(),
        usage_event: None,
    }
}

/// Anthropic Messages stream, with prompt caching counts and a ping.
pub(crate) fn anthropic(f: Framing) -> Fixture {
    let mut s = String::new();
    push_event(
        &mut s,
        f,
        Some("message_start"),
        r#"{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-20250514","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":2048,"cache_read_input_tokens":1024,"output_tokens":2,"service_tier":"standard"}}}"#,
    );
    push_event(
        &mut s,
        f,
        Some("content_block_start"),
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    );
    push_event(&mut s, f, Some("ping"), r#"{"type": "ping"}"#);
    for p in PIECES {
        let t = json_str(p);
        push_event(
            &mut s,
            f,
            Some("content_block_delta"),
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":{t}}}}}"#
            ),
        );
    }
    push_event(
        &mut s,
        f,
        Some("content_block_stop"),
        r#"{"type":"content_block_stop","index":0}"#,
    );
    push_event(
        &mut s,
        f,
        Some("message_delta"),
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":37}}"#,
    );
    push_event(
        &mut s,
        f,
        Some("message_stop"),
        r#"{"type":"message_stop"}"#,
    );
    Fixture {
        body: s.into_bytes(),
        usage: Usage {
            input: 472 + 2048 + 1024,
            output: 37,
            cached_input: 1024,
            cache_write: 2048,
            reasoning: 0,
        },
        text_bytes: text_bytes(),
        usage_event: None,
    }
}

/// Every stream fixture in one framing, named.
pub(crate) fn streams(f: Framing) -> Vec<(&'static str, super::Format, Fixture)> {
    use super::Format::*;
    vec![
        ("openai chat", OpenAiSse, openai_chat(f)),
        ("openai tool call", OpenAiSse, openai_tool_call(f)),
        ("openai completions", OpenAiSse, openai_completions(f)),
        ("responses", ResponsesSse, responses(f)),
        ("anthropic", AnthropicSse, anthropic(f)),
    ]
}

/// OpenAI chat/completions JSON whose message text and metadata mention `usage` as decoys.
pub(crate) fn openai_chat_json() -> Fixture {
    let body = r#"{
  "id": "chatcmpl-BfQ5",
  "object": "chat.completion",
  "created": 1749053500,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "The field is \"usage\": {\"prompt_tokens\": 999} — see {\"usage\":1}",
        "refusal": null,
        "annotations": [],
        "usage": {"prompt_tokens": 555, "completion_tokens": 555}
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "metadata": {"usage": {"prompt_tokens": 777}},
  "decoy": ["usage", {"usage": {"prompt_tokens": 888}}],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default",
  "system_fingerprint": "fp_07871e2ad8"
}
"#;
    Fixture {
        body: body.as_bytes().to_vec(),
        usage: Usage {
            input: 19,
            output: 10,
            ..Usage::default()
        },
        text_bytes: 0,
        usage_event: None,
    }
}

/// OpenAI embeddings JSON (`usage` after a large numeric array).
pub(crate) fn embeddings_json() -> Fixture {
    let floats: Vec<String> = (0..1536)
        .map(|i| format!("{:.9}", (i as f64).sin() / 7.0))
        .collect();
    let body = format!(
        r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":[{}]}}],"model":"text-embedding-3-small","usage":{{"prompt_tokens":8,"total_tokens":8}}}}"#,
        floats.join(",")
    );
    Fixture {
        body: body.into_bytes(),
        usage: Usage {
            input: 8,
            ..Usage::default()
        },
        text_bytes: 0,
        usage_event: None,
    }
}

/// OpenAI Responses JSON.
pub(crate) fn responses_json() -> Fixture {
    let body = format!(
        r#"{{{RESPONSE_HEAD},"output":[{{"id":"rs_1","type":"reasoning","summary":[]}},{{"id":"msg_1","type":"message","status":"completed","content":[{{"type":"output_text","annotations":[],"text":"usage: none"}}],"role":"assistant"}}],"status":"completed",{RESPONSE_TAIL},"usage":{{"input_tokens":36,"input_tokens_details":{{"cached_tokens":12}},"output_tokens":87,"output_tokens_details":{{"reasoning_tokens":64}},"total_tokens":123}},"user":null,"metadata":{{}}}}"#
    );
    Fixture {
        body: body.into_bytes(),
        usage: Usage {
            input: 36,
            output: 87,
            cached_input: 12,
            cache_write: 0,
            reasoning: 64,
        },
        text_bytes: 0,
        usage_event: None,
    }
}

/// Anthropic Messages JSON (a tool_use block whose input holds a `usage` decoy).
pub(crate) fn anthropic_json() -> Fixture {
    let body = r#"{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-opus-4-20250514","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_01","name":"record","input":{"usage":{"input_tokens":1}}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":0,"cache_read_input_tokens":1800,"output_tokens":503,"service_tier":"standard"}}"#;
    Fixture {
        body: body.as_bytes().to_vec(),
        usage: Usage {
            input: 2095 + 1800,
            output: 503,
            cached_input: 1800,
            cache_write: 0,
            reasoning: 0,
        },
        text_bytes: 0,
        usage_event: None,
    }
}

/// Every JSON fixture, named.
pub(crate) fn bodies() -> Vec<(&'static str, super::Format, Fixture)> {
    use super::Format::*;
    vec![
        ("openai chat json", OpenAiJson, openai_chat_json()),
        ("embeddings json", OpenAiJson, embeddings_json()),
        ("responses json", ResponsesJson, responses_json()),
        ("anthropic json", AnthropicJson, anthropic_json()),
    ]
}
