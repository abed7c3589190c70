//! The client's side of one request: tollgate's own HTTP/1.1 session for the
//! plain request ([`h1`]), pingora's session for everything else (h2, and
//! HTTP/1.1 requests `h1` hands over).

pub mod h1;

use std::time::Duration;

use bytes::Bytes;
use pingora_core::apps::HttpPersistentSettings;
use pingora_core::protocols::http::ServerSession;
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};

/// One request's client session.
pub enum Session {
    Own(h1::Conn),
    /// Boxed: pingora's session is four times the size of tollgate's, and
    /// this variant is the rare one.
    Pingora(Box<ServerSession>),
}

/// Calls the same method on either kind of session.
macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Session::Own($s) => $e,
            Session::Pingora($s) => $e,
        }
    };
}

impl Session {
    /// pingora's session for a connection whose next request `h1` leaves to
    /// it, fed the bytes `h1` has read as its pipelined prefix.
    pub fn handed_over(conn: h1::Conn) -> Session {
        let (stream, read) = conn.into_parts();
        let mut session = ServerSession::new_http1(stream);
        // Keep-alive on (pingora's default); the gateway turns it off while
        // shutting down and sets the configured timeout once it reads the header.
        session.set_keepalive(Some(60));
        if !read.is_empty() {
            let mut settings = HttpPersistentSettings::for_session(&session);
            settings.set_pipelined_prefix(read);
            settings.apply_to_session(&mut session);
        }
        Session::Pingora(Box::new(session))
    }

    /// Ends the answered request: the connection for the next one, back in
    /// tollgate's session whichever session read this one. `None` when it
    /// closes (and always for an h2 stream).
    pub async fn finish(self) -> Option<h1::Conn> {
        match self {
            Session::Own(conn) => conn.finish().await,
            Session::Pingora(session) => {
                let (stream, read) = session.finish().await.ok().flatten()?.into_parts();
                Some(h1::Conn::new(stream, read.unwrap_or_default()))
            }
        }
    }

    /// The request header. An own session always has one: it is built only
    /// once a header was read.
    pub fn req_header(&self) -> &RequestHeader {
        match self {
            Session::Own(s) => s.req_header().unwrap_or_else(|| empty_header()),
            Session::Pingora(s) => s.req_header(),
        }
    }

    /// The connection's timer, lent for a wait on its behalf (a fresh one
    /// for a session without one); [`Session::put_timer`] gives it back.
    pub fn take_timer(&mut self) -> crate::deadline::Deadline {
        match self {
            Session::Own(s) => std::mem::take(s.timer()),
            Session::Pingora(_) => Default::default(),
        }
    }

    pub fn put_timer(&mut self, timer: crate::deadline::Deadline) {
        if let Session::Own(s) = self {
            *s.timer() = timer;
        }
    }

    pub fn set_keepalive(&mut self, keepalive: Option<u64>) {
        both!(self, s => s.set_keepalive(keepalive))
    }

    pub fn get_keepalive(&self) -> Option<u64> {
        both!(self, s => s.get_keepalive())
    }

    pub fn set_read_timeout(&mut self, t: Option<Duration>) {
        both!(self, s => s.set_read_timeout(t))
    }

    /// Requests pipelined on one connection are answered in order (pingora
    /// drops all but the first by default; tollgate's own session always
    /// keeps them).
    pub fn set_pipelining_enabled(&mut self, enabled: bool) {
        if let Session::Pingora(s) = self {
            s.set_pipelining_enabled(enabled);
        }
    }

    pub fn set_close_on_response_before_downstream_finish(&mut self, close: bool) {
        both!(self, s => s.set_close_on_response_before_downstream_finish(close))
    }

    pub async fn write_continue_response(&mut self) -> Result<()> {
        both!(self, s => s.write_continue_response().await)
    }

    pub async fn read_request_body(&mut self) -> Result<Option<Bytes>> {
        both!(self, s => s.read_request_body().await)
    }

    /// The request body, else a wait on the idle client that ends in an error
    /// when it leaves.
    pub async fn read_body_or_idle(&mut self) -> Result<Option<Bytes>> {
        match self {
            Session::Own(s) => s.read_body_or_idle().await,
            Session::Pingora(s) => s.read_body_or_idle(true).await,
        }
    }

    pub async fn write_response_header(&mut self, resp: Box<ResponseHeader>) -> Result<()> {
        both!(self, s => s.write_response_header(resp).await)
    }

    pub async fn write_response_body(&mut self, data: Bytes, end: bool) -> Result<()> {
        both!(self, s => s.write_response_body(data, end).await)
    }

    pub async fn write_error_response(&mut self, resp: ResponseHeader, body: Bytes) -> Result<()> {
        both!(self, s => s.write_error_response(resp, body).await)
    }

    pub fn response_written(&self) -> Option<&ResponseHeader> {
        both!(self, s => s.response_written())
    }

    pub fn body_bytes_sent(&self) -> usize {
        both!(self, s => s.body_bytes_sent())
    }

    pub async fn shutdown(&mut self) {
        both!(self, s => s.shutdown().await)
    }
}

/// A header for the impossible case of an own session asked for its request
/// before reading one.
fn empty_header() -> &'static RequestHeader {
    static EMPTY: std::sync::OnceLock<RequestHeader> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| RequestHeader::from(http::Request::new(()).into_parts().0))
}
