//! Per-access-key rate limits against the mock provider: refused requests never
//! reach it, token windows follow real usage, nodes sharing Redis share limits.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

const KEY: &str = "tg-limited-app";
const BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

fn gateway(mock: &MockHandle, limits: &str, extra: &str) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .config(&format!(
            "access_keys:\n  - name: app\n    key: {KEY}\n    limits: {limits}\n{extra}"
        ))
        .start()
}

async fn send(gw: &Gateway, body: &str) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

/// Settlement (the token correction) runs just after the last byte.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(60)).await;
}

#[tokio::test]
async fn five_per_minute_then_429_until_the_window_moves() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, "{requests_per_minute: 5}", "");
    for left in (0..5).rev() {
        let resp = send(&gw, BODY).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "x-ratelimit-limit-requests"), "5");
        assert_eq!(
            header(&resp, "x-ratelimit-remaining-requests"),
            left.to_string()
        );
        assert!(header(&resp, "x-ratelimit-reset-requests").ends_with('s'));
    }
    let resp = send(&gw, BODY).await;
    let retry: u64 = header(&resp, "retry-after").parse().unwrap();
    let retry_ms: u64 = header(&resp, "retry-after-ms").parse().unwrap();
    assert!(
        (11..=12).contains(&retry) && retry_ms <= 12_000,
        "{retry} {retry_ms}"
    );
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), "0");
    assert_eq!(error_code(resp).await, (429, "rate_limit_exceeded".into()));
    assert_eq!(mock.request_count(), 5, "the refused request never left");

    let metrics = gw.scrape().await;
    assert!(
        metrics.contains(r#"tollgate_rate_limited_total{access_key="app",limit="requests"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tollgate_rate_limit_remaining{access_key="app",limit="requests"} 0"#)
    );

    // One request comes back every 12 s.
    tokio::time::sleep(Duration::from_millis(retry_ms + 50)).await;
    assert_eq!(send(&gw, BODY).await.status(), 200);
    assert_eq!(send(&gw, BODY).await.status(), 429);
    assert_eq!(mock.request_count(), 6);
}

