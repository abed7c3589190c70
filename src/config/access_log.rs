//! `access_log:` — the per-request log's format and where it goes.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogFile {
    /// `logfmt` (default), `json` or `off`.
    pub format: Option<String>,
    /// `stdout` (default), `stderr`, or a file (appended; reopened on SIGHUP).
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    Logfmt,
    Json,
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSettings {
    pub format: AccessLogFormat,
    pub target: LogTarget,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        AccessLogSettings {
            format: AccessLogFormat::Logfmt,
            target: LogTarget::Stdout,
        }
    }
}

/// Validates `access_log`; `Err((field, reason))`.
pub fn validate(raw: AccessLogFile) -> Result<AccessLogSettings, (&'static str, String)> {
    let format = match raw.format.as_deref() {
        None | Some("logfmt") => AccessLogFormat::Logfmt,
        Some("json") => AccessLogFormat::Json,
        Some("off") => AccessLogFormat::Off,
        Some(other) => {
            return Err((
                "access_log.format",
                format!("`{other}` is not logfmt, json or off"),
            ))
        }
    };
    let target = match raw.path.as_deref() {
        None | Some("stdout") => LogTarget::Stdout,
        Some("stderr") => LogTarget::Stderr,
        Some("") => return Err(("access_log.path", "must not be empty".into())),
        Some(p) => LogTarget::File(PathBuf::from(p)),
    };
    Ok(AccessLogSettings { format, target })
}
