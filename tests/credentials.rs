//! Credentials end to end (SPEC §5): access keys, managed pools, BYOK,
//! passthrough, and every refusal reaching no provider.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

async fn send(gw: &Gateway, auth: Option<(&str, &str)>, model: &str) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/chat/completions"))
        .body(chat(model));
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn access_key_uses_the_managed_key_and_hides_the_client_key() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &mock.url(), "sk-managed-1")
        .start();
    let resp = send(
        &gw,
        Some(("authorization", &format!("Bearer {ACCESS_KEY}"))),
        "gpt-4o",
    )
    .await;
    assert_eq!(resp.status(), 200);
    let r = &mock.requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer sk-managed-1"));
    assert!(r.headers.iter().all(|(_, v)| !v.contains(ACCESS_KEY)));
}

#[tokio::test]
async fn managed_keys_rotate_round_robin() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &mock.url(), "sk-a, sk-b")
        .start();
    for _ in 0..4 {
        assert_eq!(
            gw.post("/v1/chat/completions", chat("gpt-4o"))
                .await
                .status(),
            200
        );
    }
    let used: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r.credential().unwrap().to_string())
        .collect();
    assert_eq!(used.iter().filter(|k| *k == "sk-a").count(), 2, "{used:?}");
    assert_eq!(used.iter().filter(|k| *k == "sk-b").count(), 2, "{used:?}");
}

#[tokio::test]
async fn byok_key_wins_over_the_managed_pool() {
    let mock = MockProvider::new().start();
    let config = "access_keys:\n  - name: team-b\n    key: tg-team-b-key\n    provider_keys:\n      groq: gsk-own-key\n";
    let gw = Gateway::builder()
        .provider("GROQ", &mock.url(), "gsk-managed")
        .config(config)
        .start();
    let resp = send(
        &gw,
        Some(("x-api-key", "tg-team-b-key")),
        "groq:qwen/qwen3-32b",
    )
    .await;
    assert_eq!(resp.status(), 200);
    let r = &mock.requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer gsk-own-key"));
    assert_eq!(r.header("x-api-key"), None);
}

#[tokio::test]
async fn unknown_keys_pass_through_in_the_providers_style() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &mock.url(), "sk-managed")
        .provider("ANTHROPIC", &mock.url(), "")
        .start();
    let resp = send(
        &gw,
        Some(("authorization", "Bearer sk-client-own")),
        "gpt-4o",
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some("Bearer sk-client-own")
    );
    let resp = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", "sk-ant-client")
        .body(r#"{"model":"claude-opus-4-1","max_tokens":1,"messages":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.requests()[1].header("x-api-key"),
        Some("sk-ant-client")
    );
}

#[tokio::test]
async fn refusals_reach_no_provider() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &mock.url(), "sk-managed")
        .provider("GROQ", &mock.url(), "")
        .start();
    let bearer = |k: &str| format!("Bearer {k}");
    let cases = [
        (None, "gpt-4o", 401, "missing_api_key"),
        (
            Some(bearer("tg-not-configured")),
            "gpt-4o",
            401,
            "invalid_api_key",
        ),
        (
            Some("Basic dXNlcjpwYXNz".to_string()),
            "gpt-4o",
            401,
            "missing_api_key",
        ),
        (
            Some(bearer(ACCESS_KEY)),
            "groq:qwen/qwen3-32b",
            403,
            "provider_key_required",
        ),
    ];
    for (auth, model, status, code) in cases {
        let auth = auth.as_deref().map(|v| ("authorization", v));
        let got = error_code(send(&gw, auth, model).await).await;
        assert_eq!(got, (status, code.to_string()), "{auth:?} {model}");
    }
    assert_eq!(mock.request_count(), 0);
    assert!(
        !gw.logs().contains("tg-not-configured"),
        "keys never reach the logs"
    );
}

#[tokio::test]
async fn passthrough_can_be_turned_off() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &mock.url(), "sk-managed")
        .config("passthrough: false\n")
        .start();
    let got =
        error_code(send(&gw, Some(("authorization", "Bearer sk-client")), "gpt-4o").await).await;
    assert_eq!(got, (401, "invalid_api_key".to_string()));
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn keyless_ollama_gets_no_auth_header() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OLLAMA", &format!("{}/v1", mock.url()), "")
        .start();
    let resp = gw
        .post("/v1/chat/completions", chat("ollama/llama3.3"))
        .await;
    assert_eq!(resp.status(), 200);
    let r = &mock.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), None);
}

#[tokio::test]
async fn cloudflare_needs_its_account_id() {
    let gw = Gateway::builder()
        .env("CLOUDFLARE_API_KEY", "cf-key")
        .start();
    let resp = gw
        .post(
            "/v1/chat/completions",
            chat("cloudflare/@cf/meta/llama-3.3-70b-instruct-fp8-fast"),
        )
        .await;
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 503);
    assert_eq!(v["error"]["code"], "provider_not_configured");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CLOUDFLARE_ACCOUNT_ID"),
        "{v}"
    );
}

#[tokio::test]
async fn cloudflare_account_id_fills_the_base_url() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider(
            "CLOUDFLARE",
            &format!("{}/client/v4/accounts/{{ACCOUNT_ID}}/ai/v1", mock.url()),
            "cf-key",
        )
        .env("CLOUDFLARE_ACCOUNT_ID", "acc123")
        .start();
    let resp = gw
        .post(
            "/v1/chat/completions",
            chat("cloudflare/@cf/meta/llama-3.3-70b-instruct-fp8-fast"),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let r = &mock.requests()[0];
    assert_eq!(r.path, "/client/v4/accounts/acc123/ai/v1/chat/completions");
    assert_eq!(
        r.json()["model"],
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    );
}
