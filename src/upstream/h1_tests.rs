use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use std::future::Future;

use super::*;

/// A connection to a server that answers with `pieces`, pausing between them so
/// each arrives in reads of its own, and reports what it was sent.
async fn serve(pieces: Vec<Vec<u8>>) -> (Conn, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut got = vec![0u8; 4096];
        let n = s.read(&mut got).await.unwrap();
        got.truncate(n);
        for p in pieces {
            s.write_all(&p).await.unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        // Keep the connection open a moment, then close it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        got
    });
    let client = TcpStream::connect(addr).await.unwrap();
    let l4 = pingora_core::protocols::l4::stream::Stream::from(client);
    (Conn::new(Box::new(l4)), server)
}

/// A connection that has sent `GET /` to a server answering with `pieces`.
async fn get(pieces: Vec<Vec<u8>>) -> Conn {
    let (mut c, _server) = serve(pieces).await;
    c.send(b"GET / HTTP/1.1\r\n\r\n", b"").await.unwrap();
    c
}

/// The whole body of the response to one request.
async fn body(conn: &mut Conn) -> Result<Vec<u8>> {
    let mut all = Vec::new();
    while let Some(chunk) = conn.read_body().await? {
        assert!(!chunk.is_empty(), "no empty chunks are relayed");
        all.extend_from_slice(&chunk);
    }
    Ok(all)
}

fn split_at_every_byte(whole: &[u8]) -> Vec<Vec<Vec<u8>>> {
    (1..whole.len())
        .map(|k| vec![whole[..k].to_vec(), whole[k..].to_vec()])
        .collect()
}

#[tokio::test]
async fn a_sized_body_is_read_whole_and_the_connection_is_kept() {
    let (mut c, server) = serve(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Request-Id: r1\r\n\r\nhello".to_vec(),
        b" world".to_vec(),
    ])
    .await;
    c.send(b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\n", b"{}")
        .await
        .unwrap();
    let head = c.read_head(false).await.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["x-request-id"], "r1");
    assert_eq!(head.framing, Framing::Length(11));
    assert!(
        head.headers.get("content-length").is_none(),
        "tollgate sets it"
    );
    assert_eq!(body(&mut c).await.unwrap(), b"hello world");
    assert!(c.into_idle().is_some());
    let sent = server.await.unwrap();
    assert_eq!(sent, b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}");
}

#[tokio::test]
async fn chunked_bodies_decode_whatever_the_read_boundaries() {
    let whole: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n\
        5;ext=\"v\"\r\nhello\r\n5\r\n worl\r\nA\r\nd, and on.\r\n0\r\nx-trailer: 1\r\n\r\n";
    let mut cases = split_at_every_byte(whole);
    cases.push(vec![whole.to_vec()]);
    for pieces in cases {
        let mut c = get(pieces).await;
        let head = c.read_head(false).await.unwrap();
        assert_eq!(head.framing, Framing::Chunked, "chunked wins");
        assert!(head.headers.get("content-length").is_none());
        assert!(head.headers.get("transfer-encoding").is_none());
        assert_eq!(body(&mut c).await.unwrap(), b"hello world, and on.");
        assert!(c.into_idle().is_none(), "both framings: not reused");
    }
}

#[tokio::test]
async fn a_close_delimited_body_ends_at_the_close_and_is_not_reused() {
    let mut c = get(vec![
        b"HTTP/1.1 200 OK\r\nConnection: close, x-hop\r\nX-Hop: 1\r\nKeep-Alive: t=5\r\n\r\nab"
            .to_vec(),
        b"cd".to_vec(),
    ])
    .await;
    let head = c.read_head(false).await.unwrap();
    assert_eq!(head.framing, Framing::Chunked, "re-framed for the client");
    for hop in ["connection", "x-hop", "keep-alive"] {
        assert!(head.headers.get(hop).is_none(), "{hop}");
    }
    assert_eq!(body(&mut c).await.unwrap(), b"abcd");
    assert!(c.into_idle().is_none());
}

#[tokio::test]
async fn bodiless_answers_and_informational_ones() {
    for (head_request, wire, framing) in [
        (
            true,
            &b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"[..],
            Framing::Length(99),
        ),
        (
            true,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            Framing::None,
        ),
        (false, b"HTTP/1.1 204 No Content\r\n\r\n", Framing::None),
        (
            false,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            Framing::None,
        ),
    ] {
        let mut c = get(vec![wire.to_vec()]).await;
        let head = c.read_head(head_request).await.unwrap();
        assert_eq!(head.framing, framing);
        assert_eq!(body(&mut c).await.unwrap(), b"");
        assert!(c.into_idle().is_some(), "{head:?}");
    }
    let mut c = get(vec![
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            .to_vec(),
    ]).await;
    assert_eq!(c.read_head(false).await.unwrap().status, 103);
    assert_eq!(c.read_head(false).await.unwrap().status, 200);
    assert_eq!(body(&mut c).await.unwrap(), b"ok");
}

