//! Accounting end to end: usage read from JSON and SSE responses becomes exact
//! token counters and micro-USD credits in /metrics; tollgate's own usage request
//! is invisible to the client; label cardinality stays bounded.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

const KEY: &str = "tg-metered-key";

fn gateway(mock: &MockHandle) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-m")
        .provider("ANTHROPIC", &format!("{}/v1", mock.url()), "sk-a")
        .config(&format!(
            "access_keys:\n  - name: metered\n    key: {KEY}\n"
        ))
        .start()
}

async fn post(gw: &Gateway, path: &str, body: &str) -> String {
    let resp = client()
        .post(gw.url(path))
        .bearer_auth(KEY)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

async fn metrics(gw: &Gateway) -> String {
    // Accounting settles in pingora's logging phase, just after the last byte.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    client()
        .get(format!("http://{}/metrics", gw.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the series whose line starts with `prefix` (name and labels).
fn value(metrics: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

#[tokio::test]
async fn json_and_streamed_usage_become_exact_tokens_and_credits() {
    let mock = MockProvider::new().usage(11, 7).start();
    let gw = gateway(&mock);
    for _ in 0..3 {
        post(&gw, "/v1/chat/completions", &chat("gpt-4o")).await;
        let text = post(
            &gw,
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","stream":true,"messages":[]}"#,
        )
        .await;
        assert!(
            !text.contains("\"usage\""),
            "tollgate's usage chunk reached the client: {text}"
        );
        assert!(text.ends_with("data: [DONE]\n\n"));
    }
    // The streamed requests went up asking for usage.
    let streamed: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.json()["stream"] == true)
        .collect();
    assert_eq!(streamed.len(), 3);
    assert!(streamed
        .iter()
        .all(|r| r.json()["stream_options"]["include_usage"] == true));

    let m = metrics(&gw).await;
    let labels = [
        ("access_key", "metered"),
        ("provider", "openai"),
        ("model", "gpt-4o"),
    ];
    assert_eq!(
        value(
            &m,
            "tollgate_tokens_total",
            &[labels[0], labels[1], labels[2], ("kind", "input")]
        ),
        66
    );
    assert_eq!(
        value(
            &m,
            "tollgate_tokens_total",
            &[labels[0], labels[1], labels[2], ("kind", "output")]
        ),
        42
    );
    // gpt-4o: $2.50 / $10 per million: 11 × 2.5 + 7 × 10 = 97.5 → 98 µUSD a request.
    assert_eq!(
        value(&m, "tollgate_credits_spent_microusd_total", &labels),
        6 * 98
    );
    assert_eq!(
        value(
            &m,
            "tollgate_requests_total",
            &[labels[0], ("status", "200")]
        ),
        6
    );
    assert!(
        value(
            &m,
            "tollgate_upstream_attempts_total",
            &[("provider", "openai"), ("outcome", "ok")]
        ) >= 6
    );
    assert!(
        !m.contains(KEY) && !m.contains("sk-m"),
        "no secret in metrics"
    );
}

#[tokio::test]
async fn a_client_that_asked_for_usage_still_gets_it() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let text = post(
        &gw,
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
    )
    .await;
    assert!(text.contains("\"usage\""), "{text}");
    assert_eq!(
        mock.requests()[0].json()["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn anthropic_and_responses_usage_are_counted() {
    let mock = MockProvider::new().usage(20, 5).start();
    let gw = gateway(&mock);
    post(
        &gw,
        "/v1/messages",
        r#"{"model":"claude-haiku-4-5","max_tokens":5,"stream":true,"messages":[]}"#,
    )
    .await;
    post(
        &gw,
        "/v1/messages",
        r#"{"model":"claude-haiku-4-5","max_tokens":5,"messages":[]}"#,
    )
    .await;
    post(
        &gw,
        "/v1/responses",
        r#"{"model":"gpt-4o","input":"hi","stream":true}"#,
    )
    .await;
    let m = metrics(&gw).await;
    let haiku = [("model", "claude-haiku-4-5"), ("kind", "input")];
    assert_eq!(value(&m, "tollgate_tokens_total", &haiku), 40);
    assert_eq!(
        value(
            &m,
            "tollgate_tokens_total",
            &[("model", "claude-haiku-4-5"), ("kind", "output")]
        ),
        10
    );
    assert_eq!(
        value(
            &m,
            "tollgate_tokens_total",
            &[("model", "gpt-4o"), ("kind", "output")]
        ),
        5
    );
    // claude-haiku-4-5 has no seed price: its tokens are unpriced, never free.
    assert_eq!(value(&m, "tollgate_unpriced_tokens_total", &haiku), 40);
}

#[tokio::test]
async fn random_model_names_add_a_bounded_number_of_series() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let series = |m: &str| m.lines().filter(|l| !l.starts_with('#')).count();
    let random = |i: u64| chat(&format!("openai:random-model-{i}-{}", i * 7919));
    for i in 0..10 {
        post(&gw, "/v1/chat/completions", &random(i)).await;
    }
    let after_ten = series(&metrics(&gw).await);
    for i in 10..500 {
        post(&gw, "/v1/chat/completions", &random(i)).await;
    }
    let m = metrics(&gw).await;
    assert_eq!(series(&m), after_ten, "490 more model names added series");
    assert_eq!(
        value(&m, "tollgate_requests_total", &[("model", "unlisted")]),
        500
    );
    assert!(!m.contains("random-model"));
}

#[tokio::test]
async fn a_stream_the_provider_cuts_ends_with_an_error_event_and_no_done() {
    let mock = MockProvider::new()
        .chunks(6)
        .fault(Fault::DropMidStream { after_chunks: 3 })
        .start();
    let gw = gateway(&mock);
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .body(r#"{"model":"gpt-4o","stream":true,"messages":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let mut stream = resp.bytes_stream();
    let mut broke = false;
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Err(_) => broke = true,
        }
    }
    assert!(broke, "the client must not see a clean end: {text}");
    assert!(text.contains("upstream_stream_cut"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    let m = metrics(&gw).await;
    assert_eq!(
        value(
            &m,
            "tollgate_responses_aborted_total",
            &[("side", "upstream")]
        ),
        1
    );
    // What was delivered is charged as an estimate, flagged as such.
    assert!(
        value(
            &m,
            "tollgate_estimated_tokens_total",
            &[("model", "gpt-4o")]
        ) > 0
    );
}

#[tokio::test]
async fn a_stream_the_client_leaves_is_charged_its_prompt_as_an_estimate() {
    let mock = MockProvider::new()
        .chunks(20)
        .chunk_delay(Duration::from_millis(100))
        .start();
    let gw = gateway(&mock);
    let prompt = "x".repeat(40_000);
    let body = format!(
        r#"{{"model":"gpt-4o","stream":true,"messages":[{{"role":"user","content":"{prompt}"}}]}}"#
    );
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    use futures_util::StreamExt;
    // The first content chunk, then the client leaves before the usage report.
    let _ = stream.next().await;
    drop(stream);
    let mut m = String::new();
    for _ in 0..100 {
        m = metrics(&gw).await;
        if value(&m, "tollgate_requests_total", &[("model", "gpt-4o")]) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let input = value(
        &m,
        "tollgate_tokens_total",
        &[("model", "gpt-4o"), ("kind", "input")],
    );
    assert_eq!(input, body.len().div_ceil(4) as u64, "{m}");
    assert!(
        value(
            &m,
            "tollgate_estimated_tokens_total",
            &[("model", "gpt-4o")]
        ) >= input
    );
}

#[tokio::test]
async fn anthropic_count_tokens_is_routed_and_not_billed() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let body = r#"{"messages":[{"role":"user","content":"hi"}],"model":"claude-sonnet-4-5"}"#;
    let answer = post(&gw, "/v1/messages/count_tokens", body).await;
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert!(v["input_tokens"].is_u64(), "{v}");
    let r = &mock.requests()[0];
    assert_eq!(r.path, "/v1/messages/count_tokens");
    assert_eq!(r.header("x-api-key"), Some("sk-a"));
    assert_eq!(r.json()["model"], "claude-sonnet-4-5");
    let m = metrics(&gw).await;
    assert_eq!(
        value(
            &m,
            "tollgate_requests_total",
            &[("model", "claude-sonnet-4-5")]
        ),
        1
    );
    assert_eq!(value(&m, "tollgate_tokens_total", &[]), 0, "{m}");
    assert_eq!(value(&m, "tollgate_estimated_tokens_total", &[]), 0, "{m}");
}

#[tokio::test]
async fn accounting_off_leaves_bodies_and_streams_untouched() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-m")
        .config("accounting: false\n")
        .start();
    let body = r#"{"model":"gpt-4o","stream":true,"messages":[]}"#;
    assert_eq!(gw.post("/v1/chat/completions", body).await.status(), 200);
    assert_eq!(
        mock.requests()[0].body,
        body.as_bytes(),
        "no include_usage added"
    );
    let m = metrics(&gw).await;
    assert_eq!(
        value(&m, "tollgate_requests_total", &[("model", "gpt-4o")]),
        1
    );
    assert_eq!(value(&m, "tollgate_tokens_total", &[]), 0);
}
