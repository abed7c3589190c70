//! One request of a client connection, start to finish: read its header, answer
//! it (`dispatch`), settle it (metrics, credits, access log), and hand the
//! connection on for the next request.
//!
//! tollgate is a pingora `ServerApp`, not a `ProxyHttp` service: every request is
//! answered from tollgate's own exchange (see README's architecture section), so
//! pingora-proxy's phases, cache and upstream loop would run around it for
//! nothing. And `Front` keeps an HTTP/1.1 connection's request loop in one
//! future: pingora's `HttpServerApp` loop boxes a new future, the size of the
//! whole request's, for every request of a keep-alive connection.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::deadline::timeout;
use async_trait::async_trait;
use bytes::BytesMut;
use pingora_core::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use pingora_error::ErrorType;

use super::ctx::{Ctx, InFlight};
use super::{dispatch, respond, Gateway, Session, Stop};
use crate::downstream::h1;
use crate::error::ApiError;

/// What pingora's listener runs for each client connection: HTTP/1.1 requests
/// are read and answered in a loop here; an h2 connection goes to pingora's h2
/// server, which calls [`Gateway::process_new_http`] for each of its streams.
pub struct Front(pub Arc<Gateway>);

#[async_trait]
impl ServerApp for Front {
    /// Gives the connection a task of its own and ends pingora's: pingora's task
    /// for a connection also holds its TLS handshake's future (8.7 KB), which
    /// would stay allocated for as long as the connection is open. The new
    /// task is the size of tollgate's own connection future.
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        tokio::spawn(Arc::clone(self).connection(stream, shutdown.clone()));
        None
    }

    async fn cleanup(&self) {
        self.0.http_cleanup().await;
    }
}

impl Front {
    /// One client connection, from its first byte to its close (`None` when
    /// it ends).
    async fn connection(
        self: Arc<Self>,
        mut stream: Stream,
        shutdown: ShutdownWatch,
    ) -> Option<()> {
        // The first header's deadline counts from here, the protocol check included.
        let started = Instant::now();
        let (header, keepalive) = self.0.header_deadlines();
        let h2 = tokio::select! {
            biased;
            h2 = timeout(header, speaks_h2(&mut stream)) => h2.ok().flatten()?,
            () = self.0.closing() => return None,
        };
        if h2 {
            // Pingora's own h2 path (it peeks the h2c preface once more); it
            // never hands an h2 connection back.
            <Gateway as ServerApp>::process_new(&self.0, stream, &shutdown).await;
            return None;
        }
        let mut conn = h1::Conn::new(stream, BytesMut::new());
        let mut limit = header.saturating_sub(started.elapsed());
        let mut idle = None;
        loop {
            let session = self.0.next_request(conn, limit, idle).await?;
            conn = self.0.serve(session, &shutdown).await?;
            // A kept-alive connection: the wait for the next request to start
            // (whole seconds, at least one, as pingora kept them), then its
            // header within the header timeout.
            limit = header;
            idle = Some(Duration::from_secs(keepalive.as_secs().max(1)));
        }
    }
}

/// Whether a request's transfer codings are none or a lone `chunked`.
fn codings_understood(req: &pingora_http::RequestHeader) -> bool {
    let mut codings = crate::wire::Codings::default();
    for value in req.headers.get_all(http::header::TRANSFER_ENCODING) {
        codings.see(value.as_bytes());
    }
    codings.understood()
}

/// The h2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a connection speaks h2: by ALPN under TLS, by its preface (h2c)
/// otherwise. `None`: the client left before sending a request.
async fn speaks_h2(stream: &mut Stream) -> Option<bool> {
    if stream.get_ssl_digest().is_some() {
        return Some(matches!(stream.selected_alpn_proto(), Some(ALPN::H2)));
    }
    // Four bytes tell a request line ("GET ", "POST", "PUT "…) from the preface,
    // without waiting for 24 bytes that a short HTTP/1 request never sends.
    let mut start = [0u8; 4];
    if !peek(stream, &mut start).await? || start != H2_PREFACE[..4] {
        return Some(false);
    }
    let mut preface = [0u8; 24];
    Some(peek(stream, &mut preface).await? && preface == *H2_PREFACE)
}

