//! tollgate's HTTP/1.1 client for one upstream connection: writes a request
//! that is already on the wire, reads the response header with httparse, and
//! then the body by its framing (`Content-Length`, chunked, or until close).
//!
//! It replaces pingora's v1 client session, whose reader keeps a 64 KiB body
//! buffer per response and a case map per header. Here nothing is buffered
//! while a connection waits: each read lands in a stack buffer and is copied
//! into an allocation of exactly its size, which becomes the relayed chunk (a
//! held SSE stream costs no read buffer between events). Header values are
//! slices of one shared copy of the header, so parsing allocates only for
//! header names that are not standard ones.
//!
//! Every read is cancel-safe: between awaits all state is in [`Conn`], and the
//! only await is a socket read that leaves the buffer as it was when dropped.
//! The relay loop relies on that to poll a read once without waiting.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use pingora_core::protocols::Stream;
use pingora_error::{Error, ErrorType, OrErr, Result};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

/// Largest response header accepted (pingora's own limit, which tollgate kept
/// before it had a client of its own).
const MAX_HEAD: usize = 1024 * 1024 - 1;
/// Most header fields in a response (likewise).
const MAX_FIELDS: usize = 256;
/// Most bytes taken from the socket by one read.
const READ_SIZE: usize = 16 * 1024;
/// Longest chunk-size line (with extensions) and longest trailer section.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;

/// A response header as the relay needs it.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    /// The provider's fields minus hop-by-hop ones (`Connection` and the fields
    /// it names, `Keep-Alive`, `Proxy-Connection`, `Upgrade`), and minus
    /// `Content-Length` when `Transfer-Encoding` overrides it.
    pub headers: HeaderMap,
    /// The body is delimited by the connection's close, so the client's copy
    /// must be framed anew.
    pub close_delimited: bool,
}

/// How the rest of the current response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Nothing (left) to read.
    Done,
    /// This many bytes left.
    Length(u64),
    Chunked(Chunk),
    /// Everything until the provider closes.
    UntilClose,
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// One upstream HTTP/1.1 connection.
pub struct Conn {
    stream: Stream,
    /// Bytes read and not yet consumed (empty and unallocated between reads).
    buf: BytesMut,
    body: Body,
    /// The connection may carry another request once this response is read.
    keep_alive: bool,
}

impl Conn {
    pub fn new(stream: Stream) -> Conn {
        Conn {
            stream,
            buf: BytesMut::new(),
            body: Body::Done,
            keep_alive: true,
        }
    }

    /// Writes a request header and its body with as few `writev` calls as the
    /// socket allows, then flushes: one segment for a small request.
    pub async fn send(&mut self, head: &[u8], body: &[u8]) -> Result<()> {
        let (mut head, mut body) = (head, body);
        while !head.is_empty() {
            let n = self
                .stream
                .write_vectored(&[std::io::IoSlice::new(head), std::io::IoSlice::new(body)])
                .await
                .or_err(ErrorType::WriteError, "writing the request")?;
            if n == 0 {
                return Error::e_explain(ErrorType::WriteError, "the provider took no bytes");
            }
            let from_head = n.min(head.len());
            head = &head[from_head..];
            body = &body[n - from_head..];
        }
        self.stream
            .write_all(body)
            .await
            .or_err(ErrorType::WriteError, "writing the request body")?;
        self.stream
            .flush()
            .await
            .or_err(ErrorType::WriteError, "flushing the request")
    }

