//! Behaviour every `Ledger` must show, run by each implementation's tests against a fresh store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Ledger, LedgerError};

/// Reserve, settle, release and record arithmetic on keys `{p}a` and `{p}b`.
pub(super) async fn arithmetic(l: &dyn Ledger, p: &str) {
    let a = format!("{p}a");
    let b = format!("{p}b");
    assert_eq!(l.spent(&a).await.unwrap(), 0);

    let r = l.reserve(&a, 1000, 300).await.unwrap();
    assert_eq!((&*r.key, r.amount), (a.as_str(), 300));
    l.settle(r, 250).await.unwrap();
    assert_eq!(l.spent(&a).await.unwrap(), 250);

    // An estimate larger than what is left is still reserved while something is left.
    let big = l.reserve(&a, 1000, 5000).await.unwrap();
    match l.reserve(&a, 1000, 1).await {
        Err(LedgerError::Insufficient { balance, spent }) => {
            assert_eq!((balance, spent), (1000, 5250));
        }
        other => panic!("expected Insufficient, got {other:?}"),
    }
    l.release(big).await;
    assert_eq!(l.spent(&a).await.unwrap(), 250);

    // Settling more than reserved charges the exact cost.
    let r = l.reserve(&a, 1000, 10).await.unwrap();
    l.settle(r, 700).await.unwrap();
    assert_eq!(l.spent(&a).await.unwrap(), 950);
    let r = l.reserve(&a, 1000, 0).await.unwrap();
    l.settle(r, 60).await.unwrap();
    assert_eq!(l.spent(&a).await.unwrap(), 1010);
    assert!(matches!(
        l.reserve(&a, 1000, 0).await,
        Err(LedgerError::Insufficient {
            balance: 1000,
            spent: 1010
        })
    ));
    // A larger balance (config changed) admits again.
    let r = l.reserve(&a, 2000, 5).await.unwrap();
    l.settle(r, 0).await.unwrap();
    assert_eq!(l.spent(&a).await.unwrap(), 1010);

    // Keys without a balance are recorded; a zero balance admits nothing.
    l.record(&b, 40).await.unwrap();
    l.record(&b, 2).await.unwrap();
    assert_eq!(l.spent(&b).await.unwrap(), 42);
    assert!(matches!(
        l.reserve(&format!("{p}zero"), 0, 1).await,
        Err(LedgerError::Insufficient { .. })
    ));
}

/// A reservation dropped without settle or release stops holding credits (at once or soon).
pub(super) async fn dropped_reservation_is_released(l: &dyn Ledger, p: &str) {
    let k = format!("{p}dropped");
    let r = l.reserve(&k, 100, 100).await.unwrap();
    drop(r);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match l.reserve(&k, 100, 100).await {
            Ok(r) => {
                l.release(r).await;
                break;
            }
            Err(LedgerError::Insufficient { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("dropped reservation still held: {e}"),
        }
    }
    assert_eq!(l.spent(&k).await.unwrap(), 0);
}

/// 100 tasks spread over `ledgers` (one store seen by each) hammer key `{p}hot` with a balance of
/// 1050 and requests that reserve and cost 100 until refused. Admission happens only while
/// spent + reserved < balance, so exactly 11 requests get in whatever the interleaving: the
/// overdraw (50) stays under one in-flight reservation. Every ledger then reports 1100 spent.
pub(super) async fn concurrent_reserves_are_bounded(ledgers: &[Arc<dyn Ledger>], p: &str) {
    const BALANCE: u64 = 1050;
    const COST: u64 = 100;
    let key: Arc<str> = Arc::from(format!("{p}hot"));
    let admitted = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    let most_in_flight = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let l = ledgers[i as usize % ledgers.len()].clone();
        let key = key.clone();
        let (admitted, in_flight, most) =
            (admitted.clone(), in_flight.clone(), most_in_flight.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match l.reserve(&key, BALANCE, COST).await {
                    Ok(r) => {
                        admitted.fetch_add(1, Ordering::SeqCst);
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(i % 4)).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        l.settle(r, COST).await.unwrap();
                    }
                    Err(LedgerError::Insufficient { balance, spent }) => {
                        assert_eq!(balance, BALANCE);
                        assert!(spent >= BALANCE);
                        break;
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(admitted.load(Ordering::SeqCst), 11);
    assert!(most_in_flight.load(Ordering::SeqCst) >= 1);
    for l in ledgers {
        assert_eq!(l.spent(&key).await.unwrap(), 1100);
    }
}
