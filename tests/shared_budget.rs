//! Many nodes, one budget: two tollgate processes sharing one Redis and one small
//! balance, hit concurrently, admit what one node would and agree on what was spent.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

const KEY: &str = "tg-shared-budget";

#[tokio::test]
async fn two_nodes_share_one_balance() {
    let Some(redis) = redis::start() else { return };
    let mock = MockProvider::new()
        .usage(11, 7)
        .chunk_delay(Duration::from_millis(5))
        .start();
    // 98 µUSD a request (gpt-4o, 11 in / 7 out); a balance of 500 admits 6 in sequence.
    let config = format!(
        "access_keys:\n  - name: shared\n    key: {KEY}\n    credits: 500\nledger:\n  redis_url: redis://127.0.0.1:{}/0\n",
        redis.1
    );
    let nodes: Vec<Gateway> = (0..2)
        .map(|_| {
            Gateway::builder()
                .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-m")
                .config(&config)
                .start()
        })
        .collect();
    let body = r#"{"model":"gpt-4o","max_tokens":10,"messages":[]}"#;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = nodes[i % 2].url("/v1/chat/completions");
        tasks.push(tokio::spawn(async move {
            client()
                .post(url)
                .bearer_auth(KEY)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            402 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    // In flight, each request holds its estimate (~130 µUSD), so a burst admits only
    // what the balance can hold; the rest are refused, not overdrawn per node.
    assert!((1..=6).contains(&ok), "{ok} admitted in the burst");
    // The burst's last settlements run just after their last bytes: let them land.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Sequentially, alternating nodes, until the shared balance is spent.
    let mut admitted = ok;
    for i in 0..20 {
        let status = client()
            .post(nodes[i % 2].url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 402 {
            break;
        }
        assert_eq!(status, 200);
        admitted += 1;
        // Settlement runs just after the last byte; let it land before the next
        // request is admitted, or its reservation is still held.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 0, 98, …, 490 spent before each admitted request: 6 in all, across both nodes.
    assert_eq!(admitted, 6);
    assert_eq!(mock.request_count(), admitted);
    for node in &nodes {
        let status = client()
            .post(node.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 402, "both nodes agree the balance is spent");
    }
    assert_eq!(mock.request_count(), admitted);
}
