//! One upstream attempt, driven by tollgate itself over pingora's transport
//! connector and tollgate's HTTP/1.1 client (`super::h1`): take an idle
//! connection from tollgate's pool (`super::pool`) or open one, send the header
//! and the whole body, wait for the response header (watching for the client
//! leaving), then relay the body chunk by chunk and park the connection in the
//! pool again.
//!
//! Driving the exchange here, rather than through pingora-proxy's `upstream_peer`
//! phase, is what lets bodies of any size be sent and re-sent on failover:
//! pingora 0.9 replays at most 64 KiB of a body read in `request_filter` (see
//! README).

use std::time::{Duration, Instant};

use crate::deadline::Deadline;
// pingora's own timeout for the body's waits, which park on every chunk anyway
// (so `deadline::timeout` saves nothing there): with it, `streams.sh --quick`
// measured 16.1 KiB a held stream against 15.0 with pingora's.
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_core::connectors::TransportConnector;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::upstreams::peer::Peer;
use pingora_http::ResponseHeader;
use pingora_timeout::timeout;

use super::h1::{Conn, Framing, Head};
use super::pool::Pool;
use super::request::Wire;
use crate::config::UpstreamSettings;
use crate::proxy::Session;
use crate::usage::Meter;

/// A header tollgate adds to an answer. Names are made with
/// `HeaderName::from_static`, so adding one parses and allocates nothing.
pub type ExtraHeader = (HeaderName, HeaderValue);

/// Largest error body read (to keep the connection pooled) before a retry.
const DISCARD_LIMIT: usize = 64 * 1024;

/// Why an attempt failed before anything reached the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Connect, TLS, write or read error before the response header.
    Connect(String),
    /// Connect or response-header timeout.
    Timeout(String),
    /// The provider answered a status worth retrying elsewhere.
    Status {
        code: u16,
        retry_after: Option<HeaderValue>,
    },
}

/// How an attempt ended.
#[derive(Debug)]
pub enum AttemptError {
    /// Nothing reached the client: the next candidate may be tried.
    Retry(Failure),
    /// The client went away while we waited.
    ClientGone,
    /// Part of the response reached the client, then the exchange broke (on the
    /// given side): the client connection must be dropped.
    Aborted(Cut, Box<pingora_error::Error>),
}

/// Which side broke an exchange after its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Client,
    Upstream,
}

impl Cut {
    pub fn label(self) -> &'static str {
        match self {
            Cut::Client => "client",
            Cut::Upstream => "upstream",
        }
    }
}

/// The last event of an SSE stream the provider broke: clients see an error, not
/// a clean end (no `[DONE]` follows).
const SSE_CUT_EVENT: &[u8] = b"data: {\"error\":{\"message\":\"the provider's stream broke before it finished\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_stream_cut\"}}\n\n";

/// What a completed attempt delivered.
#[derive(Debug, Clone, Copy)]
pub struct Relayed {
    pub status: u16,
    pub body_bytes: u64,
    pub first_byte: Instant,
}

/// Statuses that fail over to the next key, endpoint or model (SPEC §6).
pub fn retryable(status: u16) -> bool {
    matches!(status, 401 | 403 | 408 | 429) || (500..=599).contains(&status)
}

/// The upstream half of a request: pingora's transport connector makes new
/// connections (TCP, TLS, SNI); idle ones wait in tollgate's own pool, keyed by
/// peer (address, TLS, SNI).
pub struct Exchanger {
    transport: TransportConnector,
    pool: std::sync::Arc<Pool>,
}

impl Default for Exchanger {
    fn default() -> Self {
        Exchanger {
            transport: TransportConnector::new(None),
            pool: std::sync::Arc::default(),
        }
    }
}

/// One attempt's inputs.
pub struct Attempt<'a> {
    pub peer: HttpPeer,
    pub header: Wire,
    pub body: Bytes,
    /// The last candidate: relay what the provider answers, except what
    /// tollgate answers itself (`Attempt::answers_itself`).
    pub last: bool,
    /// Every failure so far was a 429: a last 429 is answered by tollgate.
    pub own_429: bool,
    /// The credential is the client's own (passthrough): a 401/403 is about
    /// the client's key, and is relayed.
    pub clients_key: bool,
    /// Headers added to the client's response (`x-tollgate-*`, then `x-ratelimit-*`).
    pub extra: [&'a [ExtraHeader]; 2],
    pub settings: &'a UpstreamSettings,
}

