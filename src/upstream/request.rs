//! The upstream request header: the client's headers minus hop-by-hop and
//! credential headers, plus the provider's Host, credential and defaults.

use http::{header, HeaderName, HeaderValue, Method};
use pingora_http::RequestHeader;

/// Headers never copied from the client: hop-by-hop (RFC 9110 §7.6.1), framing that
/// tollgate sets itself, the client's credentials, and `accept-encoding` (usage is
/// read from the response, so it must come back uncompressed). A `match`, so each
/// client header costs a length switch and a compare or two, not fifteen compares.
fn never_copied(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "authorization"
            | "x-api-key"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "upgrade"
            | "expect"
            | "accept-encoding"
            | "http2-settings"
    )
}

fn dropped(name: &HeaderName, connection_listed: &[&str]) -> bool {
    let n = name.as_str();
    never_copied(n) || connection_listed.iter().any(|c| c.eq_ignore_ascii_case(n))
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

/// An upstream request header, serialized for HTTP/1.1.
#[derive(Debug, Clone)]
pub struct Wire {
    pub bytes: Vec<u8>,
    /// A HEAD request: its response has no body, whatever its header says.
    pub head_only: bool,
}

/// Builds the upstream request header from the client's, straight onto the
/// wire: header names go out in their canonical (lower) case, and no header
/// map is built only to be serialized.
pub fn build(client: &RequestHeader, out: &Outgoing<'_>) -> pingora_error::Result<Wire> {
    // The path is the client's (parsed from its request line) under the
    // provider's base path; a byte that would end the request line is refused.
    if out.path.is_empty() || out.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return pingora_error::Error::e_explain(
            pingora_error::ErrorType::InvalidHTTPHeader,
            "unsendable request path",
        );
    }
    let listed: Vec<&str> = client
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut w = Vec::with_capacity(512);
    w.extend_from_slice(out.method.as_str().as_bytes());
    w.push(b' ');
    w.extend_from_slice(out.path.as_bytes());
    w.extend_from_slice(b" HTTP/1.1\r\n");
    field(&mut w, &header::HOST, out.authority);
    for (name, value) in client.headers.iter() {
        if !dropped(name, &listed) {
            field(&mut w, name, value);
        }
    }
    // A default never stands in for a field tollgate sets or drops itself.
    let auth_name = out.auth.as_ref().map(|(name, _)| name);
    for (name, value) in out.defaults {
        let own = never_copied(name.as_str()) || auth_name == Some(name);
        if !own && (!client.headers.contains_key(name) || dropped(name, &listed)) {
            field(&mut w, name, value);
        }
    }
    if let Some((name, value)) = &out.auth {
        field(&mut w, name, value);
    }
    let has_body = out.body_len > 0
        || !matches!(
            *out.method,
            Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
        );
    if has_body {
        w.extend_from_slice(b"content-length: ");
        w.extend_from_slice(crate::decimal::decimal(out.body_len as u64).as_slice());
        w.extend_from_slice(b"\r\n");
    }
    w.extend_from_slice(b"\r\n");
    Ok(Wire {
        bytes: w,
        head_only: *out.method == Method::HEAD,
    })
}

fn field(w: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    w.extend_from_slice(name.as_str().as_bytes());
    w.extend_from_slice(b": ");
    w.extend_from_slice(value.as_bytes());
    w.extend_from_slice(b"\r\n");
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
        assert!(!req.head_only);
        let (line, h) = parse(&req.bytes);
        assert_eq!(line, "POST /v1/chat/completions HTTP/1.1");
        let h = &h;
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

    /// The request line and fields of a serialized header (each name once).
    fn parse(wire: &[u8]) -> (String, http::HeaderMap) {
        let text = std::str::from_utf8(wire).unwrap();
        let body = text
            .strip_suffix("\r\n\r\n")
            .expect("header ends with a blank line");
        let mut lines = body.split("\r\n");
        let line = lines.next().unwrap().to_string();
        let mut map = http::HeaderMap::new();
        for l in lines {
            let (k, v) = l.split_once(": ").unwrap();
            let name = HeaderName::from_bytes(k.as_bytes()).unwrap();
            assert!(!map.contains_key(&name), "{k} sent twice");
            map.insert(name, v.parse().unwrap());
        }
        (line, map)
    }

    #[test]
    fn defaults_never_duplicate_what_tollgate_sets() {
        let client = RequestHeader::build("POST", b"/", None).unwrap();
        let authority = HeaderValue::from_static("api.example");
        let defaults = [
            (header::HOST, HeaderValue::from_static("evil")),
            (header::CONTENT_LENGTH, HeaderValue::from_static("1")),
            (
                header::AUTHORIZATION,
                HeaderValue::from_static("Bearer other"),
            ),
        ];
        for body_len in [0, 7, 1234567890] {
            let out = Outgoing {
                method: &Method::POST,
                path: "/v1/x",
                authority: &authority,
                auth: Some((header::AUTHORIZATION, HeaderValue::from_static("Bearer k"))),
                defaults: &defaults,
                body_len,
            };
            // `parse` fails on any field sent twice.
            let (_, h) = parse(&build(&client, &out).unwrap().bytes);
            assert_eq!(h["host"], "api.example");
            assert_eq!(h["authorization"], "Bearer k");
            assert_eq!(h["content-length"], body_len.to_string().as_str());
        }
    }

    #[test]
    fn a_path_that_would_break_the_request_line_is_refused() {
        let client = RequestHeader::build("GET", b"/", None).unwrap();
        let authority = HeaderValue::from_static("h");
        for path in ["/a b", "/a\r\nx: y", "", "/\u{7f}"] {
            let out = Outgoing {
                method: &Method::GET,
                path,
                authority: &authority,
                auth: None,
                defaults: &[],
                body_len: 0,
            };
            assert!(build(&client, &out).is_err(), "{path:?}");
        }
    }

    #[test]
    fn head_requests_are_marked_and_bodiless_gets_carry_no_length() {
        let client = RequestHeader::build("HEAD", b"/", None).unwrap();
        let authority = HeaderValue::from_static("h");
        for (method, head_only) in [(Method::HEAD, true), (Method::GET, false)] {
            let out = Outgoing {
                method: &method,
                path: "/v1/models",
                authority: &authority,
                auth: None,
                defaults: &[],
                body_len: 0,
            };
            let req = build(&client, &out).unwrap();
            assert_eq!(req.head_only, head_only);
            let (_, h) = parse(&req.bytes);
            assert!(h.get("content-length").is_none());
        }
    }
}
