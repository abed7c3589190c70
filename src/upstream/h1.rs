//! tollgate's HTTP/1.1 client for one upstream connection: writes a request
//! that is already on the wire, reads the response header with httparse, and
//! then the body by its framing (`Content-Length`, chunked, or until close).
//!
//! It replaces pingora's v1 client session, whose reader keeps a 64 KiB body
//! buffer per response and a case map per header. Here nothing is buffered
//! while a connection waits: each read lands in a stack buffer and is copied
//! into an allocation of exactly its size, which becomes the relayed chunk (a
//! held SSE stream costs no read buffer between events). Header values are
//! slices of one copy of the header, so parsing allocates that copy, the map,
//! and names that are not standard ones.
//!
//! Every read is cancel-safe: between awaits all state is in [`Conn`], and the
//! only await is a socket read that leaves the buffer as it was when dropped.
//! The relay loop relies on that to poll a read once without waiting.

use crate::wire::Codings;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use pingora_core::protocols::Stream;
use pingora_error::{Error, ErrorType, OrErr, Result};
use tokio::io::AsyncWriteExt;

/// Largest response header accepted (pingora's own limit, which tollgate kept
/// before it had a client of its own).
const MAX_HEAD: usize = 1024 * 1024 - 1;
/// Most header fields in a response (likewise).
const MAX_FIELDS: usize = 256;
/// Longest chunk-size line (with extensions) and longest trailer section.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;

/// A response header as the relay needs it.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    /// The provider's fields minus the ones that describe this hop only
    /// (`Connection` and the fields it names, `Keep-Alive`, `Proxy-Connection`,
    /// `Upgrade`, `Trailer`) and minus its framing (`Content-Length`,
    /// `Transfer-Encoding`): the client's copy gets one framing field of
    /// tollgate's, [`Head::framing`].
    pub headers: HeaderMap,
    pub framing: Framing,
}

/// How the client's copy of a response is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` (for HEAD, the length of what GET would send).
    Length(u64),
    /// `Transfer-Encoding: chunked`: the provider's body was chunked, or ends
    /// at its close.
    Chunked,
    /// No framing field (1xx, 204, 304, and HEAD without a length).
    None,
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
    /// Trailer bytes read so far.
    Trailers(usize),
}

/// One upstream HTTP/1.1 connection.
pub struct Conn {
    stream: Stream,
    /// Bytes read and not yet consumed (empty and unallocated between reads).
    buf: BytesMut,
    body: Body,
    /// The connection may carry another request once this response is read.
    keep_alive: bool,
    /// Some response byte has arrived on this connection.
    received: bool,
    /// How much of `buf` is known not to hold a header's end.
    scanned: usize,
}

