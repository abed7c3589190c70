//! Load and faults together: concurrent clients (streams and plain requests, some
//! hanging up early) against a provider whose second key keeps failing. Bounded
//! (20 s here; `TOLLGATE_SOAK_SECS=600` for the full run). Afterwards: no panic,
//! the ledger holds exactly what the metrics charged, every completed answer was
//! charged, and memory stayed flat.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tollgate::ledger::{FileLedger, Ledger};

const KEY: &str = "tg-soak-app";
/// gpt-4o at 11 input and 7 output tokens, micro-USD.
const CHARGE: u64 = 98;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_failing_keys_and_hangups() {
    let secs: u64 = std::env::var("TOLLGATE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mock = Arc::new(
        MockProvider::new()
            .usage(11, 7)
            .chunks(6)
            .chunk_delay(Duration::from_millis(3))
            .start(),
    );
    let dir = temp_dir();
    let ledger = dir.join("ledger.log");
    let mut gw = Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-good,sk-flaky")
        .config(&format!(
            "access_log:\n  format: off\naccess_keys:\n  - {{name: soak, key: {KEY}, credits: 1000000000000}}\nledger:\n  path: {}\nupstream:\n  rate_limit_cooldown: 1s\n  circuit_backoff: 1s\n",
            ledger.display()
        ))
        .start();
    let url = gw.url("/v1/chat/completions");
    let deadline = Instant::now() + Duration::from_secs(secs);

    // The flaky key: 429, then 500s, then fine, round and round.
    let faults = {
        let mock = mock.clone();
        tokio::spawn(async move {
            let cycle = [
                Some(Fault::Status {
                    code: 429,
                    retry_after: Some("1".into()),
                    body: "{}".into(),
                }),
                Some(Fault::Status {
                    code: 500,
                    retry_after: None,
                    body: "{}".into(),
                }),
                None,
            ];
            for f in cycle.iter().cycle() {
                if Instant::now() > deadline {
                    break;
                }
                mock.set_fault_for_key("sk-flaky", f.clone());
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        })
    };

    let completed = Arc::new(AtomicU64::new(0));
    let mut rss = Vec::new();
    let mut workers = Vec::new();
    for w in 0..24u64 {
        let (url, completed) = (url.clone(), completed.clone());
        workers.push(tokio::spawn(async move {
            let client = client();
            let mut n = w;
            while Instant::now() < deadline {
                n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let roll = (n >> 33) % 100;
                let stream = roll < 50;
                let body = format!(
                    r#"{{"model":"gpt-4o","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
                );
                let sent = client.post(&url).bearer_auth(KEY).body(body).send();
                if roll < 5 {
                    // Hang up before the answer.
                    let _ = tokio::time::timeout(Duration::from_micros(300), sent).await;
                    continue;
                }
                let Ok(resp) = sent.await else { continue };
                if resp.status() != 200 {
                    continue;
                }
                if stream && roll < 20 {
                    // Hang up mid-stream.
                    let mut resp = resp;
                    let _ = resp.chunk().await;
                    continue;
                }
                if let Ok(text) = resp.text().await {
                    let done = if stream {
                        text.trim_end().ends_with("data: [DONE]")
                    } else {
                        text.contains("\"usage\"")
                    };
                    assert!(done, "an answer arrived broken: {text}");
                    completed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Memory after warm-up, then at the end.
    tokio::time::sleep(Duration::from_secs(secs / 4)).await;
    rss.push(rss_kib(gw.pid()));
    for w in workers {
        w.await.unwrap();
    }
    faults.await.unwrap();
    rss.push(rss_kib(gw.pid()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let metrics = gw.scrape().await;
    let charged = metric_sum(
        &metrics,
        "tollgate_credits_spent_microusd_total",
        &[("access_key", "soak")],
    ) as u64;
    // A graceful stop flushes the ledger; then read it back.
    gw.signal("TERM");
    gw.wait_exit(Duration::from_secs(10))
        .expect("gateway did not stop");
    let logs = gw.logs();
    let book = FileLedger::open(&ledger, Duration::from_millis(10)).unwrap();
    let spent = book.spent("soak").await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let completed = completed.load(Ordering::Relaxed);
    eprintln!(
        "soak {secs}s: {completed} complete answers, {} upstream requests, {spent} µUSD in the ledger, RSS {rss:?} KiB",
        mock.request_count()
    );
    assert!(!logs.contains("panicked"), "a panic:\n{logs}");
    assert!(completed > 100, "only {completed} answers");
    assert_eq!(spent, charged, "ledger and metrics disagree");
    assert!(
        spent >= completed * CHARGE,
        "completed answers went unbilled"
    );
    assert!(
        spent <= mock.request_count() as u64 * CHARGE * 2,
        "billed beyond what ran"
    );
    let (warm, end) = (rss[0], rss[1]);
    assert!(
        end < warm + 32 * 1024,
        "memory grew from {warm} KiB to {end} KiB"
    );
}
