//! The providers' usage objects and stream events as serde types, read leniently and mapped onto [`Usage`].
//!
//! Only the fields usage accounting needs are declared; everything else is skipped without
//! allocating. Token counts accept any JSON value (a missing, null, negative or non-numeric
//! count is 0) so that one odd field never loses the rest of a report. Text is measured,
//! not kept: [`TextLen`] is the UTF-8 length of a JSON string after unescaping (serde_json
//! unescapes a string holding escapes into its scratch buffer: the one allocation an event
//! costs, and only such an event).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::Usage;

/// A token count, read from whatever value is there (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tokens(pub u64);

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tokens;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Tokens, E> {
                Ok(Tokens(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Tokens, E> {
                Ok(Tokens(u64::try_from(v).unwrap_or(0)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Tokens, E> {
                // `as` saturates, and maps NaN to 0.
                Ok(Tokens(v as u64))
            }
            fn visit_str<E>(self, v: &str) -> Result<Tokens, E> {
                Ok(Tokens(v.trim().parse().unwrap_or(0)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Tokens, E> {
                Ok(Tokens(0))
            }
            fn visit_unit<E>(self) -> Result<Tokens, E> {
                Ok(Tokens(0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Tokens, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Tokens(0))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Tokens, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Tokens(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// The byte length of a string value (0 for any other value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TextLen(pub u64);

impl<'de> Deserialize<'de> for TextLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextLen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, v: &str) -> Result<TextLen, E> {
                Ok(TextLen(v.len() as u64))
            }
            fn visit_u64<E>(self, _: u64) -> Result<TextLen, E> {
                Ok(TextLen(0))
            }
            fn visit_i64<E>(self, _: i64) -> Result<TextLen, E> {
                Ok(TextLen(0))
            }
            fn visit_f64<E>(self, _: f64) -> Result<TextLen, E> {
                Ok(TextLen(0))
            }
            fn visit_bool<E>(self, _: bool) -> Result<TextLen, E> {
                Ok(TextLen(0))
            }
            fn visit_unit<E>(self) -> Result<TextLen, E> {
                Ok(TextLen(0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<TextLen, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TextLen(0))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<TextLen, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TextLen(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// `length` of an optional [`TextLen`].
fn len(t: Option<TextLen>) -> u64 {
    t.map_or(0, |t| t.0)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CachedDetails {
    #[serde(default)]
    cached_tokens: Option<Tokens>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReasoningDetails {
    #[serde(default)]
    reasoning_tokens: Option<Tokens>,
}

/// OpenAI chat/completions, completions and embeddings `usage`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Option<Tokens>,
    #[serde(default)]
    completion_tokens: Option<Tokens>,
    #[serde(default)]
    prompt_tokens_details: Option<CachedDetails>,
    #[serde(default)]
    completion_tokens_details: Option<ReasoningDetails>,
}

impl OpenAiUsage {
    pub(crate) fn to_usage(&self) -> Usage {
        Usage {
            input: count(self.prompt_tokens),
            output: count(self.completion_tokens),
            cached_input: cached(&self.prompt_tokens_details),
            cache_write: 0,
            reasoning: reasoning(&self.completion_tokens_details),
        }
    }
}

/// OpenAI Responses `usage`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponsesUsage {
    #[serde(default)]
    input_tokens: Option<Tokens>,
    #[serde(default)]
    output_tokens: Option<Tokens>,
    #[serde(default)]
    input_tokens_details: Option<CachedDetails>,
    #[serde(default)]
    output_tokens_details: Option<ReasoningDetails>,
}

impl ResponsesUsage {
    pub(crate) fn to_usage(&self) -> Usage {
        Usage {
            input: count(self.input_tokens),
            output: count(self.output_tokens),
            cached_input: cached(&self.input_tokens_details),
            cache_write: 0,
            reasoning: reasoning(&self.output_tokens_details),
        }
    }
}

/// Anthropic `usage`; a field left out (or null) is `None`, so a later report can
/// update only the counts it carries.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(crate) struct AnthropicUsage {
    #[serde(default)]
    pub input_tokens: Option<Tokens>,
    #[serde(default)]
    pub output_tokens: Option<Tokens>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<Tokens>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<Tokens>,
}

impl AnthropicUsage {
    /// Overwrites the counts `newer` carries.
    pub(crate) fn update(&mut self, newer: &AnthropicUsage) {
        let pick = |old: &mut Option<Tokens>, new: Option<Tokens>| {
            if new.is_some() {
                *old = new;
            }
        };
        pick(&mut self.input_tokens, newer.input_tokens);
        pick(&mut self.output_tokens, newer.output_tokens);
        pick(
            &mut self.cache_read_input_tokens,
            newer.cache_read_input_tokens,
        );
        pick(
            &mut self.cache_creation_input_tokens,
            newer.cache_creation_input_tokens,
        );
    }

    /// Anthropic's `input_tokens` excludes cache reads and writes; [`Usage::input`] includes them.
    pub(crate) fn to_usage(self) -> Usage {
        let read = count(self.cache_read_input_tokens);
        let write = count(self.cache_creation_input_tokens);
        Usage {
            input: count(self.input_tokens)
                .saturating_add(read)
                .saturating_add(write),
            output: count(self.output_tokens),
            cached_input: read,
            cache_write: write,
            reasoning: 0,
        }
    }
}

fn count(t: Option<Tokens>) -> u64 {
    t.map_or(0, |t| t.0)
}

fn cached(d: &Option<CachedDetails>) -> u64 {
    d.as_ref().map_or(0, |d| count(d.cached_tokens))
}

fn reasoning(d: &Option<ReasoningDetails>) -> u64 {
    d.as_ref().map_or(0, |d| count(d.reasoning_tokens))
}

/// One `data:` payload of a Responses stream.
#[derive(Debug, Deserialize)]
pub(crate) struct ResponsesEvent<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub delta: Option<TextLen>,
    #[serde(default)]
    pub response: Option<ResponseObject>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResponseObject {
    #[serde(default)]
    pub usage: Option<ResponsesUsage>,
}

/// One `data:` payload of an Anthropic Messages stream.
#[derive(Debug, Deserialize)]
pub(crate) struct AnthropicEvent<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `message_start`'s message.
    #[serde(default)]
    pub message: Option<AnthropicMessage>,
    /// `message_delta`'s cumulative usage.
    #[serde(default)]
    pub usage: Option<AnthropicUsage>,
    /// `content_block_delta`'s delta (also `message_delta`'s stop reason, unused).
    #[serde(default)]
    pub delta: Option<BlockDelta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AnthropicMessage {
    #[serde(default)]
    pub usage: Option<AnthropicUsage>,
}

/// A content block delta: text, tool input JSON or thinking.
#[derive(Debug, Deserialize)]
pub(crate) struct BlockDelta {
    #[serde(default)]
    text: Option<TextLen>,
    #[serde(default)]
    partial_json: Option<TextLen>,
    #[serde(default)]
    thinking: Option<TextLen>,
}

impl BlockDelta {
    /// Bytes of generated text in the delta.
    pub(crate) fn text_bytes(&self) -> u64 {
        len(self.text) + len(self.partial_json) + len(self.thinking)
    }
}
