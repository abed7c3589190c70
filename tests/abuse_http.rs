//! Abuse (issue #9), HTTP/1.1 framing over raw TCP: smuggling attempts (CL + TE,
//! duplicate lengths, obs-fold, broken chunks), oversized headers, pipelining,
//! slowloris and slow bodies. Each answered cheaply, once, and nothing smuggled
//! reaches a provider. Authorities, `/proxy/` paths and h2 are in `abuse_routing.rs`.

#![allow(clippy::unwrap_used)]

mod common;
mod rawhttp;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use rawhttp::*;

fn head(path: &str, extra: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ACCESS_KEY}\r\nContent-Type: application/json\r\n{extra}")
}

/// A request that must never reach a provider if smuggled behind another.
fn smuggled() -> String {
    format!("GET /proxy/openai/smuggled HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ACCESS_KEY}\r\n\r\n")
}

fn assert_not_smuggled(mock: &MockHandle, what: &str) {
    for r in mock.requests() {
        assert!(!r.path.contains("smuggled"), "{what}: smuggled {r:?}");
        assert_eq!(r.path, "/v1/chat/completions", "{what}");
        assert!(r.json()["model"].is_string(), "{what}: {r:?}");
    }
}

#[test]
fn conflicting_framing_is_refused_or_answered_once_and_closed() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let body = chat("gpt-4o");
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let cl = body.len();
    let cases: Vec<(String, String)> = vec![
        // CL.TE and TE.CL
        (format!("Content-Length: {cl}\r\nTransfer-Encoding: chunked\r\n\r\n"), chunked.clone()),
        (format!("Transfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n", chunked.len()), chunked.clone()),
        ("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n".to_string(), chunked.clone()),
        // obfuscated Transfer-Encoding
        (format!("Content-Length: {cl}\r\nTransfer-Encoding: xchunked\r\n\r\n"), body.clone()),
        (format!("Content-Length: {cl}\r\nTransfer-Encoding: chunked, identity\r\n\r\n"), chunked.clone()),
        (format!("Content-Length: {cl}\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n"), chunked.clone()),
        (format!("Content-Length: {cl}\r\nTransfer-Encoding : chunked\r\n\r\n"), chunked.clone()),
        (format!("Content-Length: {cl}\r\nTransfer-Encoding:\tchunked\r\n\r\n"), chunked.clone()),
        // duplicate and malformed Content-Length
        (format!("Content-Length: {cl}\r\nContent-Length: {}\r\n\r\n", cl + smuggled().len()), body.clone()),
        (format!("Content-Length: {}\r\nContent-Length: {cl}\r\n\r\n", cl + smuggled().len()), body.clone()),
        (format!("Content-Length: {cl}, {}\r\n\r\n", cl + smuggled().len()), body.clone()),
        (format!("Content-Length: +{cl}\r\n\r\n"), body.clone()),
        (format!("Content-Length: -{cl}\r\n\r\n"), body.clone()),
        (format!("Content-Length: 0x{cl:x}\r\n\r\n"), body.clone()),
        // obs-fold continuation lines
        (format!("Content-Length: {cl}\r\nX-Note: a\r\n Transfer-Encoding: chunked\r\n\r\n"), chunked.clone()),
        (format!("Transfer-Encoding:\r\n chunked\r\nContent-Length: {cl}\r\n\r\n"), body.clone()),
        (format!("Content-Length:\r\n {cl}\r\n\r\n"), body.clone()),
    ];
    let mut wrong = Vec::new();
    for (headers, payload) in cases {
        mock.clear();
        let what = format!("{headers}{}", &payload[..payload.len().min(24)]).replace("\r\n", "⏎");
        let raw = head("/v1/chat/completions", &headers) + &payload + &smuggled();
        let started = Instant::now();
        let (answer, closed) = exchange(&gw, raw.as_bytes());
        let codes = statuses(&answer);
        assert!(codes.len() <= 1, "{what}: answered twice: {answer}");
        assert!(started.elapsed() < Duration::from_secs(4), "{what}");
        match codes.first() {
            Some(200) => assert_eq!(mock.request_count(), 1, "{what}"),
            Some(c) if (400..500).contains(c) || *c == 501 => {
                assert_eq!(mock.request_count(), 0, "{what}")
            }
            None => assert_eq!(mock.request_count(), 0, "{what}: closed unanswered"),
            Some(c) => panic!("{what}: {c}: {answer}"),
        }
        assert_not_smuggled(&mock, &what);
        // RFC 9112 §6.1: a request with both must be answered, then the connection closed.
        if !closed {
            wrong.push(format!("{what}: {codes:?}, connection left open"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_gateway_serves(&gw);
}

/// RFC 9112 §6.1: a transfer coding the server does not understand gets 501.
/// Pingora's reader would take `gzip, chunked` (or `chunked` twice) as plain
/// `chunked` and hand the coded bytes on as the content.
#[test]
fn transfer_codings_but_one_chunked_get_501_and_reach_no_one() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let body = chat("gpt-4o");
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    for coding in [
        "gzip, chunked",
        "deflate,chunked",
        "chunked, chunked",
        "chunked\r\nTransfer-Encoding: chunked",
        "identity\r\nTransfer-Encoding: chunked",
    ] {
        let what = coding.replace("\r\n", "⏎");
        let raw = head(
            "/v1/chat/completions",
            &format!("Transfer-Encoding: {coding}\r\n\r\n"),
        ) + &chunked
            + &smuggled();
        let (answer, closed) = exchange(&gw, raw.as_bytes());
        assert_eq!(statuses(&answer), [501], "{what}: {answer}");
        assert!(
            answer.contains(r#""code":"unsupported_transfer_encoding""#),
            "{what}: {answer}"
        );
        assert!(closed, "{what}: connection left open");
    }
    assert_eq!(mock.request_count(), 0, "{:?}", mock.requests());
    // One `chunked`, in any case and spacing, is read as ever.
    let raw = head(
        "/v1/chat/completions",
        "Transfer-Encoding:  Chunked \r\n\r\n",
    ) + &chunked;
    let (answer, _) = exchange(&gw, raw.as_bytes());
    assert_eq!(statuses(&answer), [200], "{answer}");
    assert_eq!(mock.request_count(), 1);
}

/// A TLS handshake sent to the plain port (an `https://` URL pointed at it) has
/// no header end to wait for: it is answered 400 and closed at once, not at the
/// header deadline (30 s here).
#[test]
fn bytes_that_cannot_start_a_request_are_refused_at_once() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let hello: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8a\x11\x00\x00";
    for raw in [hello, b"\x00\x00\x00\x04\x08\x00", b"GET\x01/ HTTP/1.1\r\n"] {
        let started = Instant::now();
        let (answer, closed) = exchange(&gw, raw);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{}: waited {:?}",
            raw.escape_ascii(),
            started.elapsed()
        );
        assert_eq!(statuses(&answer), [400], "{}: {answer}", raw.escape_ascii());
        assert!(closed, "{}", raw.escape_ascii());
    }
    assert_eq!(mock.request_count(), 0);
    assert_gateway_serves(&gw);
}

/// Chunked bodies whose framing is broken (RFC 9112 §7.1).
fn broken_chunks(body: &str) -> Vec<String> {
    let n = body.len();
    vec![
        format!("zz\r\n{body}\r\n0\r\n\r\n"),
        format!("-1\r\n{body}\r\n0\r\n\r\n"),
        format!("0x{n:x}\r\n{body}\r\n0\r\n\r\n"),
        format!("ffffffffffffffffffff\r\n{body}\r\n0\r\n\r\n"),
        format!("{n:x}\r\n{body}0\r\n\r\n"),
        format!(" {n:x}\r\n{body}\r\n0\r\n\r\n"),
        format!("{:x}\r\n{body}\r\n0\r\n\r\n", n + 10),
    ]
}

#[test]
fn broken_chunked_bodies_are_refused_and_reach_no_one() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    for payload in broken_chunks(&chat("gpt-4o")) {
        let raw = head("/v1/chat/completions", "Transfer-Encoding: chunked\r\n\r\n")
            + &payload
            + &smuggled();
        let mut s = connect(&gw);
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let (answer, _) = read_all(&mut s);
        assert_eq!(statuses(&answer), [400], "{payload:?}: {answer}");
        assert!(answer.contains("\"error\""), "{answer}");
    }
    assert_eq!(mock.request_count(), 0, "{:?}", mock.requests());
    assert_gateway_serves(&gw);
}

