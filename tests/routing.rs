//! Model routing end to end: resolution, byte-exact body rewriting, endpoints,
//! base paths and the x-tollgate headers.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn gateway(mock: &MockHandle) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-managed-openai")
        .provider("GROQ", &format!("{}/openai/v1", mock.url()), "gsk-managed")
        .provider(
            "GOOGLE",
            &format!("{}/v1beta/openai/", mock.url()),
            "g-managed",
        )
        .provider(
            "ANTHROPIC",
            &format!("{}/v1/", mock.url()),
            "sk-ant-managed",
        )
        .start()
}

#[tokio::test]
async fn alias_resolves_to_canonical_id_and_only_model_bytes_change() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let body = r#"{"messages":[{"role":"user","content":"say \"model\": \"x\""}],  "temperature" : 0.5 ,"model" :"GPT-4-Omni" , "n":1}"#;
    let resp = gw.post("/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-provider"], "openai");
    assert_eq!(resp.headers()["x-tollgate-model"], "gpt-4o");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/v1/chat/completions");
    let expected = body.replace(r#""GPT-4-Omni""#, r#""gpt-4o""#);
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        expected,
        "every other byte unchanged"
    );
    assert_eq!(
        r.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
    assert_eq!(r.header("host"), Some(mock.addr().to_string().as_str()));
}

#[tokio::test]
async fn canonical_model_body_is_forwarded_untouched() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let body = chat("gpt-4o");
    assert_eq!(
        gw.post("/v1/chat/completions", body.clone()).await.status(),
        200
    );
    assert_eq!(mock.requests()[0].body, body.as_bytes());
}

#[tokio::test]
async fn provider_prefixes_and_unlisted_models() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    for (model, path, upstream) in [
        (
            "groq/llama-3.3-70b",
            "/openai/v1/chat/completions",
            "meta-llama/llama-3.3-70b-versatile",
        ),
        (
            "meta-llama/llama-3.3-70b-versatile",
            "/openai/v1/chat/completions",
            "meta-llama/llama-3.3-70b-versatile",
        ),
        (
            "kimi-k2",
            "/openai/v1/chat/completions",
            "moonshotai/kimi-k2-instruct-0905",
        ),
        (
            "openai:gpt-5.5-preview",
            "/v1/chat/completions",
            "gpt-5.5-preview",
        ),
        (
            "gemini:gemini-2.5-pro",
            "/v1beta/openai/chat/completions",
            "gemini-2.5-pro",
        ),
        (
            "Anthropic:claude-sonnet-4",
            "/v1/chat/completions",
            "claude-sonnet-4-0",
        ),
    ] {
        mock.clear();
        let resp = gw.post("/v1/chat/completions", chat(model)).await;
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["x-tollgate-model"], upstream, "{model}");
        let r = &mock.requests()[0];
        assert_eq!(r.path, path, "{model}");
        assert_eq!(r.json()["model"], upstream, "{model}");
    }
}

#[tokio::test]
async fn unknown_model_is_404_with_suggestions_and_reaches_no_one() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let resp = gw.post("/v1/chat/completions", chat("gpt-4oo")).await;
    let v: serde_json::Value = {
        assert_eq!(resp.status(), 404);
        resp.json().await.unwrap()
    };
    assert_eq!(v["error"]["code"], "model_not_found");
    assert_eq!(v["error"]["param"], "model");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("gpt-4o"),
        "{v}"
    );
    // Through the compiled catalog: the nearest first, and a name near
    // nothing still gets the names sharing its prefix.
    for (asked, first) in [
        ("gpt-4o-minii", "gpt-4o-mini,"),
        ("claude-sonnet-4.6", "claude-sonnet-4-6,"),
    ] {
        let resp = gw.post("/v1/chat/completions", chat(asked)).await;
        let v: serde_json::Value = resp.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        let hint = message
            .split("Closest catalog names:")
            .nth(1)
            .unwrap_or_default();
        assert!(hint.trim_start().starts_with(first), "{message}");
    }
    let resp = gw.post("/v1/chat/completions", chat("gpt-9000")).await;
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Closest catalog names: gpt-"),
        "{v}"
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_reach_no_one() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    for (body, code) in [
        (
            r#"{"model":"gpt-4o","model":"gpt-4o-mini","messages":[]}"#,
            "duplicate_model",
        ),
        (r#"{"model":"gpt-4o","mod\u0065l":"o3"}"#, "duplicate_model"),
        (r#"{"messages":[{"model":"gpt-4o"}]}"#, "missing_model"),
        (r#"{"model":4}"#, "invalid_model"),
        (r#"{"model":null}"#, "invalid_model"),
        (r#"{"model":"gpt-4o""#, "invalid_json"),
        (r#"["model","gpt-4o"]"#, "invalid_json"),
        ("", "invalid_json"),
        (r#"{"model":"gpt-4o"} trailing"#, "invalid_json"),
    ] {
        let (status, got) = error_code(gw.post("/v1/chat/completions", body).await).await;
        assert_eq!((status, got.as_str()), (400, code), "{body}");
    }
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn every_endpoint_goes_to_the_same_endpoint_upstream() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    for (path, body) in [
        (
            "/v1/completions",
            r#"{"prompt":"hi","model":"gpt-4o"}"#.to_string(),
        ),
        (
            "/v1/embeddings",
            r#"{"input":"hi","model":"openai:text-embedding-3-small"}"#.to_string(),
        ),
        (
            "/v1/responses",
            r#"{"input":"hi","model":"gpt-4o"}"#.to_string(),
        ),
        ("/v1/chat/completions?api-version=1", chat("gpt-4o")),
    ] {
        mock.clear();
        let resp = gw.post(path, body).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(mock.requests()[0].path, path);
    }
}

#[tokio::test]
async fn anthropic_messages_use_the_providers_auth_style() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let body = r#"{"max_tokens":10,"messages":[{"role":"user","content":"hi"}],"model":"claude-sonnet-4-5"}"#;
    let resp = gw.post("/v1/messages", body).await;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "message");
    let r = &mock.requests()[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some("sk-ant-managed"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        r.header("authorization"),
        None,
        "the access key never reaches the provider"
    );

    // Anthropic-native requests to a provider that does not speak it are refused.
    let (status, code) = error_code(gw.post("/v1/messages", chat("gpt-4o")).await).await;
    assert_eq!((status, code.as_str()), (400, "unsupported_endpoint"));
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_client_anthropic_version_is_kept() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock);
    let resp = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", ACCESS_KEY)
        .header("anthropic-version", "2024-01-01")
        .body(r#"{"model":"claude-haiku-4-5","max_tokens":5,"messages":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = &mock.requests()[0];
    assert_eq!(r.header("anthropic-version"), Some("2024-01-01"));
    assert_eq!(r.header("x-api-key"), Some("sk-ant-managed"));
}

#[tokio::test]
async fn routes_fall_back_to_the_next_model() {
    let down = MockProvider::new()
        .fault(Fault::Status {
            code: 503,
            retry_after: None,
            body: "{}".into(),
        })
        .start();
    let up = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", down.url()), "sk-o")
        .provider("ANTHROPIC", &format!("{}/v1", up.url()), "sk-a")
        .config("routes:\n  auto: [gpt-4o, claude-haiku-4-5]\n")
        .start();
    let resp = gw.post("/v1/chat/completions", chat("auto")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-model"], "claude-haiku-4-5");
    assert_eq!(down.request_count(), 1);
    assert_eq!(up.requests()[0].json()["model"], "claude-haiku-4-5");
}
