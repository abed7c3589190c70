//! A minimal blocking HTTP/1.1 client for the tests: keep-alive, chunk-by-chunk timing, truncation detection.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A response as read off the wire.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Each HTTP chunk's data and when it was fully read (chunked responses only).
    pub chunks: Vec<(Instant, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Whether the body ended properly (terminating chunk / full Content-Length).
    pub complete: bool,
    /// When the header block was read.
    pub head_at: Instant,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("response body is JSON")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The SSE events of the body: `(event name or "", data)`.
    pub fn events(&self) -> Vec<(String, String)> {
        parse_events(&self.text())
    }

    /// The `data:` payloads parsed as JSON (`[DONE]` skipped).
    pub fn data_json(&self) -> Vec<serde_json::Value> {
        self.events()
            .iter()
            .filter(|(_, d)| d != "[DONE]")
            .map(|(_, d)| serde_json::from_str(d).expect("SSE data is JSON"))
            .collect()
    }
}

pub fn parse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_owned();
                }
            }
            (event, data)
        })
        .collect()
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).expect("connect to the mock");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            r: BufReader::new(s),
        }
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.r.get_ref().set_read_timeout(Some(d)).expect("timeout");
    }

    /// Sends a request with a JSON body (or none if `body` is empty).
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> io::Result<Resp> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: mock\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.r.get_mut().write_all(req.as_bytes())?;
        self.read_response()
    }

    pub fn post(&mut self, path: &str, body: &str) -> Resp {
        self.send("POST", path, &[], body).expect("response")
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn read_response(&mut self) -> io::Result<Resp> {
        let status_line = self.line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let l = self.line()?;
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let mut resp = Resp {
            status,
            headers,
            chunks: Vec::new(),
            body: Vec::new(),
            complete: false,
            head_at: Instant::now(),
        };
        if resp.header("transfer-encoding") == Some("chunked") {
            self.read_chunked(&mut resp);
        } else {
            let len: usize = resp
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let mut got = 0;
            while got < len {
                match self.r.read(&mut body[got..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            body.truncate(got);
            resp.complete = got == len;
            resp.body = body;
        }
        Ok(resp)
    }

    fn read_chunked(&mut self, resp: &mut Resp) {
        loop {
            let Ok(size_line) = self.line() else { return };
            let Ok(size) =
                usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            else {
                return;
            };
            if size == 0 {
                let _ = self.line(); // the empty trailer line
                resp.complete = true;
                return;
            }
            let mut data = vec![0u8; size];
            if self.r.read_exact(&mut data).is_err() {
                return;
            }
            let mut crlf = [0u8; 2];
            if self.r.read_exact(&mut crlf).is_err() {
                return;
            }
            resp.body.extend_from_slice(&data);
            resp.chunks.push((Instant::now(), data));
        }
    }

    /// True if the server closed the connection (EOF) within the read timeout.
    pub fn closed_by_peer(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0))
    }
}

/// A one-off POST on a fresh connection.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> Resp {
    Conn::open(addr).post(path, body)
}
