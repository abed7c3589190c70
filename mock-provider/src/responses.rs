//! OpenAI Responses API wire format (`.../responses`): the JSON response and its SSE event sequence.

use std::collections::VecDeque;
use std::time::Duration;

use crate::reply::{self, Resp};
use crate::scan::ReqInfo;
use crate::tpl::{Statics, Tpl, Vars};

const USAGE: &str = r#"{"input_tokens":@PT@,"input_tokens_details":{"cached_tokens":0},"output_tokens":@CT@,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":@TT@}"#;
const ITEM_DONE: &str = r#"{"id":"msg_mock@ID@","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"@FULL@"}],"role":"assistant"}"#;
const ITEM_STARTED: &str = r#"{"id":"msg_mock@ID@","type":"message","status":"in_progress","content":[],"role":"assistant"}"#;
const POS: &str = r#""item_id":"msg_mock@ID@","output_index":0,"content_index":0"#;

/// A `response` object in the given state.
fn response(status: &str, output: &str, usage: &str) -> String {
    format!(
        r#"{{"id":"resp_mock@ID@","object":"response","created_at":@CREATED@,"status":"{status}","background":false,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"@MODEL@","output":{output},"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{{"effort":null,"summary":null}},"service_tier":"default","store":true,"temperature":1.0,"text":{{"format":{{"type":"text"}}}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{usage},"user":null,"metadata":{{}}}}"#
    )
}

/// The Responses API templates, built once per server.
pub(crate) struct Responses {
    json: Tpl,
    created: Tpl,
    in_progress: Tpl,
    item_added: Tpl,
    part_added: Tpl,
    delta: Tpl,
    text_done: Tpl,
    part_done: Tpl,
    item_done: Tpl,
    completed: Tpl,
}

impl Responses {
    pub(crate) fn new(st: &Statics<'_>) -> Self {
        let pending = response("in_progress", "[]", "null");
        let done = response("completed", &format!("[{ITEM_DONE}]"), USAGE);
        let ev = |name: &str, rest: &str| {
            st.sse(
                Some(name),
                &format!(r#"{{"type":"{name}","sequence_number":@SEQ@,{rest}}}"#),
            )
        };
        Responses {
            json: st.json(&done),
            created: ev("response.created", &format!(r#""response":{pending}"#)),
            in_progress: ev("response.in_progress", &format!(r#""response":{pending}"#)),
            item_added: ev(
                "response.output_item.added",
                &format!(r#""output_index":0,"item":{ITEM_STARTED}"#),
            ),
            part_added: ev(
                "response.content_part.added",
                &format!(
                    r#"{POS},"part":{{"type":"output_text","annotations":[],"logprobs":[],"text":""}}"#
                ),
            ),
            delta: ev(
                "response.output_text.delta",
                &format!(r#"{POS},"delta":"@TEXT@","logprobs":[]"#),
            ),
            text_done: ev(
                "response.output_text.done",
                &format!(r#"{POS},"text":"@FULL@","logprobs":[]"#),
            ),
            part_done: ev(
                "response.content_part.done",
                &format!(
                    r#"{POS},"part":{{"type":"output_text","annotations":[],"logprobs":[],"text":"@FULL@"}}"#
                ),
            ),
            item_done: ev(
                "response.output_item.done",
                &format!(r#""output_index":0,"item":{ITEM_DONE}"#),
            ),
            completed: ev("response.completed", &format!(r#""response":{done}"#)),
        }
    }

    /// `POST .../responses`.
    pub(crate) fn respond(
        &self,
        info: &ReqInfo<'_>,
        v: &Vars<'_>,
        chunks: usize,
        delay: Duration,
    ) -> Resp {
        if !info.stream {
            return reply::json(200, self.json.render(v));
        }
        let mut frames = VecDeque::with_capacity(chunks + 8);
        let mut seq = 0;
        let mut push = |t: &Tpl, paced: bool| {
            frames.push_back((paced, t.render(&Vars { seq, ..*v })));
            seq += 1;
        };
        push(&self.created, false);
        push(&self.in_progress, false);
        push(&self.item_added, false);
        push(&self.part_added, false);
        for _ in 0..chunks {
            push(&self.delta, true);
        }
        push(&self.text_done, false);
        push(&self.part_done, false);
        push(&self.item_done, false);
        push(&self.completed, false);
        reply::sse(frames, delay)
    }
}
