//! Tests of `RedisLedger` against a real redis-server started for each test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::conformance;
use super::super::testredis::RedisServer;
use super::*;

fn fast() -> Tuning {
    Tuning {
        op_timeout: Duration::from_millis(500),
        probe_interval: Duration::from_millis(50),
        ..Tuning::default()
    }
}

async fn ledger(s: &RedisServer, fallback: Fallback, tuning: Tuning) -> Arc<RedisLedger> {
    RedisLedger::connect_with(&s.url(), "t:", fallback, tuning)
        .await
        .unwrap()
}

/// Waits until the ledger uses Redis again (its queue replayed).
async fn wait_up(l: &RedisLedger) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while l.inner.is_down() || !l.inner.outage.is_empty() {
        assert!(Instant::now() < deadline, "redis ledger never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn settle_call(l: &RedisLedger, d: Deferred) -> Result<u64, String> {
    let run = |s: Arc<RedisStore>| async move { s.run_settle(&d).await };
    l.inner.engine.run(run).await
}

#[tokio::test]
async fn arithmetic() {
    let Some(s) = RedisServer::start() else {
        return;
    };
    let l = ledger(&s, Fallback::Refuse, fast()).await;
    conformance::arithmetic(&*l, "").await;
    conformance::dropped_reservation_is_released(&*l, "").await;
    // Another node, and the default prefix, see the same totals; other prefixes do not.
    let other = ledger(&s, Fallback::Refuse, fast()).await;
    assert_eq!(other.spent("a").await.unwrap(), 1010);
    let default = RedisLedger::connect(&s.url(), DEFAULT_PREFIX, Fallback::Refuse)
        .await
        .unwrap();
    assert_eq!(default.spent("a").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_one_budget() {
    let Some(s) = RedisServer::start() else {
        return;
    };
    let a: Arc<dyn Ledger> = ledger(&s, Fallback::Refuse, fast()).await;
    let b: Arc<dyn Ledger> = ledger(&s, Fallback::Refuse, fast()).await;
    conformance::concurrent_reserves_are_bounded(&[a, b], "").await;
}

#[tokio::test]
async fn an_abandoned_reservation_expires() {
    let Some(s) = RedisServer::start() else {
        return;
    };
    let tuning = Tuning {
        reservation_ttl: Duration::from_millis(1000),
        ..fast()
    };
    let l = ledger(&s, Fallback::Refuse, tuning).await;
    let r = l.reserve("k", 100, 100).await.unwrap();
    // As if the node died: the reservation is neither ended nor dropped.
    std::mem::forget(r);
    assert!(matches!(
        l.reserve("k", 100, 1).await,
        Err(LedgerError::Insufficient { spent: 100, .. })
    ));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = l.reserve("k", 100, 1).await.unwrap();
    l.settle(r, 1).await.unwrap();
    assert_eq!(l.spent("k").await.unwrap(), 1);
}

#[tokio::test]
async fn writes_count_once_and_late_reservations_hold_nothing() {
    let Some(s) = RedisServer::start() else {
        return;
    };
    let l = ledger(&s, Fallback::Refuse, fast()).await;
    let key: Arc<str> = Arc::from("k");
    let d = Deferred {
        key: key.clone(),
        id: 1_000_000,
        amount: 25,
    };
    assert_eq!(settle_call(&l, d.clone()).await.unwrap(), 25);
    assert_eq!(settle_call(&l, d.clone()).await.unwrap(), 25);
    // A reservation whose id was already ended (given up, then delivered late) holds nothing.
    let (admitted, spent, held) = l
        .inner
        .call_reserve(key.clone(), 1000, 500, d.id)
        .await
        .unwrap();
    assert_eq!((admitted, spent, held), (true, 25, 0));
    let r = l.reserve("k", 1000, 500).await.unwrap();
    let (admitted, _, held) = l
        .inner
        .call_reserve(key.clone(), 1000, 1, r.id)
        .await
        .unwrap();
    assert_eq!((admitted, held), (true, 500));
    l.settle(r, 10).await.unwrap();
    assert_eq!(l.spent("k").await.unwrap(), 35);
}

#[tokio::test]
async fn refuse_while_down_then_reconnect_after_a_restart() {
    let Some(mut s) = RedisServer::start() else {
        return;
    };
    let l = ledger(&s, Fallback::Refuse, fast()).await;
    l.record("k", 10).await.unwrap();
    assert_eq!(l.spent("k").await.unwrap(), 10);

    s.kill();
    assert!(matches!(
        l.reserve("k", 1000, 1).await,
        Err(LedgerError::Unavailable(_))
    ));
    let started = Instant::now();
    assert!(matches!(
        l.reserve("k", 1000, 1).await,
        Err(LedgerError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "refusal waited on redis"
    );
    // Spending without a reservation is kept for later, not lost or refused.
    l.record("k", 7).await.unwrap();
    assert!(matches!(
        l.spent("k").await,
        Err(LedgerError::Unavailable(_))
    ));

    // The new server is empty (no persistence): it gets what this node recorded meanwhile.
    s.restart();
    wait_up(&l).await;
    assert_eq!(l.spent("k").await.unwrap(), 7);
    let r = l.reserve("k", 1000, 1).await.unwrap();
    l.settle(r, 1).await.unwrap();
    assert_eq!(l.spent("k").await.unwrap(), 8);
}

#[tokio::test]
async fn allow_local_admits_within_the_allowance_and_reconciles_once() {
    let Some(s) = RedisServer::start() else {
        return;
    };
    let l = ledger(&s, Fallback::AllowLocal { allowance: 500 }, fast()).await;
    let other = ledger(&s, Fallback::Refuse, fast()).await;
    l.record("k", 1000).await.unwrap();
    l.record("used-up", 2000).await.unwrap();
    // Records go to Redis in batches (every 20 ms); flush sends this one now.
    l.flush().await.unwrap();

    // A stopped server keeps its data and its connections: calls time out, and those sent
    // meanwhile still run when it continues.
    s.signal("STOP");
    let mut admitted = 0;
    loop {
        match l.reserve("k", 10_000, 100).await {
            Ok(r) => {
                admitted += 1;
                l.settle(r, 100).await.unwrap();
            }
            Err(LedgerError::Unavailable(_)) => break,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(admitted <= 5, "admitted past the allowance");
    }
    assert_eq!(admitted, 5);
    // A key known to be spent is refused as such, and a release costs nothing.
    assert!(matches!(
        l.reserve("used-up", 1000, 1).await,
        Err(LedgerError::Insufficient { spent: 2000, .. })
    ));
    let r = l.reserve("fresh", 10_000, 400).await.unwrap();
    l.release(r).await;
    let r = l.reserve("fresh", 10_000, 400).await.unwrap();
    drop(r);

    s.signal("CONT");
    wait_up(&l).await;
    assert_eq!(l.spent("k").await.unwrap(), 1500);
    assert_eq!(other.spent("k").await.unwrap(), 1500);
    assert_eq!(l.spent("fresh").await.unwrap(), 0);
    // Nothing is left held by the call that timed out.
    let r = other.reserve("k", 1501, 0).await.unwrap();
    other.release(r).await;
}

#[tokio::test]
async fn allow_local_from_a_start_without_redis() {
    let Some(mut s) = RedisServer::start() else {
        return;
    };
    s.kill();
    let l = ledger(&s, Fallback::AllowLocal { allowance: 50 }, fast()).await;
    let r = l.reserve("k", 1000, 40).await.unwrap();
    l.settle(r, 30).await.unwrap();
    let r = l.reserve("k", 1000, 40).await.unwrap();
    assert!(matches!(
        l.reserve("k", 1000, 1).await,
        Err(LedgerError::Unavailable(_))
    ));
    l.settle(r, 5).await.unwrap();
    s.restart();
    wait_up(&l).await;
    assert_eq!(l.spent("k").await.unwrap(), 35);
}

#[tokio::test]
async fn a_reserve_whose_caller_went_away_holds_nothing() {
    let Some(s) = RedisServer::start() else {
        return;
    };
    let l = ledger(&s, Fallback::Refuse, fast()).await;
    s.signal("STOP");
    // The client disconnects while the reserve is on its way: the request future is dropped.
    let gone = tokio::time::timeout(Duration::from_millis(50), l.reserve("k", 100, 100)).await;
    assert!(gone.is_err());
    s.signal("CONT");
    wait_up(&l).await;
    let r = l.reserve("k", 100, 0).await.unwrap();
    l.release(r).await;
}

#[tokio::test]
async fn allow_local_after_a_kill_then_a_restart() {
    let Some(mut s) = RedisServer::start() else {
        return;
    };
    let l = ledger(&s, Fallback::AllowLocal { allowance: 100 }, fast()).await;
    let r = l.reserve("k", 1000, 10).await.unwrap();
    s.kill();
    // Settled while Redis is gone: kept locally, counted against the allowance.
    l.settle(r, 60).await.unwrap();
    let r = l.reserve("k", 1000, 30).await.unwrap();
    l.settle(r, 30).await.unwrap();
    let r = l.reserve("k", 1000, 30).await.unwrap();
    assert!(matches!(
        l.reserve("k", 1000, 1).await,
        Err(LedgerError::Unavailable(_))
    ));
    l.release(r).await;
    assert!(l.reserve("k", 1000, 1).await.is_ok());
    // The restarted server is empty: it gets exactly what this node spent meanwhile.
    s.restart();
    wait_up(&l).await;
    assert_eq!(l.spent("k").await.unwrap(), 90);
}

/// Lua script calls Redis has served so far.
fn script_calls(s: &RedisServer) -> u64 {
    let client = redis::Client::open(s.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test]
async fn records_reach_redis_in_batches() {
    let Some(s) = RedisServer::start() else {
        return;
    };
    let l = ledger(&s, Fallback::Refuse, fast()).await;
    let before = script_calls(&s);
    for _ in 0..100 {
        l.record("busy", 3).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // One settle for the batch; on a fresh server its EVALSHA misses and an EVAL follows.
    let calls = script_calls(&s) - before;
    assert!(
        (1..=2).contains(&calls),
        "{calls} script calls for 100 records"
    );
    assert_eq!(l.spent("busy").await.unwrap(), 300);
}
