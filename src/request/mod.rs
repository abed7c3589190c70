//! The client's request: which API endpoint it names, and its body, read whole
//! within the size limit (answering `Expect: 100-continue`).

#[cfg(test)]
mod json_gen;
pub mod scan;
pub mod vision;

use bytes::{Bytes, BytesMut};

use crate::error::ApiError;
use crate::proxy::Session;

/// A model-routed API endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    /// Anthropic-native.
    Messages,
    /// Anthropic-native `/v1/messages/count_tokens` (free at Anthropic:
    /// nothing to meter).
    CountTokens,
}

impl Endpoint {
    /// The endpoint a client path names (`/v1/chat/completions`, …).
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Some(match path.strip_prefix("/v1/")? {
            "chat/completions" => Endpoint::ChatCompletions,
            "completions" => Endpoint::Completions,
            "embeddings" => Endpoint::Embeddings,
            "responses" => Endpoint::Responses,
            "messages" => Endpoint::Messages,
            "messages/count_tokens" => Endpoint::CountTokens,
            _ => return None,
        })
    }

    /// The path below a provider's base URL.
    pub fn suffix(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Responses => "/responses",
            Endpoint::Messages => "/messages",
            Endpoint::CountTokens => "/messages/count_tokens",
        }
    }

    /// Whether the endpoint is Anthropic's API rather than OpenAI's.
    pub fn is_anthropic(self) -> bool {
        matches!(self, Endpoint::Messages | Endpoint::CountTokens)
    }

    /// Whether its answers carry usage to count and bill.
    pub fn metered(self) -> bool {
        self != Endpoint::CountTokens
    }
}

/// Reads the whole request body, refusing one above `limit` bytes (413) before
/// reading it when `Content-Length` already says so. The body must arrive
/// within `d.body_timeout`, and no read may wait longer than `d.read_timeout`.
pub async fn read_body(
    session: &mut Session,
    limit: usize,
    d: &crate::config::DownstreamSettings,
) -> Result<Bytes, ApiError> {
    let deadline = d.body_timeout;
    // pingora's timer wheel: registering a tokio timer wakes its driver each time.
    match crate::deadline::timeout(deadline, read_body_within(session, limit, d.read_timeout)).await
    {
        Ok(result) => result,
        Err(_) => Err(ApiError::BodyTimeout(deadline)),
    }
}

async fn read_body_within(
    session: &mut Session,
    limit: usize,
    idle: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge { limit });
    }
    let expects_continue = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        // A 100 is not the final response: keep the connection reusable.
        session.set_close_on_response_before_downstream_finish(false);
        let sent = session.write_continue_response().await;
        session.set_close_on_response_before_downstream_finish(true);
        sent.map_err(|_| ApiError::ClientBody)?;
    }

    let mut first: Option<Bytes> = None;
    let mut buf: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(chunk) = session.read_request_body().await.map_err(|e| {
        // A read that waited out `read_timeout` is the client's silence, not
        // a broken body.
        match e.etype() {
            pingora_error::ErrorType::ReadTimedout => ApiError::BodyStalled(idle),
            _ => ApiError::ClientBody,
        }
    })? {
        total += chunk.len();
        if total > limit {
            return Err(ApiError::TooLarge { limit });
        }
        match (&mut first, &mut buf) {
            (None, None) => first = Some(chunk),
            (Some(f), None) => {
                let cap = declared.map_or(total, |n| n as usize).max(total);
                let mut b = BytesMut::with_capacity(cap);
                b.extend_from_slice(f);
                b.extend_from_slice(&chunk);
                buf = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&chunk),
        }
    }
    Ok(match (buf, first) {
        (Some(b), _) => b.freeze(),
        (None, Some(f)) => f,
        (None, None) => Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_paths() {
        assert_eq!(
            Endpoint::from_path("/v1/chat/completions"),
            Some(Endpoint::ChatCompletions)
        );
        assert_eq!(
            Endpoint::from_path("/v1/messages"),
            Some(Endpoint::Messages)
        );
        assert_eq!(Endpoint::from_path("/v1/chat/completions/"), None);
        assert_eq!(Endpoint::from_path("/chat/completions"), None);
        assert_eq!(Endpoint::Embeddings.suffix(), "/embeddings");
    }
}
