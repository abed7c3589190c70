//! Admission policy from the seeds: the vision gate, model allow-lists, the
//! catalog's source, and models users call by bare name.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;

const IMAGE_CHAT: &str = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://example.com/a.jpg"}}]}],"model":"MODEL"}"#;
const WORDS_ONLY: &str = r#"{"messages":[{"role":"user","content":"{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}"}],"model":"MODEL"}"#;

fn gateway(mock: &MockHandle, config: &str) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .provider("DEEPSEEK", &mock.url(), "sk-d")
        .config(config)
        .start()
}

#[tokio::test]
async fn vision_off_refuses_images_but_not_the_words() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, "vision: off\n");
    let (status, code) = error_code(
        gw.post(
            "/v1/chat/completions",
            IMAGE_CHAT.replace("MODEL", "gpt-4o"),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "vision_disabled"));
    assert_eq!(mock.request_count(), 0);
    let resp = gw
        .post(
            "/v1/chat/completions",
            WORDS_ONLY.replace("MODEL", "gpt-4o"),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // Anthropic image blocks too.
    let claude = r#"{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]}"#;
    assert_eq!(gw.post("/v1/chat/completions", claude).await.status(), 400);
}

#[tokio::test]
async fn enable_vision_env_sets_the_gate() {
    let mock = MockProvider::new().start();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .env("ENABLE_VISION", "false")
        .start();
    let resp = gw
        .post(
            "/v1/chat/completions",
            IMAGE_CHAT.replace("MODEL", "gpt-4o"),
        )
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn per_model_vision_follows_catalog_modalities() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, "vision: per-model\n");
    let (status, code) = error_code(
        gw.post(
            "/v1/chat/completions",
            IMAGE_CHAT.replace("MODEL", "deepseek-chat"),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "model_not_multimodal"));
    assert_eq!(mock.request_count(), 0);
    assert_eq!(
        gw.post(
            "/v1/chat/completions",
            IMAGE_CHAT.replace("MODEL", "gpt-4o")
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        gw.post("/v1/chat/completions", chat("deepseek-chat"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn restricted_keys_get_403_for_other_models() {
    let mock = MockProvider::new().start();
    let gw = gateway(
        &mock,
        "access_keys:\n  - name: narrow\n    key: tg-narrow-key\n    models: [gpt-4o-mini, auto]\n    providers: [deepseek]\nroutes:\n  auto: [o3]\n",
    );
    let send = |model: &str| {
        client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("tg-narrow-key")
            .body(chat(model))
            .send()
    };
    for allowed in [
        "gpt-4o-mini",
        "auto",
        "o3",
        "deepseek-reasoner",
        "deepseek:new-model",
    ] {
        assert_eq!(send(allowed).await.unwrap().status(), 200, "{allowed}");
    }
    let before = mock.request_count();
    for refused in ["gpt-4o", "openai:gpt-9", "claude-opus-4-1"] {
        let (status, code) = error_code(send(refused).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "model_not_allowed"),
            "{refused}"
        );
    }
    assert_eq!(mock.request_count(), before);
}

#[tokio::test]
async fn bare_embedding_models_reach_openai() {
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, "");
    let resp = gw
        .post(
            "/v1/embeddings",
            r#"{"input":"hi","model":"text-embedding-3-small"}"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-provider"], "openai");
    assert_eq!(mock.requests()[0].path, "/v1/embeddings");
}

#[tokio::test]
async fn a_catalog_file_is_served_as_file() {
    let dir = std::env::temp_dir().join(format!("tollgate-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("catalog.yaml");
    std::fs::write(
        &path,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalog.yaml")).unwrap(),
    )
    .unwrap();
    let gw = Gateway::builder()
        .arg("--catalog")
        .arg(path.to_str().unwrap())
        .start();
    let resp = client().get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(resp.headers()["x-tollgate-catalog-source"], "file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unloadable_catalog_file_stops_start_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "--catalog",
            "/nonexistent/tollgate-catalog.yaml",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/tollgate-catalog.yaml"), "{err}");
}

/// `tollgate check` on `config`: it must fail; what it printed.
fn check(config: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "--config", config.to_str().unwrap()])
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn check_names_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("tollgate-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "routes:\n  auto: [gpt-4x]\naccess_keys:\n  - name: a\n    key: tg-secret-value\n",
    )
    .unwrap();
    let err = check(&bad);
    assert!(
        err.contains("bad.yaml:2: routes.auto[0]") && err.contains("gpt-4x"),
        "{err}"
    );
    assert!(!err.contains("tg-secret-value"));
    // Every invalid field at once, each at its line.
    std::fs::write(
        &bad,
        "access_keys:\n  - name: a\n    key: tg-a\n  - name: b\n    key: sk-not-a-gateway-key\nupstream:\n  connect_timeout: 10q\n",
    )
    .unwrap();
    let err = check(&bad);
    assert!(err.contains("bad.yaml:4: access_keys[1] (b)"), "{err}");
    assert!(
        err.contains("bad.yaml:7: upstream.connect_timeout"),
        "{err}"
    );
    std::fs::write(&bad, "listen: [\n").unwrap();
    let err = check(&bad);
    assert!(
        err.contains("bad.yaml:1:") && err.contains("listen"),
        "file, line and field: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_reports_every_problem_at_once() {
    let dir = std::env::temp_dir().join(format!("tollgate-check-all-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |yaml: &str| {
        let path = dir.join("bad.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["check", "--config", path.to_str().unwrap()])
            .env_clear()
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Settings: each bad value named with its field.
    let err = run("listen: nowhere\nupstream:\n  max_attempts: 0\naccess_keys:\n  - name: a\n    key: tg-secret-value\n    limits: {requests_per_minute: 0}\n");
    for want in [
        "listen: `nowhere`",
        "upstream.max_attempts: is 0",
        "access_keys[0].limits.requests_per_minute: is 0",
    ] {
        assert!(err.contains(want), "{want} missing from: {err}");
    }
    // References: both ends of each broken one.
    let err = run("routes:\n  auto: [gpt-4x]\n  fast: [nope-9]\nproviders:\n  nosuch: {}\naccess_keys:\n  - name: a\n    key: tg-secret-value\n    models: [bogus]\n");
    for want in [
        "route `auto` names model `gpt-4x`",
        "route `fast` names model `nope-9`",
        "providers.nosuch",
        "`bogus`",
    ] {
        assert!(err.contains(want), "{want} missing from: {err}");
    }
    assert!(!err.contains("tg-secret-value"));
    let _ = std::fs::remove_dir_all(&dir);
}
