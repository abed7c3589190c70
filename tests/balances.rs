//! Credit balances end to end: 402 once a key's balance is spent, nothing sent
//! to the provider after that, and spent credits surviving kill -9.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

const KEY: &str = "tg-budgeted-key";

fn gateway(mock: &MockHandle, ledger: &std::path::Path) -> Gateway {
    // gpt-4o with the mock's 11 input / 7 output tokens costs 98 µUSD a request.
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-m")
        .config(&format!(
            "access_keys:\n  - name: budgeted\n    key: {KEY}\n    credits: 300\nledger:\n  path: {}\n",
            ledger.display()
        ))
        .start()
}

async fn send(gw: &Gateway) -> u16 {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .body(chat("gpt-4o"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_spent_balance_gets_402_and_survives_kill_9() {
    let dir = std::env::temp_dir().join(format!("tollgate-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = dir.join("ledger.log");
    let _ = std::fs::remove_file(&ledger);
    let mock = MockProvider::new().usage(11, 7).start();

    let gw = gateway(&mock, &ledger);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(send(&gw).await);
        // Settlement runs just after the last byte: let it land before the next.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 0, 98, 196, 294 spent before each admitted request: the 4th still starts.
    assert_eq!(statuses, [200, 200, 200, 200, 402, 402]);
    assert_eq!(
        mock.request_count(),
        4,
        "refused requests never reach the provider"
    );
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .body(chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "insufficient_credits");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(gw); // SIGKILL

    let gw = gateway(&mock, &ledger);
    assert_eq!(send(&gw).await, 402, "spent credits survived the crash");
    assert_eq!(mock.request_count(), 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_key_with_a_balance_cannot_go_around_it_through_proxy() {
    let dir = std::env::temp_dir().join(format!("tollgate-ledger-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mock = MockProvider::new().start();
    let gw = gateway(&mock, &dir.join("ledger.log"));
    let resp = client()
        .post(gw.url("/proxy/openai/chat/completions"))
        .bearer_auth(KEY)
        .body(chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(resp).await,
        (403, "proxy_not_allowed".to_string())
    );
    assert_eq!(mock.request_count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