/// After a framing error the server cannot know where the next request starts:
/// it must close (RFC 9112 §6.3, §7.1), or bytes a front proxy framed differently
/// are served as a request of their own.
#[test]
fn a_broken_chunked_body_closes_the_connection() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let mut wrong = Vec::new();
    for payload in broken_chunks(&chat("gpt-4o")) {
        mock.clear();
        let raw = head("/v1/chat/completions", "Transfer-Encoding: chunked\r\n\r\n") + &payload;
        let mut s = connect(&gw);
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let (first, _) = read_all(&mut s);
        // What a front proxy sends next on the same connection.
        let _ = s.write_all(smuggled().as_bytes());
        let (next, closed) = read_all(&mut s);
        let all = statuses(&(first.clone() + &next));
        if all != [400] || !closed || mock.request_count() > 0 {
            wrong.push(format!(
                "{payload:?}: first {:?}, then {:?} (closed: {closed}), provider saw {:?}",
                statuses(&first),
                statuses(&next),
                mock.requests()
                    .iter()
                    .map(|r| r.path.clone())
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn oversized_headers_are_refused_cheaply() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let body = chat("gpt-4o");
    for (what, extra) in [
        (
            "100 KB header",
            format!("X-Big: {}\r\n", "a".repeat(100 * 1024)),
        ),
        (
            "2 MB header",
            format!("X-Big: {}\r\n", "a".repeat(2 * 1024 * 1024)),
        ),
        (
            "1000 headers",
            (0..1000).map(|i| format!("X-H{i}: v\r\n")).collect(),
        ),
        ("100 KB request target", String::new()),
    ] {
        mock.clear();
        let path = if what.contains("target") {
            format!("/v1/chat/completions?q={}", "a".repeat(100 * 1024))
        } else {
            "/v1/chat/completions".into()
        };
        let raw = head(
            &path,
            &format!(
                "{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        let started = Instant::now();
        let (answer, closed) = exchange(&gw, raw.as_bytes());
        assert!(started.elapsed() < Duration::from_secs(3), "{what}");
        assert!(closed, "{what}");
        match statuses(&answer).as_slice() {
            // Forwarded whole (pingora takes headers up to 1 MiB)…
            [200] => {
                assert_eq!(mock.request_count(), 1, "{what}");
                assert!(!what.starts_with("2 MB"), "{what}: {answer}");
            }
            // …or refused (431, 414, 400) before anything is sent.
            [] => assert_eq!(mock.request_count(), 0, "{what}"),
            [c] if (400..500).contains(c) => assert_eq!(mock.request_count(), 0, "{what}"),
            _ => panic!("{what}: {answer}"),
        }
    }
    assert_gateway_serves(&gw);
}

fn pipelined(gw: &Gateway) -> (String, bool) {
    let (a, b) = (chat("gpt-4o"), chat("gpt-4o-mini"));
    let raw = head(
        "/v1/chat/completions",
        &format!("Content-Length: {}\r\n\r\n{a}", a.len()),
    ) + &head(
        "/v1/chat/completions",
        &format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        ),
    );
    exchange(gw, raw.as_bytes())
}

#[test]
fn pipelined_requests_are_never_mixed_up() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let (answer, closed) = pipelined(&gw);
    assert!(closed);
    let codes = statuses(&answer);
    assert!(matches!(codes.as_slice(), [200] | [200, 200]), "{answer}");
    let first = answer.find("x-tollgate-model: gpt-4o\r\n").unwrap();
    let models: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| r.json()["model"].clone())
        .collect();
    if codes.len() == 2 {
        assert!(first < answer.find("x-tollgate-model: gpt-4o-mini\r\n").unwrap());
        assert_eq!(models, ["gpt-4o", "gpt-4o-mini"]);
    } else {
        // Dropped, pingora's default: the close tells the client to retry it.
        assert_eq!(models, ["gpt-4o"]);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let (answer, _) = pipelined(&gw);
    assert_eq!(statuses(&answer), [200, 200], "{answer}");
    let first = answer.find("x-tollgate-model: gpt-4o\r\n").unwrap();
    let second = answer.find("x-tollgate-model: gpt-4o-mini\r\n").unwrap();
    assert!(first < second, "{answer}");
    let models: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| r.json()["model"].clone())
        .collect();
    assert_eq!(models, ["gpt-4o", "gpt-4o-mini"]);
}

#[tokio::test]
async fn slowloris_clients_do_not_starve_others() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let addr = gw.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Eight clients send their headers one byte per 200 ms and never finish.
    let lorises: Vec<_> = (0..8)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let _ = s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n");
                for b in b"X-Slow: ".iter().chain(std::iter::repeat(&b'a')) {
                    if stop.load(std::sync::atomic::Ordering::Relaxed)
                        || s.write_all(&[*b]).is_err()
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        })
        .collect();
    // One client finishes its headers slowly: it is answered once they are complete.
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection:");
        for b in b" close\r\n\r\n" {
            s.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
        read_all(&mut s).0
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    for _ in 0..20 {
        let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
        assert_eq!(resp.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let answer = slow.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in lorises {
        l.join().unwrap();
    }
    assert_eq!(mock.request_count(), 20);
}

/// A client trickling an endless header is cut off by `downstream.header_timeout`
/// (like nginx's `client_header_timeout`): pingora's read timeout is per read, so
/// one byte every 200 ms would keep a connection forever.
#[test]
fn an_endless_trickled_header_is_cut_off() {
    const BOUND: Duration = Duration::from_secs(10);
    let mock = MockProvider::new().start();
    let gw = slow_header_gateway(&mock);
    let mut s = connect(&gw);
    s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let answer = loop {
        assert!(started.elapsed() < BOUND, "still open after {BOUND:?}");
        if s.write_all(b"a").is_err() {
            break String::new();
        }
        match s.read(&mut buf) {
            Ok(n) => break String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break String::new(),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "cut after {:?}, before the 2 s deadline",
        started.elapsed()
    );
    assert!(
        answer.is_empty()
            || (answer.starts_with("HTTP/1.1 408") && answer.contains("\"request_timeout\"")),
        "{answer}"
    );
    assert_eq!(mock.request_count(), 0);
}

/// A header that arrives slowly but whole within the deadline is answered, on a
/// new connection and on a kept-alive one that idled longer than the header
/// deadline first (its bound is keep-alive plus header deadline).
#[test]
fn a_slow_header_within_the_deadline_is_answered() {
    let mock = MockProvider::new().start();
    let gw = slow_header_gateway(&mock);
    let mut s = connect(&gw);
    for round in 0..2 {
        if round == 1 {
            // Idle longer than the header deadline, within keep-alive.
            std::thread::sleep(Duration::from_millis(2500));
        }
        for part in [
            "GET /healthz HTTP/1.1\r\n",
            "Host: t\r\n",
            "X-A: b\r\n",
            "\r\n",
        ] {
            s.write_all(part.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(400));
        }
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "round {round}: {answer}"
        );
    }
}

/// CONNECT asks for a tunnel: refused (405, OpenAI-shaped), and the connection
/// closes, so nothing the client sends for the tunnel is read as a request.
#[test]
fn connect_is_refused_and_closes_the_connection() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let mut s = connect(&gw);
    s.write_all(
        b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let (answer, closed) = read_all(&mut s);
    assert_eq!(statuses(&answer), [405], "{answer}");
    assert!(answer.contains("\"method_not_allowed\""), "{answer}");
    assert!(closed, "{answer}");
    assert_eq!(mock.request_count(), 0);
}

/// A connection that never sends a byte is closed at the header deadline, with
/// no answer (there is no request to answer).
#[test]
fn a_connection_that_sends_nothing_is_closed_at_the_header_deadline() {
    let mock = MockProvider::new().start();
    let gw = slow_header_gateway(&mock);
    let mut s = connect(&gw);
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = match s.read(&mut buf) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
        Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
    };
    assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(1500)..Duration::from_secs(6)).contains(&waited),
        "closed after {waited:?}, with a 2 s deadline"
    );
}

