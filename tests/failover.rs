//! Failover end to end (SPEC §6): bad keys, dead or hanging providers and
//! exhausted pools, with the client seeing one answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

fn status(code: u16, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        code,
        retry_after: retry_after.map(String::from),
        body: format!(r#"{{"error":{{"message":"mock {code}","type":"mock","code":null}}}}"#),
    }
}

fn pool(mock: &MockHandle, keys: &str, config: &str) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), keys)
        .config(config)
        .start()
}

fn credentials(mock: &MockHandle) -> Vec<String> {
    mock.requests()
        .iter()
        .map(|r| r.credential().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_rate_limited_key_fails_over_and_cools_down() {
    let mock = MockProvider::new()
        .fault_for_key("sk-bad", status(429, Some("60")))
        .start();
    let gw = pool(&mock, "sk-bad,sk-good", "");
    for _ in 0..6 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("gpt-4o"))
                .await
                .status(),
            200
        );
    }
    let used = credentials(&mock);
    assert_eq!(
        used.iter().filter(|k| *k == "sk-bad").count(),
        1,
        "tried once, then cooling: {used:?}"
    );
    assert_eq!(used.iter().filter(|k| *k == "sk-good").count(), 6);
    let m = reqwest::get(format!("http://{}/metrics", gw.metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("tollgate_upstream_attempts_total{key=\""), "{m}");
    assert!(
        m.lines()
            .any(|l| l.starts_with("tollgate_provider_key_healthy") && l.ends_with(" 0")),
        "{m}"
    );
}

#[tokio::test]
async fn refused_and_failing_keys_are_skipped() {
    for fault in [
        status(401, None),
        status(403, None),
        status(500, None),
        status(503, None),
        Fault::Drop,
    ] {
        let mock = MockProvider::new()
            .fault_for_key("sk-bad", fault.clone())
            .start();
        let gw = pool(&mock, "sk-bad,sk-good", "");
        for _ in 0..2 {
            let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
            assert_eq!(resp.status(), 200, "{fault:?}");
        }
        assert!(credentials(&mock).contains(&"sk-good".to_string()));
    }
    // 401 takes the key out until reload.
    let mock = MockProvider::new()
        .fault_for_key("sk-bad", status(401, None))
        .start();
    let gw = pool(&mock, "sk-bad,sk-good", "");
    for _ in 0..5 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("gpt-4o"))
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        credentials(&mock).iter().filter(|k| *k == "sk-bad").count(),
        1
    );
}

#[tokio::test]
async fn a_hanging_provider_times_out_and_fails_over() {
    let mock = MockProvider::new()
        .fault_for_key("sk-slow", Fault::Hang)
        .start();
    let gw = pool(
        &mock,
        "sk-slow,sk-good",
        "upstream:\n  response_header_timeout: 500ms\n",
    );
    let started = Instant::now();
    let mut ok = 0;
    for _ in 0..2 {
        if gw
            .post("/v1/chat/completions", chat("gpt-4o"))
            .await
            .status()
            == 200
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 2);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_all_rate_limited_pool_answers_429_with_retry_after() {
    let mock = MockProvider::new().fault(status(429, Some("20"))).start();
    let gw = pool(&mock, "sk-a,sk-b", "");
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let seen = mock.request_count();
    assert_eq!(seen, 2, "each key tried once");
    // While every key cools down, nothing reaches the provider.
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(mock.request_count(), seen);
}

#[tokio::test]
async fn a_one_mib_body_fails_over_intact() {
    let mock = MockProvider::new()
        .fault_for_key("sk-bad", status(503, None))
        .start();
    let gw = pool(&mock, "sk-bad,sk-good", "");
    let filler = "é".repeat(512 * 1024);
    let body =
        format!(r#"{{"messages":[{{"role":"user","content":"{filler}"}}],"model":"gpt-4-omni"}}"#);
    // Both keys are tried across requests whatever the round-robin start.
    for _ in 0..2 {
        assert_eq!(
            gw.post("/v1/chat/completions", body.clone()).await.status(),
            200
        );
    }
    let expected = body.replace("gpt-4-omni", "gpt-4o");
    let reqs = mock.requests();
    assert!(reqs.iter().any(|r| r.credential() == Some("sk-bad")));
    for r in &reqs {
        assert_eq!(
            r.body,
            expected.as_bytes(),
            "every attempt carries the same bytes"
        );
    }
}

#[tokio::test]
async fn attempts_are_bounded_and_a_last_5xx_is_tollgates_own_502() {
    let mock = MockProvider::new().fault(status(500, None)).start();
    let gw = pool(&mock, "k1,k2,k3,k4,k5", "upstream:\n  max_attempts: 3\n");
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 502);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_error");
    assert_eq!(
        v["error"]["message"],
        "upstream error: provider `openai` answered 500"
    );
    assert_eq!(mock.request_count(), 3);
    let used = credentials(&mock);
    let mut distinct = used.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "distinct keys: {used:?}");
}

