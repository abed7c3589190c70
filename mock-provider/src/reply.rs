//! Response assembly shared by the wire formats: JSON and SSE responses, provider-shaped errors.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};

use crate::body::MockBody;

pub(crate) type Resp = Response<MockBody>;

/// A complete JSON response.
pub(crate) fn json(status: u16, body: Bytes) -> Resp {
    let mut r = Response::new(MockBody::full(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A `text/event-stream` response; each frame is sent as its own HTTP chunk, and frames
/// marked `true` (content chunks) wait `delay` first.
pub(crate) fn sse(frames: VecDeque<(bool, Bytes)>, delay: Duration) -> Resp {
    let mut r = Response::new(MockBody::stream(frames, delay));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Makes a response end in an abrupt connection close after `after_chunks` frames (streams)
/// or half of its bytes (complete bodies, which keep announcing the full Content-Length).
pub(crate) fn cut(
    resp: Resp,
    after_chunks: usize,
    ctl: std::sync::Arc<crate::body::ConnCtl>,
) -> Resp {
    let (mut parts, body) = resp.into_parts();
    if let Some(len) = body.exact_len() {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, body.cut(after_chunks, ctl))
}

/// The `HugeHeaders` fault: `count` extra headers of `size` bytes each.
pub(crate) fn padded(mut resp: Resp, count: usize, size: usize) -> Resp {
    let value = HeaderValue::from_str(&"p".repeat(size)).unwrap_or(HeaderValue::from_static(""));
    for i in 0..count {
        if let Ok(name) =
            hyper::header::HeaderName::from_bytes(format!("x-mock-pad-{i}").as_bytes())
        {
            resp.headers_mut().append(name, value.clone());
        }
    }
    resp
}

/// The `Endless` fault's answer: 200, this content type, `chunk` repeated forever.
pub(crate) fn endless(content_type: &str, chunk: &str) -> Resp {
    let mut r = Response::new(MockBody::endless(Bytes::copy_from_slice(chunk.as_bytes())));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

/// The `Drip` fault: the same answer, one byte per chunk, `pause` before each.
pub(crate) fn drip(resp: Resp, pause: Duration) -> Resp {
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, body.drip(pause))
}

/// The `Status` fault's answer: given status, JSON body, optional Retry-After.
pub(crate) fn status(code: u16, retry_after: Option<&str>, body: &str) -> Resp {
    let mut r = json(code, Bytes::copy_from_slice(body.as_bytes()));
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        r.headers_mut().insert(RETRY_AFTER, v);
    }
    r
}

/// An error in the shape of the provider that owns `path` (Anthropic for `.../messages`,
/// OpenAI otherwise).
pub(crate) fn error(code: u16, path: &str, message: &str) -> Resp {
    let msg = serde_json::Value::from(message).to_string();
    let body = if path.ends_with("/messages") || path.ends_with("/messages/count_tokens") {
        let kind = match code {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        format!(r#"{{"type":"error","error":{{"type":"{kind}","message":{msg}}}}}"#)
    } else {
        let (kind, code_field) = match code {
            400 => ("invalid_request_error", "null"),
            401 => ("invalid_request_error", r#""invalid_api_key""#),
            403 => (
                "invalid_request_error",
                r#""unsupported_country_region_territory""#,
            ),
            404 => ("invalid_request_error", "null"),
            429 => ("requests", r#""rate_limit_exceeded""#),
            503 => ("server_error", r#""service_unavailable""#),
            _ => ("server_error", "null"),
        };
        format!(
            r#"{{"error":{{"message":{msg},"type":"{kind}","param":null,"code":{code_field}}}}}"#
        )
    };
    json(code, Bytes::from(body))
}
