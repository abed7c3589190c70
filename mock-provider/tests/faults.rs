//! Fault, connection-counting and recording tests.

mod support;

use std::time::{Duration, Instant};

use mock_provider::{Fault, MockProvider};
use support::{post, Conn};

const CHAT: &str = "/v1/chat/completions";

#[test]
fn fault_for_key_429_with_retry_after() {
    let mock = MockProvider::new()
        .fault_for_key(
            "sk-limited",
            Fault::Status {
                code: 429,
                retry_after: Some("7".into()),
                body: r#"{"error":{"message":"slow down","type":"requests"}}"#.into(),
            },
        )
        .start();
    let mut c = Conn::open(mock.addr());
    for auth in [
        ("authorization", "Bearer sk-limited"),
        ("x-api-key", "sk-limited"),
    ] {
        let r = c
            .send("POST", CHAT, &[auth], r#"{"model":"m"}"#)
            .expect("response");
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("7"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json()["error"]["message"], "slow down");
    }
    let r = c
        .send(
            "POST",
            CHAT,
            &[("authorization", "Bearer sk-other")],
            r#"{"model":"m"}"#,
        )
        .expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("retry-after"), None);
    let r = c.post(CHAT, r#"{"model":"m"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(mock.request_count(), 4);
}

#[test]
fn drop_closes_without_answer() {
    let mock = MockProvider::new().fault(Fault::Drop).start();
    let mut c = Conn::open(mock.addr());
    let err = c
        .send("POST", CHAT, &[], r#"{"model":"m"}"#)
        .err()
        .expect("no response");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    // the request was read (and recorded) before the close
    assert_eq!(mock.request_count(), 1);
    assert_eq!(mock.requests()[0].json()["model"], "m");
}

#[test]
fn drop_mid_stream_cuts_after_n_chunks() {
    let mock = MockProvider::new()
        .chunks(5)
        .fault(Fault::DropMidStream { after_chunks: 2 })
        .start();
    let mut c = Conn::open(mock.addr());
    let r = c.post(CHAT, r#"{"model":"m","stream":true}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.chunks.len(), 2);
    assert!(!r.complete, "no terminating chunk");
    assert_eq!(r.data_json().len(), 2);
    assert!(c.closed_by_peer());
}

#[test]
fn drop_mid_stream_json_sends_half_the_body() {
    let mock = MockProvider::new()
        .fault(Fault::DropMidStream { after_chunks: 0 })
        .start();
    let r = post(mock.addr(), CHAT, r#"{"model":"m"}"#);
    assert_eq!(r.status, 200);
    let announced: usize = r
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    assert!(!r.complete);
    assert_eq!(r.body.len(), announced / 2);
}

#[test]
fn hang_never_answers_and_delay_waits() {
    let mock = MockProvider::new()
        .fault_for_key("hang", Fault::Hang)
        .fault_for_key("slow", Fault::Delay(Duration::from_millis(150)))
        .start();
    let mut c = Conn::open(mock.addr());
    c.set_read_timeout(Duration::from_millis(300));
    let r = c.send("POST", CHAT, &[("x-api-key", "hang")], r#"{"model":"m"}"#);
    let err = r.err().expect("no answer");
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    assert_eq!(mock.request_count(), 1);

    let mut c = Conn::open(mock.addr());
    let t0 = Instant::now();
    let r = c
        .send(
            "POST",
            CHAT,
            &[("authorization", "bearer slow")],
            r#"{"model":"m"}"#,
        )
        .expect("response");
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(140));
}

#[test]
fn faults_can_change_while_running() {
    let mock = MockProvider::new().start();
    assert_eq!(post(mock.addr(), CHAT, "{}").status, 200);
    mock.set_fault(Some(Fault::Status {
        code: 500,
        retry_after: None,
        body: "{}".into(),
    }));
    assert_eq!(post(mock.addr(), CHAT, "{}").status, 500);
    mock.set_fault(None);
    assert_eq!(post(mock.addr(), CHAT, "{}").status, 200);
}

#[test]
fn keep_alive_counts_one_connection() {
    let mock = MockProvider::new().start();
    let mut c = Conn::open(mock.addr());
    for stream in ["false", "true", "false"] {
        let r = c.post(CHAT, &format!(r#"{{"model":"m","stream":{stream}}}"#));
        assert_eq!(r.status, 200);
        assert!(r.complete);
    }
    assert_eq!(mock.connections(), 1);
    assert_eq!(mock.request_count(), 3);
    let _ = post(mock.addr(), CHAT, "{}");
    assert_eq!(mock.connections(), 2);
}

#[test]
fn records_requests() {
    let mock = MockProvider::new().start();
    let mut c = Conn::open(mock.addr());
    c.send(
        "POST",
        "/v1/chat/completions?api-version=1",
        &[("Authorization", "Bearer sk-abc"), ("X-Custom", "one")],
        r#"{"model":"rec","messages":[]}"#,
    )
    .expect("response");
    c.send("GET", "/v1/models", &[("x-api-key", "k2")], "")
        .expect("response");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(mock.request_count(), 2);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions?api-version=1");
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(r.header("x-custom"), Some("one"));
    assert_eq!(r.header("X-CUSTOM"), Some("one"));
    assert!(r.headers.iter().all(|(k, _)| *k == k.to_ascii_lowercase()));
    assert_eq!(r.headers[0].0, "host");
    assert_eq!(r.credential(), Some("sk-abc"));
    assert_eq!(r.json()["model"], "rec");
    assert_eq!(reqs[1].method, "GET");
    assert_eq!(reqs[1].credential(), Some("k2"));
    assert!(reqs[1].json().is_null());
    mock.clear();
    assert!(mock.requests().is_empty());
    assert_eq!(mock.request_count(), 0);
}

#[test]
fn recording_off_still_counts() {
    let mock = MockProvider::new().record(false).start();
    assert_eq!(post(mock.addr(), CHAT, "{}").status, 200);
    assert!(mock.requests().is_empty());
    assert_eq!(mock.request_count(), 1);
}

#[test]
fn dropping_the_handle_stops_the_server() {
    let mock = MockProvider::new().fault(Fault::Hang).start();
    let addr = mock.addr();
    let mut c = Conn::open(addr);
    c.set_read_timeout(Duration::from_secs(5));
    std::thread::scope(|s| {
        let waiter = s.spawn(move || c.send("POST", CHAT, &[], "{}").is_err());
        std::thread::sleep(Duration::from_millis(100));
        drop(mock);
        assert!(
            waiter.join().expect("join"),
            "hanging request ends with the server"
        );
    });
    assert!(std::net::TcpStream::connect(addr).is_err());
}
