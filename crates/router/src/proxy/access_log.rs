//! The access log: one line per request, JSON or logfmt (`[access_log]`), with the time, the
//! client, the method and path, the Val key, the host, the status, the attempts (retries and
//! rescues), the duration, bytes in and out and the request ID.
//!
//! Off the request path: a request's line is formatted into its proxy worker's buffer when
//! its response ends (the last body byte, or the client gone), the worker hands the buffer
//! over at most every [`FLUSH_AFTER`], and one writer thread does the blocking writes. A
//! writer that falls behind never slows requests: a full hand-over queue drops the batch and
//! counts its lines (`ringward_access_log_dropped_total`).

use std::cell::RefCell;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Uri};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::{AccessLogConfig, AccessLogFormat, AccessLogPath};

/// The longest a finished request's line waits in its worker's buffer.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(100);

/// A worker's buffer is handed over at once past this many bytes.
const BUFFER_BYTES: usize = 64 << 10;

/// Batches waiting for the writer thread, at most.
const QUEUE: usize = 256;

/// What the writer thread is told.
enum Message {
    Lines(Vec<u8>),
    /// Open this destination (a reload, or SIGHUP after a log rotation).
    Open(AccessLogPath),
}

/// The handle the router holds: the writer thread's queue and the drop count.
#[derive(Debug)]
pub(crate) struct AccessLog {
    queue: mpsc::SyncSender<Message>,
    /// Lines lost to a full queue (or a failed write).
    pub(crate) dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Starts the writer thread on `config.path`; it ends when the handle is dropped.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub(crate) fn start(config: &AccessLogConfig) -> std::io::Result<AccessLog> {
        let (queue, rx) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = Arc::clone(&dropped);
        let path = config.path.clone();
        std::thread::Builder::new()
            .name("ringward-access-log".into())
            .spawn(move || write_all(&rx, path, &lost))?;
        Ok(AccessLog { queue, dropped })
    }

    /// Reopens the destination (it may have changed, or been rotated away).
    pub(crate) fn reopen(&self, path: &AccessLogPath) {
        let _ = self.queue.try_send(Message::Open(path.clone()));
    }

