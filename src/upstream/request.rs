//! The upstream request header: the client's headers minus hop-by-hop and
//! credential headers, plus the provider's Host, credential and defaults.

use http::{header, HeaderName, HeaderValue, Method};
use pingora_http::RequestHeader;

/// Headers never copied from the client: hop-by-hop (RFC 9110 §7.6.1), framing that
/// tollgate sets itself, the client's credentials, and `accept-encoding` (usage is
/// read from the response, so it must come back uncompressed).
const DROPPED: &[&str] = &[
    "host",
    "authorization",
    "x-api-key",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "accept-encoding",
    "http2-settings",
];

fn dropped(name: &HeaderName, connection_listed: &[&str]) -> bool {
    let n = name.as_str();
    DROPPED.contains(&n) || connection_listed.iter().any(|c| c.eq_ignore_ascii_case(n))
}

/// What one attempt sends.
pub struct Outgoing<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub authority: &'a HeaderValue,
    pub auth: Option<(HeaderName, HeaderValue)>,
    pub defaults: &'a [(HeaderName, HeaderValue)],
    pub body_len: usize,
}

/// Builds the upstream request header from the client's.
///
/// The header has no case map (names go out in canonical case), so they go
/// into its `HeaderMap` directly: `RequestHeader::append_header` would turn each
/// `HeaderName` back into bytes and parse it again.
pub fn build(client: &RequestHeader, out: &Outgoing<'_>) -> pingora_error::Result<RequestHeader> {
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = out.method.clone();
    let listed: Vec<&str> = client
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let headers = &mut parts.headers;
    headers.reserve(client.headers.len() + 4);
    for (name, value) in client.headers.iter() {
        if !dropped(name, &listed) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::HOST, out.authority.clone());
    for (name, value) in out.defaults {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    if let Some((name, value)) = &out.auth {
        headers.insert(name.clone(), value.clone());
    }
    let has_body = out.body_len > 0
        || !matches!(
            *out.method,
            Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
        );
    if has_body {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(out.body_len));
    }
    let mut req = RequestHeader::from(parts);
    req.set_raw_path(out.path.as_bytes())?;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_credentials_and_hop_by_hop() {
        let mut client = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
        for (k, v) in [
            ("authorization", "Bearer tg-secret"),
            ("x-api-key", "tg-secret"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("accept-encoding", "gzip"),
            ("content-type", "application/json"),
            ("openai-organization", "org-1"),
            ("content-length", "999"),
            ("expect", "100-continue"),
        ] {
            client.append_header(k.to_string(), v).unwrap();
        }
        let authority = HeaderValue::from_static("api.openai.com");
        let out = Outgoing {
            method: &Method::POST,
            path: "/v1/chat/completions",
            authority: &authority,
            auth: Some((
                header::AUTHORIZATION,
                HeaderValue::from_static("Bearer sk-managed"),
            )),
            defaults: &[(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static("2023-06-01"),
            )],
            body_len: 42,
        };
        let req = build(&client, &out).unwrap();
        let h = &req.headers;
        assert_eq!(h["authorization"], "Bearer sk-managed");
        assert!(h.get("x-api-key").is_none());
        assert!(h.get("x-private").is_none());
        assert!(h.get("connection").is_none());
        assert!(h.get("accept-encoding").is_none());
        assert!(h.get("expect").is_none());
        assert_eq!(h["content-length"], "42");
        assert_eq!(h["host"], "api.openai.com");
        assert_eq!(h["openai-organization"], "org-1");
        assert_eq!(h["anthropic-version"], "2023-06-01");
    }
}
