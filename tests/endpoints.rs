//! The other endpoints: /v1/models, /healthz, /proxy/{provider}/{path}, and the
//! answers for unknown paths and methods.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// The JSON body of a GET.
async fn get_json(gw: &Gateway, path: &str) -> serde_json::Value {
    client()
        .get(gw.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn models_list_is_public_cacheable_and_complete() {
    let gw = Gateway::builder().start();
    let resp = client().get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["cache-control"],
        "public, s-maxage=60, stale-while-revalidate=300"
    );
    assert_eq!(resp.headers()["x-tollgate-catalog-source"], "embedded");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    assert!(data.len() >= 60, "{}", data.len());
    for e in data {
        for field in [
            "id",
            "object",
            "owned_by",
            "display_name",
            "context_window",
            "max_output_tokens",
            "modalities",
            "pricing",
        ] {
            assert!(e.get(field).is_some(), "{field} missing in {e}");
        }
    }
    let opus = data.iter().find(|e| e["id"] == "claude-opus-4-6").unwrap();
    assert_eq!(opus["owned_by"], "anthropic");
    assert_eq!(opus["display_name"], "Claude Opus 4.6");
    assert_eq!(opus["context_window"], 1_000_000);
    assert_eq!(opus["max_output_tokens"], 128_000);
}

#[tokio::test]
async fn models_filter_by_provider_name_or_alias() {
    let gw = Gateway::builder().start();
    let v: serde_json::Value = get_json(&gw, "/v1/models?provider=deep-seek").await;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["deepseek-reasoner", "deepseek-chat"]);
    let resp = client()
        .get(gw.url("/v1/models?provider=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (404, "provider_not_found".to_string())
    );
}

#[tokio::test]
async fn a_single_model_by_id_or_alias() {
    let gw = Gateway::builder().start();
    let v: serde_json::Value = get_json(&gw, "/v1/models/gpt-4-omni").await;
    assert_eq!(v["id"], "gpt-4o");
    // Any name that routes to one catalog model, as chat requests take it.
    for name in ["openai:gpt-4o", "OpenAI/GPT-4o", "groq/llama-3.3-70b"] {
        let v: serde_json::Value = get_json(&gw, &format!("/v1/models/{name}")).await;
        assert!(v["id"].is_string(), "{name}: {v}");
    }
    // A provider's model the catalog does not list has no catalog entry.
    let resp = client()
        .get(gw.url("/v1/models/openai:gpt-9"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (404, "model_not_found".to_string()));
    let resp = client()
        .get(gw.url("/v1/models/no-such-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, (404, "model_not_found".to_string()));
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let gw = Gateway::builder().start();
    let resp = client().get(gw.url("/v2/whatever")).send().await.unwrap();
    assert_eq!(error_code(resp).await, (404, "not_found".to_string()));
    let resp = client()
        .get(gw.url("/v1/chat/completions"))
        .bearer_auth(ACCESS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["allow"], "POST");
    assert_eq!(
        error_code(resp).await,
        (405, "method_not_allowed".to_string())
    );
    let resp = client().delete(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let resp = client().get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn proxy_passes_through_with_the_credential_injected() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1/", mock.url()), "sk-managed")
        .start();
    let resp = client()
        .get(gw.url("/proxy/openai/models?limit=2"))
        .bearer_auth(ACCESS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-provider"], "openai");
    let r = &mock.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/v1/models?limit=2")
    );
    assert_eq!(r.header("authorization"), Some("Bearer sk-managed"));

    let body = r#"{"model":"gpt-4o","messages":[]}"#;
    let resp = client()
        .post(gw.url("/proxy/open-ai/chat/completions"))
        .bearer_auth(ACCESS_KEY)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = &mock.requests()[1];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(
        r.body,
        body.as_bytes(),
        "passthrough bodies are not rewritten"
    );
}

#[tokio::test]
async fn proxy_paths_never_leave_the_base_url() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1/", mock.url()), "sk-managed")
        .start();
    // Sent over a plain socket: HTTP clients would normalise these away.
    for target in [
        "/proxy/openai/%2e%2e/admin",
        "/proxy/openai/a/%2E%2E/%2e%2e/admin",
        "/proxy/openai/.%2e/admin",
        "/proxy/openai//evil.example/x",
        "/proxy/openai/a%2f..%2fadmin",
        "/proxy/openai/a%5c..%5cadmin",
        "/proxy/openai/../admin",
        "/proxy/openai/a\\..\\admin",
        "http://evil.example/proxy/openai/../x",
    ] {
        let resp = raw(&gw, target);
        assert!(resp.starts_with("HTTP/1.1 400"), "{target}: {resp}");
        // Refused by tollgate's path check, or as a malformed request line.
        assert!(
            resp.contains("\"invalid_path\"") || resp.contains("\"invalid_request\""),
            "{target}: {resp}"
        );
    }
    let resp = client()
        .get(gw.url("/proxy/nosuch/x"))
        .bearer_auth(ACCESS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (404, "provider_not_found".to_string())
    );
    assert_eq!(mock.request_count(), 0);
}

fn raw(gw: &Gateway, target: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ACCESS_KEY}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