    /// Reads the next response header (a 1xx one too: the caller reads on).
    /// `head_request`: the request was HEAD, so no body follows whatever the
    /// header says.
    pub async fn read_head(&mut self, head_request: bool) -> Result<Head> {
        loop {
            if let Some(head) = self.parse_head(head_request)? {
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "response header too large");
            }
            if self.fill().await? == 0 {
                return Error::e_explain(
                    ErrorType::ConnectionClosed,
                    "the provider closed the connection before the response header",
                );
            }
        }
    }

    /// The next piece of the body, `None` at its end. Chunked bodies come
    /// decoded (trailers are dropped).
    pub async fn read_body(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.body {
                Body::Done => return Ok(None),
                Body::Length(left) => {
                    if self.buf.is_empty() && self.fill().await? == 0 {
                        return Error::e_explain(
                            ErrorType::ConnectionClosed,
                            "the provider closed the connection before the body's end",
                        );
                    }
                    let n = left.min(self.buf.len() as u64);
                    self.body = match left - n {
                        0 => Body::Done,
                        rest => Body::Length(rest),
                    };
                    return Ok(Some(self.take(n as usize)));
                }
                Body::UntilClose => {
                    if self.buf.is_empty() && self.fill().await? == 0 {
                        self.body = Body::Done;
                        return Ok(None);
                    }
                    return Ok(Some(self.take(self.buf.len())));
                }
                Body::Chunked(state) => match self.step_chunked(state)? {
                    Some(Step::Data(data)) => return Ok(Some(data)),
                    Some(Step::Next) => {}
                    None => {
                        if self.fill().await? == 0 {
                            return Error::e_explain(
                                ErrorType::ConnectionClosed,
                                "the provider closed the connection inside a chunked body",
                            );
                        }
                    }
                },
            }
        }
    }

    /// The connection, when the response was read to its end and it may carry
    /// another request (nothing unasked is waiting on it).
    pub fn into_idle(self) -> Option<Stream> {
        (self.body == Body::Done && self.keep_alive && self.buf.is_empty()).then_some(self.stream)
    }

    /// Reads what the socket has (up to `READ_SIZE`) and appends it to `buf`;
    /// 0 at the end of the stream.
    async fn fill(&mut self) -> Result<usize> {
        let Conn { stream, buf, .. } = self;
        std::future::poll_fn(|cx| {
            let mut scratch = [const { MaybeUninit::<u8>::uninit() }; READ_SIZE];
            let mut read = ReadBuf::uninit(&mut scratch);
            ready!(Pin::new(&mut *stream).poll_read(cx, &mut read))?;
            buf.extend_from_slice(read.filled());
            Poll::Ready(Ok::<_, std::io::Error>(read.filled().len()))
        })
        .await
        .or_err(ErrorType::ReadError, "reading from the provider")
    }

    /// The first `n` buffered bytes, as a chunk of their own.
    fn take(&mut self, n: usize) -> Bytes {
        if n == self.buf.len() {
            std::mem::take(&mut self.buf).freeze()
        } else {
            self.buf.split_to(n).freeze()
        }
    }

    /// Drops the first `n` buffered bytes (framing), releasing an emptied buffer.
    fn consume(&mut self, n: usize) {
        if n == self.buf.len() {
            self.buf = BytesMut::new();
        } else {
            self.buf.advance(n);
        }
    }

    /// Parses a complete header at the front of `buf`, if there is one.
    fn parse_head(&mut self, head_request: bool) -> Result<Option<Head>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut parsed = httparse::Response::new(&mut slots);
        let len = match parsed.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
            Ok(httparse::Status::Complete(_)) => {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "response header too large")
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "too many response headers")
            }
            Err(_) => {
                return Error::e_explain(ErrorType::InvalidHTTPHeader, "malformed response header")
            }
        };
        let status = parsed
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or_else(|| Error::explain(ErrorType::InvalidHTTPHeader, "bad status code"))?;
        let http10 = parsed.version == Some(0);
        // Names are made now (from the borrowed buffer), and the framing fields
        // read; values are slices of the header's own copy, made once it is
        // split off below.
        let base = self.buf.as_ptr() as usize;
        let mut framing = Framing::new(http10);
        let mut fields = Vec::with_capacity(parsed.headers.len());
        for h in parsed.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .or_err(ErrorType::InvalidHTTPHeader, "bad response header name")?;
            if framing.see(&name, h.value)? {
                let start = h.value.as_ptr() as usize - base;
                fields.push((name, start, h.value.len()));
            }
        }
        let framing = framing.finish()?;
        let raw = self.take(len);
        let mut headers = HeaderMap::with_capacity(fields.len() + 12);
        for (name, start, n) in fields {
            let hop = framing.listed.contains(&name)
                || (framing.chunked && name == header::CONTENT_LENGTH);
            if !hop {
                let value = HeaderValue::from_maybe_shared(raw.slice(start..start + n))
                    .or_err(ErrorType::InvalidHTTPHeader, "bad response header value")?;
                headers.append(name, value);
            }
        }
        let informational = status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS;
        self.keep_alive = framing.keep_alive;
        self.body = if informational || head_request || matches!(status.as_u16(), 204 | 304) {
            Body::Done
        } else if framing.chunked {
            Body::Chunked(Chunk::Size)
        } else if status == StatusCode::SWITCHING_PROTOCOLS {
            self.keep_alive = false;
            Body::UntilClose
        } else {
            match framing.length {
                Some(0) => Body::Done,
                Some(n) => Body::Length(n),
                None => {
                    self.keep_alive = false;
                    Body::UntilClose
                }
            }
        };
        Ok(Some(Head {
            status,
            headers,
            close_delimited: self.body == Body::UntilClose,
        }))
    }

    /// Advances the chunked decoder over buffered bytes: `None` when it needs
    /// more of them.
    fn step_chunked(&mut self, state: Chunk) -> Result<Option<Step>> {
        match state {
            Chunk::Size => {
                let Some(end) = memchr::memchr(b'\n', &self.buf) else {
                    if self.buf.len() > MAX_CHUNK_LINE {
                        return bad_chunk("chunk-size line too long");
                    }
                    return Ok(None);
                };
                let size = chunk_size(&self.buf[..end])?;
                self.consume(end + 1);
                self.body = Body::Chunked(match size {
                    0 => Chunk::Trailers,
                    n => Chunk::Data(n),
                });
                Ok(Some(Step::Next))
            }
            Chunk::Data(left) => {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let n = left.min(self.buf.len() as u64);
                self.body = Body::Chunked(match left - n {
                    0 => Chunk::DataEnd,
                    rest => Chunk::Data(rest),
                });
                Ok(Some(Step::Data(self.take(n as usize))))
            }
            Chunk::DataEnd => match &self.buf[..] {
                [] | [b'\r'] => Ok(None),
                [b'\r', b'\n', ..] => {
                    self.consume(2);
                    self.body = Body::Chunked(Chunk::Size);
                    Ok(Some(Step::Next))
                }
                [b'\n', ..] => {
                    self.consume(1);
                    self.body = Body::Chunked(Chunk::Size);
                    Ok(Some(Step::Next))
                }
                _ => bad_chunk("no line end after chunk data"),
            },
            Chunk::Trailers => {
                // Trailer fields are read and dropped, line by line, up to the
                // empty line that ends the body.
                let Some(end) = memchr::memchr(b'\n', &self.buf) else {
                    if self.buf.len() > MAX_TRAILERS {
                        return bad_chunk("trailer section too long");
                    }
                    return Ok(None);
                };
                let blank = end == 0 || (end == 1 && self.buf[0] == b'\r');
                self.consume(end + 1);
                if blank {
                    self.body = Body::Done;
                }
                Ok(Some(Step::Next))
            }
        }
    }
}

