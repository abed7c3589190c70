//! The request log: what a recording mock remembers about each request, and credential lookup.

use bytes::Bytes;
use hyper::HeaderMap;

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path plus `"?query"` if the request had one.
    pub path: String,
    /// Header names in lower case. Order is arrival order of each distinct name, with
    /// repeated values of one name kept together (HTTP/2 pseudo-headers are not included).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// `"HTTP/1.1"`, `"HTTP/2.0"`, ...
    pub version: String,
}

impl Recorded {
    pub(crate) fn new(parts: &hyper::http::request::Parts, body: Bytes) -> Self {
        Recorded {
            method: parts.method.as_str().to_owned(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
            version: format!("{:?}", parts.version),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The request's credential: the `Authorization: Bearer` token, else `x-api-key`
    /// (else Azure's `api-key` or Gemini's `x-goog-api-key`).
    pub fn credential(&self) -> Option<&str> {
        credential_with(|name| self.header(name))
    }
}

/// The credential of a live request (same rules as [`Recorded::credential`]).
pub(crate) fn credential(headers: &HeaderMap) -> Option<&str> {
    credential_with(|name| headers.get(name).and_then(|v| v.to_str().ok()))
}

fn credential_with<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
    if let Some(auth) = get("authorization") {
        let auth = auth.trim();
        if auth
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
        {
            return auth.get(7..).map(str::trim);
        }
    }
    ["x-api-key", "api-key", "x-goog-api-key"]
        .into_iter()
        .find_map(get)
        .map(str::trim)
}
