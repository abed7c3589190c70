//! Throughput of the two request-body scanners on 1 MiB bodies (release build):
//!
//!     cargo run --release --example scan_throughput
//!
//! Prints MB/s for the model scan (`request::scan`) and the image scan
//! (`request::vision`) on a text-heavy chat body with `model` last, and on one
//! with dense escapes. Best of several rounds; the machine's load moves it.

use std::time::Instant;

use tollgate::request::{scan, vision};

fn body(content: &str) -> Vec<u8> {
    let mut messages = String::new();
    while messages.len() < 1 << 20 {
        if !messages.is_empty() {
            messages.push(',');
        }
        messages.push_str(&format!(r#"{{"role":"user","content":"{content}"}}"#));
    }
    format!(r#"{{"messages":[{messages}],"model":"gpt-4o"}}"#).into_bytes()
}

fn best_mb_per_s(body: &[u8], f: impl Fn(&[u8]) -> bool) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..20 {
            assert!(f(std::hint::black_box(body)));
        }
        best = best.min(start.elapsed().as_secs_f64() / 20.0);
    }
    body.len() as f64 / best / 1e6
}

fn main() {
    let prose = "The quick brown fox jumps over the lazy dog, again and again, for a long while. "
        .repeat(40);
    let escaped = r#"She said \"yes\"\n and left.\t "#.repeat(100);
    for (name, b) in [("prose", body(&prose)), ("dense escapes", body(&escaped))] {
        let model = best_mb_per_s(&b, |b| scan::scan(b).is_ok());
        let image = best_mb_per_s(&b, |b| !vision::has_image(b));
        println!(
            "{name:>14}: model scan {model:>8.0} MB/s, image scan {image:>8.0} MB/s ({} bytes)",
            b.len()
        );
    }
}
