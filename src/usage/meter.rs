//! `Meter`: the per-request glue between the relay loop and a [`UsageTracker`]:
//! what to measure, whether to strip the usage chunk tollgate asked for, and the
//! tracker of the attempt that answered.

use bytes::Bytes;
use pingora_http::ResponseHeader;

use super::{Api, Format, Usage, UsageTracker};

/// Usage measurement for one request (`api: None` measures nothing).
#[derive(Debug, Default)]
pub struct Meter {
    pub api: Option<Api>,
    /// tollgate added `stream_options.include_usage`: remove the usage-only chunk.
    pub strip: bool,
    tracker: Option<UsageTracker>,
    /// When the response header went to the client.
    started: Option<std::time::Instant>,
}

impl Meter {
    pub fn new(api: Option<Api>, strip: bool) -> Meter {
        Meter {
            api,
            strip,
            tracker: None,
            started: None,
        }
    }

    /// Starts measuring the answer whose header is `resp` and whose body is
    /// `body_len` long (`None`: not sized in advance); returns the time, which is
    /// also the answer's first byte as far as the client is concerned.
    pub fn start(&mut self, resp: &ResponseHeader, body_len: Option<u64>) -> std::time::Instant {
        let now = std::time::Instant::now();
        self.started = Some(now);
        let Some(api) = self.api else { return now };
        let content_type = resp
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes());
        let format = Format::detect(api, content_type);
        // Stripping changes the length: never on a Content-Length framed body.
        let mut tracker = UsageTracker::new(format, self.strip && body_len.is_none());
        if let Some(len) = body_len {
            tracker.set_body_len(len);
        }
        self.tracker = Some(tracker);
        now
    }

    /// Whether the response being measured is an event stream.
    pub fn is_sse(&self) -> bool {
        self.api.is_some() && self.tracker.as_ref().is_some_and(UsageTracker::is_sse)
    }

    /// Sees one relayed chunk; `Some` replaces what is sent (stripping only).
    pub fn observe(&mut self, chunk: &Bytes) -> Option<Bytes> {
        self.tracker.as_mut().and_then(|t| t.observe(chunk))
    }

    /// End of body: bytes still held back, if any.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.tracker.as_mut().and_then(UsageTracker::finish)
    }

    pub fn usage(&self) -> Option<Usage> {
        self.tracker.as_ref().and_then(UsageTracker::usage)
    }

    /// When the response began (its header relayed), if it did.
    pub fn started(&self) -> Option<std::time::Instant> {
        self.started
    }

    pub fn complete(&self) -> bool {
        self.tracker.as_ref().is_some_and(UsageTracker::complete)
    }

    /// Output text bytes seen (for estimating a cut stream's output tokens).
    pub fn output_text_bytes(&self) -> u64 {
        self.tracker
            .as_ref()
            .map_or(0, UsageTracker::output_text_bytes)
    }
}