#[tokio::test]
async fn http10_and_stray_bytes_are_not_reused() {
    let mut c = get(vec![
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
    ])
    .await;
    c.read_head(false).await.unwrap();
    assert_eq!(body(&mut c).await.unwrap(), b"ok");
    assert!(c.into_idle().is_none(), "HTTP/1.0 without keep-alive");

    let mut c = get(vec![
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    ])
    .await;
    let head = c.read_head(false).await.unwrap();
    assert!(head.headers.get("connection").is_none());
    assert_eq!(body(&mut c).await.unwrap(), b"ok");
    assert!(
        c.into_idle().is_some(),
        "HTTP/1.0 that asked for keep-alive"
    );

    let mut c = get(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA".to_vec()
    ])
    .await;
    c.read_head(false).await.unwrap();
    assert_eq!(body(&mut c).await.unwrap(), b"ok");
    assert!(c.into_idle().is_none(), "bytes nobody asked for");
}

#[tokio::test]
async fn broken_responses_are_errors_not_bodies() {
    let big = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
        "a".repeat(MAX_HEAD + 10)
    );
    let heads: Vec<&[u8]> = vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"NOT HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        big.as_bytes(),
    ];
    for wire in heads {
        let mut c = get(vec![wire.to_vec()]).await;
        assert!(
            c.read_head(false).await.is_err(),
            "{}",
            String::from_utf8_lossy(&wire[..wire.len().min(60)])
        );
    }
    let bodies: Vec<&[u8]> = vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 junk\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
    ];
    for wire in bodies {
        let mut c = get(vec![wire.to_vec()]).await;
        c.read_head(false).await.unwrap();
        assert!(
            body(&mut c).await.is_err(),
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn chunk_sizes() {
    assert_eq!(chunk_size(b"1a\r").unwrap(), 26);
    assert_eq!(chunk_size(b"FF;name=value").unwrap(), 255);
    assert_eq!(chunk_size(b"0").unwrap(), 0);
    assert_eq!(chunk_size(b"a ;x").unwrap(), 10);
    for bad in [
        &b""[..],
        b"\r",
        b"g",
        b"-1",
        b"1234567890abcdef0",
        b"5 junk",
        b"5;a\rb",
        b"5\x00",
    ] {
        assert!(chunk_size(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn framing_fields_repeated_alike_are_one_and_the_client_gets_one() {
    for wire in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
    ] {
        let mut c = get(vec![wire.to_vec()]).await;
        let head = c.read_head(false).await.unwrap();
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.headers.get("content-length").is_none());
        assert_eq!(body(&mut c).await.unwrap(), b"ok");
        assert!(c.into_idle().is_some());
    }
    // HTTP/1.0 with a transfer coding: decoded, never reused.
    let mut c = get(vec![
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\
        Transfer-Encoding: chunked\r\nTrailer: x-t\r\n\r\n2\nok\n0\nx-t: 1\nx-u: 2\n\n"
            .to_vec(),
    ])
    .await;
    let head = c.read_head(false).await.unwrap();
    assert!(head.headers.get("trailer").is_none());
    assert_eq!(
        body(&mut c).await.unwrap(),
        b"ok",
        "bare line feeds, two trailers"
    );
    assert!(c.into_idle().is_none());
}

#[tokio::test]
async fn a_trailer_section_is_bounded_as_a_whole() {
    let line = format!("x-t: {}\r\n", "a".repeat(1000));
    let wire = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n{}\r\n",
        line.repeat(MAX_TRAILERS / 1000 + 1)
    );
    let mut c = get(vec![wire.into_bytes()]).await;
    c.read_head(false).await.unwrap();
    assert!(body(&mut c).await.is_err());
}

/// Polls `read_body` once without waiting, as the relay does, dropping the
/// future when it would wait; the bytes read must be the same as when awaited.
#[tokio::test]
async fn a_body_read_dropped_while_waiting_loses_nothing() {
    let whole: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nx-t: 1\r\n\r\n";
    for pieces in split_at_every_byte(whole) {
        let mut c = get(pieces).await;
        c.read_head(false).await.unwrap();
        let mut all = Vec::new();
        loop {
            let polled = {
                let read = std::pin::pin!(c.read_body());
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                match read.poll(&mut cx) {
                    Poll::Ready(r) => Some(r),
                    Poll::Pending => None,
                }
            };
            let next = match polled {
                Some(r) => r.unwrap(),
                None => c.read_body().await.unwrap(),
            };
            match next {
                Some(chunk) => all.extend_from_slice(&chunk),
                None => break,
            }
        }
        assert_eq!(all, b"hello world");
        assert!(c.into_idle().is_some());
    }
}
