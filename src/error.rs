//! `ApiError`: every answer tollgate gives itself, mapped once to a status, an
//! OpenAI-shaped JSON body and a low-cardinality metric label.

use bytes::Bytes;

use crate::request::scan::ScanError;

/// An error tollgate answers itself (the provider is never asked, or could not answer).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadBody(#[from] ScanError),
    #[error("The model `{model}` does not exist or you do not have access to it.{hint}")]
    ModelNotFound { model: String, hint: String },
    #[error("missing API key: send `Authorization: Bearer KEY` or `x-api-key: KEY`")]
    MissingKey,
    #[error("invalid API key")]
    InvalidKey,
    #[error("no credential for provider `{0}`: attach a provider key to this access key or configure {1}")]
    ProviderKeyRequired(String, String),
    #[error("provider `{provider}` is not usable: {why}")]
    ProviderNotConfigured { provider: String, why: String },
    #[error("provider `{provider}` does not serve {endpoint}")]
    UnsupportedEndpoint {
        provider: String,
        endpoint: &'static str,
    },
    #[error("unknown provider `{0}`")]
    UnknownProvider(String),
    #[error("invalid proxy path: {0}")]
    InvalidPath(&'static str),
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method not allowed; use {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("\"model\" {0}")]
    InvalidModel(&'static str),
    #[error("request headers exceed the limit of {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    #[error("the request body stalled: nothing arrived for {0:?}")]
    BodyStalled(std::time::Duration),
    #[error("the gateway is at its limit of requests in flight; retry shortly")]
    Overloaded,
    #[error("the client closed the request or sent a malformed body")]
    ClientBody,
    #[error("malformed HTTP request")]
    MalformedRequest,
    #[error("unsupported Transfer-Encoding: only a single `chunked` coding is understood")]
    UnsupportedTransferCoding,
    #[error("an HTTP/1.1 request must carry a Host header")]
    MissingHost,
    #[error("the request header did not arrive within {0:?}")]
    HeaderTimeout(std::time::Duration),
    #[error("/proxy/ is not metered, so access keys with a credit balance, an allow-list or token or per-model limits cannot use it")]
    ProxyNotAllowed,
    #[error("this access key may not use model `{0}`")]
    ModelNotAllowed(String),
    #[error("image content is disabled on this gateway")]
    VisionDisabled,
    #[error("model `{0}` does not accept image content")]
    ModelNotMultimodal(String),
    #[error("insufficient credits: {spent} of {balance} micro-USD spent")]
    InsufficientCredits { balance: u64, spent: u64 },
    #[error("the credit ledger is unavailable: {0}")]
    LedgerUnavailable(String),
    #[error("every key of the provider is rate limited; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("{0}")]
    LimitExceeded(Box<crate::limits::Exceeded>),
    #[error("rate limits are unavailable: {0}")]
    LimiterUnavailable(String),
    #[error("upstream error: {0}")]
    Upstream(String),
    #[error("upstream timed out: {0}")]
    UpstreamTimeout(String),
}

impl ApiError {
    /// HTTP status of the answer.
    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            BadBody(_)
            | InvalidModel(_)
            | UnsupportedEndpoint { .. }
            | InvalidPath(_)
            | ClientBody
            | MalformedRequest
            | MissingHost
            | VisionDisabled
            | ModelNotMultimodal(_) => 400,
            MissingKey | InvalidKey => 401,
            InsufficientCredits { .. } => 402,
            ProviderKeyRequired(..) | ModelNotAllowed(_) | ProxyNotAllowed => 403,
            ModelNotFound { .. } | UnknownProvider(_) | NotFound(_) => 404,
            MethodNotAllowed { .. } => 405,
            BodyTimeout(_) | BodyStalled(_) | HeaderTimeout(_) => 408,
            HeadersTooLarge { .. } => 431,
            TooLarge { .. } => 413,
            RateLimited { .. } | LimitExceeded(_) => 429,
            Upstream(_) => 502,
            ProviderNotConfigured { .. }
            | LedgerUnavailable(_)
            | LimiterUnavailable(_)
            | Overloaded => 503,
            UnsupportedTransferCoding => 501,
            UpstreamTimeout(_) => 504,
        }
    }

    /// OpenAI's `error.type`.
    pub fn kind(&self) -> &'static str {
        // 501 is the status RFC 9112 names for a coding the server does not
        // understand, but the fault is the client's.
        if matches!(self, ApiError::UnsupportedTransferCoding) {
            return "invalid_request_error";
        }
        match self.status() {
            401 => "authentication_error",
            429 => "rate_limit_error",
            403 => "permission_error",
            404 => "invalid_request_error",
            s if s >= 500 => "api_error",
            _ => "invalid_request_error",
        }
    }

    /// OpenAI's `error.code`; also the metric label for errors.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            BadBody(ScanError::MissingModel) => "missing_model",
            BadBody(ScanError::DuplicateModel) => "duplicate_model",
            BadBody(ScanError::ModelNotString | ScanError::EmptyModel) => "invalid_model",
            BadBody(_) => "invalid_json",
            ModelNotFound { .. } => "model_not_found",
            MissingKey => "missing_api_key",
            InvalidKey => "invalid_api_key",
            ProviderKeyRequired(..) => "provider_key_required",
            ProviderNotConfigured { .. } => "provider_not_configured",
            UnsupportedEndpoint { .. } => "unsupported_endpoint",
            UnknownProvider(_) => "provider_not_found",
            InvalidPath(_) => "invalid_path",
            NotFound(_) => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            TooLarge { .. } => "request_too_large",
            ClientBody => "invalid_body",
            MalformedRequest | MissingHost => "invalid_request",
            UnsupportedTransferCoding => "unsupported_transfer_encoding",
            InvalidModel(_) => "invalid_model",
            HeadersTooLarge { .. } => "headers_too_large",
            BodyTimeout(_) | BodyStalled(_) | HeaderTimeout(_) => "request_timeout",
            Overloaded => "overloaded",
            RateLimited { .. } | LimitExceeded(_) => "rate_limit_exceeded",
            LimiterUnavailable(_) => "rate_limiter_unavailable",
            InsufficientCredits { .. } => "insufficient_credits",
            ModelNotAllowed(_) => "model_not_allowed",
            ProxyNotAllowed => "proxy_not_allowed",
            VisionDisabled => "vision_disabled",
            ModelNotMultimodal(_) => "model_not_multimodal",
            LedgerUnavailable(_) => "ledger_unavailable",
            Upstream(_) => "upstream_error",
            UpstreamTimeout(_) => "upstream_timeout",
        }
    }

    /// OpenAI's `error.param`.
    pub fn param(&self) -> Option<&'static str> {
        use ApiError::*;
        match self {
            BadBody(ScanError::MissingModel | ScanError::DuplicateModel)
            | BadBody(ScanError::ModelNotString | ScanError::EmptyModel)
            | ModelNotFound { .. }
            | InvalidModel(_)
            | ModelNotAllowed(_)
            | ModelNotMultimodal(_)
            | UnsupportedEndpoint { .. } => Some("model"),
            _ => None,
        }
    }

    /// The `Allow` header value, for 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            ApiError::MethodNotAllowed { allow } => Some(allow),
            _ => None,
        }
    }

    /// Milliseconds to wait before retrying, for 429 (`Retry-After` rounds it up
    /// to seconds; `retry-after-ms` carries it exactly, as OpenAI's does).
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after } => Some(retry_after.saturating_mul(1000)),
            ApiError::LimitExceeded(e) => Some(e.retry_after_ms),
            ApiError::LimiterUnavailable(_) | ApiError::Overloaded => Some(1000),
            _ => None,
        }
    }

    /// Headers the answer carries besides the body's (rate-limit standing).
    pub fn headers(&self) -> &[crate::upstream::exchange::ExtraHeader] {
        match self {
            ApiError::LimitExceeded(e) => &e.headers,
            _ => &[],
        }
    }

    /// The OpenAI-shaped JSON body.
    pub fn body(&self) -> Bytes {
        let body = serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": self.kind(),
                "param": self.param(),
                "code": self.code(),
            }
        });
        Bytes::from(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_openai_shaped() {
        let e = ApiError::ModelNotFound {
            model: "gpt-4x".into(),
            hint: " Did you mean `gpt-4o`?".into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert!(v["error"]["message"].as_str().unwrap().contains("gpt-4o"));
        assert_eq!(e.status(), 404);
    }

    #[test]
    fn duplicate_model_is_400() {
        let e = ApiError::from(ScanError::DuplicateModel);
        assert_eq!(e.status(), 400);
        assert_eq!(e.code(), "duplicate_model");
    }
}
