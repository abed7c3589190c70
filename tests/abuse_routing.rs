//! Abuse (issue #9), where requests go: absolute-form targets, spoofed Host and
//! forwarding headers, `/proxy/` path traversal in every spelling, and h2 rapid
//! reset. Nothing reaches an address or a path outside the configured providers
//! (an "evil" mock stands for any such address), and the gateway keeps serving.

#![allow(clippy::unwrap_used)]

mod common;
mod rawhttp;

use std::time::{Duration, Instant};

use common::*;
use rawhttp::*;

#[tokio::test]
async fn foreign_authorities_never_change_where_requests_go() {
    let mock = MockProvider::new().start();
    let evil = MockProvider::new().start();
    let gw = gateway(&mock);
    let body = chat("gpt-4o");
    let e = evil.addr();
    for (target, host) in [
        (format!("http://{e}/v1/chat/completions"), "t".to_string()),
        (format!("http://{e}/v1/chat/completions"), e.to_string()),
        ("/v1/chat/completions".into(), e.to_string()),
        ("/v1/chat/completions".into(), "evil.example".into()),
        (
            format!("http://{e}/proxy/openai/chat/completions"),
            e.to_string(),
        ),
        ("/proxy/openai/chat/completions".into(), e.to_string()),
    ] {
        mock.clear();
        let raw = format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-Host: {e}\r\nForwarded: host={e}\r\nAuthorization: Bearer {ACCESS_KEY}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (answer, _) = exchange(&gw, raw.as_bytes());
        let codes = statuses(&answer);
        assert!(
            matches!(codes.as_slice(), [200] | [400]),
            "{target} {host}: {answer}"
        );
        for r in mock.requests() {
            assert_eq!(
                r.header("host"),
                Some(mock.addr().to_string().as_str()),
                "{target} {host}"
            );
            assert!(r.path.starts_with("/v1/"), "{target} {host}: {}", r.path);
        }
    }
    assert_eq!((evil.connections(), evil.request_count()), (0, 0));
}

/// The path a lenient server would act on: percent-decoded, backslashes as
/// slashes, `;` parameters dropped, dot segments resolved.
fn normalized(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let mut bytes = Vec::new();
    let mut it = path.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex: Vec<u8> = it.clone().take(2).collect();
            if let Some(v) = std::str::from_utf8(&hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                bytes.push(v);
                it.nth(1);
                continue;
            }
        }
        bytes.push(b);
    }
    let decoded = String::from_utf8_lossy(&bytes).replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg.split(';').next().unwrap_or_default() {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[test]
fn proxy_paths_never_climb_out_of_the_provider() {
    let mock = MockProvider::new().start();
    let evil = MockProvider::new().start();
    let gw = gateway(&mock);
    let e = evil.addr();
    let paths = [
        "/proxy/openai/../../admin".to_string(),
        "/proxy/openai/%2e%2e/%2e%2e/admin".into(),
        "/proxy/openai/%2E%2E%2F%2E%2E%2Fadmin".into(),
        "/proxy/openai/.%2e/admin".into(),
        "/proxy/openai/..%2fadmin".into(),
        "/proxy/openai/x/../../admin".into(),
        "/proxy/openai/..".into(),
        "/proxy/openai/%2e".into(),
        "/proxy/openai/..\\admin".into(),
        "/proxy/openai/%5c..%5cadmin".into(),
        "/proxy/openai/%5C%2E%2E%5Cadmin".into(),
        format!("/proxy/openai//{e}/x"),
        format!("/proxy/openai/@{e}/x"),
        format!("/proxy/openai@{e}/x"),
        format!("/proxy/openai/http://{e}/x"),
        format!("/proxy/{e}/x"),
        "/proxy/%2e%2e/v1/models".into(),
        "/proxy/../v1/models".into(),
        "/proxy//openai/models".into(),
        "/proxy/openai/%00/models".into(),
        "/proxy/openai/a%0d%0aHost:%20evil/models".into(),
        "/proxy/openai/%252e%252e/admin".into(),
        "/proxy/openai/models?next=../../admin".into(),
    ];
    for path in &paths {
        mock.clear();
        let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ACCESS_KEY}\r\nConnection: close\r\n\r\n");
        let (answer, _) = exchange(&gw, raw.as_bytes());
        let codes = statuses(&answer);
        assert_eq!(codes.len(), 1, "{path}: {answer}");
        if codes[0] != 200 && codes[0] != 404 {
            assert!((400..500).contains(&codes[0]), "{path}: {answer}");
            assert!(
                answer.contains("\"error\""),
                "{path}: OpenAI-shaped: {answer}"
            );
        }
        for r in mock.requests() {
            let n = normalized(&r.path);
            assert!(n.starts_with("/v1/"), "{path} reached {} ({n})", r.path);
            assert_eq!(r.header("host"), Some(mock.addr().to_string().as_str()));
        }
    }
    assert_eq!((evil.connections(), evil.request_count()), (0, 0));
    assert_gateway_serves(&gw);
}

#[test]
fn proxy_refuses_dot_segments_with_parameters() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    for path in [
        "/proxy/openai/..;/admin",
        "/proxy/openai/x/..;/..;/admin",
        "/proxy/openai/.;x/models",
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ACCESS_KEY}\r\nConnection: close\r\n\r\n");
        let (answer, _) = exchange(&gw, raw.as_bytes());
        assert_eq!(statuses(&answer), [400], "{path}: {answer}");
    }
    assert_eq!(mock.request_count(), 0, "{:?}", mock.requests());
}

#[tokio::test]
async fn h2_rapid_reset_leaves_the_gateway_serving() {
    let mock = MockProvider::new()
        .fault(Fault::Delay(Duration::from_secs(2)))
        .start();
    let gw = gateway(&mock);
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let started = Instant::now();
    for round in 0..6 {
        let h2 = if round % 2 == 0 {
            h2.clone()
        } else {
            reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .unwrap()
        };
        let seen = mock.request_count();
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let req = h2
                    .post(gw.url("/v1/chat/completions"))
                    .bearer_auth(ACCESS_KEY)
                    .body(chat("gpt-4o"));
                tokio::spawn(async move { req.send().await })
            })
            .collect();
        // Reset at once, or once some reached the provider.
        let until = Instant::now() + Duration::from_millis(if round < 3 { 5 } else { 500 });
        while Instant::now() < until && mock.request_count() < seen + 20 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for t in &tasks {
            t.abort(); // drops the request: RST_STREAM
        }
    }
    let reached = mock.request_count();
    assert!(reached > 0, "the streams reached the gateway");
    mock.set_fault(None);
    // The resetting connection may be sent away (GOAWAY): a new one is served.
    let fresh = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = fresh
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(ACCESS_KEY)
        .body(chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        gw.post("/v1/chat/completions", chat("gpt-4o"))
            .await
            .status(),
        200
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_gateway_serves(&gw);
    // Every reset request that reached a provider is counted, as 499 (the
    // client left) or as what the provider answered.
    let counted = |m: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with("tollgate_requests_total{") && l.contains("model=\"gpt-4o\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut m = gw.scrape().await;
    while counted(&m) < mock.request_count() as f64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        m = gw.scrape().await;
    }
    assert!(
        counted(&m) >= mock.request_count() as f64,
        "{}\n{m}",
        mock.request_count()
    );
}
