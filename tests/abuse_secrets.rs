//! Abuse (issue #9), secrets: provider keys, access keys and client keys never
//! come back out of the gateway, whatever the traffic: not in its logs (debug
//! level), its metrics, its answers, nor in `tollgate check` output.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const PROVIDER_KEY: &str = "sk-SECRET-provider-7f3a";
const REVOKED_KEY: &str = "sk-SECRET-revoked-55d1";
const ANTHROPIC_KEY: &str = "sk-ant-SECRET-anthro-3b9e";
const BYOK_KEY: &str = "gsk-SECRET-byok-a8e0";
const ACCESS: &str = "tg-SECRET-access-91c2";
const ENV_ACCESS: &str = "tg-SECRET-envkey-4d7e";
const WRONG_ACCESS: &str = "tg-SECRET-wrong-0c6f";
const CLIENT_KEY: &str = "sk-SECRET-client-e2b7";
const SECRETS: &[&str] = &[
    PROVIDER_KEY,
    REVOKED_KEY,
    ANTHROPIC_KEY,
    BYOK_KEY,
    ACCESS,
    ENV_ACCESS,
    WRONG_ACCESS,
    CLIENT_KEY,
];

/// Where `text` holds a secret, or any 12 consecutive characters of one.
fn leak(text: &str) -> Option<String> {
    for secret in SECRETS {
        let chars: Vec<char> = secret.chars().collect();
        for w in chars.windows(12) {
            let piece: String = w.iter().collect();
            if let Some(at) = text.find(&piece) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(150)
                    .map_or(0, |(i, _)| i);
                let context: String = text[from..].chars().take(400).collect();
                return Some(format!("`{piece}` in:\n{context}"));
            }
        }
    }
    None
}

fn assert_no_secret(what: &str, text: &str) {
    if let Some(l) = leak(text) {
        panic!("{what} holds a secret: {l}");
    }
}

fn secret_config() -> String {
    format!(
        "access_keys:\n  - name: team-secret\n    key: {ACCESS}\n    provider_keys:\n      groq: env:GROQ_BYOK\n"
    )
}

fn check(config: &str, env: &[(&str, &str)]) -> (bool, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tollgate-abuse-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{n}.yaml"));
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "debug")
        .envs(env.iter().copied())
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn check_env(mock: &MockHandle) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_API_KEY", PROVIDER_KEY.to_string()),
        ("OPENAI_API_URL", format!("{}/v1", mock.url())),
        ("TOLLGATE_ACCESS_KEYS", ENV_ACCESS.to_string()),
        ("GROQ_BYOK", BYOK_KEY.to_string()),
    ]
}

/// Runs `tollgate check` on each broken config; the leaks found.
fn broken_checks(env: &[(&str, String)], configs: &[String]) -> Vec<String> {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut leaks = Vec::new();
    for config in configs {
        let (ok, text) = check(config, &env);
        assert!(!ok, "check accepted:\n{config}\n{text}");
        assert!(text.contains("tollgate: "), "{text}");
        if let Some(l) = leak(&text) {
            leaks.push(format!("for\n{config}{l}"));
        }
    }
    leaks
}

#[test]
fn check_never_prints_the_secrets_it_was_given() {
    let mock = MockProvider::new().start();
    let env = check_env(&mock);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, text) = check(&secret_config(), &pairs);
    assert!(ok, "{text}");
    assert_no_secret("check (valid)", &text);
    let broken = [
        // an unknown field beside the secrets
        format!("{}    credit: 5\n", secret_config()),
        // an access key without the tg- prefix (a provider key pasted by mistake)
        format!("access_keys:\n  - name: oops\n    key: {PROVIDER_KEY}\n"),
        // the same access key twice
        format!("{}  - name: again\n    key: {ACCESS}\n", secret_config()),
        // a BYOK key for a provider the catalog lacks, or not a string
        format!("access_keys:\n  - name: t\n    key: {ACCESS}\n    provider_keys:\n      opnai: {BYOK_KEY}\n"),
        format!("access_keys:\n  - name: t\n    key: {ACCESS}\n    provider_keys:\n      groq: [{BYOK_KEY}]\n"),
        // YAML syntax errors on the secret's line
        format!("access_keys:\n  - name: t\n    key: \"{ACCESS}\n    credits: 1\n"),
        format!("access_keys:\n  - name: t\n    key: [{ACCESS}\n"),
        // a provider key given twice over
        format!("providers:\n  openai:\n    keys:\n      - name: k\n        key: {REVOKED_KEY}\n        key_env: OPENAI_API_KEY\n"),
    ];
    let leaks = broken_checks(&env, &broken);
    assert!(
        leaks.is_empty(),
        "check printed secrets:\n{}",
        leaks.join("\n\n")
    );
    // Keys from the environment that are not valid access keys.
    let env = [("TOLLGATE_ACCESS_KEYS", PROVIDER_KEY)];
    let (ok, text) = check("", &env);
    assert!(!ok);
    assert_no_secret("check output for a bad TOLLGATE_ACCESS_KEYS", &text);
}