fn slow_header_gateway(mock: &MockHandle) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-managed-openai")
        .config("downstream:\n  header_timeout: 2s\n  keepalive_timeout: 10s\n")
        .start()
}

#[test]
fn a_slow_body_is_answered_and_forwarded_whole() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let body = chat("gpt-4o");
    let mut s = connect(&gw);
    s.write_all(
        head(
            "/v1/chat/completions",
            &format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ),
        )
        .as_bytes(),
    )
    .unwrap();
    for piece in body.as_bytes().chunks(body.len() / 5 + 1) {
        std::thread::sleep(Duration::from_millis(250));
        s.write_all(piece).unwrap();
    }
    let (answer, _) = read_all(&mut s);
    assert_eq!(statuses(&answer), [200], "{answer}");
    assert_eq!(mock.requests()[0].body, body.as_bytes());
}

/// RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 (OpenAI-shaped);
/// HTTP/1.0 never needed one.
#[test]
fn an_http11_request_without_host_is_400() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let (answer, _) = exchange(&gw, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(statuses(&answer), [400], "{answer}");
    assert!(answer.contains("must carry a Host header"), "{answer}");
    let (answer, _) = exchange(&gw, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(statuses(&answer), [200], "{answer}");
    let (answer, _) = exchange(
        &gw,
        format!(
            "{}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            head("/v1/chat/completions", "")
        )
        .replace("Host: t\r\n", "")
        .as_bytes(),
    );
    assert_eq!(statuses(&answer), [400], "{answer}");
    assert_eq!(mock.request_count(), 0);
}
