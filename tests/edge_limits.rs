//! What an edge bounds about its clients: header size, body time, per-read time,
//! idle keep-alive, requests in flight. Each answered cheaply, nothing forwarded.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn gateway(mock: &MockHandle, downstream: &str) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .config(&format!("downstream:\n{downstream}"))
        .start()
}

fn connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// A connection that has had one request answered and is kept alive.
fn kept_alive(gw: &Gateway) -> TcpStream {
    let mut s = connect(gw);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    s
}

/// Reads until the server closes or `limit` passes; what arrived.
fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn head(body_len: usize, extra: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ACCESS_KEY}\r\nContent-Type: application/json\r\nContent-Length: {body_len}\r\nConnection: close\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, "  max_header_bytes: 2048\n");
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(ACCESS_KEY)
        .header("x-padding", "a".repeat(4000))
        .body(chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (431, "headers_too_large".into()));
    assert_eq!(
        gw.post("/v1/chat/completions", chat("gpt-4o"))
            .await
            .status(),
        200
    );
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_body_dripping_in_is_cut_at_the_body_timeout() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, "  body_timeout: 400ms\n");
    let body = chat("gpt-4o");
    let mut s = connect(&gw);
    s.write_all(head(body.len(), "").as_bytes()).unwrap();
    // Read while writing: once the server answers and closes, further writes
    // reset the connection and could discard the answer unread.
    s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for b in body.bytes().cycle() {
        // One byte every 50 ms: each read is quick, the whole body is not.
        let _ = s.write_all(&[b]);
        std::thread::sleep(Duration::from_millis(40));
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) if !got.is_empty() => break,
            Err(_) => {}
        }
        assert!(start.elapsed() < Duration::from_secs(3), "never cut");
    }
    let answer = String::from_utf8_lossy(&got);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"));
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn a_silent_client_is_cut_at_the_read_timeout() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, "  read_timeout: 300ms\n  body_timeout: 30s\n");
    let mut s = connect(&gw);
    s.write_all(head(100, "").as_bytes()).unwrap();
    let start = Instant::now();
    let answer = read_all(&mut s);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn idle_keepalive_connections_are_closed() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, "  keepalive_timeout: 1s\n");
    let mut s = kept_alive(&gw);
    let mut buf = [0u8; 1024];
    let start = Instant::now();
    // The server closes the idle connection: the next read sees EOF.
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    let idle = start.elapsed();
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_secs(3),
        "{idle:?}"
    );
}

#[tokio::test]
async fn a_kept_alive_connections_next_header_is_timed_from_its_first_byte() {
    let mock = MockProvider::new().start();
    let gw = gateway(
        &mock,
        "  keepalive_timeout: 5s\n  header_timeout: 500ms\n  read_timeout: 5s\n",
    );
    let mut s = kept_alive(&gw);
    // Idle for longer than the header timeout is fine: keep-alive allows 5 s.
    std::thread::sleep(Duration::from_millis(800));
    let start = Instant::now();
    // Then a header that trickles in, a byte every 100 ms, never ending.
    let writer = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        let mut w = writer;
        for b in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if w.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let answer = read_all(&mut s);
    let took = start.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    trickle.join().unwrap();
}

#[tokio::test]
async fn requests_beyond_the_in_flight_bound_get_503() {
    let mock = MockProvider::new()
        .chunks(10)
        .chunk_delay(Duration::from_millis(60))
        .start();
    let gw = gateway(&mock, "  max_requests_in_flight: 1\n");
    let stream = chat("gpt-4o").replace("\"messages\"", "\"stream\":true,\"messages\"");
    let first = gw.post("/v1/chat/completions", stream.clone()).await;
    assert_eq!(first.status(), 200);
    let second = gw.post("/v1/chat/completions", stream.clone()).await;
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(error_code(second).await, (503, "overloaded".into()));
    first.bytes().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(gw.post("/v1/chat/completions", stream).await.status(), 200);
    assert_eq!(mock.request_count(), 2);
}
