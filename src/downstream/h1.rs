//! tollgate's HTTP/1.1 server side for the plain request: one client
//! connection, its requests read and answered in turn.
//!
//! It takes only requests whose header leaves nothing to interpret: HTTP/1.1,
//! an origin-form target, at most one `Content-Length` and no
//! `Transfer-Encoding`, `Expect` or `Upgrade`, a `Connection` that says only
//! `close` or `keep-alive`, and an authority pingora's own check accepts. For
//! anything else, malformed headers included, [`Read::Fallback`] hands the
//! bytes read so far to pingora's HTTP/1.1 session, which parses them again and
//! answers exactly as it did before this module existed. What this saves is
//! pingora's per-request work for the common case: its 4 KiB header buffer,
//! its case map (a copy of every header name), its body reader's buffers, and
//! the header it serializes into a fresh 4 KiB buffer.
//!
//! Nothing is buffered while a connection waits: each read lands in a stack
//! buffer and is copied into an allocation of its size. Every read is
//! cancel-safe: between awaits all state is in [`Conn`].

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::time::Duration;

use crate::deadline::{timeout, Deadline};
use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use pingora_core::protocols::http::{authority, date};
use pingora_core::protocols::Stream;
use pingora_error::{Error, ErrorType, OrErr, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use tokio::io::AsyncWriteExt;

/// Largest header this module parses; a longer one goes to pingora (whose
/// limit is 1 MiB).
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields parsed here (pingora's limit too).
const MAX_FIELDS: usize = 256;

/// What reading the next request found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A request header this module takes: [`Conn::req_header`].
    Request,
    /// Bytes that pingora's session must read ([`Conn::into_parts`]).
    Fallback,
    /// The client closed between requests.
    Closed,
}

/// How the response body goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// No response header yet.
    Unset,
    /// This many bytes left of its `Content-Length`.
    Length(u64),
    Chunked,
    /// Until the connection closes (a response with no framing field).
    Close,
    /// None (HEAD, 204, 304).
    Empty,
    /// The body has ended.
    Done,
}

/// One client HTTP/1.1 connection, at one request.
pub struct Conn {
    stream: Stream,
    /// Bytes read and not yet consumed: the rest of a body, or requests
    /// pipelined after it (empty and unallocated between requests).
    buf: BytesMut,
    /// How much of `buf` is known not to hold a header's end.
    scanned: usize,
    half_closed: bool,
    /// The request being answered; a fresh one for each header read.
    ex: Exchange,
    /// The timer of the connection's waits: for its next request, and (lent
    /// out) for the provider's answer.
    timer: Deadline,
}

/// What one request and its answer have done so far.
struct Exchange {
    req: Option<Box<RequestHeader>>,
    /// Request body bytes not yet read.
    body_left: u64,
    /// pingora's convention: `None` off, `Some(0)` on, `Some(s)` for s seconds.
    keepalive: Option<u64>,
    read_timeout: Option<Duration>,
    /// A final response before the request body is read closes the connection.
    close_early: bool,
    written: Option<Box<ResponseHeader>>,
    /// The serialized response header, held back to go out with the body.
    held: Option<Bytes>,
    out: Out,
    sent: usize,
    /// An idle read found the next request's first bytes.
    stashed: bool,
}

impl Default for Exchange {
    fn default() -> Exchange {
        Exchange {
            req: None,
            body_left: 0,
            keepalive: None,
            read_timeout: None,
            close_early: true,
            written: None,
            held: None,
            out: Out::Unset,
            sent: 0,
            stashed: false,
        }
    }
}

impl Conn {
    /// A connection, with bytes already read from it (pingora's pipelined
    /// prefix after a request it answered).
    pub fn new(stream: Stream, buf: BytesMut) -> Conn {
        Conn {
            stream,
            buf,
            scanned: 0,
            half_closed: false,
            ex: Exchange::default(),
            timer: Deadline::default(),
        }
    }

    /// The stream and the bytes read from it that no request consumed.
    pub fn into_parts(self) -> (Stream, BytesMut) {
        (self.stream, self.buf)
    }

    /// Waits up to `idle` for a kept-alive connection's next request to start:
    /// false when the client closed it or sent nothing in time.
    pub async fn wait_next(&mut self, idle: Duration) -> Result<bool> {
        if !self.buf.is_empty() {
            return Ok(true);
        }
        let fill = crate::wire::fill(&mut self.stream, &mut self.buf);
        match self.timer.within(idle, fill).await {
            Ok(Ok(n)) => Ok(n > 0),
            Ok(Err(e)) => Err(e).or_err(ErrorType::ReadError, "reading from the client"),
            Err(_) => Ok(false),
        }
    }

