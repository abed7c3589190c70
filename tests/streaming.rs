//! The exchange: SSE relayed chunk by chunk, pooled upstream connections, bodies of
//! every size, the body limit, `Expect: 100-continue` and HTTP/2 clients.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;

fn gateway(mock: &MockHandle) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-m")
        .start()
}

#[tokio::test]
async fn sse_chunks_arrive_as_they_are_sent() {
    let mock = MockProvider::new()
        .chunks(4)
        .chunk_delay(Duration::from_millis(200))
        .start();
    let gw = gateway(&mock);
    let body = r#"{"model":"gpt-4o","stream":true,"messages":[]}"#;
    let resp = gw.post("/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let start = Instant::now();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        let s = String::from_utf8_lossy(&chunk).to_string();
        if s.contains("\"content\"") {
            arrivals.push(start.elapsed());
        }
        text.push_str(&s);
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(
        arrivals.len() >= 3,
        "content chunks arrive separately: {arrivals:?}"
    );
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(120),
            "chunks were held back: {arrivals:?}"
        );
    }
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let c = client();
    for _ in 0..50 {
        let resp = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(ACCESS_KEY)
            .body(chat("gpt-4o"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    assert_eq!(mock.request_count(), 50);
    assert!(
        mock.connections() <= 4,
        "{} connections for 50 requests",
        mock.connections()
    );
}

#[tokio::test]
async fn a_one_mib_body_with_model_last_is_forwarded_intact() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let filler = "x".repeat(1024 * 1024);
    let body =
        format!(r#"{{"messages":[{{"role":"user","content":"{filler}"}}],"model":"gpt-4-omni"}}"#);
    let resp = gw.post("/v1/chat/completions", body.clone()).await;
    assert_eq!(resp.status(), 200);
    let got = &mock.requests()[0].body;
    assert_eq!(got.len(), body.len() - "gpt-4-omni".len() + "gpt-4o".len());
    assert_eq!(*got, body.replace("gpt-4-omni", "gpt-4o").as_bytes());
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_and_reach_no_one() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &mock.url(), "sk-m")
        .config("max_body_bytes: 1000\n")
        .start();
    let big = format!(r#"{{"model":"gpt-4o","pad":"{}"}}"#, "y".repeat(2000));
    let (status, code) = error_code(gw.post("/v1/chat/completions", big.clone()).await).await;
    assert_eq!((status, code.as_str()), (413, "request_too_large"));
    // Chunked, so the limit is found while reading.
    let stream = futures_util::stream::iter(
        big.into_bytes()
            .chunks(300)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(ACCESS_KEY)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(mock.request_count(), 0);
}

#[test]
fn expect_100_continue_is_answered_and_keep_alive_survives() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = chat("gpt-4o");
    for _ in 0..2 {
        write!(
            s,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ACCESS_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 25];
        s.read_exact(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf)
            .unwrap()
            .starts_with("HTTP/1.1 100 Continue"));
        assert!(started.elapsed() < Duration::from_millis(900));
        s.write_all(body.as_bytes()).unwrap();
        let resp = read_response(&mut s);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    assert_eq!(mock.request_count(), 2);
    assert!(mock.requests().iter().all(|r| r.header("expect").is_none()));
}

/// Reads one Content-Length-framed response.
fn read_response(s: &mut std::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

#[tokio::test]
async fn http2_clients_are_served() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let filler = "z".repeat(200 * 1024);
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":"{filler}"}}],"model":"gpt-4o","stream":true}}"#
    );
    let resp = h2
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(ACCESS_KEY)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-model"], "gpt-4o");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    // tollgate asked for usage on the way up and removed the usage chunk on the way back.
    assert!(!text.contains("\"usage\""), "{text}");
    let mut sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    sent["stream_options"] = serde_json::json!({"include_usage": true});
    assert_eq!(mock.requests()[0].json(), sent);
}
