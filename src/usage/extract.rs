//! Reads usage and generated-text sizes out of each parsed stream event or captured JSON `usage` value, per wire format.

use super::wire::{AnthropicEvent, AnthropicUsage, OpenAiUsage, ResponsesEvent, ResponsesUsage};
use serde::Deserialize;

use super::{chunk, counts};
use super::{Format, Usage};

/// Where the value [`Extract::captured`] receives sits in a JSON body.
pub(crate) const BODY_USAGE: &[&str] = &["usage"];

/// Responses' final events carry usage here.
const RESPONSE_USAGE: &[&str] = &["response", "usage"];

/// The key path worth scanning an oversized stream event for, per format.
pub(crate) fn oversized_path(format: Format) -> Option<&'static [&'static str]> {
    match format {
        Format::OpenAiSse => Some(BODY_USAGE),
        Format::ResponsesSse => Some(RESPONSE_USAGE),
        _ => None,
    }
}

/// Responses stream events whose `delta` is generated text (audio deltas are base64, not text).
const RESPONSES_TEXT_DELTAS: &[&str] = &[
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
    "response.reasoning_text.delta",
    "response.reasoning_summary_text.delta",
    "response.custom_tool_call_input.delta",
];

/// Responses stream events that end the response and carry its usage.
const RESPONSES_FINAL: &[&str] = &[
    "response.completed",
    "response.incomplete",
    "response.failed",
];

/// Usage accounting state for one response body.
#[derive(Debug)]
pub(crate) struct Extract {
    format: Format,
    usage: Option<Usage>,
    /// Anthropic reports counts piecemeal (`message_start`, then `message_delta`).
    anthropic: Option<AnthropicUsage>,
    complete: bool,
    text_bytes: u64,
    /// What an OpenAI stream's chunks start with (see [`chunk::Envelope`]).
    envelope: chunk::Envelope,
}

impl Extract {
    pub(crate) fn new(format: Format) -> Self {
        Extract {
            format,
            usage: None,
            anthropic: None,
            complete: false,
            text_bytes: 0,
            envelope: chunk::Envelope::default(),
        }
    }

    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub(crate) fn complete(&self) -> bool {
        self.complete
    }

    pub(crate) fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// Handles one stream event's data; returns whether it is an OpenAI usage-only chunk
    /// (`"choices": []` and a non-null `usage`), the one a stripping tracker removes.
    pub(crate) fn event(&mut self, data: &[u8]) -> bool {
        match self.format {
            Format::OpenAiSse | Format::OpenAiJson => self.openai_event(data),
            Format::ResponsesSse | Format::ResponsesJson => {
                self.responses_event(data);
                false
            }
            Format::AnthropicSse | Format::AnthropicJson => {
                self.anthropic_event(data);
                false
            }
        }
    }

    /// Handles the raw value found at the format's usage path: a JSON body's top-level
    /// `usage`, or the usage of an event too large to buffer.
    pub(crate) fn captured(&mut self, value: &[u8]) {
        let usage = self.parse_usage(value);
        if usage.is_some() {
            self.usage = usage;
            self.complete = true;
        }
    }

    /// Handles a JSON body's top-level `usage` member. The last one in the document
    /// wins, as with serde_json: a later `usage` that is not a usage object (`null`)
    /// clears an earlier one, however the body was cut into chunks.
    pub(crate) fn captured_member(&mut self, value: &[u8]) {
        let usage = self.parse_usage(value);
        self.read_member(usage);
    }

    /// [`Self::captured_member`] for a value already read.
    pub(crate) fn read_member(&mut self, usage: Option<Usage>) {
        self.usage = usage;
        self.complete = self.usage.is_some();
    }

    /// Whether the body is an OpenAI JSON answer, whose plain usage object
    /// [`counts::openai_usage_prefix`] reads in place.
    pub(crate) fn is_openai_json(&self) -> bool {
        self.format == Format::OpenAiJson
    }

    fn parse_usage(&self, value: &[u8]) -> Option<Usage> {
        match self.format {
            Format::OpenAiJson | Format::OpenAiSse => openai_usage(value),
            Format::ResponsesJson | Format::ResponsesSse => {
                parse::<ResponsesUsage>(value).map(|u| u.to_usage())
            }
            Format::AnthropicJson | Format::AnthropicSse => {
                parse::<AnthropicUsage>(value).map(|u| u.to_usage())
            }
        }
    }

    fn openai_event(&mut self, data: &[u8]) -> bool {
        if data == b"[DONE]" {
            // The stream ended normally: usage seen on any chunk was the final report.
            self.complete |= self.usage.is_some();
            return false;
        }
        let chunk = self.envelope.scan(data);
        self.text_bytes += chunk.text_bytes;
        let Some(Some(usage)) = chunk.usage.and_then(openai_usage_prefix) else {
            return false;
        };
        self.usage = Some(usage);
        // Providers streaming running totals put them on every chunk; the final report
        // comes on a chunk without choices, or on the one that finishes them.
        // A chunk without `choices` counts as one with none.
        if chunk.choices_empty != Some(false) || chunk.finished {
            self.complete = true;
        }
        chunk.choices_empty == Some(true)
    }

    fn responses_event(&mut self, data: &[u8]) {
        let Ok(event) = serde_json::from_slice::<ResponsesEvent<'_>>(data) else {
            return;
        };
        if RESPONSES_TEXT_DELTAS.contains(&&*event.kind) {
            self.text_bytes += event.delta.map_or(0, |d| d.0);
        }
        if let Some(usage) = event.response.and_then(|r| r.usage) {
            self.usage = Some(usage.to_usage());
            self.complete |= RESPONSES_FINAL.contains(&&*event.kind);
        }
    }

    fn anthropic_event(&mut self, data: &[u8]) {
        let Ok(event) = serde_json::from_slice::<AnthropicEvent<'_>>(data) else {
            return;
        };
        let report = match &*event.kind {
            "message_start" => event.message.and_then(|m| m.usage),
            "message_delta" => event.usage,
            "content_block_delta" => {
                self.text_bytes += event.delta.map_or(0, |d| d.text_bytes());
                None
            }
            "message_stop" => {
                self.complete |= self.usage.is_some();
                None
            }
            _ => None,
        };
        let Some(report) = report else {
            return;
        };
        let parts = self.anthropic.get_or_insert_with(AnthropicUsage::default);
        parts.update(&report);
        self.usage = Some(parts.to_usage());
        if event.kind == "message_delta" {
            self.complete = true;
        }
    }
}

/// A captured OpenAI usage value (`None` for `null` or a malformed value). The plain
/// shape is read without serde (see `counts`).
fn openai_usage(raw: &[u8]) -> Option<Usage> {
    match counts::openai_usage(raw) {
        Some(usage) => usage,
        None => parse::<OpenAiUsage>(raw).map(|u| u.to_usage()),
    }
}

/// The OpenAI usage value `data` starts with, whatever follows it; `None` if it is not
/// a usage object, `Some(None)` for `null`.
fn openai_usage_prefix(data: &[u8]) -> Option<Option<Usage>> {
    if let Some((usage, _)) = counts::openai_usage_prefix(data) {
        return Some(usage);
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let usage = Option::<OpenAiUsage>::deserialize(&mut de).ok()?;
    Some(usage.map(|u| u.to_usage()))
}

/// Deserializes a captured usage value; `null` or a malformed value gives `None`.
fn parse<'a, T: serde::Deserialize<'a>>(value: &'a [u8]) -> Option<T> {
    serde_json::from_slice::<Option<T>>(value).ok().flatten()
}