    /// Reads the next request header (on a kept-alive connection, after
    /// [`Conn::wait_next`]).
    pub async fn read_request(&mut self) -> Result<Read> {
        self.ex = Exchange::default();
        loop {
            if let Some(read) = self.parse() {
                return Ok(read);
            }
            if self.buf.len() > MAX_HEAD {
                return Ok(Read::Fallback);
            }
            if self.fill().await? == 0 {
                return Ok(match self.buf.is_empty() {
                    true => Read::Closed,
                    false => Read::Fallback,
                });
            }
        }
    }

    /// Parses a header at the front of `buf` once its end has arrived.
    fn parse(&mut self) -> Option<Read> {
        let from = self.scanned.saturating_sub(2);
        let tail = self.buf.get(from..).unwrap_or_default();
        if !crate::wire::has_header_end(tail) {
            self.scanned = self.buf.len();
            // What cannot start a request (a TLS handshake sent to the plain
            // port, any binary) goes to pingora's reader, which answers 400 at
            // once instead of at the header deadline.
            return (!may_start_request(&self.buf)).then_some(Read::Fallback);
        }
        self.scanned = 0;
        let Some((req, len, length, close)) = plain_request(&self.buf) else {
            return Some(Read::Fallback);
        };
        self.consume(len);
        self.ex.req = Some(req);
        self.ex.body_left = length;
        self.ex.keepalive = (!close).then_some(0);
        Some(Read::Request)
    }

    pub fn req_header(&self) -> Option<&RequestHeader> {
        self.ex.req.as_deref()
    }

    /// Sets the keep-alive timeout; never turns keep-alive back on for a
    /// connection that must close (the client asked, it left, or a response
    /// broke its framing).
    pub fn set_keepalive(&mut self, keepalive: Option<u64>) {
        if self.ex.keepalive.is_some() || keepalive.is_none() {
            self.ex.keepalive = keepalive;
        }
    }

    pub fn get_keepalive(&self) -> Option<u64> {
        self.ex.keepalive
    }

    /// The connection's timer, for a wait on its behalf.
    pub fn timer(&mut self) -> &mut Deadline {
        &mut self.timer
    }

    pub fn set_read_timeout(&mut self, t: Option<Duration>) {
        self.ex.read_timeout = t;
    }

    pub fn set_close_on_response_before_downstream_finish(&mut self, close: bool) {
        self.ex.close_early = close;
    }

    pub fn response_written(&self) -> Option<&ResponseHeader> {
        self.ex.written.as_deref()
    }

    pub fn body_bytes_sent(&self) -> usize {
        self.ex.sent
    }

    /// The next piece of the request body; `None` once it has all been read.
    pub async fn read_request_body(&mut self) -> Result<Option<Bytes>> {
        if self.ex.body_left == 0 {
            return Ok(None);
        }
        if self.buf.is_empty() {
            let n = match self.ex.read_timeout {
                Some(t) => match timeout(t, self.fill()).await {
                    Ok(n) => n?,
                    Err(_) => {
                        return Error::e_explain(
                            ErrorType::ReadTimedout,
                            "reading the request body",
                        )
                    }
                },
                None => self.fill().await?,
            };
            if n == 0 {
                return Error::e_explain(ErrorType::ConnectionClosed, "request body cut short");
            }
        }
        let n = self.ex.body_left.min(self.buf.len() as u64) as usize;
        self.ex.body_left -= n as u64;
        Ok(Some(self.take(n)))
    }

    /// Waits on the connection while the request is answered: an error when
    /// the client closes it; bytes that arrive (the rest of a body, or a
    /// pipelined request) are kept for later and the wait goes on.
    pub async fn read_body_or_idle(&mut self) -> Result<Option<Bytes>> {
        if self.half_closed {
            return Error::e_explain(ErrorType::ConnectionClosed, "client closed");
        }
        if self.ex.stashed {
            return std::future::pending().await;
        }
        if self.fill().await? == 0 {
            self.half_closed = true;
            self.ex.keepalive = None;
            return Error::e_explain(ErrorType::ConnectionClosed, "client closed");
        }
        self.ex.stashed = true;
        std::future::pending().await
    }

    /// Writes `100 Continue`.
    pub async fn write_continue_response(&mut self) -> Result<()> {
        if self.ex.written.is_none() {
            self.write_all(&[IoSlice::new(b"HTTP/1.1 100 Continue\r\n\r\n")])
                .await?;
        }
        Ok(())
    }

