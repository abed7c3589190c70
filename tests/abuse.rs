//! Abuse (issue #9), billing integrity: bodies crafted so the gateway and the
//! provider might disagree on the model billed. Either the model billed (the
//! `x-tollgate-model` header, the metrics labels) is the model the provider
//! parsed, or the request is refused and reaches no one. HTTP-level abuse is in
//! `abuse_http.rs`, secrets in `abuse_secrets.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

fn gateway(mock: &MockHandle) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-managed-openai")
        .provider("ANTHROPIC", &format!("{}/v1", mock.url()), "sk-ant-managed")
        .start()
}

/// Scrapes until `ready` holds for the text (settlement runs just after the last
/// byte, counters one after the other), or 3 s have passed; returns the last text.
async fn scrape_until(gw: &Gateway, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let m = gw.scrape().await;
        if ready(&m) || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Scrapes until `tollgate_requests_total` reaches `total`.
async fn scrape_at(gw: &Gateway, total: f64) -> String {
    scrape_until(gw, |m| {
        metric_sum(m, "tollgate_requests_total", &[]) >= total
    })
    .await
}

/// Bodies that must be refused with a 4xx and reach no one.
const REFUSED: &[&str] = &[
    // two top-level models, however spelled
    r#"{"model":"gpt-4o-mini","model":"gpt-4o","messages":[]}"#,
    r#"{"model":"gpt-4o","Model":"o3","messages":[]}"#,
    r#"{"MODEL":"o3","model":"gpt-4o"}"#,
    r#"{"mod\u0065l":"o3","model":"gpt-4o"}"#,
    r#"{"model":"gpt-4o","\u006d\u006F\u0064\u0065\u006C":"o3"}"#,
    // model only below the top level
    r#"{"messages":[{"role":"user","content":"hi","model":"gpt-4o"}]}"#,
    r#"{"metadata":{"model":"gpt-4o"},"messages":[]}"#,
    r#"{"messages":[],"extra":"\"model\":\"gpt-4o\""}"#,
    // not one strict JSON document
    "\u{feff}{\"model\":\"gpt-4o\",\"messages\":[]}",
    "// note\n{\"model\":\"gpt-4o\",\"messages\":[]}",
    "{\"model\":\"gpt-4o\" /* o3 */,\"messages\":[]}",
    "{\"model\":\"gpt-4o\",\"messages\":[]} # o3",
    r#"{"model":"gpt-4o","messages":[]}garbage"#,
    r#"{"model":"gpt-4o","messages":[]}{"model":"o3"}"#,
    "{\"model\":\"gpt-4o\",\"messages\":[]}\u{0}",
    r#"{"model":"gpt-4o","messages":[],}"#,
    r#"{'model':'gpt-4o'}"#,
    r#"{"model":"gpt-4o\ud800","messages":[]}"#,
    "{\"model\":\"gpt-4o\",\"messages\":[\"\u{1}\"]}",
    // models that are no string, or no model at all
    r#"{"model":["gpt-4o"]}"#,
    r#"{"model":{"id":"gpt-4o"}}"#,
    r#"{"model":""}"#,
    // models no catalog lists and no provider prefix routes
    "{\"model\":\"gpt-4o\\u0000\"}",
    "{\"model\":\"gpt-4o\\n\"}",
    "{\"model\":\"\\u001b[31mgpt-4o\"}",
];

#[tokio::test]
async fn crafted_bodies_are_refused_before_any_provider_sees_them() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let mut bodies: Vec<Vec<u8>> = REFUSED.iter().map(|b| b.as_bytes().to_vec()).collect();
    // invalid UTF-8 inside a string, and nesting deeper than strict parsers take
    bodies.push(b"{\"model\":\"gpt-4o\",\"x\":\"\xff\"}".to_vec());
    bodies.push(
        format!(
            r#"{{"model":"gpt-4o","x":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        )
        .into(),
    );
    bodies.push(format!(r#"{{"model":"{}"}}"#, "g".repeat(1_000_000)).into());
    for body in bodies {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let resp = gw.post("/v1/chat/completions", body).await;
        assert!(
            resp.headers().get("x-tollgate-model").is_none(),
            "{shown:?}"
        );
        let len = resp.content_length().unwrap_or(0);
        let (status, code) = error_code(resp).await;
        assert!((400..500).contains(&status), "{shown:?}: {status} {code}");
        assert!(
            len < 4096,
            "{shown:?}: the error echoes at most a bounded model"
        );
        assert_eq!(mock.request_count(), 0, "{shown:?} reached the provider");
    }
}

/// Bodies whose model is unambiguous, however oddly written: answered, and billed
/// as exactly the model the provider parsed.
const ACCEPTED: &[&str] = &[
    r#"{"mod\u0065l":"gpt-4o-mini","messages":[]}"#,
    r#"{"metadata":{"model":"o3"},"model":"gpt-4o","messages":[{"model":"o3"}]}"#,
    r#"{"model ":"o3","model":"gpt-4o"}"#,
    "{\"m\u{43e}del\":\"o3\",\"model\":\"gpt-4o\"}",
    r#"{"model":"gpt\u002d4o"}"#,
    r#"{"model":"openai\/gpt-4o"}"#,
    r#"{"model":"GPT-4O"}"#,
    " \r\n\t{\"model\":\"gpt-4o\"}\n\r\t ",
    r#"{"model":"anthropic/gpt-4o"}"#,
    r#"{"model":"openai:gpt-4o-\u00e9t\u00e9"}"#,
];

#[tokio::test]
async fn the_model_billed_is_the_model_the_provider_parsed() {
    let mock = MockProvider::new().usage(11, 7).start();
    let gw = gateway(&mock);
    let mut bodies: Vec<String> = ACCEPTED.iter().map(|b| b.to_string()).collect();
    // Up to 512 bytes (longer is refused: see the next test).
    bodies.push(format!(r#"{{"model":"openai:{}"}}"#, "x".repeat(505)));
    // (the harness's readiness probes count too)
    let base = metric_sum(&gw.scrape().await, "tollgate_requests_total", &[]);
    for (i, body) in bodies.iter().enumerate() {
        let shown = &body[..body.len().min(80)];
        let before = scrape_at(&gw, base + i as f64).await;
        let resp = gw.post("/v1/chat/completions", body.clone()).await;
        assert_eq!(resp.status(), 200, "{shown}");
        let header =
            String::from_utf8(resp.headers()["x-tollgate-model"].as_bytes().to_vec()).unwrap();
        let provider = resp.headers()["x-tollgate-provider"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(resp.json::<serde_json::Value>().await.is_ok(), "{shown}");
        let reqs = mock.requests();
        assert_eq!(reqs.len(), i + 1, "{shown}: exactly one upstream request");
        let sent = reqs[i].json();
        let parsed = sent["model"].as_str().unwrap().to_string();
        assert_eq!(header, parsed, "{shown}: billed vs parsed");
        // Only the model may differ from what the client sent.
        let mut original: serde_json::Value = serde_json::from_str(body).unwrap();
        original["model"] = parsed.clone().into();
        assert_eq!(sent, original, "{shown}");
        // The metrics count it once, under that model (or `unlisted`).
        let total = base + i as f64 + 1.0;
        let tokens_before = metric_sum(&before, "tollgate_tokens_total", &[]);
        let after = scrape_until(&gw, |m| {
            metric_sum(m, "tollgate_requests_total", &[]) >= total
                && metric_sum(m, "tollgate_tokens_total", &[]) >= tokens_before + 18.0
        })
        .await;
        let delta = |name: &str, labels: &[(&str, &str)]| {
            metric_sum(&after, name, labels) - metric_sum(&before, name, labels)
        };
        assert_eq!(delta("tollgate_requests_total", &[]), 1.0, "{shown}");
        let label = if delta("tollgate_requests_total", &[("model", &parsed)]) == 1.0 {
            parsed.as_str()
        } else {
            "unlisted"
        };
        let labels = [
            ("provider", provider.as_str()),
            ("model", label),
            ("status", "200"),
        ];
        assert_eq!(
            delta("tollgate_requests_total", &labels),
            1.0,
            "{shown}: {after}"
        );
        let tokens = [("provider", provider.as_str()), ("model", label)];
        assert_eq!(delta("tollgate_tokens_total", &tokens), 18.0, "{shown}");
    }
}

/// A `provider:model` the catalog does not list goes upstream as written; a
/// name no header can carry, or of megabytes, makes the billed model invisible
/// (no `x-tollgate-model`) or the whole answer unreadable.
#[tokio::test]
async fn unlisted_models_no_header_can_carry_are_refused() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let mut wrong = Vec::new();
    let long = format!(r#"{{"model":"openai:{}"}}"#, "x".repeat(2 << 20));
    for body in [
        r#"{"model":"openai:gpt-4o\u0000"}"#,
        r#"{"model":"openai:gpt\nx"}"#,
        r#"{"model":"openai:gpt-4o\r\nX-Evil: 1"}"#,
        r#"{"model":"openai:gpt\u007fx"}"#,
        r#"{"model":"openai:gpt\tx"}"#,
        long.as_str(),
    ] {
        mock.clear();
        let shown = &body[..body.len().min(60)];
        let sent = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(ACCESS_KEY)
            .body(body.to_string())
            .send()
            .await;
        let upstream: Vec<_> = mock
            .requests()
            .iter()
            .map(|r| r.json()["model"].clone())
            .collect();
        let billed = match sent {
            Err(e) => {
                wrong.push(format!(
                    "{shown}: unreadable answer ({e}), provider saw {}",
                    upstream.len()
                ));
                continue;
            }
            Ok(resp) if resp.status().is_client_error() && upstream.is_empty() => continue,
            Ok(resp) => resp
                .headers()
                .get("x-tollgate-model")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        };
        let parsed = upstream.first().and_then(|m| m.as_str()).map(String::from);
        if billed.is_none() || billed != parsed {
            wrong.push(format!(
                "{shown}: billed {billed:?}, provider parsed {parsed:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
