//! Logs through tracing-subscriber: human-readable by default, JSON lines with flat keys with
//! `--log-format json`. The filter starts from `RUST_LOG` (default `info`) and can be changed
//! while running (`POST /admin/log-level`): it sits in a reload layer whose handle is kept
//! here, next to the global subscriber it belongs to. Colours only when stderr is a
//! terminal: a file or journald gets plain text.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer as _, Registry, reload};

/// The log output format (the command line's `--log-format human|json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line, every field a top-level key:
    /// `{"timestamp":..,"level":..,"message":..,"host":..,"target":..}`.
    Json,
}

/// The handle on the running filter.
type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// The global subscriber's filter, once [`init`] (or [`init_with_writer`]) installed it.
static FILTER: OnceLock<FilterHandle> = OnceLock::new();

/// Installs the global subscriber writing to stderr (once; later calls are ignored).
pub fn init(format: LogFormat) {
    let ansi = std::io::stderr().is_terminal();
    install(format, std::io::stderr, ansi);
}

/// Installs the global subscriber writing to `writer`, without colours (for a program that
/// embeds the router and keeps its own log file, and for tests). Returns false, changing
/// nothing, when a global subscriber is already installed.
pub fn init_with_writer<W>(format: LogFormat, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(format, writer, false)
}

fn install<W>(format: LogFormat, writer: W, ansi: bool) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (subscriber, handle) = subscriber(format, filter, writer, ansi);
    let installed = subscriber.try_init().is_ok();
    if installed {
        let _ = FILTER.set(handle);
    }
    installed
}

/// Why the filter was not changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FilterError {
    /// No global subscriber from this module (the router is embedded in a program that
    /// installed its own).
    NotInstalled,
    /// The directives do not parse; the parser's message.
    Invalid(String),
}

/// The running filter's directives (`None` when this module installed no subscriber).
pub(crate) fn current_filter() -> Option<String> {
    FILTER
        .get()
        .and_then(|h| h.with_current(ToString::to_string).ok())
}

/// Replaces the running filter with `directives` (`RUST_LOG` syntax: `debug`,
/// `ringward=debug,info`); returns the previous one.
pub(crate) fn set_filter(directives: &str) -> Result<String, FilterError> {
    let handle = FILTER.get().ok_or(FilterError::NotInstalled)?;
    replace_filter(handle, directives)
}

fn replace_filter(handle: &FilterHandle, directives: &str) -> Result<String, FilterError> {
    let new = parse_filter(directives)?;
    let mut previous = String::new();
    handle
        .modify(|filter| {
            previous = filter.to_string();
            *filter = new;
        })
        // Only when the subscriber is gone, which a global one never is.
        .map_err(|_| FilterError::NotInstalled)?;
    Ok(previous)
}

/// Parses filter directives; an empty string is refused (it would silence everything without
/// saying so: `off` does that on purpose).
fn parse_filter(directives: &str) -> Result<EnvFilter, FilterError> {
    let directives = directives.trim();
    if directives.is_empty() {
        return Err(FilterError::Invalid(
            "empty filter (use `off` to log nothing)".to_owned(),
        ));
    }
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| FilterError::Invalid(e.to_string()))
}

/// The subscriber writing to `writer`, with ANSI colours only if `ansi` (human format), and
/// the handle on its filter.
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> (Box<dyn Subscriber + Send + Sync>, FilterHandle)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, handle) = reload::Layer::new(filter);
    let output = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .boxed(),
        // Flat keys: the event's fields at the top level, no span objects (the router opens
        // no spans), so every line is one level of `"key": value` a log shipper indexes as is.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(writer)
            .with_ansi(false)
            .boxed(),
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(output);
    (Box::new(subscriber), handle)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("buffer").clone()).expect("utf-8")
        }
    }

    /// What `log` writes through a subscriber in `format` at `filter`, and its filter handle.
    fn logged(
        format: LogFormat,
        filter: &str,
        ansi: bool,
        log: impl FnOnce(&FilterHandle),
    ) -> String {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let (sub, handle) = subscriber(format, EnvFilter::new(filter), move || out.clone(), ansi);
        tracing::subscriber::with_default(sub, || log(&handle));
        buffer.text()
    }

    #[test]
    fn human_logs_have_no_escapes_off_a_terminal() {
        let line = |ansi| {
            logged(LogFormat::Human, "info", ansi, |_| {
                tracing::info!(host = "a", "a line");
            })
        };
        let plain = line(false);
        assert!(plain.contains("a line"), "{plain}");
        assert!(!plain.contains('\x1b'), "{plain:?}");
        // The same line for a terminal is coloured: the check above can fail.
        assert!(line(true).contains('\x1b'));
    }

    #[test]
    fn json_lines_have_flat_keys() {
        let out = logged(LogFormat::Json, "info", false, |_| {
            tracing::warn!(host = "host-a", in_flight = 3, "host ejected");
            let span = tracing::info_span!("request", request_id = "r1");
            span.in_scope(|| tracing::info!(key = "alice", "in a span"));
        });
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        let first = lines[0].as_object().expect("an object");
        assert_eq!(first["message"], "host ejected");
        assert_eq!(first["level"], "WARN");
        assert_eq!(first["host"], "host-a");
        assert_eq!(first["in_flight"], 3);
        assert!(
            first["target"]
                .as_str()
                .expect("target")
                .starts_with("ringward"),
            "{out}"
        );
        assert!(first["timestamp"].is_string(), "{out}");
        for line in &lines {
            let line = line.as_object().expect("an object");
            for nested in ["fields", "span", "spans"] {
                assert!(!line.contains_key(nested), "{nested} in {line:?}");
            }
            assert!(
                line.values().all(|v| !v.is_object() && !v.is_array()),
                "not flat: {line:?}"
            );
        }
        assert_eq!(lines[1]["key"], "alice");
    }

    #[test]
    fn the_filter_changes_while_running() {
        let out = logged(LogFormat::Json, "info", false, |handle| {
            tracing::debug!("before: filtered out");
            let previous = replace_filter(handle, "ringward=debug,info").expect("valid");
            assert_eq!(previous, "info");
            assert_eq!(
                handle.with_current(ToString::to_string).expect("alive"),
                "ringward=debug,info"
            );
            tracing::debug!("after: written");
            assert!(matches!(
                replace_filter(handle, "ringward=loud"),
                Err(FilterError::Invalid(_))
            ));
            assert!(matches!(
                replace_filter(handle, " "),
                Err(FilterError::Invalid(_))
            ));
            tracing::debug!("still debug after a refused change");
        });
        assert!(!out.contains("before"), "{out}");
        assert!(out.contains("after: written"), "{out}");
        assert!(out.contains("still debug"), "{out}");
    }
}