    /// Writes the response header (with `Date` and `Connection` of tollgate's).
    /// One with a body of known length is held back to go out with the body
    /// (a bodiless one goes at once: nothing may keep it waiting).
    pub async fn write_response_header(&mut self, mut resp: Box<ResponseHeader>) -> Result<()> {
        if self.ex.out != Out::Unset {
            return Ok(());
        }
        if resp.status.is_informational() {
            return Ok(());
        }
        if self.ex.close_early && self.ex.body_left > 0 {
            self.ex.keepalive = None;
        }
        let status = resp.status;
        let head = self
            .ex
            .req
            .as_ref()
            .is_some_and(|r| r.method == Method::HEAD);
        self.ex.out =
            if head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
                Out::Empty
            } else if resp
                .headers
                .get(header::TRANSFER_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"))
            {
                Out::Chunked
            } else if let Some(n) = resp
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| crate::decimal::parse(v.as_bytes()))
            {
                Out::Length(n)
            } else {
                self.ex.keepalive = None;
                Out::Close
            };
        if resp.headers.contains_key(header::DATE) {
            resp.remove_header(&header::DATE);
        }
        if resp.headers.contains_key(header::CONNECTION) {
            resp.remove_header(&header::CONNECTION);
        }
        let mut wire = BytesMut::with_capacity(128 + 48 * resp.headers.len());
        wire.extend_from_slice(b"HTTP/1.1 ");
        wire.extend_from_slice(status.as_str().as_bytes());
        wire.extend_from_slice(b" ");
        let reason = resp
            .get_reason_phrase()
            .or(status.canonical_reason())
            .unwrap_or("");
        wire.extend_from_slice(reason.as_bytes());
        wire.extend_from_slice(b"\r\n");
        resp.header_to_h1_wire(&mut wire);
        wire.extend_from_slice(b"date: ");
        wire.extend_from_slice(date::get_cached_date().as_bytes());
        wire.extend_from_slice(match self.ex.keepalive.is_some() {
            true => b"\r\nconnection: keep-alive\r\n\r\n",
            false => b"\r\nconnection: close\r\n\r\n",
        });
        self.ex.written = Some(resp);
        let wire = wire.freeze();
        if matches!(self.ex.out, Out::Length(n) if n > 0) {
            self.ex.held = Some(wire);
            return Ok(());
        }
        self.write_all(&[IoSlice::new(&wire)]).await
    }

    /// Writes body bytes in the response's framing; `end` finishes the body.
    pub async fn write_response_body(&mut self, data: Bytes, end: bool) -> Result<()> {
        if data.is_empty() && !end {
            return Ok(());
        }
        let held = self.ex.held.take();
        let held = held.as_deref().unwrap_or_default();
        let mut size_line = [0u8; 20];
        match self.ex.out {
            Out::Length(left) => {
                let n = (data.len() as u64).min(left) as usize;
                self.ex.out = Out::Length(left - n as u64);
                self.ex.sent += n;
                self.write_all(&[IoSlice::new(held), IoSlice::new(&data[..n])])
                    .await?;
                if end {
                    self.ex.out = Out::Done;
                    if left - n as u64 > 0 {
                        // The body fell short of its length: the client must
                        // not read the next response as its rest.
                        self.ex.keepalive = None;
                        return Error::e_explain(
                            ErrorType::WriteError,
                            "response body shorter than its Content-Length",
                        );
                    }
                }
            }
            Out::Chunked => {
                let line = match data.is_empty() {
                    true => &[][..],
                    false => chunk_line(&mut size_line, data.len()),
                };
                let after: &[u8] = match (data.is_empty(), end) {
                    (true, _) => b"0\r\n\r\n",
                    (false, true) => b"\r\n0\r\n\r\n",
                    (false, false) => b"\r\n",
                };
                self.ex.sent += data.len();
                let slices = [
                    IoSlice::new(held),
                    IoSlice::new(line),
                    IoSlice::new(&data),
                    IoSlice::new(after),
                ];
                self.write_all(&slices).await?;
                if end {
                    self.ex.out = Out::Done;
                }
            }
            Out::Close => {
                self.ex.sent += data.len();
                self.write_all(&[IoSlice::new(held), IoSlice::new(&data)])
                    .await?;
                if end {
                    self.ex.out = Out::Done;
                }
            }
            Out::Empty | Out::Done | Out::Unset => {
                if !held.is_empty() {
                    self.write_all(&[IoSlice::new(held)]).await?;
                }
                if end && self.ex.out == Out::Empty {
                    self.ex.out = Out::Done;
                }
            }
        }
        Ok(())
    }

    /// Answers a request that could not be read and closes after it.
    pub async fn write_error_response(&mut self, resp: ResponseHeader, body: Bytes) -> Result<()> {
        self.ex.keepalive = None;
        if self.ex.out != Out::Unset {
            return Ok(());
        }
        self.write_response_header(Box::new(resp)).await?;
        self.write_response_body(body, true).await
    }

    /// Ends the request: the connection, ready for the next one, or `None`
    /// (closed) when it cannot carry another.
    pub async fn finish(mut self) -> Option<Conn> {
        if self.ex.held.is_some() {
            self.write_response_body(Bytes::new(), true).await.ok()?;
        }
        if !matches!(self.ex.out, Out::Done | Out::Empty) {
            // The response never ended: its framing is broken.
            self.ex.keepalive = None;
        }
        if self.ex.keepalive.is_none() {
            self.shutdown().await;
            return None;
        }
        while self.read_request_body().await.ok()?.is_some() {}
        // Nothing of this request is kept while the connection waits.
        self.ex = Exchange::default();
        Some(self)
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Writes every slice, then flushes.
    async fn write_all(&mut self, slices: &[IoSlice<'_>]) -> Result<()> {
        let mut owned: [IoSlice<'_>; 4] = [IoSlice::new(&[]); 4];
        let mut n = 0;
        for slice in slices.iter().filter(|s| !s.is_empty()).take(4) {
            owned[n] = *slice;
            n += 1;
        }
        let mut rest = &mut owned[..n];
        while !rest.is_empty() {
            let written = self
                .stream
                .write_vectored(rest)
                .await
                .or_err(ErrorType::WriteError, "writing the response")?;
            if written == 0 {
                return Error::e_explain(ErrorType::WriteError, "the client took no bytes");
            }
            IoSlice::advance_slices(&mut rest, written);
        }
        self.stream
            .flush()
            .await
            .or_err(ErrorType::WriteError, "flushing the response")
    }

    async fn fill(&mut self) -> Result<usize> {
        crate::wire::fill(&mut self.stream, &mut self.buf)
            .await
            .or_err(ErrorType::ReadError, "reading from the client")
    }

    fn take(&mut self, n: usize) -> Bytes {
        crate::wire::take(&mut self.buf, n)
    }

    fn consume(&mut self, n: usize) {
        crate::wire::consume(&mut self.buf, n)
    }
}

/// `{len:x}\r\n` in `out`.
fn chunk_line(out: &mut [u8; 20], len: usize) -> &[u8] {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, digit) in out.iter_mut().take(digits).enumerate() {
        *digit = b"0123456789abcdef"[(len >> (4 * (digits - 1 - i))) & 0xf];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    &out[..digits + 2]
}

/// Whether `buf`, the start of a request header whose end has not arrived, can
/// still become one: after any empty lines (RFC 9112 §2.2), its first bytes are
/// a method token so far (RFC 9110 §5.6.2, as `Method` checks it). Only the first 64 bytes are looked
/// at, so a header that trickles in costs no more per read.
fn may_start_request(buf: &[u8]) -> bool {
    let head = &buf[..buf.len().min(64)];
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let rest = &head[start..];
    let method = &rest[..rest.iter().position(|&b| b == b' ').unwrap_or(rest.len())];
    rest.is_empty() || Method::from_bytes(method).is_ok()
}

/// A request header this module takes, with its length in `buf`, its body's
/// length, and whether it asked to close; `None` for one pingora must read.
fn plain_request(buf: &[u8]) -> Option<(Box<RequestHeader>, usize, u64, bool)> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        _ => return None,
    };
    if parsed.version != Some(1) {
        return None;
    }
    let method = Method::from_bytes(parsed.method?.as_bytes()).ok()?;
    let path = parsed.path?;
    if method == Method::CONNECT || !path.starts_with('/') {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    // Values are slices of the header's own copy, so the body bytes read with
    // it are not pinned while the request lives.
    let raw = Bytes::copy_from_slice(&buf[..len]);
    let base = buf.as_ptr() as usize;
    let mut length = None;
    let mut close = false;
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if name == header::TRANSFER_ENCODING || name == header::EXPECT || name == header::UPGRADE {
            return None;
        } else if name == header::CONTENT_LENGTH {
            if length.is_some() {
                return None;
            }
            length = Some(crate::decimal::parse(h.value)?);
        } else if name == header::CONNECTION {
            let token = h.value.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !token.eq_ignore_ascii_case(b"keep-alive") {
                return None;
            }
        }
        let start = h.value.as_ptr() as usize - base;
        let value = HeaderValue::from_maybe_shared(raw.slice(start..start + h.value.len())).ok()?;
        headers.append(name, value);
    }
    // The fields go straight into the map: pingora's `append_header` would
    // make a title-cased copy of every name first.
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    // The path, too, is a slice of the header's copy (pingora's `set_raw_path`
    // would copy it again, and rejects what `PathAndQuery` rejects).
    let start = path.as_ptr() as usize - base;
    let path = PathAndQuery::from_maybe_shared(raw.slice(start..start + path.len())).ok()?;
    parts.uri = Uri::from(path);
    let req = RequestHeader::from(parts);
    authority::validate_request_authority(&req).ok()?;
    Some((Box::new(req), len, length.unwrap_or(0), close))
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
