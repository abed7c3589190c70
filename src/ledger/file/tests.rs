//! Tests of `FileLedger`: the shared conformance suite, durability, torn tails, compaction, kill -9.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::super::conformance;
use super::super::record::{self, Op};
use super::*;

const FAST: Duration = Duration::from_millis(10);

/// A directory of one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "tollgate-ledger-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

#[tokio::test]
async fn arithmetic() {
    let dir = temp_dir("arith");
    let l = FileLedger::open(&dir.join("ledger"), FAST).unwrap();
    conformance::arithmetic(&*l, "").await;
    conformance::dropped_reservation_is_released(&*l, "").await;
    // Totals survive a reopen; reservations do not.
    l.flush().await.unwrap();
    drop(l);
    let l = FileLedger::open(&dir.join("ledger"), FAST).unwrap();
    assert_eq!(l.spent("a").await.unwrap(), 1010);
    assert_eq!(l.spent("b").await.unwrap(), 42);
    assert_eq!(l.spent("never").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reserves_are_bounded() {
    let dir = temp_dir("concurrent");
    let l: Arc<dyn Ledger> = FileLedger::open(&dir.join("ledger"), FAST).unwrap();
    conformance::concurrent_reserves_are_bounded(&[l], "").await;
}

async fn settle_many(l: &FileLedger, n: u64) {
    for i in 0..n {
        let key = format!("key-{}", i % 7);
        let r = l.reserve(&key, u64::MAX, 10).await.unwrap();
        l.settle(r, i + 1).await.unwrap();
        l.record("free", 1).await.unwrap();
    }
}

async fn expected_totals(l: &FileLedger) -> Vec<u64> {
    let mut v = Vec::new();
    for k in 0..7 {
        v.push(l.spent(&format!("key-{k}")).await.unwrap());
    }
    v.push(l.spent("free").await.unwrap());
    v
}

#[tokio::test]
async fn settled_records_reach_the_file_within_the_flush_interval() {
    let dir = temp_dir("durable");
    let path = dir.join("ledger");
    let l = FileLedger::open(&path, FAST).unwrap();
    settle_many(&l, 1000).await;
    let want = expected_totals(&l).await;
    assert_eq!(want.iter().sum::<u64>(), (1..=1000).sum::<u64>() + 1000);
    tokio::time::sleep(FAST * 20).await;
    // No flush, no orderly drop: the writer thread and its channel are leaked as they are.
    std::mem::forget(l);
    let again = FileLedger::open(&path, FAST).unwrap();
    assert_eq!(expected_totals(&again).await, want);
}

#[tokio::test]
async fn a_torn_or_garbage_tail_is_ignored_and_cut() {
    let dir = temp_dir("torn");
    let path = dir.join("ledger");
    let l = FileLedger::open(&path, FAST).unwrap();
    settle_many(&l, 50).await;
    let want = expected_totals(&l).await;
    l.flush().await.unwrap();
    drop(l);
    let good_len = std::fs::metadata(&path).unwrap().len();

    // A record cut short (as by a crash mid-write) ...
    let mut torn = Vec::new();
    record::encode(&mut torn, Op::Add, "key-0", 1_000_000);
    torn.truncate(torn.len() - 2);
    // ... and plain garbage after it.
    torn.extend_from_slice(b"\xff\xff\x00garbage");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&torn)
        .unwrap();

    let l = FileLedger::open(&path, FAST).unwrap();
    assert_eq!(expected_totals(&l).await, want);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    let kept = std::fs::read(writer::sibling(&path, "discarded")).unwrap();
    assert_eq!(kept, torn);

    // New records follow the good ones and survive the next reopen.
    l.record("key-0", 5).await.unwrap();
    l.flush().await.unwrap();
    drop(l);
    let l = FileLedger::open(&path, FAST).unwrap();
    assert_eq!(l.spent("key-0").await.unwrap(), want[0] + 5);
}

#[tokio::test]
async fn a_bit_flip_in_the_last_record_drops_only_that_record() {
    let dir = temp_dir("flip");
    let path = dir.join("ledger");
    let l = FileLedger::open(&path, FAST).unwrap();
    l.record("k", 1).await.unwrap();
    l.record("k", 2).await.unwrap();
    l.record("k", 4).await.unwrap();
    l.flush().await.unwrap();
    drop(l);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let l = FileLedger::open(&path, FAST).unwrap();
    assert_eq!(l.spent("k").await.unwrap(), 3);
}

#[tokio::test]
async fn other_versions_and_foreign_files_are_refused_untouched() {
    let dir = temp_dir("version");
    let path = dir.join("ledger");
    let mut v2 = record::header().to_vec();
    v2[8] = 2;
    std::fs::write(&path, &v2).unwrap();
    let err = FileLedger::open(&path, FAST).err().unwrap();
    assert!(err.to_string().contains("version 2"), "{err}");
    std::fs::write(&path, b"# some config file\n").unwrap();
    let err = FileLedger::open(&path, FAST).err().unwrap();
    assert!(err.to_string().contains("not a ledger file"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"# some config file\n");
    // A torn header (crash while creating the file) starts afresh.
    std::fs::write(&path, &record::header()[..5]).unwrap();
    let l = FileLedger::open(&path, FAST).unwrap();
    assert_eq!(l.spent("k").await.unwrap(), 0);
}

#[tokio::test]
async fn the_log_is_compacted_when_it_grows_and_totals_survive() {
    let dir = temp_dir("compact");
    let path = dir.join("ledger");
    let l = FileLedger::open_with(&path, Duration::from_millis(1), 256).unwrap();
    for round in 0..20 {
        settle_many(&l, 100).await;
        l.flush().await.unwrap();
        // Each round adds ~4 KiB of records; compaction keeps the file near 8 snapshot records.
        assert!(
            std::fs::metadata(&path).unwrap().len() < 2048,
            "round {round}: file not compacted"
        );
    }
    let want = expected_totals(&l).await;
    drop(l);
    // Reopen from a snapshot, and compaction on open of a long log.
    let l = FileLedger::open_with(&path, FAST, 1 << 20).unwrap();
    assert_eq!(expected_totals(&l).await, want);
    settle_many(&l, 300).await;
    let want = expected_totals(&l).await;
    l.flush().await.unwrap();
    drop(l);
    let before = std::fs::metadata(&path).unwrap().len();
    let l = FileLedger::open_with(&path, FAST, 0).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < before);
    assert_eq!(expected_totals(&l).await, want);
}

#[tokio::test]
async fn a_second_process_appending_stops_compaction() {
    let dir = temp_dir("shared");
    let path = dir.join("ledger");
    let a = FileLedger::open_with(&path, FAST, 64).unwrap();
    let b = FileLedger::open_with(&path, FAST, 64).unwrap();
    a.record("k", 1).await.unwrap();
    a.flush().await.unwrap();
    b.record("k", 10).await.unwrap();
    b.flush().await.unwrap();
    for _ in 0..50 {
        a.record("k", 100).await.unwrap();
        b.record("k", 1000).await.unwrap();
    }
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    drop((a, b));
    // Neither replaced the file under the other: every record of both is there.
    let l = FileLedger::open(&path, FAST).unwrap();
    assert_eq!(l.spent("k").await.unwrap(), 11 + 50 * 1100);
}

const CHILD_ENV: &str = "TOLLGATE_LEDGER_KILL9_CHILD";

/// Not a test by itself: the child process of `survives_kill_9`, doing nothing unless asked.
#[test]
fn kill9_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let l = FileLedger::open(std::path::Path::new(&path), FAST).unwrap();
        settle_many(&l, 2000).await;
        let want = expected_totals(&l).await;
        tokio::time::sleep(FAST * 20).await;
        println!("READY {want:?}");
        std::io::stdout().flush().unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

#[test]
fn survives_kill_9() {
    let dir = temp_dir("kill9");
    let path = dir.join("ledger");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "ledger::file::tests::kill9_child", "--nocapture"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("READY "))
        .unwrap_or_else(|| panic!("child never became ready"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let got = rt.block_on(async {
        let l = FileLedger::open(&path, FAST).unwrap();
        expected_totals(&l).await
    });
    assert_eq!(format!("READY {got:?}"), ready);
}
