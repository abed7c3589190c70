//! Wire-format tests: each route's JSON and SSE answers, pacing, and HTTP/2.

mod support;

use std::time::Duration;

use mock_provider::MockProvider;
use support::{post, Conn};

#[test]
fn chat_json() {
    let mock = MockProvider::new().usage(5, 9).start();
    let r = post(
        mock.addr(),
        "/v1/chat/completions",
        r#"{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert_eq!(j["model"], "gpt-test");
    assert!(j["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("chatcmpl-")));
    assert!(j["created"].as_u64().is_some());
    assert_eq!(j["choices"][0]["index"], 0);
    assert_eq!(j["choices"][0]["message"]["role"], "assistant");
    assert_eq!(j["choices"][0]["message"]["content"], "hello hello hello ");
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    let u = &j["usage"];
    assert_eq!(
        (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()),
        (Some(5), Some(9))
    );
    assert_eq!(u["total_tokens"], 14);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 0);
}

#[test]
fn any_prefix_routes_and_model_escapes_survive() {
    let mock = MockProvider::new().start();
    for path in [
        "/openai/v1/chat/completions",
        "/v1beta/openai/chat/completions",
        "/chat/completions",
    ] {
        let r = post(mock.addr(), path, r#"{"model":"we\"ird\u00e9"}"#);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["model"], "we\"irdé", "{path}");
    }
}

#[test]
fn chat_sse_without_usage() {
    let mock = MockProvider::new().start();
    let r = post(
        mock.addr(),
        "/v1/chat/completions",
        r#"{"model":"m1","stream":true}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.complete);
    // every event is its own HTTP chunk
    assert_eq!(r.chunks.len(), 5);
    for (_, c) in &r.chunks {
        assert_eq!(support::parse_events(&String::from_utf8_lossy(c)).len(), 1);
    }
    let events = r.events();
    assert_eq!(events.last().map(|e| e.1.as_str()), Some("[DONE]"));
    let data = r.data_json();
    assert_eq!(data.len(), 4);
    assert_eq!(data[0]["choices"][0]["delta"]["role"], "assistant");
    for d in &data {
        assert_eq!(d["object"], "chat.completion.chunk");
        assert_eq!(d["model"], "m1");
        assert_eq!(d["id"], data[0]["id"]);
    }
    let text: String = data
        .iter()
        .filter_map(|d| d["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "hello hello hello ");
    assert!(data[..3]
        .iter()
        .all(|d| d["choices"][0]["finish_reason"].is_null()));
    assert_eq!(data[3]["choices"][0]["finish_reason"], "stop");
    assert!(data.iter().all(|d| d.get("usage").is_none()));
}

#[test]
fn chat_sse_with_usage() {
    let mock = MockProvider::new().chunks(2).usage(3, 4).start();
    let body = r#"{"model":"m2","stream":true,"stream_options":{"include_usage":true}}"#;
    let r = post(mock.addr(), "/v1/chat/completions", body);
    assert_eq!(r.chunks.len(), 5); // 2 content + stop + usage + [DONE]
    let data = r.data_json();
    assert_eq!(data.len(), 4);
    assert_eq!(data[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(data[3]["choices"], serde_json::json!([]));
    assert_eq!(data[3]["usage"]["prompt_tokens"], 3);
    assert_eq!(data[3]["usage"]["completion_tokens"], 4);
    assert_eq!(data[3]["usage"]["total_tokens"], 7);
    assert_eq!(
        r.events().last().map(|e| e.1.clone()),
        Some("[DONE]".to_owned())
    );
}

#[test]
fn chunk_delay_spaces_content_chunks() {
    let mock = MockProvider::new()
        .chunks(3)
        .chunk_delay(Duration::from_millis(100))
        .start();
    let r = post(
        mock.addr(),
        "/v1/chat/completions",
        r#"{"model":"m","stream":true}"#,
    );
    assert!(r.complete);
    let times: Vec<_> = r.chunks.iter().map(|(t, _)| *t).collect();
    assert_eq!(times.len(), 5);
    // headers come at once, each content chunk waits its delay
    assert!(times[0] - r.head_at >= Duration::from_millis(80));
    for w in times[..3].windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(80),
            "content chunks {gap:?} apart"
        );
    }
}

#[test]
fn chunk_size_sets_text_length() {
    let mock = MockProvider::new().chunks(2).chunk_size(40).start();
    let j = post(mock.addr(), "/v1/chat/completions", r#"{"model":"m"}"#).json();
    assert_eq!(
        j["choices"][0]["message"]["content"].as_str().map(str::len),
        Some(80)
    );
}

#[test]
fn anthropic_sse_event_order() {
    let mock = MockProvider::new().usage(20, 30).start();
    let r = post(
        mock.addr(),
        "/v1/messages",
        r#"{"model":"claude-x","max_tokens":10,"stream":true,"messages":[]}"#,
    );
    assert_eq!(r.status, 200);
    assert!(r.complete);
    let names: Vec<_> = r.events().into_iter().map(|(e, _)| e).collect();
    let expected = [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ];
    assert_eq!(names, expected);
    let data = r.data_json();
    for (d, name) in data.iter().zip(expected) {
        assert_eq!(d["type"], name);
    }
    assert_eq!(data[0]["message"]["model"], "claude-x");
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 20);
    assert_eq!(data[0]["message"]["usage"]["output_tokens"], 1);
    assert_eq!(data[3]["delta"]["type"], "text_delta");
    assert_eq!(data[7]["delta"]["stop_reason"], "end_turn");
    assert_eq!(data[7]["usage"]["output_tokens"], 30);
}

#[test]
fn anthropic_json() {
    let mock = MockProvider::new().start();
    let j = post(
        mock.addr(),
        "/v1/messages",
        r#"{"model":"claude-x","max_tokens":10}"#,
    )
    .json();
    assert_eq!(j["type"], "message");
    assert!(j["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
    assert_eq!(j["model"], "claude-x");
    assert_eq!(j["content"][0]["text"], "hello hello hello ");
    assert_eq!(j["stop_reason"], "end_turn");
    assert!(j["stop_sequence"].is_null());
    assert_eq!(j["usage"]["input_tokens"], 11);
    assert_eq!(j["usage"]["output_tokens"], 7);
    assert_eq!(j["usage"]["cache_read_input_tokens"], 0);
}

#[test]
fn responses_api() {
    let mock = MockProvider::new().start();
    let j = post(
        mock.addr(),
        "/v1/responses",
        r#"{"model":"gpt-r","input":"hi"}"#,
    )
    .json();
    assert_eq!(j["object"], "response");
    assert_eq!(j["status"], "completed");
    assert_eq!(j["model"], "gpt-r");
    assert_eq!(j["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(j["output"][0]["content"][0]["text"], "hello hello hello ");
    assert_eq!(j["usage"]["total_tokens"], 18);
    assert_eq!(j["usage"]["output_tokens_details"]["reasoning_tokens"], 0);

    let r = post(
        mock.addr(),
        "/v1/responses",
        r#"{"model":"gpt-r","input":"hi","stream":true}"#,
    );
    let events = r.events();
    assert_eq!(events[0].0, "response.created");
    assert_eq!(
        events.last().map(|e| e.0.as_str()),
        Some("response.completed")
    );
    let deltas = events
        .iter()
        .filter(|e| e.0 == "response.output_text.delta")
        .count();
    assert_eq!(deltas, 3);
    for (i, (name, data)) in events.iter().enumerate() {
        let d: serde_json::Value = serde_json::from_str(data).expect("json");
        assert_eq!(&d["type"], name.as_str());
        assert_eq!(d["sequence_number"], i);
    }
    let last: serde_json::Value = serde_json::from_str(&events[events.len() - 1].1).expect("json");
    assert_eq!(last["response"]["usage"]["input_tokens"], 11);
}

#[test]
fn legacy_completions_embeddings_models_and_errors() {
    let mock = MockProvider::new().start();
    let mut c = Conn::open(mock.addr());
    let j = c
        .post("/v1/completions", r#"{"model":"inst","prompt":"x"}"#)
        .json();
    assert_eq!(
        (j["object"].as_str(), j["choices"][0]["text"].as_str()),
        (Some("text_completion"), Some("hello hello hello "))
    );
    let r = c.post("/v1/completions", r#"{"model":"inst","stream":true}"#);
    let data = r.data_json();
    assert_eq!(data.len(), 4);
    assert_eq!(data[3]["choices"][0]["finish_reason"], "stop");

    let j = c
        .post("/v1/embeddings", r#"{"model":"emb","input":["a","b"]}"#)
        .json();
    assert_eq!(j["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(j["data"][1]["index"], 1);
    assert_eq!(
        j["data"][0]["embedding"],
        serde_json::json!([0.1, 0.2, 0.3])
    );
    assert_eq!(j["usage"]["prompt_tokens"], 11);
    assert_eq!(j["model"], "emb");

    let r = c.send("GET", "/v1/models", &[], "").expect("models");
    assert_eq!(r.json()["data"][0]["object"], "model");

    let r = c.post("/v1/nothing/here", "{}");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"].is_string());

    let r = c
        .send(
            "POST",
            "/v1/chat/completions",
            &[("x-mock-status", "503")],
            r#"{"model":"m"}"#,
        )
        .expect("response");
    assert_eq!(r.status, 503);
    assert!(r.json()["error"]["type"].is_string());
    let r = c
        .send(
            "POST",
            "/v1/messages",
            &[("x-mock-status", "529")],
            r#"{"model":"m"}"#,
        )
        .expect("response");
    assert_eq!(
        (r.status, r.json()["error"]["type"].as_str()),
        (529, Some("overloaded_error"))
    );
    assert_eq!(mock.connections(), 1);
}

#[tokio::test]
async fn http2_prior_knowledge() {
    use http_body_util::{BodyExt, Full};
    let mock = MockProvider::new().start();
    let tcp = tokio::net::TcpStream::connect(mock.addr())
        .await
        .expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    for stream in [false, true] {
        let body = format!(r#"{{"model":"h2m","stream":{stream}}}"#);
        let req = hyper::Request::post(format!("{}/v1/chat/completions", mock.url()))
            .body(Full::new(bytes::Bytes::from(body)))
            .expect("request");
        let resp = send.send_request(req).await.expect("response");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        assert!(String::from_utf8_lossy(&bytes).contains(r#""model":"h2m""#));
    }
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].version, "HTTP/2.0");
    assert_eq!(mock.connections(), 1);
}

#[tokio::test]
async fn http2_drop_mid_stream_delivers_the_first_chunks() {
    use http_body_util::{BodyExt, Full};
    let mock = MockProvider::new()
        .chunks(5)
        .fault(mock_provider::Fault::DropMidStream { after_chunks: 2 })
        .start();
    let tcp = tokio::net::TcpStream::connect(mock.addr())
        .await
        .expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req = hyper::Request::post(format!("{}/v1/chat/completions", mock.url()))
        .body(Full::new(bytes::Bytes::from_static(
            br#"{"model":"m","stream":true}"#,
        )))
        .expect("request");
    let mut body = send.send_request(req).await.expect("response").into_body();
    let mut got = Vec::new();
    let ended_with_error = loop {
        match body.frame().await {
            Some(Ok(f)) => got.extend_from_slice(&f.into_data().unwrap_or_default()),
            Some(Err(_)) => break true,
            None => break false,
        }
    };
    assert!(ended_with_error, "the stream must not end cleanly");
    assert_eq!(
        support::parse_events(&String::from_utf8_lossy(&got)).len(),
        2
    );
}
