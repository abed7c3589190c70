//! The TLS listener: HTTP/2 and HTTP/1.1 by ALPN beside the plain listener, with
//! a self-signed certificate made for the test; bad files are refused up front.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// A self-signed certificate for 127.0.0.1 (Debian's openssl CLI).
fn self_signed(dir: &Path) -> bool {
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=tollgate-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output();
    match made {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(_) => {
            assert!(std::env::var("CI").is_err(), "CI must have openssl");
            eprintln!("SKIPPED: openssl not installed");
            false
        }
    }
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tollgate-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A gateway in front of `mock` with a TLS listener on the certificate in `d`
/// beside its plain one, and the TLS listener's chat URL.
fn tls_gateway(mock: &MockHandle, d: &Path) -> (Gateway, String) {
    let port = free_port();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .config(&format!(
            "tls:\n  listen: 127.0.0.1:{port}\n  cert: {}\n  key: {}\n",
            d.join("cert.pem").display(),
            d.join("key.pem").display()
        ))
        .start();
    (gw, format!("https://127.0.0.1:{port}/v1/chat/completions"))
}

#[tokio::test]
async fn h2_and_http1_over_tls_beside_plain_http() {
    let d = dir("ok");
    if !self_signed(&d) {
        return;
    }
    let mock = MockProvider::new().start();
    let (gw, url) = tls_gateway(&mock, &d);
    for (http1, version) in [
        (false, reqwest::Version::HTTP_2),
        (true, reqwest::Version::HTTP_11),
    ] {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(true);
        if http1 {
            b = b.http1_only();
        }
        let resp = b
            .build()
            .unwrap()
            .post(&url)
            .bearer_auth(ACCESS_KEY)
            .body(chat("gpt-4o"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.version(), version);
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("chat.completion"));
    }
    // Plain HTTP still answers.
    assert_eq!(
        gw.post("/v1/chat/completions", chat("gpt-4o"))
            .await
            .status(),
        200
    );
    assert_eq!(mock.request_count(), 3);
    let _ = std::fs::remove_dir_all(&d);
}

/// Under TLS the client connection has no read or write buffer of pingora's
/// (rustls keeps its own): a 1 MiB body with `model` last still arrives whole
/// and rewritten, and a stream's chunks arrive apart, on one kept-alive
/// HTTP/1.1 connection.
#[tokio::test]
async fn a_one_mib_body_and_a_stream_over_tls_http1() {
    let d = dir("big");
    if !self_signed(&d) {
        return;
    }
    let mock = MockProvider::new()
        .chunks(3)
        .chunk_delay(std::time::Duration::from_millis(200))
        .start();
    let (_gw, url) = tls_gateway(&mock, &d);
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .http1_only()
        .build()
        .unwrap();

    let filler = "x".repeat(1024 * 1024);
    let body =
        format!(r#"{{"messages":[{{"role":"user","content":"{filler}"}}],"model":"gpt-4-omni"}}"#);
    let resp = client
        .post(&url)
        .bearer_auth(ACCESS_KEY)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("chat.completion"));
    assert_eq!(
        mock.requests()[0].body,
        body.replace("gpt-4-omni", "gpt-4o").as_bytes()
    );

    let mut resp = client
        .post(&url)
        .bearer_auth(ACCESS_KEY)
        .body(r#"{"model":"gpt-4o","stream":true,"messages":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        arrivals.push(std::time::Instant::now());
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    // Three content chunks 200 ms apart: the first and last reads are apart too.
    let spread = *arrivals.last().unwrap() - arrivals[0];
    assert!(
        spread >= std::time::Duration::from_millis(300),
        "{spread:?}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn unreadable_certificates_are_refused_by_check() {
    let d = dir("bad");
    std::fs::write(d.join("cert.pem"), "not a certificate\n").unwrap();
    std::fs::write(d.join("key.pem"), "not a key\n").unwrap();
    let config = d.join("tollgate.yaml");
    for (cert, key) in [("cert.pem", "key.pem"), ("missing.pem", "key.pem")] {
        std::fs::write(
            &config,
            format!(
                "tls:\n  listen: 127.0.0.1:8443\n  cert: {}\n  key: {}\n",
                d.join(cert).display(),
                d.join(key).display()
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(cert), "{err}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
