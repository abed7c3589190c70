//! Reads the token usage a provider reports out of the response body as it is relayed, and asks for it on streaming requests.
//!
//! The gateway relays each upstream body chunk as it arrives and shows the same chunk to a
//! [`UsageTracker`], which never delays or copies it (except to remove the usage chunk the
//! gateway itself asked for, see [`UsageTracker::new`]):
//!
//! - SSE streams (`sse`) are split into events incrementally; each event's `data` is
//!   parsed on its own (events are small) for usage and for the size of the generated
//!   text, which estimates usage when a stream is cut before its report.
//! - JSON bodies are not buffered at all: a streaming scanner (`json`) finds the
//!   top-level `usage` member, keeps only its bytes, and deserializes just that. Memory per
//!   response is constant whatever the body size, and a `usage` key inside a string or a
//!   nested object is not mistaken for it.
//! - [`inject_include_usage`] adds `stream_options.include_usage` to a streaming request,
//!   so that OpenAI-style streams report usage at all.

mod chunk;
mod counts;
mod extract;
mod inject;
mod json;
pub mod meter;
mod sse;
mod strip;
mod wire;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tracker_tests;

use bytes::Bytes;

pub use inject::{inject_include_usage, Injection};
pub use meter::Meter;

use extract::Extract;
use json::MemberScanner;
use sse::{Boundary, Event, SseReader};
use strip::Stripper;

/// Token usage reported by a provider for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt/input tokens, including cached ones (and, for Anthropic, cache writes).
    pub input: u64,
    /// Completion/output tokens, including reasoning.
    pub output: u64,
    /// The part of `input` served from cache (OpenAI `prompt_tokens_details.cached_tokens`,
    /// Responses `input_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`).
    pub cached_input: u64,
    /// Anthropic `cache_creation_input_tokens` (0 elsewhere); also part of `input`.
    pub cache_write: u64,
    /// The part of `output` spent reasoning (`completion_tokens_details.reasoning_tokens`,
    /// `output_tokens_details.reasoning_tokens`).
    pub reasoning: u64,
}

/// Which wire format a response body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI chat/completions, completions or embeddings JSON.
    OpenAiJson,
    /// OpenAI chat/completions or completions event stream.
    OpenAiSse,
    /// OpenAI Responses JSON.
    ResponsesJson,
    /// OpenAI Responses event stream.
    ResponsesSse,
    /// Anthropic Messages JSON.
    AnthropicJson,
    /// Anthropic Messages event stream.
    AnthropicSse,
}

/// The API a model-routed request was made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/chat/completions`.
    ChatCompletions,
    /// `/v1/completions`.
    Completions,
    /// `/v1/embeddings`.
    Embeddings,
    /// `/v1/responses`.
    Responses,
    /// `/v1/messages` (Anthropic).
    Messages,
}

impl From<crate::request::Endpoint> for Api {
    fn from(e: crate::request::Endpoint) -> Api {
        use crate::request::Endpoint as E;
        match e {
            E::ChatCompletions => Api::ChatCompletions,
            E::Completions => Api::Completions,
            E::Embeddings => Api::Embeddings,
            E::Responses => Api::Responses,
            E::Messages | E::CountTokens => Api::Messages,
        }
    }
}

impl Format {
    /// From the endpoint kind and the response `Content-Type`: `text/event-stream`
    /// (any case, any parameters) is a stream; anything else, or none, is JSON.
    pub fn detect(endpoint: Api, content_type: Option<&[u8]>) -> Format {
        let sse = content_type.is_some_and(|ct| {
            let essence = ct.split(|&b| b == b';').next().unwrap_or_default();
            essence
                .trim_ascii()
                .eq_ignore_ascii_case(b"text/event-stream")
        });
        match (endpoint, sse) {
            (Api::Responses, false) => Format::ResponsesJson,
            (Api::Responses, true) => Format::ResponsesSse,
            (Api::Messages, false) => Format::AnthropicJson,
            (Api::Messages, true) => Format::AnthropicSse,
            (_, false) => Format::OpenAiJson,
            (_, true) => Format::OpenAiSse,
        }
    }

    /// Whether the body is an event stream.
    pub fn is_sse(self) -> bool {
        matches!(
            self,
            Format::OpenAiSse | Format::ResponsesSse | Format::AnthropicSse
        )
    }
}

/// Observes a response body chunk by chunk, reading the usage the provider reports.
///
/// By default it only reads: every chunk is relayed as is. See [`UsageTracker::new`] for
/// the stripping mode.
#[derive(Debug)]
pub struct UsageTracker {
    extract: Extract,
    body: Body,
}

/// The body reader for the format.
#[derive(Debug)]
enum Body {
    Json(MemberScanner),
    Sse {
        reader: SseReader,
        /// Present in stripping mode.
        strip: Option<Stripper>,
    },
}

