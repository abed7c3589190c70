//! Raw HTTP/1.1 over TCP for the abuse tests: what reqwest cannot express.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{raw_get, Gateway, MockHandle};

pub fn gateway(mock: &MockHandle) -> Gateway {
    Gateway::builder()
        .provider("OPENAI", &format!("{}/v1", mock.url()), "sk-managed-openai")
        .start()
}

pub fn connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

/// Reads until the server closes (true) or 3 s pass without a byte (false).
pub fn read_all(s: &mut TcpStream) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Writes `raw` on a fresh connection; what came back and whether it was closed.
pub fn exchange(gw: &Gateway, raw: &[u8]) -> (String, bool) {
    let mut s = connect(gw);
    let _ = s.write_all(raw);
    read_all(&mut s)
}

/// Status codes of the responses in `text`, in order.
pub fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

pub fn assert_gateway_serves(gw: &Gateway) {
    let r = raw_get(gw.addr, "/healthz").unwrap_or_default();
    assert!(r.starts_with("HTTP/1.1 200"), "gateway down: {r}");
}