impl Attempt<'_> {
    /// Whether tollgate answers a retryable status of the last attempt itself
    /// (SPEC §6: exhausted is 429 when every key was rate limited, else
    /// 502/504 as an OpenAI error): a 429 when all were 429s, a 401/403 to
    /// tollgate's own key (not the client's fault), any 5xx (its body may be
    /// anything). A client's own rejected key sees the provider's 401/403.
    fn answers_itself(&self, status: u16) -> bool {
        match status {
            429 => self.own_429,
            401 | 403 => !self.clients_key,
            s => s >= 500,
        }
    }
}

impl Exchanger {
    /// Runs one attempt. A stale pooled connection that fails before any response
    /// byte is retried once on a fresh connection, as the same attempt.
    pub async fn run(
        &self,
        session: &mut Session,
        a: Attempt<'_>,
        meter: &mut Meter,
    ) -> Result<Relayed, AttemptError> {
        let mut fresh_retry = true;
        // The peer's pool key, hashed once (address, TLS, SNI, verification…).
        let key = a.peer.reuse_hash();
        loop {
            let pooled = if fresh_retry {
                self.pool.take(key)
            } else {
                None
            };
            let (stream, reused) = match pooled {
                Some(stream) => (stream, true),
                None => (
                    // Boxed: the connector's future (TCP, TLS handshake) is 8 KiB,
                    // which every request's future would carry and copy otherwise.
                    Box::pin(self.transport.new_stream(&a.peer))
                        .await
                        .map_err(|e| AttemptError::Retry(connect_failure(&e)))?,
                    false,
                ),
            };
            let mut up = Conn::new(stream);
            let waited = match up.send(&a.header.bytes, &a.body).await {
                Ok(()) => match self.wait(session, &mut up, &a).await {
                    Ok(head) => Ok((head, up)),
                    Err(e) => Err((e, Some(up))),
                },
                Err(e) => Err((AttemptError::Retry(connect_failure(&e)), None)),
            };
            // A stale pooled connection fails before any response byte; once
            // one has come, the provider may have run the request.
            let unanswered = |up: &Option<Conn>| up.as_ref().is_none_or(|c| !c.received_any());
            match waited {
                Ok((head, up)) => return self.relay(session, up, head, &a, key, meter).await,
                Err((AttemptError::Retry(Failure::Connect(_)), ref up))
                    if reused && fresh_retry && unanswered(up) =>
                {
                    fresh_retry = false;
                }
                Err((AttemptError::Retry(f @ Failure::Status { .. }), Some(up))) => {
                    self.discard(up, &a, key).await;
                    return Err(AttemptError::Retry(f));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Reads the final response header, watching for the client leaving.
    async fn wait(
        &self,
        session: &mut Session,
        up: &mut Conn,
        a: &Attempt<'_>,
    ) -> Result<Head, AttemptError> {
        let mut timer = session.take_timer();
        let head = self.wait_on(session, up, a, &mut timer).await;
        session.put_timer(timer);
        head
    }

    async fn wait_on(
        &self,
        session: &mut Session,
        up: &mut Conn,
        a: &Attempt<'_>,
        timer: &mut Deadline,
    ) -> Result<Head, AttemptError> {
        let deadline = Instant::now() + a.settings.response_header_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let read = timer.within(left, up.read_head(a.header.head_only));
            let head = tokio::select! {
                biased;
                r = read => match r {
                    Err(_) => return Err(AttemptError::Retry(Failure::Timeout(
                        "no response header in time".into(),
                    ))),
                    Ok(Err(e)) => return Err(AttemptError::Retry(connect_failure(&e))),
                    Ok(Ok(head)) => head,
                },
                () = client_gone(session) => return Err(AttemptError::ClientGone),
            };
            let status = head.status.as_u16();
            if head.status.is_informational() {
                continue;
            }
            if retryable(status) && (!a.last || a.answers_itself(status)) {
                let retry_after = head.headers.get(http::header::RETRY_AFTER).cloned();
                return Err(AttemptError::Retry(Failure::Status {
                    code: status,
                    retry_after,
                }));
            }
            return Ok(head);
        }
    }

    /// Relays the response header and body to the client, then pools the connection.
    async fn relay(
        &self,
        session: &mut Session,
        mut up: Conn,
        head: Head,
        a: &Attempt<'_>,
        key: u64,
        meter: &mut Meter,
    ) -> Result<Relayed, AttemptError> {
        let body_len = match head.framing {
            Framing::Length(n) => Some(n),
            Framing::Chunked | Framing::None => None,
        };
        let resp = prepare_response(head, a.extra);
        let status = resp.status.as_u16();
        let first_byte = meter.start(&resp, body_len);
        session
            .write_response_header(resp)
            .await
            .map_err(|e| AttemptError::Aborted(Cut::Client, e))?;
        let mut body_bytes = 0u64;
        // The batch read with the body's end, written with that end.
        let mut last = Bytes::new();
        loop {
            let chunk = match timeout(a.settings.idle_timeout, up.read_body()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(self.cut(session, meter, e).await),
                Err(_) => {
                    let e = pingora_error::Error::explain(
                        pingora_error::ErrorType::ReadTimedout,
                        "upstream idle between body chunks",
                    );
                    return Err(self.cut(session, meter, e).await);
                }
            };
            body_bytes += chunk.len() as u64;
            let mut ended = false;
            let mut out = Batch::new(meter.observe(&chunk).unwrap_or(chunk));
            // Chunks that have already arrived go out with this one, in one write;
            // nothing waits for data that has not (no added latency). A batch is
            // bounded, so a fast provider cannot make tollgate hold much at once.
            while out.len() < BATCH_LIMIT {
                let next = {
                    let read = std::pin::pin!(up.read_body());
                    poll_now(read)
                };
                match next {
                    Some(Ok(Some(more))) => {
                        body_bytes += more.len() as u64;
                        out.push(meter.observe(&more).unwrap_or(more));
                    }
                    Some(Ok(None)) => {
                        ended = true;
                        break;
                    }
                    Some(Err(e)) => {
                        let _ = session.write_response_body(out.into_bytes(), false).await;
                        return Err(self.cut(session, meter, e).await);
                    }
                    None => break,
                }
            }
            let out = out.into_bytes();
            if ended {
                last = out;
                break;
            }
            if !out.is_empty() {
                session
                    .write_response_body(out, false)
                    .await
                    .map_err(|e| AttemptError::Aborted(Cut::Client, e))?;
            }
        }
        // A sized answer read whole ends in the write of its bytes, not in a
        // second, empty one; what the meter adds at the end follows them.
        let last = match meter.finish() {
            None => last,
            Some(tail) => {
                session
                    .write_response_body(last, false)
                    .await
                    .map_err(|e| AttemptError::Aborted(Cut::Client, e))?;
                tail
            }
        };
        session
            .write_response_body(last, true)
            .await
            .map_err(|e| AttemptError::Aborted(Cut::Client, e))?;
        self.release(up, a, key);
        Ok(Relayed {
            status,
            body_bytes,
            first_byte,
        })
    }

    /// Reads a small error body, within 2 s, so the connection can go back
    /// to the pool; one that cannot be reused is dropped at once.
    async fn discard(&self, mut up: Conn, a: &Attempt<'_>, key: u64) {
        if !up.reusable() {
            return;
        }
        let drained = timeout(Duration::from_secs(2), async {
            let mut read = 0usize;
            while read <= DISCARD_LIMIT {
                match up.read_body().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
            false
        })
        .await;
        if matches!(drained, Ok(true)) {
            self.release(up, a, key);
        }
    }
}

impl Exchanger {
    /// The provider broke the body after the first byte. An event stream gets a
    /// final error event; every response is then cut (no clean end of body), so
    /// the client cannot mistake it for a complete answer.
    async fn cut(
        &self,
        session: &mut Session,
        meter: &mut Meter,
        e: Box<pingora_error::Error>,
    ) -> AttemptError {
        if meter.is_sse() {
            if let Some(held) = meter.finish() {
                let _ = session.write_response_body(held, false).await;
            }
            let _ = session
                .write_response_body(Bytes::from_static(SSE_CUT_EVENT), false)
                .await;
        }
        AttemptError::Aborted(Cut::Upstream, e)
    }

    /// Returns a fully read connection to the pool, when HTTP allows it.
    fn release(&self, up: Conn, a: &Attempt<'_>, key: u64) {
        if let Some(stream) = up.into_idle() {
            self.pool.put(key, stream, a.settings.pool_idle_timeout);
        }
    }
}

/// Polls `f` once: its output if it is ready now, `None` if it would wait. Used only
/// on cancel-safe reads (`h1::Conn` keeps its read state in itself between awaits).
fn poll_now<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Most bytes coalesced into one write to the client.
const BATCH_LIMIT: usize = 64 * 1024;

/// Body chunks relayed together: no copy for one, one buffer for several.
enum Batch {
    One(Bytes),
    Many(bytes::BytesMut),
}

impl Batch {
    fn new(first: Bytes) -> Batch {
        Batch::One(first)
    }

    fn push(&mut self, more: Bytes) {
        if more.is_empty() {
            return;
        }
        match self {
            Batch::One(first) => {
                let mut joined = bytes::BytesMut::with_capacity(first.len() + more.len());
                joined.extend_from_slice(first);
                joined.extend_from_slice(&more);
                *self = Batch::Many(joined);
            }
            Batch::Many(joined) => joined.extend_from_slice(&more),
        }
    }

    fn len(&self) -> usize {
        match self {
            Batch::One(b) => b.len(),
            Batch::Many(m) => m.len(),
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Batch::One(b) => b,
            Batch::Many(m) => m.freeze(),
        }
    }
}

/// Resolves when the client has closed its connection (or reset its h2 stream).
async fn client_gone(session: &mut Session) {
    match session.read_body_or_idle().await {
        Err(_) => {}
        Ok(_) => std::future::pending::<()>().await,
    }
}

fn connect_failure(e: &pingora_error::Error) -> Failure {
    use pingora_error::ErrorType::*;
    let what = e.to_string();
    match e.etype() {
        ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
            Failure::Timeout(what)
        }
        _ => Failure::Connect(what),
    }
}

/// The client's copy of an upstream response header: the provider's fields
/// (`h1` has dropped the hop-by-hop ones) and tollgate's.
///
/// It is built without Pingora's case map (header names go out in their
/// canonical case), so headers are edited in the `http::HeaderMap` directly:
/// `ResponseHeader::insert_header` would parse and copy each name twice, once
/// for the case map, which made the six `x-ratelimit-*` headers the main cost
/// of rate limiting.
fn prepare_response(head: Head, extra: [&[ExtraHeader]; 2]) -> Box<ResponseHeader> {
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = head.status;
    parts.headers = head.headers;
    let headers = &mut parts.headers;
    headers.reserve(extra[0].len() + extra[1].len() + 1);
    // One framing field, tollgate's: a close-delimited upstream body is sent
    // chunked, so the client connection stays reusable.
    match head.framing {
        Framing::Length(n) => {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        Framing::Chunked => {
            headers.insert(
                http::header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        Framing::None => {}
    }
    for (name, value) in extra.into_iter().flatten() {
        headers.insert(name.clone(), value.clone());
    }
    Box::new(ResponseHeader::from(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses() {
        for s in [401, 403, 408, 429, 500, 502, 503, 504] {
            assert!(retryable(s), "{s}");
        }
        for s in [200, 400, 404, 413, 422] {
            assert!(!retryable(s), "{s}");
        }
    }

    #[test]
    fn the_client_gets_one_framing_field_and_tollgate_headers() {
        let extra = [(
            HeaderName::from_static("x-tollgate-provider"),
            HeaderValue::from_static("openai"),
        )];
        let head = |status: u16, framing| Head {
            status: http::StatusCode::from_u16(status).unwrap(),
            headers: http::HeaderMap::new(),
            framing,
        };
        let r = prepare_response(head(200, Framing::Chunked), [&extra, &[]]);
        assert_eq!(r.headers["transfer-encoding"], "chunked");
        assert!(r.headers.get("content-length").is_none());
        assert_eq!(r.headers["x-tollgate-provider"], "openai");
        let mut wire = Vec::new();
        r.header_to_h1_wire(&mut wire);
        let wire = String::from_utf8(wire).unwrap();
        assert!(wire.contains("x-tollgate-provider: openai\r\n"), "{wire}");
        let r = prepare_response(head(200, Framing::Length(42)), [&[], &[]]);
        assert_eq!(r.headers["content-length"], "42");
        assert!(r.headers.get("transfer-encoding").is_none());
        let r = prepare_response(head(204, Framing::None), [&[], &[]]);
        assert!(r.headers.get("transfer-encoding").is_none());
        assert!(r.headers.get("content-length").is_none());
    }
}
