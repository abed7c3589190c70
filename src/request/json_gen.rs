//! Test support shared by the JSON scanners' property tests: a JSON value kept in
//! document order (duplicate keys allowed) and a serialiser that varies whitespace
//! and escaping at random, so generated bodies exercise every legal spelling.

use proptest::test_runner::Config as ProptestConfig;

/// A JSON value kept in document order, duplicates allowed.
#[derive(Debug, Clone)]
pub enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// xorshift64*, for serialisation choices.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next() % n == 0
    }
}

/// Serialises `j` with random whitespace at token boundaries and random (valid) escaping.
pub fn emit(j: &J, out: &mut String, rng: &mut Rng) {
    let ws = |out: &mut String, rng: &mut Rng| {
        while rng.one_in(3) {
            out.push([' ', '\t', '\n', '\r'][(rng.next() % 4) as usize]);
        }
    };
    ws(out, rng);
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => emit_str(s, out, rng),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                emit(item, out, rng);
            }
            ws(out, rng);
            out.push(']');
        }
        J::Obj(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(out, rng);
                emit_str(k, out, rng);
                ws(out, rng);
                out.push(':');
                emit(v, out, rng);
            }
            ws(out, rng);
            out.push('}');
        }
    }
    ws(out, rng);
}

pub fn emit_str(s: &str, out: &mut String, rng: &mut Rng) {
    out.push('"');
    for c in s.chars() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '/' if rng.one_in(2) => Some("\\/"),
            _ => None,
        };
        let must = c < ' ' || c == '"' || c == '\\';
        if let Some(esc) = short.filter(|_| !rng.one_in(3)) {
            out.push_str(esc);
        } else if must || rng.one_in(8) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                if rng.one_in(2) {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

/// `j` serialised with the choices of `seed`.
pub fn serialise(j: &J, seed: u64) -> String {
    let mut text = String::new();
    emit(j, &mut text, &mut Rng(seed | 1));
    text
}

/// `cases` cases unless PROPTEST_CASES overrides it; failures are not persisted to files.
pub fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let overridden = std::env::var_os("PROPTEST_CASES").is_some();
    ProptestConfig {
        cases: if overridden { default.cases } else { cases },
        failure_persistence: None,
        ..default
    }
}
