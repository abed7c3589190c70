//! Response templates: wire text with `@MODEL@`/`@ID@`/`@SEQ@` holes, split once and filled per request.
//!
//! Everything that depends only on the mock's configuration (usage numbers, content text,
//! timestamps) is substituted when the server starts; per request only the echoed model,
//! the response id and (for the Responses API) the event sequence number are filled in.

use bytes::Bytes;

/// Per-request values for a template's holes.
#[derive(Clone, Copy)]
pub(crate) struct Vars<'a> {
    /// The request's model, still JSON-escaped, without quotes.
    pub model: &'a [u8],
    pub id: u64,
    pub seq: u64,
}

#[derive(Clone)]
enum Part {
    Lit(Bytes),
    Model,
    Id,
    Seq,
}

/// A template split at its holes.
pub(crate) struct Tpl {
    parts: Vec<Part>,
    lit_len: usize,
}

impl Tpl {
    /// Splits `text` at `@MODEL@`, `@ID@` and `@SEQ@`.
    pub(crate) fn new(text: &str) -> Tpl {
        let holes = [
            ("@MODEL@", Part::Model),
            ("@ID@", Part::Id),
            ("@SEQ@", Part::Seq),
        ];
        let mut parts = Vec::new();
        let mut rest = text;
        loop {
            let next = holes
                .iter()
                .filter_map(|(marker, part)| rest.find(marker).map(|at| (at, marker.len(), part)))
                .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, len, part)) => {
                    if at > 0 {
                        parts.push(Part::Lit(Bytes::copy_from_slice(&rest.as_bytes()[..at])));
                    }
                    parts.push(part.clone());
                    rest = &rest[at + len..];
                }
                None => {
                    if !rest.is_empty() {
                        parts.push(Part::Lit(Bytes::copy_from_slice(rest.as_bytes())));
                    }
                    break;
                }
            }
        }
        let lit_len = parts
            .iter()
            .map(|p| match p {
                Part::Lit(b) => b.len(),
                _ => 0,
            })
            .sum();
        Tpl { parts, lit_len }
    }

    /// Fills the holes. A template without holes is returned without copying.
    pub(crate) fn render(&self, v: &Vars<'_>) -> Bytes {
        if let [Part::Lit(b)] = self.parts.as_slice() {
            return b.clone();
        }
        let mut out = Vec::with_capacity(self.len_hint(v));
        self.render_into(v, &mut out);
        Bytes::from(out)
    }

    /// Roughly how many bytes [`Tpl::render`] produces.
    pub(crate) fn len_hint(&self, v: &Vars<'_>) -> usize {
        self.lit_len + v.model.len() + 48
    }

    /// Appends the filled template to `out`.
    pub(crate) fn render_into(&self, v: &Vars<'_>, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Model => out.extend_from_slice(v.model),
                Part::Id => push_u64(out, v.id),
                Part::Seq => push_u64(out, v.seq),
            }
        }
    }
}

/// Appends the decimal digits of `n`.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Values substituted into every template at start-up.
pub(crate) struct Statics<'a> {
    pub created: u64,
    pub chunk_text: &'a str,
    pub full_text: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Statics<'_> {
    /// Substitutes `@CREATED@`, `@TEXT@` (one chunk), `@FULL@` (whole answer), `@PT@`, `@CT@`, `@TT@`.
    pub(crate) fn fill(&self, text: &str) -> String {
        text.replace("@CREATED@", &self.created.to_string())
            .replace("@TEXT@", self.chunk_text)
            .replace("@FULL@", self.full_text)
            .replace("@PT@", &self.prompt_tokens.to_string())
            .replace("@CT@", &self.completion_tokens.to_string())
            .replace(
                "@TT@",
                &(self.prompt_tokens + self.completion_tokens).to_string(),
            )
    }

    /// A template from JSON text (whitespace-insensitive layout is kept as written).
    pub(crate) fn json(&self, text: &str) -> Tpl {
        Tpl::new(&self.fill(text))
    }

    /// An SSE event template: `[event: NAME\n]data: JSON\n\n`.
    pub(crate) fn sse(&self, event: Option<&str>, json: &str) -> Tpl {
        let mut s = String::new();
        if let Some(e) = event {
            s.push_str("event: ");
            s.push_str(e);
            s.push('\n');
        }
        s.push_str("data: ");
        s.push_str(&self.fill(json));
        s.push_str("\n\n");
        Tpl::new(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_holes() {
        let t = Tpl::new(r#"{"id":"x-@ID@","model":"@MODEL@","n":@SEQ@}"#);
        let v = Vars {
            model: b"gpt",
            id: 42,
            seq: 0,
        };
        assert_eq!(&t.render(&v)[..], br#"{"id":"x-42","model":"gpt","n":0}"#);
        let t = Tpl::new("static");
        assert_eq!(&t.render(&v)[..], b"static");
        let mut out = Vec::new();
        push_u64(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
    }
}