#[tokio::test]
async fn an_unreachable_provider_is_502_without_its_address() {
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("http://{}/v1", dead_addr()), "sk-x")
        .start();
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 502);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_error");
    let message = v["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "upstream error: provider `openai` could not be reached"
    );
}

#[tokio::test]
async fn a_provider_whose_name_does_not_resolve_is_502_not_429() {
    let gw = Gateway::builder()
        .provider("OPENAI", "http://tollgate-test.invalid:8080/v1", "sk-x")
        .start();
    for _ in 0..3 {
        let (status, code) =
            error_code(gw.post("/v1/chat/completions", chat("gpt-4o")).await).await;
        assert_eq!((status, code.as_str()), (502, "upstream_error"));
    }
}

#[tokio::test]
async fn a_managed_key_the_provider_refuses_is_502_not_the_providers_401() {
    let mock = MockProvider::new()
        .fault_for_key("sk-managed", status(401, None))
        .start();
    let gw = pool(&mock, "sk-managed", "");
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 502, "the client's access key is fine");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "upstream error: provider `openai` answered 401"
    );
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_clients_own_rejected_key_sees_the_providers_401() {
    let mock = MockProvider::new()
        .fault_for_key("sk-client-bad", status(401, None))
        .start();
    let gw = pool(&mock, "sk-managed", "");
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-client-bad")
        .body(chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"]["message"], "mock 401",
        "the provider's own answer"
    );
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_dead_endpoint_is_failed_over_and_then_taken_out_by_the_health_check() {
    let mock = MockProvider::new().start();
    let dead = format!("http://{}/v1", dead_addr());
    let alive = format!("{}/v1", mock.url());
    let gw = Gateway::builder()
        .env("OPENAI_API_KEY", "sk-one")
        .config(&format!(
            "providers:\n  openai:\n    endpoints: [\"{dead}\", \"{alive}\"]\nupstream:\n  health_check_interval: 100ms\n"
        ))
        .start();
    // Before the checker has run, a connect error moves the attempt to the next endpoint.
    for _ in 0..4 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("gpt-4o"))
                .await
                .status(),
            200
        );
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let metrics = || async {
        reqwest::get(format!("http://{}/metrics", gw.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let m = metrics().await;
    let dead_label = dead.trim_start_matches("http://");
    assert!(
        m.contains(&format!(
            "tollgate_endpoint_healthy{{endpoint=\"{dead_label}\",provider=\"openai\"}} 0"
        )),
        "{m}"
    );
    let connect_errors = |m: &str| -> u64 {
        m.lines()
            .filter(|l| {
                l.starts_with("tollgate_upstream_attempts_total") && l.contains("connect_error")
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let before = connect_errors(&m);
    assert!(
        before <= 4,
        "at most one connect error per early request: {before}"
    );
    for _ in 0..10 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("gpt-4o"))
                .await
                .status(),
            200
        );
    }
    let after = connect_errors(&metrics().await);
    assert_eq!(
        after, before,
        "traffic avoids the endpoint the health check took out"
    );
    assert_eq!(mock.request_count(), 14);
}