impl UsageTracker {
    /// A tracker for a body in `format`. With `strip_usage_chunk` (meaningful for
    /// [`Format::OpenAiSse`] only, ignored otherwise) the usage-only chunk (`"choices": []`
    /// with a non-null `usage`) is removed from what the client receives: set it when the
    /// gateway added `stream_options.include_usage` itself (see [`inject_include_usage`]).
    pub fn new(format: Format, strip_usage_chunk: bool) -> Self {
        let body = if format.is_sse() {
            let strip = (strip_usage_chunk && format == Format::OpenAiSse).then(Stripper::default);
            Body::Sse {
                reader: SseReader::new(extract::oversized_path(format)),
                strip,
            }
        } else {
            Body::Json(MemberScanner::new(extract::BODY_USAGE))
        };
        UsageTracker {
            extract: Extract::new(format),
            body,
        }
    }

    /// Tells a JSON body's reader the body's length (its `Content-Length`), before
    /// the first chunk: a first chunk that long is read as the whole document.
    pub fn set_body_len(&mut self, len: u64) {
        if let Body::Json(scanner) = &mut self.body {
            scanner.set_whole_len(len);
        }
    }

    /// Feeds one chunk of the body as received. Returns the bytes to send to the client:
    /// `None` = send the chunk exactly as it is (the common case, zero-copy);
    /// `Some(bytes)` = send these instead (stripping mode only: every event the chunk
    /// completes, and any held back before, except the usage-only one; an incomplete
    /// trailing event is held back until the chunk completing it). `Some` may be empty:
    /// then write nothing (an empty write would end a chunked HTTP/1 body).
    pub fn observe(&mut self, chunk: &Bytes) -> Option<Bytes> {
        let extract = &mut self.extract;
        match &mut self.body {
            Body::Json(scanner) => {
                // A whole answer's usage object, read where it lies: one walk of
                // it instead of a skip to find its end and then a copy and a walk.
                if extract.is_openai_json() {
                    if let Some(usage) = scanner.feed_whole_with(chunk, counts::openai_usage_prefix)
                    {
                        extract.read_member(usage);
                        return None;
                    }
                }
                scanner.feed(chunk);
                if let Some(value) = scanner.take() {
                    extract.captured_member(value);
                }
                None
            }
            Body::Sse { reader, strip } => {
                if let Some(s) = strip.as_mut() {
                    s.begin();
                }
                reader.feed(chunk, &mut |b| {
                    on_event(extract, strip.as_mut(), b);
                });
                let passthrough = reader.in_oversized_event();
                strip.as_mut().and_then(|s| s.end_chunk(chunk, passthrough))
            }
        }
    }

    /// Whether the body is an event stream.
    pub fn is_sse(&self) -> bool {
        matches!(self.body, Body::Sse { .. })
    }

    /// Call at the end of the body. Returns the bytes still held back (stripping mode
    /// only), if any. An event left without its closing blank line is still read for usage.
    pub fn finish(&mut self) -> Option<Bytes> {
        let extract = &mut self.extract;
        let Body::Sse { reader, strip } = &mut self.body else {
            return None;
        };
        let mut drop = false;
        reader.finish(&mut |b| drop = on_event(extract, None, b));
        strip.as_mut().and_then(|s| s.finish(drop))
    }

    /// Usage seen so far: the provider's report when it came (see [`Self::complete`]);
    /// for a stream cut short, what its events carried until then (Anthropic reports
    /// input tokens up front), else `None`.
    pub fn usage(&self) -> Option<Usage> {
        self.extract.usage()
    }

    /// Whether the provider's final usage report was seen (as opposed to a stream cut
    /// short, whose usage is partial or must be estimated).
    pub fn complete(&self) -> bool {
        self.extract.complete()
    }

    /// Bytes of generated text seen in stream deltas (content, reasoning, tool-call
    /// arguments), to estimate the output of a stream cut before its usage arrived.
    /// Always 0 for JSON bodies, which report usage whole.
    pub fn output_text_bytes(&self) -> u64 {
        self.extract.text_bytes()
    }
}

/// Reads one ended event; in stripping mode, records its fate. Returns whether it goes.
fn on_event(extract: &mut Extract, strip: Option<&mut Stripper>, b: Boundary<'_>) -> bool {
    let drop = match b.event {
        Event::Data(data) => Some(extract.event(data)),
        Event::Oversized(value) => {
            if let Some(value) = value {
                extract.captured(value);
            }
            Some(false)
        }
        Event::Empty => Some(false),
        Event::Trailer => None,
    };
    if let Some(s) = strip {
        s.event_end(b.end, drop);
    }
    drop == Some(true)
}