/// Fills `buf` from the stream and puts the bytes back. `Some(false)`: this kind
/// of stream cannot peek.
async fn peek(stream: &mut Stream, buf: &mut [u8]) -> Option<bool> {
    match stream.try_peek(buf).await {
        Ok(peeked) => Some(peeked),
        Err(e) => {
            log::debug!("client left before its first request: {e}");
            None
        }
    }
}

/// Pingora's h2 server calls this for each stream of an h2 connection.
#[async_trait]
impl HttpServerApp for Gateway {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let (header, _) = self.header_deadlines();
        let mut session = Session::Pingora(Box::new(session));
        if self.read_header(&mut session, header).await {
            // An h2 stream is not reused: `serve` has finished it.
            self.serve(session, shutdown).await;
        }
        None
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }

    /// The service stopped listening: connections waiting for their next request
    /// close now.
    async fn http_cleanup(&self) {
        self.closed.store(true, Ordering::Release);
        self.close.notify_waiters();
    }
}

impl Gateway {
    /// Reads the next request of an HTTP/1.1 connection (its start within
    /// `idle` on a kept-alive one, then its header within `limit`):
    /// into tollgate's own session when its header is a plain one, else into
    /// pingora's. `None`: nothing to answer (the client closed, the service is
    /// stopping, or the header was malformed or too slow and has been answered).
    ///
    /// The two waits are apart so that each request registers one timer, not
    /// two nested ones: a header that arrives whole with its first byte never
    /// waits under the second.
    async fn next_request(
        &self,
        mut conn: h1::Conn,
        limit: Duration,
        idle: Option<Duration>,
    ) -> Option<Session> {
        if let Some(idle) = idle {
            let waited = tokio::select! {
                // Biased: a request already buffered is answered, not dropped.
                biased;
                w = conn.wait_next(idle) => w,
                () = self.closing() => return None,
            };
            match waited {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    log::debug!("waiting for a request: {e}");
                    conn.shutdown().await;
                    return None;
                }
            }
        }
        let started = Instant::now();
        let read = tokio::select! {
            biased;
            r = timeout(limit, conn.read_request()) => r,
            () = self.closing() => return None,
        };
        match read {
            Ok(Ok(h1::Read::Request)) => Some(Session::Own(conn)),
            Ok(Ok(h1::Read::Closed)) => None,
            Ok(Ok(h1::Read::Fallback)) => {
                let mut session = Session::handed_over(conn);
                let limit = limit.saturating_sub(started.elapsed());
                self.read_header(&mut session, limit)
                    .await
                    .then_some(session)
            }
            Ok(Err(e)) => {
                log::debug!("reading a request header: {e}");
                conn.shutdown().await;
                None
            }
            Err(_) => {
                let mut session = Session::Own(conn);
                self.refuse_unread(
                    &mut session,
                    ApiError::HeaderTimeout(self.header_deadlines().0),
                )
                .await;
                None
            }
        }
    }

    /// Answers one request and settles it. The connection back when it may
    /// carry another (never for h2, whose streams are not reused).
    async fn serve(&self, mut session: Session, shutdown: &ShutdownWatch) -> Option<h1::Conn> {
        if *shutdown.borrow() {
            session.set_keepalive(None);
        }
        let mut ctx = Ctx {
            in_flight: Some(InFlight::enter(&self.in_flight)),
            ..Ctx::default()
        };
        let reusable = self.answer(&mut session, &mut ctx).await;
        self.settle(&session, &mut ctx).await;
        // `ctx` lives until the answer is flushed: the request stays in flight
        // (shutdown waits for it) until then.
        if !reusable {
            return None;
        }
        session.finish().await
    }

    /// Reads the request header. False: nothing to answer (the client closed, the
    /// service is stopping, or the header was malformed and has been answered).
    async fn read_header(&self, session: &mut Session, limit: Duration) -> bool {
        // Pingora bounds each read of the header and the keep-alive wait, not the
        // whole header: that is bounded here.
        let Session::Pingora(pingora) = session else {
            return false;
        };
        let read = tokio::select! {
            // Biased: a request already buffered is answered, not dropped.
            biased;
            r = timeout(limit, pingora.read_request()) => r,
            () = self.closing() => return false,
        };
        let refusal = match read {
            // Only pingora's reader takes a Transfer-Encoding (tollgate's own
            // leaves any to it), and it reads any list that ends in `chunked`
            // as a lone `chunked`: anything more is refused here (501).
            Ok(Ok(true)) if !codings_understood(pingora.req_header()) => {
                ApiError::UnsupportedTransferCoding
            }
            Ok(Ok(true)) => return true,
            Ok(Ok(false)) => return false,
            Ok(Err(e)) if e.etype() == &ErrorType::InvalidHTTPHeader => ApiError::MalformedRequest,
            Ok(Err(e)) => {
                log::debug!("reading a request header: {e}");
                session.shutdown().await;
                return false;
            }
            Err(_) => ApiError::HeaderTimeout(self.header_deadlines().0),
        };
        self.refuse_unread(session, refusal).await;
        false
    }

    /// Answers a request whose header could not be read, and closes.
    async fn refuse_unread(&self, session: &mut Session, refusal: ApiError) {
        let _ = respond::unread(session, &refusal).await;
        session.shutdown().await;
    }

    /// `downstream.header_timeout` and `keepalive_timeout`, as configured now.
    fn header_deadlines(&self) -> (Duration, Duration) {
        let d = &self.state.load().config.downstream;
        (d.header_timeout, d.keepalive_timeout)
    }

    /// Resolves once the service has stopped listening.
    async fn closing(&self) {
        let notified = self.close.notified();
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        notified.await
    }

    /// Answers the request. True when the connection may carry another one.
    async fn answer(&self, session: &mut Session, ctx: &mut Ctx) -> bool {
        ctx.started = Some(Instant::now());
        let state = self.state.load_full();
        // The request's indices (access key, provider, model) are into this state:
        // `settle` uses it even if a reload swapped in another meanwhile.
        ctx.state = Some(state.clone());
        match dispatch(self, &state, session, ctx).await {
            Ok(()) => true,
            Err(Stop::Api(e)) => match respond::error(session, ctx, &e).await {
                Ok(()) => true,
                Err(write) => {
                    log::debug!("answering {}: {write}", e.code());
                    ctx.response.aborted = true;
                    false
                }
            },
            Err(Stop::ClientGone) => {
                ctx.response.aborted = true;
                ctx.response.status = 499;
                false
            }
            Err(Stop::Abort(e)) => {
                // Client disconnects and broken streams are expected at an edge.
                log::debug!("exchange aborted: {e}");
                ctx.response.aborted = true;
                false
            }
        }
    }

    /// Settles usage into metrics, rate limits, credits and the access log.
    async fn settle(&self, session: &Session, ctx: &mut Ctx) {
        if ctx.response.status == 0 {
            ctx.response.status = match session.response_written() {
                Some(resp) => resp.status.as_u16(),
                None if ctx.response.aborted => 499,
                None => 0,
            };
        }
        let state = ctx.state.take().unwrap_or_else(|| self.state.load_full());
        let settled = crate::account::settle(&state, ctx);
        if let Some(lease) = ctx.limits.take() {
            self.limiter.settle(&state, lease, settled.used);
        }
        crate::access_log::write(&state, session, ctx, &settled);
        let reservation = ctx.auth.reservation.take();
        self.budget
            .settle(
                &state,
                ctx.auth.access_key,
                reservation,
                settled.charge.total(),
            )
            .await;
    }
}
