//! Providers that misbehave (issue #9): bodies that are not what they claim,
//! streams cut short or never ending, huge or dripping answers (TLS that cannot
//! be trusted is in `upstream_tls.rs`). The client always gets the provider's bytes or one clear
//! OpenAI-shaped error, each request is counted once, and memory stays bounded.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

const STREAM: &str = r#"{"model":"gpt-4o","stream":true,"messages":[]}"#;

fn gateway(url: &str, config: &str) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", url, "sk-managed-openai")
        .config(config)
        .start()
}

fn on(mock: &MockHandle) -> Gateway {
    gateway(&format!("{}/v1", mock.url()), "")
}

fn status(code: u16, body: &str) -> Fault {
    Fault::Status {
        code,
        retry_after: None,
        body: body.into(),
    }
}

/// Requests counted for gpt-4o, once settlement has caught up with `expected`
/// (or after 3 s): the metrics text.
async fn counted(gw: &Gateway, expected: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let m = gw.scrape().await;
        let n = metric_sum(&m, "tollgate_requests_total", &[("model", "gpt-4o")]);
        if n >= expected || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return gw.scrape().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_counted_once(gw: &Gateway, status: &str) -> String {
    let m = counted(gw, 1.0).await;
    assert_eq!(
        metric_sum(&m, "tollgate_requests_total", &[("model", "gpt-4o")]),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(
            &m,
            "tollgate_requests_total",
            &[("model", "gpt-4o"), ("status", status)]
        ),
        1.0,
        "{m}"
    );
    m
}

/// The gateway's resident memory, KiB.
fn rss_kib(gw: &Gateway) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn assert_still_serves(gw: &Gateway, mock: &MockHandle) {
    mock.set_fault(None);
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_200_that_is_not_json_is_relayed_as_is_and_counted_once() {
    let mock = MockProvider::new()
        .fault(status(200, "{\"id\":\"x\",\"choices\":[{"))
        .start();
    let gw = on(&mock);
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-model"], "gpt-4o");
    assert_eq!(resp.text().await.unwrap(), "{\"id\":\"x\",\"choices\":[{");
    let m = assert_counted_once(&gw, "200").await;
    assert_eq!(
        metric_sum(&m, "tollgate_tokens_total", &[("model", "gpt-4o")]),
        0.0,
        "{m}"
    );
    assert_eq!(mock.request_count(), 1);
    assert_still_serves(&gw, &mock).await;
}

#[tokio::test]
async fn a_200_carrying_an_error_body_is_relayed_and_costs_nothing() {
    let body = r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#;
    let mock = MockProvider::new().fault(status(200, body)).start();
    let gw = on(&mock);
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), body);
    let m = assert_counted_once(&gw, "200").await;
    assert_eq!(metric_sum(&m, "tollgate_tokens_total", &[]), 0.0, "{m}");
    assert_eq!(
        metric_sum(&m, "tollgate_credits_spent_microusd_total", &[]),
        0.0,
        "{m}"
    );
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn a_truncated_stream_ends_in_an_error_event_and_is_counted_once() {
    let mock = MockProvider::new()
        .chunks(5)
        .fault(Fault::DropMidStream { after_chunks: 2 })
        .start();
    let gw = on(&mock);
    let mut resp = gw.post("/v1/chat/completions", STREAM).await;
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    let ended = loop {
        match resp.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => break "clean end",
            Err(_) => break "cut",
        }
    };
    let text = String::from_utf8(got).unwrap();
    assert_eq!(ended, "cut", "no clean end of body: {text}");
    assert!(text.starts_with("data: {"), "{text}");
    assert!(text.contains("\"upstream_stream_cut\""), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    let m = assert_counted_once(&gw, "200").await;
    assert_eq!(
        metric_sum(&m, "tollgate_responses_aborted_total", &[]),
        1.0,
        "{m}"
    );
    assert_eq!(
        mock.request_count(),
        1,
        "never retried after the first byte"
    );
    // A JSON body cut short is cut short for the client too.
    mock.set_fault(Some(Fault::DropMidStream { after_chunks: 0 }));
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.bytes().await.is_err(),
        "a truncated JSON body must not end cleanly"
    );
    assert_still_serves(&gw, &mock).await;
}

#[tokio::test]
async fn huge_response_headers_are_relayed_or_a_clear_502() {
    let mock = MockProvider::new().start();
    let gw = on(&mock);
    // Within pingora's limits (1 MiB, 256 headers): relayed.
    mock.set_fault(Some(Fault::HugeHeaders {
        count: 1,
        size: 200 * 1024,
    }));
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-mock-pad-0"].len(), 200 * 1024);
    assert!(resp.json::<serde_json::Value>().await.is_ok());
    // Beyond them: one clear error, never a hang or a half answer.
    for (count, size) in [(1, 2 * 1024 * 1024), (300, 8), (40, 64 * 1024)] {
        mock.set_fault(Some(Fault::HugeHeaders { count, size }));
        let started = Instant::now();
        let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            error_code(resp).await,
            (502, "upstream_error".into()),
            "{count} × {size}"
        );
    }
    assert_still_serves(&gw, &mock).await;
    let m = counted(&gw, 5.0).await;
    assert_eq!(
        metric_sum(&m, "tollgate_requests_total", &[("model", "gpt-4o")]),
        5.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(&m, "tollgate_requests_total", &[("status", "502")]),
        3.0,
        "{m}"
    );
}

