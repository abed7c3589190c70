//! Anthropic native wire format (`.../messages`): the JSON message and its SSE event sequence.

use std::collections::VecDeque;
use std::time::Duration;

use crate::reply::{self, Resp};
use crate::scan::ReqInfo;
use crate::tpl::{Statics, Tpl, Vars};

/// The Anthropic response templates, built once per server.
pub(crate) struct Anthropic {
    json: Tpl,
    count_tokens: Tpl,
    message_start: Tpl,
    block_start: Tpl,
    ping: Tpl,
    block_delta: Tpl,
    block_stop: Tpl,
    message_delta: Tpl,
    message_stop: Tpl,
}

impl Anthropic {
    pub(crate) fn new(st: &Statics<'_>) -> Self {
        let message = |content: &str, stop: &str, output_tokens: &str| {
            format!(
                r#"{{"id":"msg_mock@ID@","type":"message","role":"assistant","model":"@MODEL@","content":{content},"stop_reason":{stop},"stop_sequence":null,"usage":{{"input_tokens":@PT@,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":{output_tokens},"service_tier":"standard"}}}}"#
            )
        };
        Anthropic {
            json: st.json(&message(
                r#"[{"type":"text","text":"@FULL@"}]"#,
                r#""end_turn""#,
                "@CT@",
            )),
            count_tokens: st.json(r#"{"input_tokens":@PT@}"#),
            message_start: st.sse(
                Some("message_start"),
                &format!(
                    r#"{{"type":"message_start","message":{}}}"#,
                    message("[]", "null", "1")
                ),
            ),
            block_start: st.sse(
                Some("content_block_start"),
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            ping: st.sse(Some("ping"), r#"{"type": "ping"}"#),
            block_delta: st.sse(
                Some("content_block_delta"),
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"@TEXT@"}}"#,
            ),
            block_stop: st.sse(
                Some("content_block_stop"),
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            message_delta: st.sse(
                Some("message_delta"),
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":@CT@}}"#,
            ),
            message_stop: st.sse(Some("message_stop"), r#"{"type":"message_stop"}"#),
        }
    }

    /// `POST .../messages`.
    pub(crate) fn messages(
        &self,
        info: &ReqInfo<'_>,
        v: &Vars<'_>,
        chunks: usize,
        delay: Duration,
    ) -> Resp {
        if !info.stream {
            return reply::json(200, self.json.render(v));
        }
        let mut frames = VecDeque::with_capacity(chunks + 6);
        frames.push_back((false, self.message_start.render(v)));
        frames.push_back((false, self.block_start.render(v)));
        frames.push_back((false, self.ping.render(v)));
        let delta = self.block_delta.render(v);
        frames.extend(std::iter::repeat_n((true, delta), chunks));
        frames.push_back((false, self.block_stop.render(v)));
        frames.push_back((false, self.message_delta.render(v)));
        frames.push_back((false, self.message_stop.render(v)));
        reply::sse(frames, delay)
    }

    /// `POST .../messages/count_tokens`.
    pub(crate) fn count_tokens(&self, v: &Vars<'_>) -> Resp {
        reply::json(200, self.count_tokens.render(v))
    }
}
