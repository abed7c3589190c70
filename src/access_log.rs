//! The access log: one line per request (logfmt or JSON), formatted when the
//! request is settled (`proxy::serve`) and written by a thread of its own, so a slow disk never
//! blocks a request: when the queue is full, lines are dropped and counted
//! (`tollgate_access_log_dropped_total`). No secret, no body, no query string:
//! names, numbers and codes only; text from the client is escaped.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::proxy::Session;

use crate::account::Settled;
use crate::config::{AccessLogFormat, AccessLogSettings, LogTarget};
use crate::metrics::metrics;
use crate::proxy::ctx::Ctx;
use crate::state::State;

/// Lines waiting for the writer before new ones are dropped.
const QUEUE: usize = 16_384;
/// The writer flushes at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

struct Writer {
    tx: SyncSender<String>,
    reopen: Arc<AtomicBool>,
}

static WRITER: OnceLock<Option<Writer>> = OnceLock::new();

/// Starts the writer for `settings` (once per process; the target and its file
/// stay for the process's life, the format follows reloads).
pub fn start(settings: &AccessLogSettings) {
    WRITER.get_or_init(|| {
        if settings.format == AccessLogFormat::Off {
            return None;
        }
        let (tx, rx) = sync_channel(QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let (target, flag) = (settings.target.clone(), reopen.clone());
        let spawned = std::thread::Builder::new()
            .name("tollgate-access-log".into())
            .spawn(move || run(&target, &rx, &flag));
        match spawned {
            Ok(_) => Some(Writer { tx, reopen }),
            Err(e) => {
                log::error!("access log disabled: cannot start its writer: {e}");
                None
            }
        }
    });
}

/// Asks the writer to reopen its file (after logrotate moved it; on SIGHUP).
pub fn reopen() {
    if let Some(Some(w)) = WRITER.get() {
        w.reopen.store(true, Ordering::Relaxed);
    }
}

fn open(target: &LogTarget) -> std::io::Result<Box<dyn std::io::Write + Send>> {
    Ok(match target {
        LogTarget::Stdout => Box::new(std::io::stdout()),
        LogTarget::Stderr => Box::new(std::io::stderr()),
        LogTarget::File(path) => Box::new(open_file(path)?),
    })
}

fn open_file(path: &PathBuf) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

fn run(target: &LogTarget, rx: &Receiver<String>, reopen: &AtomicBool) {
    let mut out = match open(target) {
        Ok(o) => std::io::BufWriter::with_capacity(64 * 1024, o),
        Err(e) => {
            log::error!("access log disabled: {e}");
            return;
        }
    };
    let mut last_flush = Instant::now();
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(line) => {
                if let Err(e) = out.write_all(line.as_bytes()) {
                    log::warn!("access log: {e}");
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            let _ = out.flush();
            last_flush = Instant::now();
        }
        if reopen.swap(false, Ordering::Relaxed) {
            let _ = out.flush();
            match open(target) {
                Ok(o) => out = std::io::BufWriter::with_capacity(64 * 1024, o),
                Err(e) => log::warn!("access log: reopen failed, keeping the old file: {e}"),
            }
        }
    }
    let _ = out.flush();
}

/// Formats and queues the request's line.
pub fn write(state: &State, session: &Session, ctx: &Ctx, settled: &Settled) {
    // Started on first use: after Pingora's daemonizing fork, which keeps no thread.
    start(&state.config.access_log);
    let Some(Some(w)) = WRITER.get() else { return };
    let format = state.config.access_log.format;
    if format == AccessLogFormat::Off {
        return;
    }
    let line = format_line(state, session, ctx, settled, format);
    if let Err(TrySendError::Full(_)) = w.tx.try_send(line) {
        if let Some(m) = metrics() {
            m.access_log_dropped.inc();
        }
    }
}

fn format_line(
    state: &State,
    session: &Session,
    ctx: &Ctx,
    settled: &Settled,
    format: AccessLogFormat,
) -> String {
    let req = session.req_header();
    let key = ctx
        .auth
        .access_key
        .and_then(|i| state.access.entry(i))
        .map(|e| &*e.name);
    let provider = ctx
        .route
        .provider
        .and_then(|p| state.catalog.providers.get(p))
        .map(|p| &*p.id);
    let model = match ctx.route.model {
        Some(i) => state.catalog.models.get(i).map(|m| &*m.id),
        None => ctx.route.unlisted_model.as_deref(),
    };
    let ms = |d: Option<Duration>| d.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0));
    let started = ctx.started;
    let duration = ms(started.map(|s| s.elapsed()));
    let ttfb = ms(started
        .zip(ctx.response.first_byte)
        .map(|(s, f)| f.duration_since(s)));
    let usage = settled.usage.as_ref();
    let fields: [(&str, Field); 15] = [
        (
            "time",
            Field::Text(Some(&rfc3339_millis(SystemTime::now()))),
        ),
        ("method", Field::Text(Some(req.method.as_str()))),
        ("path", Field::Text(Some(req.uri.path()))),
        ("status", Field::Num(Some(u64::from(ctx.response.status)))),
        ("access_key", Field::Text(key)),
        ("provider", Field::Text(provider)),
        ("model", Field::Text(model)),
        ("attempts", Field::Num(Some(u64::from(ctx.attempt.count)))),
        ("upstream_key", Field::Text(ctx.attempt.key.as_deref())),
        ("bytes", Field::Num(Some(session.body_bytes_sent() as u64))),
        ("input_tokens", Field::Num(usage.map(|u| u.input))),
        ("output_tokens", Field::Num(usage.map(|u| u.output))),
        ("duration_ms", Field::Raw(duration.as_deref())),
        ("ttfb_ms", Field::Raw(ttfb.as_deref())),
        (
            "error",
            Field::Text(ctx.response.error.or(match ctx.response.cut {
                Some(c) if ctx.response.aborted => Some(c.label()),
                _ => None,
            })),
        ),
    ];
    match format {
        AccessLogFormat::Json => json(&fields),
        _ => logfmt(&fields),
    }
}