/// Reads `bytes` of the answer (or until it ends), then drops it.
async fn read_some(mut resp: reqwest::Response, bytes: usize) -> usize {
    let mut got = 0;
    while got < bytes {
        match resp.chunk().await {
            Ok(Some(c)) => got += c.len(),
            _ => break,
        }
    }
    got
}

const SSE_EVENT: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello hello hello hello\"}}]}\n\n";

/// Endless answers: SSE events, one SSE event that never ends, JSON.
fn endless_cases() -> [(&'static str, String, String); 3] {
    [
        ("text/event-stream", SSE_EVENT.repeat(20), STREAM.into()),
        (
            "text/event-stream",
            format!("data: {}", "hello ".repeat(2000)),
            STREAM.into(),
        ),
        ("application/json", "hello ".repeat(2000), chat("gpt-4o")),
    ]
}

#[tokio::test]
async fn an_endless_body_to_a_stalled_client_is_not_buffered() {
    let mock = MockProvider::new().start();
    let gw = on(&mock);
    for (content_type, chunk, body) in endless_cases() {
        mock.set_fault(Some(Fault::Endless {
            content_type: content_type.into(),
            chunk,
        }));
        let before = rss_kib(&gw);
        // The client reads the header, then nothing: the provider could send
        // hundreds of MB a second; the gateway must wait for the client instead.
        let resp = gw.post("/v1/chat/completions", body).await;
        assert_eq!(resp.status(), 200);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let mid = rss_kib(&gw);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let end = rss_kib(&gw);
        drop(resp);
        let (grown, growing) = (end.saturating_sub(before), end.saturating_sub(mid));
        assert!(
            grown < 48 * 1024 && growing < 8 * 1024,
            "{content_type}: RSS {before} → {mid} → {end} KiB"
        );
    }
    assert_still_serves(&gw, &mock).await;
    let m = counted(&gw, 4.0).await;
    assert_eq!(
        metric_sum(&m, "tollgate_requests_total", &[("model", "gpt-4o")]),
        4.0,
        "{m}"
    );
}

#[tokio::test]
async fn an_endless_body_to_a_fast_client_is_streamed_not_accumulated() {
    let mock = MockProvider::new().start();
    let gw = on(&mock);
    // Relayed bytes per case (normal SSE is parsed event by event: slower in a
    // debug build), and the growth allowed between the first 8 MB and the end:
    // a gateway that kept what it relayed would grow by all of it. Transient
    // batches of a few MB come and go under load.
    for ((content_type, chunk, body), (take, bound)) in
        endless_cases()
            .into_iter()
            .zip([(16, None), (72, Some(40)), (136, Some(40))])
    {
        mock.set_fault(Some(Fault::Endless {
            content_type: content_type.into(),
            chunk,
        }));
        let mut resp = gw.post("/v1/chat/completions", body).await;
        assert_eq!(resp.status(), 200);
        let (mut got, mut early) = (0usize, None);
        while got < take << 20 {
            got += resp.chunk().await.unwrap().unwrap().len();
            if got >= 8 << 20 && early.is_none() {
                early = Some(rss_kib(&gw));
            }
        }
        let (early, late) = (early.unwrap(), rss_kib(&gw));
        if let Some(bound) = bound {
            assert!(
                late.saturating_sub(early) < bound * 1024,
                "{content_type}: RSS {early} KiB after 8 MB, {late} KiB after {take} MB"
            );
        }
    }
    assert_still_serves(&gw, &mock).await;
    let m = counted(&gw, 4.0).await;
    assert_eq!(
        metric_sum(&m, "tollgate_requests_total", &[("model", "gpt-4o")]),
        4.0,
        "{m}"
    );
}

#[tokio::test]
async fn a_dripping_body_is_relayed_as_it_arrives() {
    let mock = MockProvider::new()
        .fault(Fault::Drip(Duration::from_millis(100)))
        .start();
    let gw = on(&mock);
    // A stream (the client asked for usage itself, so nothing is held back).
    let body =
        r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let started = Instant::now();
    let mut resp = gw.post("/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    while started.elapsed() < Duration::from_millis(1500) {
        got.extend_from_slice(&resp.chunk().await.unwrap().unwrap());
    }
    // About one byte per 100 ms arrived, not all at the end.
    assert!((5..40).contains(&got.len()), "{} bytes", got.len());
    assert!(got.starts_with(b"data: {"), "{got:?}");
    drop(resp);
    // A JSON body dripping in arrives whole.
    mock.set_fault(Some(Fault::Drip(Duration::from_millis(1))));
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["usage"]["total_tokens"], 18);
    // A drip slower than the idle timeout is cut: never a clean, complete answer.
    let gw = gateway(
        &format!("{}/v1", mock.url()),
        "upstream:\n  idle_timeout: 300ms\n",
    );
    mock.set_fault(Some(Fault::Drip(Duration::from_millis(800))));
    let started = Instant::now();
    let sent = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(ACCESS_KEY)
        .body(chat("gpt-4o"))
        .send()
        .await;
    if let Ok(resp) = sent {
        assert_eq!(resp.status(), 200);
        assert!(resp.bytes().await.is_err(), "cut, not ended cleanly");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let m = counted(&gw, 1.0).await;
    assert_eq!(
        metric_sum(&m, "tollgate_requests_total", &[("model", "gpt-4o")]),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(&m, "tollgate_responses_aborted_total", &[]),
        1.0,
        "{m}"
    );
}

/// One request against the current fault, by a client's own key (no managed
/// key health, so repeated failures never open a circuit).
async fn faulty_request(gw: &Gateway, stream: bool) -> u16 {
    let body = if stream {
        STREAM.to_string()
    } else {
        chat("gpt-4o")
    };
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-client-own-key")
        .body(body)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    read_some(resp, 256 * 1024).await;
    code
}

#[tokio::test]
async fn three_hundred_faulty_requests_leak_nothing() {
    let faults = [
        status(200, "{not json"),
        status(200, r#"{"error":{"message":"x","type":"server_error"}}"#),
        status(500, r#"{"error":{"message":"x","type":"server_error"}}"#),
        Fault::Drop,
        Fault::DropMidStream { after_chunks: 1 },
        Fault::HugeHeaders {
            count: 1,
            size: 2 << 20,
        },
        Fault::HugeHeaders {
            count: 1,
            size: 100 << 10,
        },
        Fault::Endless {
            content_type: "text/event-stream".into(),
            chunk: "data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n".repeat(100),
        },
    ];
    let mock = MockProvider::new().record(false).start();
    let gw = on(&mock);
    let run = |n: usize| {
        let (gw, mock, faults) = (&gw, &mock, &faults);
        async move {
            for i in 0..n {
                mock.set_fault(Some(faults[i % faults.len()].clone()));
                faulty_request(gw, i % 3 == 0).await;
            }
        }
    };
    run(80).await; // warm-up: pools, buffers, allocator arenas
    let before = rss_kib(&gw);
    let started = Instant::now();
    run(300).await;
    let grown = rss_kib(&gw).saturating_sub(before);
    assert!(
        grown < 20 * 1024,
        "RSS grew {grown} KiB over 300 faulty requests"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_still_serves(&gw, &mock).await;
    // Every request counted once.
    let m = counted(&gw, 381.0).await;
    assert_eq!(
        metric_sum(&m, "tollgate_requests_total", &[("model", "gpt-4o")]),
        381.0
    );
}

/// A provider of raw bytes: the n-th request it reads (over all connections) is
/// answered with `answers[n]` (the last one again past the end); an answer that
/// is not a whole response is followed by a close. Returns its URL and the
/// count of requests read.
async fn raw_provider(
    answers: Vec<&'static [u8]>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (answers, seen) = (answers.clone(), seen.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: a header, then its Content-Length of body.
                    let need = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            break end + 4 + len;
                        }
                        let mut more = [0u8; 4096];
                        match conn.read(&mut more).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&more[..n]),
                        }
                    };
                    while buf.len() < need {
                        let mut more = [0u8; 4096];
                        match conn.read(&mut more).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&more[..n]),
                        }
                    }
                    buf.drain(..need);
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let answer = answers[n.min(answers.len() - 1)];
                    if conn.write_all(answer).await.is_err() || !answer.ends_with(b"}") {
                        return;
                    }
                }
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn a_request_that_got_part_of_an_answer_is_never_sent_again() {
    let ok: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
    let (url, count) = raw_provider(vec![ok, b"HTTP/1.1 200 OK\r\nContent-Le"]).await;
    let gw = gateway(&url, "");
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 200);
    // The second request goes out on the pooled connection, which breaks after
    // a few bytes of the answer: the provider may have run it, so it is not
    // retried on a fresh connection.
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(error_code(resp).await.0, 502);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn framing_fields_reach_the_client_once_and_an_unasked_101_is_refused() {
    let twice: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
        content-length: 2\r\ncontent-length: 2\r\n\r\n{}";
    let (url, _) = raw_provider(vec![twice]).await;
    let gw = gateway(&url, "");
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get_all("content-length").iter().count(), 1);
    assert_eq!(resp.text().await.unwrap(), "{}");

    let upgrade: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n";
    let (url, _) = raw_provider(vec![upgrade]).await;
    let gw = gateway(&url, "");
    let resp = gw.post("/v1/chat/completions", chat("gpt-4o")).await;
    assert_eq!(error_code(resp).await.0, 502);
}
