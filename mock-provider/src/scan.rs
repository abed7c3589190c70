//! A tiny allocation-free JSON scanner: finds the few request fields the mock needs without serde.
//!
//! It walks only the top level of the request object (skipping nested values by bracket
//! depth, strings aware), so a `"model"` key inside a tool schema or a message never matches.
//! Malformed input simply yields fewer fields; the mock then falls back to defaults.

/// What the mock needs to know about a request body.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReqInfo<'a> {
    /// The `model` string exactly as it appeared on the wire (still JSON-escaped, no quotes).
    pub model: Option<&'a [u8]>,
    /// `"stream": true`.
    pub stream: bool,
    /// `"stream_options": {"include_usage": true}`.
    pub include_usage: bool,
    /// Number of embedding inputs (`input` string = 1, array of strings/arrays = its length).
    pub inputs: usize,
    /// `"encoding_format": "base64"` (embeddings).
    pub base64: bool,
}

/// Scans a request body for the fields in [`ReqInfo`].
pub(crate) fn inspect(body: &[u8]) -> ReqInfo<'_> {
    let mut info = ReqInfo {
        inputs: 1,
        ..ReqInfo::default()
    };
    for (key, value) in Members::new(body) {
        match key {
            b"model" => info.model = string_contents(value),
            b"stream" => info.stream = value == b"true",
            b"stream_options" => {
                info.include_usage =
                    Members::new(value).any(|(k, v)| k == b"include_usage" && v == b"true")
            }
            b"input" => info.inputs = count_inputs(value),
            b"encoding_format" => info.base64 = value == b"\"base64\"",
            _ => {}
        }
    }
    info
}

/// The raw contents of a JSON string value (between the quotes), if `value` is a string.
fn string_contents(value: &[u8]) -> Option<&[u8]> {
    if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
        Some(&value[1..value.len() - 1])
    } else {
        None
    }
}

/// How many embedding inputs `input` holds: a string or a token array is one input, an
/// array of strings (or of token arrays) is one per element.
fn count_inputs(value: &[u8]) -> usize {
    if value.first() != Some(&b'[') {
        return 1;
    }
    let mut n = 0;
    let mut i = skip_ws(value, 1);
    while i < value.len() && value[i] != b']' {
        if n == 0 && !matches!(value[i], b'"' | b'[' | b'{') {
            return 1; // an array of token ids: a single input
        }
        let Some(end) = skip_value(value, i) else {
            break;
        };
        n += 1;
        i = skip_ws(value, end);
        if value.get(i) == Some(&b',') {
            i = skip_ws(value, i + 1);
        }
    }
    n
}

/// Iterator over the members of a JSON object: `(raw key, raw value)` slices.
pub(crate) struct Members<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Members<'a> {
    pub(crate) fn new(s: &'a [u8]) -> Self {
        let i = skip_ws(s, 0);
        if s.get(i) == Some(&b'{') {
            Members { s, i: i + 1 }
        } else {
            Members { s, i: s.len() }
        }
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let mut i = skip_ws(s, self.i);
        if s.get(i) == Some(&b',') {
            i = skip_ws(s, i + 1);
        }
        if s.get(i) != Some(&b'"') {
            self.i = s.len();
            return None;
        }
        let key_end = skip_string(s, i)?;
        let key = &s[i + 1..key_end - 1];
        i = skip_ws(s, key_end);
        if s.get(i) != Some(&b':') {
            self.i = s.len();
            return None;
        }
        let vstart = skip_ws(s, i + 1);
        let Some(vend) = skip_value(s, vstart) else {
            self.i = s.len();
            return None;
        };
        self.i = vend;
        Some((key, &s[vstart..vend]))
    }
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// `s[i]` is an opening quote; returns the index just past the closing quote.
fn skip_string(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Returns the index just past the value starting at `s[i]`.
fn skip_value(s: &[u8], i: usize) -> Option<usize> {
    match *s.get(i)? {
        b'"' => skip_string(s, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < s.len() {
                match s[j] {
                    b'"' => {
                        j = skip_string(s, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_fields_only() {
        let body = br#"{"messages":[{"role":"user","content":"say \"model\": x"}],
            "tools":[{"function":{"parameters":{"properties":{"model":{"type":"string"},"stream":true}}}}],
            "model" : "gpt-4o\"x", "stream":true, "stream_options":{"include_usage": true}}"#;
        let info = inspect(body);
        assert_eq!(info.model, Some(&br#"gpt-4o\"x"#[..]));
        assert!(info.stream);
        assert!(info.include_usage);
    }

    #[test]
    fn defaults_and_false_values() {
        let info =
            inspect(br#"{"model":"m","stream":false,"stream_options":{"include_usage":false}}"#);
        assert_eq!(info.model, Some(&b"m"[..]));
        assert!(!info.stream && !info.include_usage);
        let info = inspect(b"not json");
        assert!(info.model.is_none() && !info.stream);
        let info = inspect(b"");
        assert!(info.model.is_none());
        let info = inspect(br#"{"model":"#);
        assert!(info.model.is_none());
    }

    #[test]
    fn counts_embedding_inputs() {
        assert_eq!(inspect(br#"{"input":"a"}"#).inputs, 1);
        assert_eq!(inspect(br#"{"input":["a","b,]","c"]}"#).inputs, 3);
        assert_eq!(inspect(br#"{"input":[1,2,3]}"#).inputs, 1);
        assert_eq!(inspect(br#"{"input":[[1,2],[3]]}"#).inputs, 2);
        assert_eq!(inspect(br#"{"input":[]}"#).inputs, 0);
        assert!(inspect(br#"{"input":"a","encoding_format":"base64"}"#).base64);
    }
}