#[tokio::test]
async fn token_limits_follow_real_usage_not_the_estimate() {
    // Each answer uses 910 tokens; the request estimates ~17.
    let mock = MockProvider::new().usage(10, 900).start();
    let gw = gateway(&mock, "{tokens_per_minute: 2000}", "");
    let stream = BODY.replace("\"messages\"", "\"stream\":true,\"messages\"");
    let mut admitted = 0;
    for i in 0..10 {
        let resp = send(&gw, if i % 2 == 0 { BODY } else { &stream }).await;
        if resp.status() == 429 {
            assert_eq!(header(&resp, "x-ratelimit-limit-tokens"), "2000");
            assert_eq!(error_code(resp).await.1, "rate_limit_exceeded");
            break;
        }
        assert_eq!(resp.status(), 200);
        let left: u64 = header(&resp, "x-ratelimit-remaining-tokens")
            .parse()
            .unwrap();
        assert!(left < 2000 - 910 * admitted, "{left} after {admitted}");
        resp.bytes().await.unwrap();
        admitted += 1;
        settle().await;
    }
    // 0, 910, 1820 used before each admitted request; by its estimate alone the
    // key would have made all ten.
    assert_eq!(admitted, 3);
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn output_caps_count_in_the_estimate() {
    let mock = MockProvider::new()
        .usage(1, 1)
        .chunks(4)
        .chunk_delay(Duration::from_millis(50))
        .start();
    let gw = gateway(&mock, "{tokens_per_minute: 1000}", "");
    let big = BODY.replace(
        "\"messages\"",
        "\"max_tokens\":800,\"stream\":true,\"messages\"",
    );
    let first = send(&gw, &big).await;
    assert_eq!(first.status(), 200);
    let resp = send(&gw, &big).await;
    assert_eq!(
        resp.status(),
        429,
        "the first, in flight, holds its estimate"
    );
    first.bytes().await.unwrap();
    settle().await;
    // It used 2 tokens: the rest came back.
    let third = send(&gw, &big).await;
    assert_eq!(third.status(), 200);
    // Larger than the whole window: admitted only once the window is empty.
    let huge = BODY.replace("\"messages\"", "\"max_tokens\":5000,\"messages\"");
    assert_eq!(send(&gw, &huge).await.status(), 429);
    // Read whole (a stream the client left would count its prompt's estimate).
    third.bytes().await.unwrap();
    settle().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(send(&gw, &huge).await.status(), 200);
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn concurrent_requests_are_capped_while_in_flight() {
    let mock = MockProvider::new()
        .chunks(10)
        .chunk_delay(Duration::from_millis(60))
        .start();
    let gw = gateway(&mock, "{concurrent_requests: 1}", "");
    let stream = BODY.replace("\"messages\"", "\"stream\":true,\"messages\"");
    let first = send(&gw, &stream).await;
    assert_eq!(first.status(), 200);
    let second = send(&gw, &stream).await;
    let (status, code) = error_code(second).await;
    assert_eq!((status, code.as_str()), (429, "rate_limit_exceeded"));
    first.bytes().await.unwrap();
    settle().await;
    assert_eq!(send(&gw, &stream).await.status(), 200);
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn per_model_limits_leave_other_models_alone() {
    let mock = MockProvider::new().start();
    let gw = gateway(
        &mock,
        "{models: [{name: gpt-4o, requests_per_minute: 1}]}",
        "",
    );
    assert_eq!(send(&gw, BODY).await.status(), 200);
    // The same model under another name is the same window.
    let alias = BODY.replace("gpt-4o", "openai/gpt-4o");
    assert_eq!(send(&gw, &alias).await.status(), 429);
    let other = BODY.replace("gpt-4o", "gpt-4o-mini");
    for _ in 0..3 {
        assert_eq!(send(&gw, &other).await.status(), 200);
    }
    assert_eq!(mock.request_count(), 4);
}

#[tokio::test]
async fn raw_passthrough_cannot_get_around_token_limits() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, "{tokens_per_minute: 100}", "");
    let resp = client()
        .get(gw.url("/proxy/openai/v1/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (403, "proxy_not_allowed".into()));
    // A request limit alone holds there too.
    let gw = gateway(&mock, "{requests_per_minute: 1}", "");
    let get = || async {
        client()
            .get(gw.url("/proxy/openai/v1/models"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(get().await, 200);
    assert_eq!(get().await, 429);
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn nodes_sharing_redis_enforce_one_limit() {
    let Some(redis) = redis::start() else { return };
    let mock = MockProvider::new().start();
    let ledger = format!("ledger:\n  redis_url: {}\n", redis.url());
    let nodes = [
        gateway(&mock, "{requests_per_minute: 6}", &ledger),
        gateway(&mock, "{requests_per_minute: 6}", &ledger),
    ];
    let mut ok = 0;
    for i in 0..12 {
        let resp = send(&nodes[i % 2], BODY).await;
        match resp.status().as_u16() {
            200 => ok += 1,
            429 => assert!(header(&resp, "retry-after").parse::<u64>().unwrap() <= 10),
            s => panic!("status {s}"),
        }
    }
    assert_eq!(ok, 6, "one budget across both nodes, not one each");
    assert_eq!(mock.request_count(), 6);

    // Redis gone: each node falls back to its own windows (the default policy).
    drop(redis);
    let mut during = 0;
    for _ in 0..8 {
        if send(&nodes[0], BODY).await.status() == 200 {
            during += 1;
        }
    }
    assert_eq!(during, 6, "the node enforces the limit on its own");
    assert!(nodes[0].logs().contains("Redis unreachable"));
}

#[tokio::test]
async fn refuse_policy_answers_503_while_redis_is_down() {
    let mock = MockProvider::new().start();
    let extra = format!(
        "ledger:\n  redis_url: redis://{}/0\nrate_limits:\n  redis_fallback: refuse\n  redis_timeout: 100ms\n",
        dead_addr()
    );
    let gw = gateway(&mock, "{requests_per_minute: 100}", &extra);
    let resp = send(&gw, BODY).await;
    assert_eq!(header(&resp, "retry-after"), "1");
    assert_eq!(
        error_code(resp).await,
        (503, "rate_limiter_unavailable".into())
    );
    assert_eq!(mock.request_count(), 0);
}