enum Field<'a> {
    Text(Option<&'a str>),
    Num(Option<u64>),
    /// A number already formatted.
    Raw(Option<&'a str>),
}

fn logfmt(fields: &[(&str, Field)]) -> String {
    let mut out = String::with_capacity(256);
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(name);
        out.push('=');
        match value {
            Field::Text(Some(s)) if is_bare(s) => out.push_str(s),
            Field::Text(Some(s)) => quote(&mut out, s),
            Field::Num(Some(n)) => {
                let _ = write!(out, "{n}");
            }
            Field::Raw(Some(s)) => out.push_str(s),
            _ => out.push('-'),
        }
    }
    out.push('\n');
    out
}

fn json(fields: &[(&str, Field)]) -> String {
    let mut out = String::with_capacity(320);
    out.push('{');
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{name}\":");
        match value {
            Field::Text(Some(s)) => quote(&mut out, s),
            Field::Num(Some(n)) => {
                let _ = write!(out, "{n}");
            }
            Field::Raw(Some(s)) => out.push_str(s),
            _ => out.push_str("null"),
        }
    }
    out.push_str("}\n");
    out
}

/// A logfmt value that needs no quotes.
fn is_bare(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\')
}

/// A double-quoted string, escaped for both logfmt and JSON (no raw control
/// characters, so a client cannot forge a line).
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `2026-11-23T03:52:55.123Z`.
fn rfc3339_millis(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_405_975_151);
        assert_eq!(rfc3339_millis(t), "2026-11-23T03:52:55.151Z");
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_millis(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn client_text_cannot_forge_fields_or_lines() {
        let evil = "gpt\" status=200\nfake=1 \u{1b}";
        let fields = [("model", Field::Text(Some(evil))), ("n", Field::Num(None))];
        let line = logfmt(&fields);
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(line, "model=\"gpt\\\" status=200\\nfake=1 \\u001b\" n=-\n");
        let v: serde_json::Value = serde_json::from_str(&json(&fields)).unwrap();
        assert_eq!(v["model"], evil);
        assert!(v["n"].is_null());
    }
}
