//! Providers whose TLS cannot be trusted (issue #9): plain HTTP, garbage or a
//! closed socket where a handshake was expected, a self-signed certificate, a
//! handshake that never completes. Always one clear 502/504, never a success,
//! counted once.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

fn gateway(url: &str, config: &str) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", url, "sk-managed-openai")
        .config(config)
        .start()
}

/// Waits for the request to be settled; panics unless it was counted once, as `status`.
async fn assert_counted_once(gw: &Gateway, status: &str) {
    let series = |m: &str, status: Option<&str>| -> f64 {
        m.lines()
            .filter(|l| l.starts_with("tollgate_requests_total{") && l.contains("model=\"gpt-4o\""))
            .filter(|l| status.is_none_or(|s| l.contains(&format!("status=\"{s}\""))))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut m = gw.scrape().await;
    while series(&m, None) < 1.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        m = gw.scrape().await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = gw.scrape().await;
    assert_eq!(
        (series(&m, None), series(&m, Some(status))),
        (1.0, 1.0),
        "{m}"
    );
}

/// A server that accepts connections and answers each with `reply` (then
/// closes), or holds them open if `reply` is `None`. Returns its port.
fn tcp_server(reply: Option<&'static [u8]>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = s.read(&mut buf);
            match reply {
                Some(r) => {
                    let _ = s.write_all(r);
                }
                None => held.push(s),
            }
        }
    });
    port
}

/// `openssl s_server` with a fresh self-signed certificate, if openssl is installed.
fn self_signed_server() -> Option<(std::process::Child, u16, std::path::PathBuf)> {
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("tollgate-faults-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !made.success() {
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &port.to_string()])
        .arg("-cert")
        .arg(dir.join("cert.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((child, port, dir))
}

#[tokio::test]
async fn untrusted_or_broken_tls_is_a_clear_502_never_a_success() {
    let plain = MockProvider::new().start();
    let mut urls = vec![
        // plain HTTP where TLS was expected
        ("plain HTTP", format!("https://{}/v1", plain.addr())),
        // a server that answers the ClientHello with garbage, and one that closes
        (
            "garbage",
            format!(
                "https://127.0.0.1:{}/v1",
                tcp_server(Some(b"HTTP/1.1 200 OK\r\n\r\n"))
            ),
        ),
        (
            "closed",
            format!("https://127.0.0.1:{}/v1", tcp_server(Some(b""))),
        ),
    ];
    let server = self_signed_server();
    if let Some((_, port, _)) = &server {
        urls.push(("self-signed", format!("https://127.0.0.1:{port}/v1")));
    } else {
        eprintln!("openssl not installed: the self-signed case is skipped");
    }
    for (what, url) in &urls {
        let gw = gateway(url, "");
        let started = Instant::now();
        let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
        assert_eq!(
            error_code(resp).await,
            (502, "upstream_error".into()),
            "{what}"
        );
        assert_counted_once(&gw, "502").await;
    }
    assert_eq!(plain.request_count(), 0);
    // A TLS handshake that never completes is bounded by the connect timeout.
    let silent = format!("https://127.0.0.1:{}/v1", tcp_server(None));
    let gw = gateway(&silent, "upstream:\n  connect_timeout: 500ms\n");
    let started = Instant::now();
    let (code, _) = error_code(gw.post("/v1/chat/completions", chat("gpt-4o")).await).await;
    assert!(code == 502 || code == 504, "{code}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    if let Some((mut child, _, dir)) = server {
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(dir);
    }
}
