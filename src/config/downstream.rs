//! `downstream:` (what an edge must bound about its clients) and `tls:` (the
//! optional TLS listener).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::parse_duration;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownstreamFile {
    pub read_timeout: Option<String>,
    pub header_timeout: Option<String>,
    pub keepalive_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub max_header_bytes: Option<usize>,
    pub max_requests_in_flight: Option<usize>,
    pub read_buffer_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsFile {
    pub listen: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Bounds on clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamSettings {
    /// Longest wait for one read of a request header or body: 60 s.
    pub read_timeout: Duration,
    /// Longest time to receive a whole request header, from the connection's
    /// start: 30 s (408, then the connection closes; a connection that sent
    /// nothing just closes). On a kept-alive connection the next header must be
    /// whole within `keepalive_timeout` plus this of the previous answer. Bounds a
    /// client trickling its header a byte at a time, which `read_timeout` alone
    /// never cuts.
    pub header_timeout: Duration,
    /// How long an idle keep-alive connection is kept: 60 s.
    pub keepalive_timeout: Duration,
    /// Longest time to receive a whole request body: 120 s (slow uploads are cut).
    pub body_timeout: Duration,
    /// Request line plus headers: 64 KiB (431 above).
    pub max_header_bytes: usize,
    /// Requests answered at once by this process (503 above); `None`: unbounded.
    pub max_requests_in_flight: Option<usize>,
    /// Read buffer of each client connection (plain, and under TLS, where
    /// rustls keeps its own): 0, none. Pingora's
    /// default, 64 KiB, is held (and touched) by every open connection, and an
    /// HTTP/1.1 request needs none: pingora's session reads the header into a
    /// buffer of its own (4 KiB, grown as needed) and the body in reads of up to
    /// 64 KiB, which bypass a smaller buffer anyway. Its only use is fewer reads
    /// for headers over 4 KiB.
    pub read_buffer_bytes: usize,
}

impl Default for DownstreamSettings {
    fn default() -> Self {
        DownstreamSettings {
            read_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(120),
            max_header_bytes: 64 * 1024,
            max_requests_in_flight: None,
            read_buffer_bytes: 0,
        }
    }
}

/// The TLS listener (h2 and HTTP/1.1 by ALPN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListener {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Validates both sections; `Err((field, reason))`.
pub fn validate(
    raw: DownstreamFile,
    tls: TlsFile,
) -> Result<(DownstreamSettings, Option<TlsListener>), (&'static str, String)> {
    let d = DownstreamSettings::default();
    let dur = |field: &'static str, v: Option<String>, default: Duration| match v {
        None => Ok(default),
        Some(s) => match parse_duration(&s) {
            Some(t) if !t.is_zero() => Ok(t),
            _ => Err((
                field,
                format!("`{s}` is not a duration like 500ms, 10s, 5m"),
            )),
        },
    };
    let downstream = DownstreamSettings {
        read_timeout: dur("downstream.read_timeout", raw.read_timeout, d.read_timeout)?,
        header_timeout: dur(
            "downstream.header_timeout",
            raw.header_timeout,
            d.header_timeout,
        )?,
        keepalive_timeout: dur(
            "downstream.keepalive_timeout",
            raw.keepalive_timeout,
            d.keepalive_timeout,
        )?,
        body_timeout: dur("downstream.body_timeout", raw.body_timeout, d.body_timeout)?,
        max_header_bytes: match raw.max_header_bytes {
            Some(n) if n < 1024 => {
                return Err((
                    "downstream.max_header_bytes",
                    format!("is {n}; must be at least 1024"),
                ))
            }
            Some(n) => n,
            None => d.max_header_bytes,
        },
        read_buffer_bytes: match raw.read_buffer_bytes {
            Some(n) if n != 0 && !(1024..=1 << 20).contains(&n) => {
                return Err((
                    "downstream.read_buffer_bytes",
                    format!("is {n}; must be 0 (unbuffered) or between 1024 and 1048576"),
                ))
            }
            Some(n) => n,
            None => d.read_buffer_bytes,
        },
        max_requests_in_flight: match raw.max_requests_in_flight {
            Some(0) => {
                return Err((
                    "downstream.max_requests_in_flight",
                    "is 0; must be at least 1 (omit it for no bound)".into(),
                ))
            }
            n => n,
        },
    };
    let tls = match (tls.listen, tls.cert, tls.key) {
        (None, None, None) => None,
        (Some(listen), Some(cert), Some(key)) => Some(TlsListener {
            listen: listen.parse().map_err(|_| {
                (
                    "tls.listen",
                    format!("`{listen}` is not an address like 0.0.0.0:8443"),
                )
            })?,
            cert,
            key,
        }),
        _ => return Err(("tls", "set all of listen, cert and key".into())),
    };
    Ok((downstream, tls))
}