#[test]
fn check_type_errors_never_echo_the_secret_value() {
    let mock = MockProvider::new().start();
    let broken = [
        // a list of keys where a list of objects belongs: an easy mistake
        format!("access_keys: [{ACCESS}]\n"),
        format!("providers:\n  openai:\n    keys: [{REVOKED_KEY}]\n"),
        // a secret where a number belongs
        format!("access_keys:\n  - name: t\n    key: {ACCESS}\n    credits: {ENV_ACCESS}\n"),
    ];
    let leaks = broken_checks(&check_env(&mock), &broken);
    assert!(
        leaks.is_empty(),
        "check printed secrets:\n{}",
        leaks.join("\n\n")
    );
}

#[tokio::test]
async fn secrets_never_leave_the_gateway() {
    let mock = MockProvider::new()
        .fault_for_key(
            REVOKED_KEY,
            Fault::Status {
                code: 401,
                retry_after: None,
                body: r#"{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}"#.into(),
            },
        )
        .fault_for_key(
            CLIENT_KEY,
            Fault::Status {
                code: 401,
                retry_after: None,
                body: r#"{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}"#.into(),
            },
        )
        .start();
    let url = format!("{}/v1", mock.url());
    let gw = Gateway::builder()
        .provider("OPENAI", &url, &format!("{REVOKED_KEY},{PROVIDER_KEY}"))
        .provider("ANTHROPIC", &url, ANTHROPIC_KEY)
        .provider("GROQ", &url, "")
        .env("TOLLGATE_ACCESS_KEYS", ENV_ACCESS)
        .env("GROQ_BYOK", BYOK_KEY)
        .config(&secret_config())
        .start();
    let h1 = client();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let stream = r#"{"model":"gpt-4o","stream":true,"messages":[]}"#;
    let claude = r#"{"model":"claude-sonnet-4-6","max_tokens":9,"messages":[]}"#;
    let mut seen = String::new();
    let mut exchanges = 0;
    for (c, path, auth, body) in [
        (
            &h1,
            "/v1/chat/completions",
            ("authorization", format!("Bearer {ACCESS}")),
            chat("gpt-4o"),
        ),
        (
            &h1,
            "/v1/chat/completions",
            ("authorization", format!("Bearer {ACCESS}")),
            chat("gpt-4o"),
        ),
        (
            &h2,
            "/v1/chat/completions",
            ("x-api-key", ENV_ACCESS.to_string()),
            stream.to_string(),
        ),
        (
            &h1,
            "/v1/messages",
            ("x-api-key", ACCESS.to_string()),
            claude.to_string(),
        ),
        (
            &h1,
            "/v1/chat/completions",
            ("authorization", format!("Bearer {ACCESS}")),
            chat("groq/llama-3.3-70b"),
        ),
        (
            &h1,
            "/v1/chat/completions",
            ("authorization", format!("Bearer {WRONG_ACCESS}")),
            chat("gpt-4o"),
        ),
        (
            &h1,
            "/v1/chat/completions",
            ("authorization", format!("Basic {ACCESS}")),
            chat("gpt-4o"),
        ),
        (
            &h1,
            "/v1/chat/completions",
            ("authorization", ACCESS.to_string()),
            chat("gpt-4o"),
        ),
        (
            &h1,
            "/v1/chat/completions",
            ("authorization", format!("Bearer {CLIENT_KEY}")),
            chat("gpt-4o"),
        ),
        (
            &h1,
            "/v1/chat/completions",
            ("authorization", format!("Bearer {ACCESS}")),
            r#"{"model":"gpt-4o""#.into(),
        ),
        (
            &h1,
            "/v1/chat/completions",
            ("authorization", format!("Bearer {ACCESS}")),
            chat("gpt-4oo"),
        ),
        (
            &h2,
            "/proxy/openai/models",
            ("authorization", format!("Bearer {ACCESS}")),
            String::new(),
        ),
        (
            &h1,
            "/proxy/openai/../models",
            ("authorization", format!("Bearer {ACCESS}")),
            String::new(),
        ),
        (
            &h1,
            "/proxy/openai/models",
            ("authorization", format!("Bearer {WRONG_ACCESS}")),
            String::new(),
        ),
        (
            &h1,
            "/v1/nowhere",
            ("authorization", format!("Bearer {ACCESS}")),
            chat("gpt-4o"),
        ),
    ] {
        let req = if body.is_empty() {
            c.get(gw.url(path))
        } else {
            c.post(gw.url(path)).body(body.clone())
        };
        let resp = req.header(auth.0, auth.1.clone()).send().await.unwrap();
        exchanges += 1;
        seen += &format!("{} {:?}\n", resp.status(), resp.headers());
        seen += &resp.text().await.unwrap();
        seen.push('\n');
    }
    // success, the provider's 401 for a client key, bad keys, bad JSON, unknown model
    for status in ["200 ", "401 ", "400 ", "404 "] {
        assert!(seen.contains(status), "{status}: {seen}");
    }
    assert!(mock.request_count() >= 8, "traffic reached the provider");
    assert!(
        mock.requests()
            .iter()
            .any(|r| r.credential() == Some(PROVIDER_KEY)),
        "the managed key was used"
    );
    assert!(mock
        .requests()
        .iter()
        .any(|r| r.credential() == Some(BYOK_KEY)));
    // Settlement runs after the last byte; the access log flushes every 200 ms.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let metrics = gw.scrape().await;
    assert!(exchanges > 10);
    assert_no_secret("responses", &seen);
    assert_no_secret("metrics", &metrics);
    assert_no_secret("logs", &gw.logs());
    assert!(
        gw.logs().contains("DEBUG") || gw.logs().contains("debug"),
        "debug logging was on"
    );
}
