//! OpenAI wire formats: chat completions, legacy completions, embeddings, model list (JSON and SSE).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::reply::{self, Resp};
use crate::scan::ReqInfo;
use crate::tpl::{Statics, Tpl, Vars};

const CHAT_HEAD: &str =
    r#""id":"chatcmpl-mock@ID@","object":"chat.completion","created":@CREATED@,"model":"@MODEL@""#;
const CHUNK_HEAD: &str = r#""id":"chatcmpl-mock@ID@","object":"chat.completion.chunk","created":@CREATED@,"model":"@MODEL@","service_tier":"default","system_fingerprint":"fp_mock""#;
const CHAT_USAGE: &str = r#""usage":{"prompt_tokens":@PT@,"completion_tokens":@CT@,"total_tokens":@TT@,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#;
const CMPL_HEAD: &str = r#""id":"cmpl-mock@ID@","object":"text_completion","created":@CREATED@,"model":"@MODEL@","system_fingerprint":"fp_mock""#;
const CMPL_USAGE: &str =
    r#""usage":{"prompt_tokens":@PT@,"completion_tokens":@CT@,"total_tokens":@TT@}"#;

/// Little-endian f32 bytes of `[0.1, 0.2, 0.3]`, base64 (what `encoding_format: "base64"` returns).
const EMBEDDING_B64: &str = "zczMPc3MTD6amZk+";

/// One streamed answer's events.
struct StreamTpl {
    /// First content chunk (carries `delta.role`).
    first: Tpl,
    /// Every later content chunk (identical, so rendered once per request).
    chunk: Tpl,
    /// Role-only chunk, used instead of `first` when the mock streams zero content chunks.
    role: Tpl,
    /// The chunk with `finish_reason: "stop"`.
    stop: Tpl,
    /// `choices: []` plus usage, only with `stream_options.include_usage`.
    usage: Tpl,
}

/// The OpenAI response templates, built once per server.
pub(crate) struct OpenAi {
    chat_json: Tpl,
    chat_stream: StreamTpl,
    cmpl_json: Tpl,
    cmpl_stream: StreamTpl,
    emb_head: Tpl,
    emb_item: Tpl,
    emb_item_b64: Tpl,
    emb_tail: Tpl,
    models: Bytes,
    models_anthropic: Bytes,
    done: Bytes,
}

fn obj(parts: &[&str]) -> String {
    format!("{{{}}}", parts.join(","))
}