    fn send(&self, lines: Vec<u8>) {
        let n = lines.iter().filter(|&&b| b == b'\n').count() as u64;
        if self.queue.try_send(Message::Lines(lines)).is_err() {
            self.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// The writer thread: writes each batch whole and flushes it.
fn write_all(rx: &mpsc::Receiver<Message>, path: AccessLogPath, dropped: &AtomicU64) {
    let mut sink = open(&path);
    while let Ok(message) = rx.recv() {
        match message {
            Message::Open(path) => sink = open(&path),
            Message::Lines(lines) => {
                let written = match &mut sink {
                    Sink::Stdout => std::io::stdout().lock().write_all(&lines),
                    Sink::Stderr => std::io::stderr().lock().write_all(&lines),
                    Sink::File(f) => f.write_all(&lines).and_then(|()| f.flush()),
                    Sink::None => Err(std::io::ErrorKind::NotFound.into()),
                };
                if written.is_err() {
                    let n = lines.iter().filter(|&&b| b == b'\n').count() as u64;
                    dropped.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
    }
}

enum Sink {
    Stdout,
    Stderr,
    File(std::io::BufWriter<std::fs::File>),
    /// The file could not be opened (logged once); lines are counted as dropped.
    None,
}

fn open(path: &AccessLogPath) -> Sink {
    match path {
        AccessLogPath::Stdout => Sink::Stdout,
        AccessLogPath::Stderr => Sink::Stderr,
        AccessLogPath::File(p) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Sink::File(std::io::BufWriter::with_capacity(BUFFER_BYTES, f)),
            Err(e) => {
                tracing::error!(path = %p.display(), error = %e, "cannot open the access log");
                Sink::None
            }
        },
    }
}

/// This worker thread's lines not yet handed over.
struct Local {
    buf: Vec<u8>,
    notify: Arc<Notify>,
}

thread_local! {
    static LINES: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Installs a line buffer on this thread (a proxy worker's) and returns the future that hands
/// it over; run it as a task on the worker's runtime.
pub(crate) fn install(log: Arc<AccessLog>) -> impl Future<Output = ()> + Send + 'static {
    let notify = Arc::new(Notify::new());
    LINES.with(|l| {
        *l.borrow_mut() = Some(Local {
            buf: Vec::new(),
            notify: Arc::clone(&notify),
        });
    });
    async move {
        loop {
            notify.notified().await;
            tokio::time::sleep(FLUSH_AFTER).await;
            flush(&log);
        }
    }
}

/// Hands this thread's buffered lines to the writer.
pub(crate) fn flush(log: &AccessLog) {
    let lines = LINES.with(|l| {
        l.borrow_mut()
            .as_mut()
            // The next batch's buffer at its full size at once: no regrowth, no copies.
            .map(|local| std::mem::replace(&mut local.buf, Vec::with_capacity(BUFFER_BYTES + 1024)))
    });
    if let Some(lines) = lines.filter(|b| !b.is_empty()) {
        log.send(lines);
    }
}

/// What is known of a request when it arrives (only made when the access log is on).
#[derive(Debug)]
pub(crate) struct Arrival {
    pub(crate) wall: SystemTime,
    pub(crate) started: Instant,
    pub(crate) client: SocketAddr,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) bytes_in: Option<u64>,
    pub(crate) format: AccessLogFormat,
    pub(crate) log: Arc<AccessLog>,
}

/// A request's line, completed when its response ends.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) arrival: Arrival,
    pub(crate) key: Option<Box<str>>,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) status: u16,
    pub(crate) attempts: u8,
    pub(crate) retries: u8,
    pub(crate) rescues: u8,
    pub(crate) request_id: HeaderValue,
    /// Response body bytes sent so far.
    pub(crate) bytes_out: u64,
    /// The response body ended as it should (false: cut by a timeout or the client left).
    pub(crate) complete: bool,
}

impl Entry {
    /// Formats the line into this worker's buffer (or sends it at once off a worker).
    pub(crate) fn write(&self) {
        let queued = LINES.with(|l| {
            let mut l = l.borrow_mut();
            let local = l.as_mut()?;
            if local.buf.is_empty() {
                // The first line of a batch starts the flusher's clock.
                local.notify.notify_one();
            }
            format_line(self, &mut local.buf);
            Some(local.buf.len())
        });
        match queued {
            None => {
                let mut line = Vec::with_capacity(256);
                format_line(self, &mut line);
                self.arrival.log.send(line);
            }
            Some(len) if len >= BUFFER_BYTES => flush(&self.arrival.log),
            Some(_) => {}
        }
    }
}

/// Appends `entry`'s line to `out` (formatted in place: no allocation of its own).
fn format_line(e: &Entry, out: &mut Vec<u8>) {
    let a = &e.arrival;
    let duration = Micros(u64::try_from(a.started.elapsed().as_micros()).unwrap_or(u64::MAX));
    let key = e.key.as_deref();
    let host = e.host.as_ref().and_then(|h| h.to_str().ok());
    let id = e.request_id.to_str().unwrap_or("-");
    // Writes into a Vec cannot fail.
    let _ = match a.format {
        AccessLogFormat::Json => json_line(e, a, key, host, id, duration, out),
        AccessLogFormat::Text => text_line(e, a, key, host, id, duration, out),
    };
    out.push(b'\n');
}

fn json_line(
    e: &Entry,
    a: &Arrival,
    key: Option<&str>,
    host: Option<&str>,
    id: &str,
    duration: Micros,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    out.extend_from_slice(b"{\"time\":\"");
    rfc3339(a.wall, out)?;
    write!(out, "\",\"client\":\"{}\",\"method\":", a.client)?;
    json_str(a.method.as_str(), out);
    out.extend_from_slice(b",\"path\":");
    json_str(a.uri.path(), out);
    out.extend_from_slice(b",\"key\":");
    json_opt(key, out);
    out.extend_from_slice(b",\"host\":");
    json_opt(host, out);
    write!(
        out,
        ",\"status\":{},\"attempts\":{},\"retries\":{},\"rescues\":{},\"duration_ms\":{},\"bytes_in\":",
        e.status, e.attempts, e.retries, e.rescues, duration
    )?;
    match a.bytes_in {
        Some(n) => write!(out, "{n}")?,
        None => out.extend_from_slice(b"null"),
    }
    write!(out, ",\"bytes_out\":{},\"request_id\":", e.bytes_out)?;
    json_str(id, out);
    write!(out, ",\"complete\":{}}}", e.complete)
}

fn text_line(
    e: &Entry,
    a: &Arrival,
    key: Option<&str>,
    host: Option<&str>,
    id: &str,
    duration: Micros,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    out.extend_from_slice(b"time=");
    rfc3339(a.wall, out)?;
    write!(out, " client={} method={} path=", a.client, a.method)?;
    logfmt_str(a.uri.path(), out);
    out.extend_from_slice(b" key=");
    logfmt_str(key.unwrap_or("-"), out);
    out.extend_from_slice(b" host=");
    logfmt_str(host.unwrap_or("-"), out);
    write!(
        out,
        " status={} attempts={} retries={} rescues={} duration_ms={} bytes_in=",
        e.status, e.attempts, e.retries, e.rescues, duration
    )?;
    match a.bytes_in {
        Some(n) => write!(out, "{n}")?,
        None => out.push(b'-'),
    }
    write!(
        out,
        " bytes_out={} request_id={} complete={}",
        e.bytes_out, id, e.complete
    )
}

fn json_opt(v: Option<&str>, out: &mut Vec<u8>) {
    match v {
        Some(v) => json_str(v, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// `v` as a JSON string: quotes, backslashes and control characters escaped.
fn json_str(v: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    // The usual path, key or ID is printable ASCII with nothing to escape: copied whole.
    if v.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
        return;
    }
    for c in v.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// `v` as a logfmt value: bare when it has no space, quote, `=`, backslash or control
/// character, quoted and escaped otherwise.
fn logfmt_str(v: &str, out: &mut Vec<u8>) {
    let bare = !v.is_empty()
        && !v
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '=' || c == '\\' || c.is_control());
    if bare {
        out.extend_from_slice(v.as_bytes());
    } else {
        json_str(v, out);
    }
}

/// A duration in microseconds, shown as milliseconds with three decimals (integer
/// arithmetic: cheaper than formatting a float).
#[derive(Clone, Copy)]
struct Micros(u64);

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

thread_local! {
    /// The last second formatted on this thread and its text (`2026-12-07T20:31:02`): a
    /// busy router formats the same second thousands of times.
    static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
}

/// `t` as RFC 3339 UTC with milliseconds: `2026-12-07T20:31:02.123Z`.
fn rfc3339(t: SystemTime, out: &mut Vec<u8>) -> std::io::Result<()> {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        let mut w = &mut text[..];
        write!(
            w,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )?;
        SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
    write!(out, ".{:03}Z", since.subsec_millis())
}

/// The proleptic Gregorian date of the day `days` after 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(format: AccessLogFormat, log: Arc<AccessLog>) -> Entry {
        Entry {
            arrival: Arrival {
                wall: UNIX_EPOCH + Duration::from_millis(1_796_675_462_123),
                started: Instant::now(),
                client: "127.0.0.1:5555".parse().expect("addr"),
                method: Method::GET,
                uri: "/v/ali\"ce/run?token=secret".parse().expect("uri"),
                bytes_in: Some(0),
                format,
                log,
            },
            key: Some("ali\"ce".into()),
            host: Some(HeaderValue::from_static("host-a")),
            status: 200,
            attempts: 2,
            retries: 1,
            rescues: 0,
            request_id: HeaderValue::from_static("abc"),
            bytes_out: 100,
            complete: true,
        }
    }

    fn log() -> Arc<AccessLog> {
        Arc::new(
            AccessLog::start(&AccessLogConfig {
                enabled: true,
                path: AccessLogPath::Stderr,
                format: AccessLogFormat::Json,
            })
            .expect("writer"),
        )
    }

    #[test]
    fn a_json_line_has_every_field_escaped_and_no_query() {
        let mut out = Vec::new();
        format_line(&entry(AccessLogFormat::Json, log()), &mut out);
        let line = String::from_utf8(out).expect("utf-8");
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(v["time"], "2026-12-07T20:31:02.123Z");
        assert_eq!(v["client"], "127.0.0.1:5555");
        assert_eq!(v["method"], "GET");
        assert_eq!(
            v["path"], "/v/ali\"ce/run",
            "the query (secrets) is not logged"
        );
        assert_eq!(v["key"], "ali\"ce");
        assert_eq!(v["host"], "host-a");
        assert_eq!(v["status"], 200);
        assert_eq!(
            (v["attempts"].clone(), v["retries"].clone()),
            (2.into(), 1.into())
        );
        assert_eq!(v["bytes_in"], 0);
        assert_eq!(v["bytes_out"], 100);
        assert_eq!(v["request_id"], "abc");
        assert_eq!(v["complete"], true);
        assert!(v["duration_ms"].as_f64().expect("a number") >= 0.0);
    }

    #[test]
    fn a_text_line_is_logfmt() {
        let mut out = Vec::new();
        format_line(&entry(AccessLogFormat::Text, log()), &mut out);
        let line = String::from_utf8(out).expect("utf-8");
        assert!(
            line.starts_with(
                "time=2026-12-07T20:31:02.123Z client=127.0.0.1:5555 method=GET path=\"/v/ali\\\"ce/run\" key=\"ali\\\"ce\" host=host-a status=200 attempts=2 retries=1 rescues=0 duration_ms="
            ),
            "{line}"
        );
        assert!(
            line.ends_with(" bytes_in=0 bytes_out=100 request_id=abc complete=true\n"),
            "{line}"
        );
    }

    #[test]
    fn each_second_is_formatted_anew_and_milliseconds_always() {
        for (ms, want) in [
            (1_796_675_462_123, "2026-12-07T20:31:02.123Z"),
            (1_796_675_462_999, "2026-12-07T20:31:02.999Z"),
            (1_796_675_463_004, "2026-12-07T20:31:03.004Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        ] {
            let mut out = Vec::new();
            rfc3339(UNIX_EPOCH + Duration::from_millis(ms), &mut out).expect("formatted");
            assert_eq!(String::from_utf8(out).expect("utf-8"), want);
        }
        assert_eq!(Micros(1_234_567).to_string(), "1234.567");
        assert_eq!(Micros(42).to_string(), "0.042");
    }

    #[test]
    fn dates_across_leap_years_and_centuries() {
        for (days, want) in [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (20_794, (2026, 12, 7)),
            (47_541, (2100, 3, 1)),
        ] {
            assert_eq!(civil_from_days(days), want, "day {days}");
        }
    }

    #[test]
    fn a_file_gets_each_batch_and_a_reopen_follows_a_rotation() {
        let dir = std::env::temp_dir().join(format!("ringward-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("access.log");
        let config = AccessLogConfig {
            enabled: true,
            path: AccessLogPath::File(path.clone()),
            format: AccessLogFormat::Json,
        };
        let log = Arc::new(AccessLog::start(&config).expect("writer"));
        entry(AccessLogFormat::Json, Arc::clone(&log)).write();
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while read(&path).lines().count() < 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was not written"
            );
            std::thread::yield_now();
        }
        // logrotate moves the file away; the reopen writes to a new one at the path.
        let rotated = dir.join("access.log.1");
        std::fs::rename(&path, &rotated).expect("rotate");
        log.reopen(&config.path);
        entry(AccessLogFormat::Json, Arc::clone(&log)).write();
        while read(&path).lines().count() < 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "no line after the reopen"
            );
            std::thread::yield_now();
        }
        assert_eq!(read(&rotated).lines().count(), 1);
        assert_eq!(log.dropped.load(Ordering::Relaxed), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
