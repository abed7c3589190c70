//! Writing tollgate's own answers: JSON bodies and OpenAI-shaped errors.

use bytes::Bytes;
use pingora_http::ResponseHeader;

use super::ctx::Ctx;
use super::Session;
use crate::error::ApiError;
use crate::upstream::exchange::ExtraHeader;

/// Writes a complete response with `body` and the given extra headers.
pub async fn json(
    session: &mut Session,
    status: u16,
    body: Bytes,
    headers: &[(&'static str, &str)],
) -> pingora_error::Result<()> {
    json_with(session, status, body, headers, &[]).await
}

/// [`json`], plus prebuilt headers.
async fn json_with(
    session: &mut Session,
    status: u16,
    body: Bytes,
    headers: &[(&'static str, &str)],
    built: &[ExtraHeader],
) -> pingora_error::Result<()> {
    let mut resp = json_header(status, &body, 1 + headers.len() + built.len())?;
    for (name, value) in headers {
        resp.insert_header(*name, *value)?;
    }
    for (name, value) in built {
        resp.insert_header(name, value.clone())?;
    }
    session.write_response_header(Box::new(resp)).await?;
    if session.req_header().method != http::Method::HEAD {
        session.write_response_body(body, true).await?;
    }
    Ok(())
}

/// Answers a request whose header could not be read whole (malformed, or too
/// slow); the connection then closes (where the next request would start is
/// unknown).
pub async fn unread(session: &mut Session, err: &ApiError) -> pingora_error::Result<()> {
    let body = err.body();
    let resp = json_header(err.status(), &body, 0)?;
    session.write_error_response(resp, body).await
}

/// A JSON answer's header: status, content type and length, and room for
/// `more` headers.
fn json_header(status: u16, body: &Bytes, more: usize) -> pingora_error::Result<ResponseHeader> {
    let mut resp = ResponseHeader::build_no_case(status, Some(2 + more))?;
    resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    Ok(resp)
}

/// Answers `err` as OpenAI-shaped JSON and records it in the context.
pub async fn error(
    session: &mut Session,
    ctx: &mut Ctx,
    err: &ApiError,
) -> pingora_error::Result<()> {
    ctx.response.status = err.status();
    ctx.response.error = Some(err.code());
    if matches!(
        err,
        ApiError::ClientBody
            | ApiError::TooLarge { .. }
            | ApiError::BodyTimeout(_)
            | ApiError::BodyStalled(_)
            | ApiError::HeadersTooLarge { .. }
    ) {
        // Where this request's body ends is unknown or unread: whatever
        // follows on the connection must never be taken for a new request.
        session.set_keepalive(None);
    }
    let mut headers = Vec::with_capacity(3);
    if let Some(allow) = err.allow() {
        headers.push(("allow", allow));
    }
    let retry = err
        .retry_after_ms()
        .map(|ms| (ms.div_ceil(1000).max(1).to_string(), ms.to_string()));
    if let Some((secs, ms)) = &retry {
        headers.push(("retry-after", secs));
        headers.push(("retry-after-ms", ms));
    }
    let built = match err.headers() {
        [] => ctx.limits.as_ref().map_or(&[][..], |l| &l.headers[..]),
        own => own,
    };
    json_with(session, err.status(), err.body(), &headers, built).await
}