impl Conn {
    pub fn new(stream: Stream) -> Conn {
        Conn {
            stream,
            buf: BytesMut::new(),
            body: Body::Done,
            keep_alive: true,
            received: false,
            scanned: 0,
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

    /// Whether any byte of a response arrived: a request that got one must
    /// not be sent again on another connection (the provider may have run it).
    pub fn received_any(&self) -> bool {
        self.received
    }

    /// Whether the connection may carry another request once this response
    /// is read to its end.
    pub fn reusable(&self) -> bool {
        self.keep_alive
    }

    /// The connection, when the response was read to its end and it may carry
    /// another request (nothing unasked is waiting on it).
    pub fn into_idle(self) -> Option<Stream> {
        (self.body == Body::Done && self.keep_alive && self.buf.is_empty()).then_some(self.stream)
    }

    async fn fill(&mut self) -> Result<usize> {
        let n = crate::wire::fill(&mut self.stream, &mut self.buf)
            .await
            .or_err(ErrorType::ReadError, "reading from the provider")?;
        self.received |= n > 0;
        Ok(n)
    }

    fn take(&mut self, n: usize) -> Bytes {
        crate::wire::take(&mut self.buf, n)
    }

    /// Drops framing bytes.
    fn consume(&mut self, n: usize) {
        crate::wire::consume(&mut self.buf, n)
    }

    /// Parses a complete header at the front of `buf`, if there is one.
    fn parse_head(&mut self, head_request: bool) -> Result<Option<Head>> {
        // httparse runs only once the header's end has arrived, so a header
        // that trickles in is not parsed again for every read.
        let from = self.scanned.saturating_sub(2);
        let tail = &self.buf[from..];
        if !crate::wire::has_header_end(tail) {
            self.scanned = self.buf.len();
            return Ok(None);
        }
        self.scanned = 0;
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
        // tollgate never asks for an upgrade (request.rs drops `Upgrade`), so a
        // 101 can only be a broken or hostile answer.
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Error::e_explain(
                ErrorType::InvalidHTTPHeader,
                "unasked 101 Switching Protocols",
            );
        }
        // Values are slices of the header's own copy (not of the read buffer,
        // so the body bytes read with the header are not pinned for as long as
        // the client's copy of the header lives); framing and hop-by-hop
        // fields are read and left out as the fields are named.
        let raw = Bytes::copy_from_slice(&self.buf[..len]);
        let base = self.buf.as_ptr() as usize;
        let mut framing = FieldReader::new(parsed.version == Some(0));
        let mut headers = HeaderMap::with_capacity(parsed.headers.len() + 12);
        for h in parsed.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .or_err(ErrorType::InvalidHTTPHeader, "bad response header name")?;
            if framing.see(&name, h.value)? {
                let start = h.value.as_ptr() as usize - base;
                let value = HeaderValue::from_maybe_shared(raw.slice(start..start + h.value.len()))
                    .or_err(ErrorType::InvalidHTTPHeader, "bad response header value")?;
                headers.append(name, value);
            }
        }
        let framing = framing.finish()?;
        for name in &framing.listed {
            headers.remove(name);
        }
        self.consume(len);
        self.keep_alive = framing.keep_alive;
        let bodiless = status.is_informational() || matches!(status.as_u16(), 204 | 304);
        let (body, client) = if bodiless {
            (Body::Done, Framing::None)
        } else if head_request {
            (
                Body::Done,
                framing.length.map_or(Framing::None, Framing::Length),
            )
        } else if framing.chunked {
            (Body::Chunked(Chunk::Size), Framing::Chunked)
        } else {
            match framing.length {
                Some(0) => (Body::Done, Framing::Length(0)),
                Some(n) => (Body::Length(n), Framing::Length(n)),
                None => {
                    self.keep_alive = false;
                    (Body::UntilClose, Framing::Chunked)
                }
            }
        };
        self.body = body;
        Ok(Some(Head {
            status,
            headers,
            framing: client,
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
                    0 => Chunk::Trailers(0),
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
            Chunk::Trailers(read) => {
                // Trailer fields are read and dropped, line by line, up to the
                // empty line that ends the body.
                let end = memchr::memchr(b'\n', &self.buf);
                if read + end.unwrap_or(self.buf.len()) > MAX_TRAILERS {
                    return bad_chunk("trailer section too long");
                }
                let Some(end) = end else {
                    return Ok(None);
                };
                let blank = end == 0 || (end == 1 && self.buf[0] == b'\r');
                self.consume(end + 1);
                self.body = match blank {
                    true => Body::Done,
                    false => Body::Chunked(Chunk::Trailers(read + end + 1)),
                };
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

/// The size of a chunk-size line (`1a;ext=v\r`): hex digits, then nothing,
/// or an extension after optional blanks; no control bytes anywhere.
fn chunk_size(line: &[u8]) -> Result<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
        return bad_chunk("control byte in a chunk-size line");
    }
    let end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(end);
    let rest = rest.trim_ascii_start();
    if digits.is_empty() || digits.len() > 15 || !(rest.is_empty() || rest[0] == b';') {
        return bad_chunk("bad chunk size");
    }
    // ASCII hex digits only, at most 15 of them: valid UTF-8, and no overflow.
    let digits = std::str::from_utf8(digits).unwrap_or_default();
    u64::from_str_radix(digits, 16).or_else(|_| bad_chunk("bad chunk size"))
}

/// What a response header says about its body and its connection, read field
/// by field.
struct FieldReader {
    http10: bool,
    codings: Codings,
    length: Option<u64>,
    close: bool,
    keep_alive_asked: bool,
    /// Fields that `Connection` names (hop-by-hop too; rarely any).
    listed: Vec<HeaderName>,
}

impl FieldReader {
    fn new(http10: bool) -> FieldReader {
        FieldReader {
            http10,
            codings: Codings::default(),
            length: None,
            close: false,
            keep_alive_asked: false,
            listed: Vec::new(),
        }
    }

    /// Reads one field; false for a framing or hop-by-hop one, which the
    /// client's copy of the header leaves out.
    fn see(&mut self, name: &HeaderName, value: &[u8]) -> Result<bool> {
        if *name == header::TRANSFER_ENCODING {
            self.codings.see(value);
            return Ok(false);
        } else if *name == header::CONTENT_LENGTH {
            for part in value.split(|&b| b == b',') {
                let n = crate::decimal::parse(part.trim_ascii()).ok_or_else(|| {
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
            return Ok(false);
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
            || *name == header::TRAILER
            || matches!(name.as_str(), "keep-alive" | "proxy-connection")
        {
            return Ok(false);
        }
        Ok(true)
    }

    fn finish(self) -> Result<Framed> {
        // Any transfer coding but a lone `chunked` (gzip, or chunked twice)
        // would reach the client as if it were the content: refused, as no
        // provider sends one.
        if !self.codings.understood() {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "unsupported transfer coding");
        }
        let chunked = self.codings.is_chunked();
        // Both framings at once: the length is ignored, and the connection is
        // not trusted with another request (RFC 9112 §6.3); nor is an HTTP/1.0
        // answer with a transfer coding (§6.1).
        let both = chunked && self.length.is_some();
        let http10_close = self.http10 && (!self.keep_alive_asked || chunked);
        let keep_alive = !(self.close || both || http10_close);
        Ok(Framed {
            chunked,
            length: if chunked { None } else { self.length },
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

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