impl OpenAi {
    pub(crate) fn new(st: &Statics<'_>) -> Self {
        let chat_choice = |delta: &str, finish: &str| {
            format!(
                r#""choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]"#
            )
        };
        let cmpl_choice = |text: &str, finish: &str| {
            format!(
                r#""choices":[{{"text":"{text}","index":0,"logprobs":null,"finish_reason":{finish}}}]"#
            )
        };
        let chat_stream = StreamTpl {
            first: st.sse(
                None,
                &obj(&[
                    CHUNK_HEAD,
                    &chat_choice(
                        r#"{"role":"assistant","content":"@TEXT@","refusal":null}"#,
                        "null",
                    ),
                ]),
            ),
            chunk: st.sse(
                None,
                &obj(&[CHUNK_HEAD, &chat_choice(r#"{"content":"@TEXT@"}"#, "null")]),
            ),
            role: st.sse(
                None,
                &obj(&[
                    CHUNK_HEAD,
                    &chat_choice(
                        r#"{"role":"assistant","content":"","refusal":null}"#,
                        "null",
                    ),
                ]),
            ),
            stop: st.sse(None, &obj(&[CHUNK_HEAD, &chat_choice("{}", r#""stop""#)])),
            usage: st.sse(None, &obj(&[CHUNK_HEAD, r#""choices":[]"#, CHAT_USAGE])),
        };
        let cmpl_stream = StreamTpl {
            first: st.sse(None, &obj(&[CMPL_HEAD, &cmpl_choice("@TEXT@", "null")])),
            chunk: st.sse(None, &obj(&[CMPL_HEAD, &cmpl_choice("@TEXT@", "null")])),
            role: st.sse(None, &obj(&[CMPL_HEAD, &cmpl_choice("", "null")])),
            stop: st.sse(None, &obj(&[CMPL_HEAD, &cmpl_choice("", r#""stop""#)])),
            usage: st.sse(None, &obj(&[CMPL_HEAD, r#""choices":[]"#, CMPL_USAGE])),
        };
        let models_anthropic = r#"{"data":[{"type":"model","id":"mock-model","display_name":"Mock Model","created_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"mock-model","last_id":"mock-model"}"#;
        OpenAi {
            chat_json: st.json(&obj(&[
                CHAT_HEAD,
                r#""choices":[{"index":0,"message":{"role":"assistant","content":"@FULL@","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}]"#,
                CHAT_USAGE,
                r#""service_tier":"default","system_fingerprint":"fp_mock""#,
            ])),
            chat_stream,
            cmpl_json: st.json(&obj(&[
                CMPL_HEAD,
                &cmpl_choice("@FULL@", r#""stop""#),
                CMPL_USAGE,
            ])),
            cmpl_stream,
            emb_head: Tpl::new(r#"{"object":"list","data":["#),
            emb_item: Tpl::new(r#"{"object":"embedding","index":@SEQ@,"embedding":[0.1,0.2,0.3]}"#),
            emb_item_b64: Tpl::new(&format!(
                r#"{{"object":"embedding","index":@SEQ@,"embedding":"{EMBEDDING_B64}"}}"#
            )),
            emb_tail: st.json(r#"],"model":"@MODEL@","usage":{"prompt_tokens":@PT@,"total_tokens":@PT@}}"#),
            models: Bytes::from(st.fill(
                r#"{"object":"list","data":[{"id":"mock-model","object":"model","created":@CREATED@,"owned_by":"mock-provider"}]}"#,
            )),
            models_anthropic: Bytes::from_static(models_anthropic.as_bytes()),
            done: Bytes::from_static(b"data: [DONE]\n\n"),
        }
    }

    /// `POST .../chat/completions`.
    pub(crate) fn chat(
        &self,
        info: &ReqInfo<'_>,
        v: &Vars<'_>,
        chunks: usize,
        delay: Duration,
    ) -> Resp {
        if info.stream {
            self.stream(&self.chat_stream, info, v, chunks, delay)
        } else {
            reply::json(200, self.chat_json.render(v))
        }
    }

    /// `POST .../completions` (legacy text completions).
    pub(crate) fn completion(
        &self,
        info: &ReqInfo<'_>,
        v: &Vars<'_>,
        chunks: usize,
        delay: Duration,
    ) -> Resp {
        if info.stream {
            self.stream(&self.cmpl_stream, info, v, chunks, delay)
        } else {
            reply::json(200, self.cmpl_json.render(v))
        }
    }

    fn stream(
        &self,
        t: &StreamTpl,
        info: &ReqInfo<'_>,
        v: &Vars<'_>,
        chunks: usize,
        delay: Duration,
    ) -> Resp {
        let mut frames = VecDeque::with_capacity(chunks + 4);
        if chunks == 0 {
            frames.push_back((false, t.role.render(v)));
        } else {
            frames.push_back((true, t.first.render(v)));
            if chunks > 1 {
                let chunk = t.chunk.render(v);
                frames.extend(std::iter::repeat_n((true, chunk), chunks - 1));
            }
        }
        frames.push_back((false, t.stop.render(v)));
        if info.include_usage {
            frames.push_back((false, t.usage.render(v)));
        }
        frames.push_back((false, self.done.clone()));
        reply::sse(frames, delay)
    }

    /// `POST .../embeddings`: one `[0.1, 0.2, 0.3]` vector per input.
    pub(crate) fn embeddings(&self, info: &ReqInfo<'_>, v: &Vars<'_>) -> Resp {
        let item = if info.base64 {
            &self.emb_item_b64
        } else {
            &self.emb_item
        };
        let mut out = Vec::with_capacity(
            self.emb_head.len_hint(v) + self.emb_tail.len_hint(v) + info.inputs * item.len_hint(v),
        );
        self.emb_head.render_into(v, &mut out);
        for i in 0..info.inputs {
            if i > 0 {
                out.push(b',');
            }
            item.render_into(
                &Vars {
                    seq: i as u64,
                    ..*v
                },
                &mut out,
            );
        }
        self.emb_tail.render_into(v, &mut out);
        reply::json(200, Bytes::from(out))
    }

    /// `GET .../models` (Anthropic's list shape when the request carries `anthropic-version`).
    pub(crate) fn models(&self, anthropic: bool) -> Resp {
        let body = if anthropic {
            &self.models_anthropic
        } else {
            &self.models
        };
        reply::json(200, body.clone())
    }
}
