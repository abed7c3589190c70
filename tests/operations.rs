//! Operating tollgate: SIGHUP reloads (a new alias resolves, a broken file keeps
//! the old config, streams in flight finish and are settled under their own key,
//! key health survives), and a graceful stop exits as soon as the last stream ends.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

const KEY: &str = "tg-ops-app";

fn config(routes: &str) -> String {
    format!("access_keys:\n  - {{name: app, key: {KEY}}}\nroutes:\n{routes}")
}

async fn send(gw: &Gateway, model: &str, stream: bool) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .body(format!(
            r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
        ))
        .send()
        .await
        .unwrap()
}

/// Rewrites the gateway's config file, sends SIGHUP and waits for the reload.
async fn reload(gw: &Gateway, yaml: &str) {
    std::fs::write(gw.config_path(), yaml).unwrap();
    gw.signal("HUP");
    logged(gw, "reload: ok").await;
}

/// Waits for the gateway to log `line`.
async fn logged(gw: &Gateway, line: &str) {
    for _ in 0..200 {
        if gw.logs().contains(line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never logged {line:?}:\n{}", gw.logs());
}

/// A gateway (route `fast`) before a mock whose streams send `chunks` chunks 50 ms
/// apart, so a stream outlives a reload.
fn slow_streams(chunks: usize) -> (MockHandle, Gateway) {
    let mock = MockProvider::new()
        .chunks(chunks)
        .chunk_delay(Duration::from_millis(50))
        .start();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .config(&config("  fast: [gpt-4o-mini]\n"))
        .start();
    (mock, gw)
}

#[tokio::test]
async fn sighup_reloads_and_a_broken_file_keeps_the_old_config() {
    let (_mock, gw) = slow_streams(20);
    assert_eq!(send(&gw, "fast", false).await.status(), 200);
    assert_eq!(send(&gw, "quick", false).await.status(), 404);

    // A stream that outlives the reload, on the old config.
    let stream = send(&gw, "fast", true).await;
    assert_eq!(stream.status(), 200);
    reload(&gw, &config("  fast: [gpt-4o-mini]\n  quick: [gpt-4o]\n")).await;
    let resp = send(&gw, "quick", false).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-model"], "gpt-4o");
    let body = stream.text().await.unwrap();
    assert!(
        body.trim_end().ends_with("data: [DONE]"),
        "stream cut: {body}"
    );

    // A broken file is refused; the previous config keeps serving.
    std::fs::write(gw.config_path(), "routes: [not, a, map\n").unwrap();
    gw.signal("HUP");
    logged(&gw, "reload refused").await;
    assert!(
        gw.logs().contains("tollgate.yaml"),
        "the reason names the file"
    );
    assert_eq!(send(&gw, "quick", false).await.status(), 200);
    let metrics = gw.scrape().await;
    assert!(
        metrics.contains(r#"tollgate_reloads_total{result="ok"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"tollgate_reloads_total{result="error"} 1"#));
}

#[tokio::test]
async fn a_stream_in_flight_over_a_reload_is_settled_under_its_own_key() {
    let (_mock, gw) = slow_streams(10);
    let stream = send(&gw, "gpt-4o", true).await;
    assert_eq!(stream.status(), 200);
    // The new config lists another key first, so the stream's key is renumbered.
    reload(
        &gw,
        &format!(
            "access_keys:\n  - {{name: other, key: tg-ops-other}}\n  - {{name: app, key: {KEY}}}\nroutes:\n  fast: [gpt-4o-mini]\n"
        ),
    )
    .await;
    let body = stream.text().await.unwrap();
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = gw.scrape().await;
        if metrics.contains(r#"tollgate_tokens_total{access_key="app""#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        metrics.contains(r#"tollgate_tokens_total{access_key="app""#),
        "{metrics}"
    );
    assert!(!metrics.contains(r#"access_key="other""#), "{metrics}");
}

#[tokio::test]
async fn key_health_survives_a_reload() {
    let mock = MockProvider::new()
        .fault_for_key(
            "sk-revoked",
            Fault::Status {
                code: 401,
                retry_after: None,
                body: r#"{"error":{"message":"revoked"}}"#.into(),
            },
        )
        .start();
    let gw = Gateway::builder()
        .provider(
            "OPENAI",
            &format!("{}/v1", mock.url()),
            "sk-revoked,sk-good",
        )
        .config(&config("  fast: [gpt-4o-mini]\n"))
        .start();
    for _ in 0..3 {
        assert_eq!(send(&gw, "gpt-4o", false).await.status(), 200);
    }
    let revoked = || {
        mock.requests()
            .iter()
            .filter(|r| r.credential() == Some("sk-revoked"))
            .count()
    };
    assert_eq!(revoked(), 1, "a 401 takes the key out");
    reload(&gw, &config("  fast: [gpt-4o-mini]\n  quick: [gpt-4o]\n")).await;
    for _ in 0..4 {
        assert_eq!(send(&gw, "gpt-4o", false).await.status(), 200);
    }
    assert_eq!(
        revoked(),
        1,
        "the unchanged key is still out after the reload"
    );
}

#[tokio::test]
async fn an_idle_gateway_stops_within_a_second() {
    let mut gw = Gateway::builder().config(&config("  {}\n")).start();
    gw.signal("TERM");
    let took = gw.wait_exit(Duration::from_secs(4)).expect("still running");
    // Pingora alone sleeps the whole grace period (5 s) even when idle.
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn a_graceful_stop_lets_streams_finish_then_exits() {
    let mock = MockProvider::new()
        .chunks(30)
        .chunk_delay(Duration::from_millis(50))
        .start();
    let mut gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .config(&config("  {}\n"))
        .start();
    let stream = send(&gw, "gpt-4o", true).await;
    assert_eq!(stream.status(), 200);
    gw.signal("TERM");
    // New connections are refused once the listener closes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(client().get(gw.url("/healthz")).send().await.is_err());
    let body = stream.text().await.unwrap();
    assert!(
        body.trim_end().ends_with("data: [DONE]"),
        "stream cut: {body}"
    );
    let took = gw.wait_exit(Duration::from_secs(4)).expect("still running");
    assert!(
        took < Duration::from_secs(2),
        "exited {took:?} after the stream"
    );
}

#[tokio::test]
async fn sigusr2_upgrades_without_refusing_or_cutting() {
    let mock = MockProvider::new()
        .chunks(40)
        .chunk_delay(Duration::from_millis(50))
        .start();
    let dir = temp_dir();
    let conf = dir.join("pingora.yaml");
    std::fs::write(
        &conf,
        format!(
            "---\nversion: 1\nthreads: 1\nupgrade_sock: {}\ngrace_period_seconds: 30\n",
            dir.join("upgrade.sock").display()
        ),
    )
    .unwrap();
    let mut gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .config(&config("  {}\n"))
        .arg("-c")
        .arg(conf.to_str().unwrap())
        .start();
    let stream = send(&gw, "gpt-4o", true).await;
    assert_eq!(stream.status(), 200);
    gw.signal("USR2");
    logged(&gw, "upgrade: started successor pid").await;
    let successor: u32 = gw
        .logs()
        .split("started successor pid ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    // New requests keep being answered all through the hand-over (old process
    // alone, both, then the successor alone); none is refused.
    let mut refused = 0;
    for _ in 0..40 {
        match client().get(gw.url("/healthz")).send().await {
            Ok(r) if r.status() == 200 => {}
            _ => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = stream.text().await.unwrap();
    let old_exit = gw.wait_exit(Duration::from_secs(10));
    let after = send(&gw, "gpt-4o", false).await.status();
    let _ = std::process::Command::new("kill")
        .arg(successor.to_string())
        .status();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(refused, 0, "requests refused during the upgrade");
    assert!(
        body.trim_end().ends_with("data: [DONE]"),
        "stream cut: {body}"
    );
    assert!(old_exit.is_some(), "the old process never exited");
    assert_eq!(after, 200, "the successor serves");
}

#[tokio::test]
async fn one_access_log_line_per_request_without_secrets() {
    let mock = MockProvider::new().usage(12, 34).start();
    let dir = temp_dir();
    let path = dir.join("access.log");
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .config(&format!(
            "{}access_log:\n  format: json\n  path: {}\n",
            config("  {}\n"),
            path.display()
        ))
        .start();
    assert_eq!(send(&gw, "gpt-4o", false).await.status(), 200);
    assert_eq!(
        send(&gw, "gpt-4x \\\"quoted\\\"", false).await.status(),
        404
    );
    let mut lines = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // The harness's readiness probes (GET /healthz) are logged too.
        lines = text
            .lines()
            .filter(|l| !l.contains("/healthz"))
            .map(str::to_string)
            .collect();
        if lines.len() >= 2 {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let ok: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["access_key"], "app");
    assert_eq!(ok["provider"], "openai");
    assert_eq!(ok["model"], "gpt-4o");
    assert_eq!(ok["attempts"], 1);
    assert_eq!(
        (ok["input_tokens"].as_u64(), ok["output_tokens"].as_u64()),
        (Some(12), Some(34))
    );
    assert!(ok["bytes"].as_u64().unwrap() > 0);
    assert!(ok["duration_ms"].as_f64().unwrap() >= ok["ttfb_ms"].as_f64().unwrap());
    assert!(ok["time"].as_str().unwrap().ends_with('Z'));
    assert!(ok["error"].is_null());
    let missing: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["error"], "model_not_found");
    assert!(missing["provider"].is_null());
    for line in &lines {
        assert!(!line.contains(KEY) && !line.contains("sk-o\""), "{line}");
    }
}

#[tokio::test]
async fn sighup_reloads_the_catalog_file() {
    let mock = MockProvider::new().start();
    let dir = temp_dir();
    let catalog = dir.join("catalog.yaml");
    let original =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalog.yaml")).unwrap();
    std::fs::write(&catalog, &original).unwrap();
    let gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-o")
        .config(&format!(
            "{}catalog: {}\n",
            config("  {}\n"),
            catalog.display()
        ))
        .start();
    assert_eq!(send(&gw, "house-model", false).await.status(), 404);
    let with_alias = original.replacen(
        "aliases: [gpt-5.4-2026-03-05]",
        "aliases: [gpt-5.4-2026-03-05, house-model]",
        1,
    );
    assert_ne!(with_alias, original);
    std::fs::write(&catalog, with_alias).unwrap();
    gw.signal("HUP");
    logged(&gw, "reload: ok").await;
    let resp = send(&gw, "house-model", false).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-model"], "gpt-5.4");
    assert_eq!(mock.requests()[0].json()["model"], "gpt-5.4");
}
