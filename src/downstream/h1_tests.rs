use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A server-side connection and the client's socket.
async fn pair() -> (Conn, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let l4 = pingora_core::protocols::l4::stream::Stream::from(server);
    (Conn::new(Box::new(l4), BytesMut::new()), client)
}

/// A connection whose client has sent `raw`, read up to its first request.
async fn asked(raw: &[u8]) -> (Conn, TcpStream) {
    let (mut conn, mut client) = pair().await;
    client.write_all(raw).await.unwrap();
    assert_eq!(conn.read_request().await.unwrap(), Read::Request);
    (conn, client)
}

/// A response header of `status` with these fields.
fn response(status: u16, fields: &[(&'static str, &str)]) -> Box<ResponseHeader> {
    let mut resp = ResponseHeader::build_no_case(status, None).unwrap();
    for (name, value) in fields {
        resp.insert_header(*name, *value).unwrap();
    }
    Box::new(resp)
}

/// What `plain_request` makes of `raw`: the header, or `None` for pingora.
fn plain(raw: &[u8]) -> Option<(Box<RequestHeader>, usize, u64, bool)> {
    plain_request(raw)
}

/// Everything the client reads until the server closes.
async fn read_all(client: &mut TcpStream) -> String {
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_plain_request_is_taken() {
    let raw = b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}";
    let (req, len, body, close) = plain(raw).unwrap();
    assert_eq!(len, raw.len() - 2);
    assert_eq!((body, close), (2, false));
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.uri.path(), "/v1/chat/completions");
    assert_eq!(req.uri.query(), Some("x=1"));
    assert_eq!(req.version, Version::HTTP_11);
    let values: Vec<_> = req.headers.get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
    assert_eq!(req.headers["host"], "gw");
}

#[test]
fn connection_close_is_seen() {
    let raw = b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: Close\r\n\r\n";
    assert!(plain(raw).unwrap().3);
    let raw = b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n";
    assert!(!plain(raw).unwrap().3);
}

#[test]
fn anything_to_interpret_goes_to_pingora() {
    for raw in [
        &b"GET / HTTP/1.0\r\nHost: gw\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: +2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 2, 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, upgrade\r\n\r\n",
        b"GET http://gw/ HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"CONNECT gw:443 HTTP/1.1\r\nHost: gw:443\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: user@gw\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: gw\r\n",
    ] {
        assert!(plain(raw).is_none(), "{}", raw.escape_ascii());
    }
}

#[test]
fn only_what_can_start_a_request_waits_for_more() {
    for waits in [
        &b""[..],
        b"P",
        b"POST",
        b"POST /v1/chat",
        b"\r\nGET / HTTP/1.1\r\nHost",
        b"M-SEARCH * HTTP/1.1",
        b"PRI * HTTP/2.0",
        &[b'X'; 100],
    ] {
        assert!(may_start_request(waits), "{}", waits.escape_ascii());
    }
    // A TLS ClientHello, an h2-less binary, a control byte in the method.
    for refused in [
        &b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"[..],
        b"\x00\x01\x02",
        b"GE\x7fT / HTTP/1.1",
        b"\r\n\x16\x03",
        b"POST\t/ HTTP/1.1",
        b" GET / HTTP/1.1",
        b"\r\n / HTTP/1.1",
    ] {
        assert!(!may_start_request(refused), "{}", refused.escape_ascii());
    }
}

#[tokio::test]
async fn a_request_sent_byte_by_byte_is_read_whole() {
    let (mut conn, mut client) = pair().await;
    let raw = b"\r\nPOST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n";
    let sender = tokio::spawn(async move {
        for byte in raw {
            client.write_all(&[*byte]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        client
    });
    assert_eq!(conn.read_request().await.unwrap(), Read::Request);
    assert_eq!(
        conn.req_header().unwrap().uri.path(),
        "/v1/chat/completions"
    );
    drop(sender.await.unwrap());
}

#[tokio::test]
async fn a_tls_handshake_is_handed_to_pingora_without_waiting_for_a_header_end() {
    let (mut conn, mut client) = pair().await;
    client
        .write_all(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x00")
        .await
        .unwrap();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read_request()).await;
    assert_eq!(read.expect("answered at once").unwrap(), Read::Fallback);
}

#[tokio::test]
async fn a_request_body_and_a_pipelined_request_are_read_apart() {
    let (mut conn, _client) = asked(b"POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: gw\r\n\r\n").await;
    let mut body = Vec::new();
    while let Some(chunk) = conn.read_request_body().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    assert_eq!(body, b"hello");
    conn.write_response_header(response(204, &[]))
        .await
        .unwrap();
    conn.write_response_body(Bytes::new(), true).await.unwrap();
    let mut conn = conn.finish().await.expect("kept alive");
    assert_eq!(conn.read_request().await.unwrap(), Read::Request);
    assert_eq!(conn.req_header().unwrap().uri.path(), "/b");
}

#[tokio::test]
async fn a_sized_response_goes_out_with_date_and_connection() {
    let (mut conn, mut client) =
        asked(b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").await;
    conn.write_response_header(response(200, &[("content-length", "5"), ("date", "stale")]))
        .await
        .unwrap();
    conn.write_response_body(Bytes::from_static(b"hello"), true)
        .await
        .unwrap();
    assert_eq!(conn.body_bytes_sent(), 5);
    assert!(conn.finish().await.is_none(), "the client asked to close");
    let got = read_all(&mut client).await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("\r\nconnection: close\r\n"), "{got}");
    assert!(
        got.contains("\r\ndate: ") && !got.contains("stale"),
        "{got}"
    );
    assert!(got.ends_with("\r\n\r\nhello"), "{got}");
}

#[tokio::test]
async fn a_chunked_response_is_framed_chunk_by_chunk() {
    let (mut conn, mut client) =
        asked(b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").await;
    conn.write_response_header(response(200, &[("transfer-encoding", "chunked")]))
        .await
        .unwrap();
    let big = Bytes::from(vec![b'x'; 300]);
    conn.write_response_body(Bytes::from_static(b"data: 1\n\n"), false)
        .await
        .unwrap();
    conn.write_response_body(big, true).await.unwrap();
    conn.finish().await;
    let got = read_all(&mut client).await;
    let body = got.split_once("\r\n\r\n").unwrap().1;
    let expected = format!(
        "9\r\ndata: 1\n\n\r\n12c\r\n{}\r\n0\r\n\r\n",
        "x".repeat(300)
    );
    assert_eq!(body, expected);
}

#[tokio::test]
async fn a_head_answer_has_no_body_and_an_early_answer_closes() {
    let (mut conn, mut client) = asked(b"HEAD / HTTP/1.1\r\nHost: gw\r\n\r\n").await;
    conn.write_response_header(response(200, &[("content-length", "5")]))
        .await
        .unwrap();
    let mut conn = conn.finish().await.expect("kept alive");
    // A body the answer did not wait for: the connection closes after it.
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 9\r\n\r\nhel")
        .await
        .unwrap();
    conn.read_request().await.unwrap();
    conn.write_response_header(response(413, &[]))
        .await
        .unwrap();
    conn.write_response_body(Bytes::new(), true).await.unwrap();
    assert!(conn.finish().await.is_none());
    let got = read_all(&mut client).await;
    let (head, rest) = got.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("Content-Length: 5") && head.contains("connection: keep-alive"),
        "{got}"
    );
    assert!(rest.starts_with("HTTP/1.1 413 "), "{got}");
    assert!(rest.contains("connection: close"), "{got}");
}

#[tokio::test]
async fn a_bodiless_answer_goes_out_at_once() {
    let (mut conn, mut client) = asked(b"HEAD / HTTP/1.1\r\nHost: gw\r\n\r\n").await;
    conn.write_response_header(response(200, &[("content-length", "5")]))
        .await
        .unwrap();
    // Not held until `finish` (which runs after settling the request).
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(2), client.read(&mut buf))
        .await
        .expect("the header arrives before finish")
        .unwrap();
    assert!(buf[..n].ends_with(b"\r\n\r\n"));
    let conn = conn.finish().await.expect("kept alive");
    assert!(conn.req_header().is_none(), "nothing kept while idle");
}

#[tokio::test]
async fn a_body_short_of_its_length_is_an_error_and_closes() {
    let (mut conn, _client) = pair().await;
    _client
        .try_write(b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
        .unwrap();
    conn.read_request().await.unwrap();
    conn.write_response_header(response(200, &[("content-length", "5")]))
        .await
        .unwrap();
    let short = conn.write_response_body(Bytes::from_static(b"hel"), true);
    assert!(short.await.is_err());
    assert_eq!(conn.get_keepalive(), None);
    conn.set_keepalive(Some(60));
    assert_eq!(conn.get_keepalive(), None, "never revived");
}

#[tokio::test]
async fn the_idle_wait_ends_when_the_client_leaves_and_keeps_pipelined_bytes() {
    let (mut conn, mut client) = asked(b"GET /a HTTP/1.1\r\nHost: gw\r\n\r\nGET /b").await;
    // The client is still there: the wait goes on (and can be dropped).
    let wait = tokio::time::timeout(Duration::from_millis(100), conn.read_body_or_idle()).await;
    assert!(wait.is_err(), "still waiting");
    client
        .write_all(b" HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    conn.write_response_header(response(204, &[]))
        .await
        .unwrap();
    let mut conn = conn.finish().await.unwrap();
    assert_eq!(conn.read_request().await.unwrap(), Read::Request);
    assert_eq!(conn.req_header().unwrap().uri.path(), "/b");
    drop(client);
    assert!(conn.read_body_or_idle().await.is_err(), "the client left");
}

#[tokio::test]
async fn a_kept_alive_connection_waits_only_so_long() {
    let (mut conn, _client) = pair().await;
    // Bounded here, so an idle limit that does not apply fails the test
    // instead of hanging it.
    let waited = tokio::time::timeout(
        Duration::from_secs(5),
        conn.wait_next(Duration::from_millis(50)),
    )
    .await
    .expect("the idle limit ends the wait");
    assert!(
        !waited.unwrap(),
        "nothing arrived: the connection counts as closed"
    );
}

#[tokio::test]
async fn an_unusual_header_hands_over_every_byte_read() {
    let (mut conn, mut client) = pair().await;
    let raw =
        b"POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    client.write_all(raw).await.unwrap();
    assert_eq!(conn.read_request().await.unwrap(), Read::Fallback);
    let (_, read) = conn.into_parts();
    let head = raw.len() - b"2\r\n{}\r\n0\r\n\r\n".len();
    assert!(read.len() >= head && raw.starts_with(&read));
}

#[test]
fn chunk_size_lines() {
    let mut out = [0u8; 20];
    assert_eq!(chunk_line(&mut out, 1), b"1\r\n");
    assert_eq!(chunk_line(&mut out, 255), b"ff\r\n");
    assert_eq!(chunk_line(&mut out, 4096), b"1000\r\n");
    assert_eq!(chunk_line(&mut out, usize::MAX), b"ffffffffffffffff\r\n");
}