/// What one step of the chunked decoder produced.
enum Step {
    Data(Bytes),
    /// Framing consumed; step again.
    Next,
}

fn bad_chunk<T>(why: &'static str) -> Result<T> {
    Error::e_explain(ErrorType::InvalidHTTPHeader, why)
}

/// The size of a chunk-size line (`1a;ext=v\r`), hex digits up to an
/// extension or the line's end.
fn chunk_size(line: &[u8]) -> Result<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line
        .iter()
        .position(|b| matches!(b, b';' | b' ' | b'\t'))
        .map_or(line, |end| &line[..end]);
    if digits.is_empty() || digits.len() > 15 {
        return bad_chunk("bad chunk size");
    }
    let mut size = 0u64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return bad_chunk("bad chunk size"),
        };
        size = size << 4 | u64::from(v);
    }
    Ok(size)
}

/// What a response header says about its body and its connection, read field
/// by field.
struct Framing {
    http10: bool,
    /// Any `Transfer-Encoding`, and whether the last one ends in `chunked`.
    coded: bool,
    chunked: bool,
    length: Option<u64>,
    close: bool,
    keep_alive_asked: bool,
    /// Fields that `Connection` names (hop-by-hop too; rarely any).
    listed: Vec<HeaderName>,
}

impl Framing {
    fn new(http10: bool) -> Framing {
        Framing {
            http10,
            coded: false,
            chunked: false,
            length: None,
            close: false,
            keep_alive_asked: false,
            listed: Vec::new(),
        }
    }

    /// Reads one field; false for a hop-by-hop one, which the client's copy
    /// of the header leaves out.
    fn see(&mut self, name: &HeaderName, value: &[u8]) -> Result<bool> {
        if *name == header::TRANSFER_ENCODING {
            self.coded = true;
            self.chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if *name == header::CONTENT_LENGTH {
            for part in value.split(|&b| b == b',') {
                let n = parse_length(part.trim_ascii()).ok_or_else(|| {
                    Error::explain(ErrorType::InvalidHTTPHeader, "bad Content-Length")
                })?;
                if self.length.is_some_and(|l| l != n) {
                    return Error::e_explain(
                        ErrorType::InvalidHTTPHeader,
                        "conflicting Content-Length values",
                    );
                }
                self.length = Some(n);
            }
        } else if *name == header::CONNECTION {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive_asked = true;
                } else if let Ok(listed) = HeaderName::from_bytes(token) {
                    self.listed.push(listed);
                }
            }
            return Ok(false);
        } else if *name == header::UPGRADE
            || matches!(name.as_str(), "keep-alive" | "proxy-connection")
        {
            return Ok(false);
        }
        Ok(true)
    }

    fn finish(self) -> Result<Framed> {
        // A transfer coding other than a final `chunked` would be relayed as
        // if it were the content: refused, as no provider sends one.
        if self.coded && !self.chunked {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "unsupported transfer coding");
        }
        // Both framings at once: the length is ignored, and the connection is
        // not trusted with another request (RFC 9112 §6.3).
        let both = self.chunked && self.length.is_some();
        let http10_close = self.http10 && !self.keep_alive_asked;
        let keep_alive = !(self.close || both || http10_close);
        Ok(Framed {
            chunked: self.chunked,
            length: self.length,
            keep_alive,
            listed: self.listed,
        })
    }
}

/// The framing a response header settled on.
struct Framed {
    /// `Transfer-Encoding: chunked` (it overrides `Content-Length`).
    chunked: bool,
    length: Option<u64>,
    keep_alive: bool,
    listed: Vec<HeaderName>,
}

fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
