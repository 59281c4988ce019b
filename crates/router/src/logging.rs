//! Logs through tracing-subscriber: human-readable by default, JSON with `--log-format json`,
//! level from `RUST_LOG` (default `info`). Colours only when stderr is a terminal: a file or
//! journald gets plain text.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// The log output format (the command line's `--log-format human|json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let _ = subscriber(format, filter, std::io::stderr, ansi).try_init();
}

/// The subscriber writing to `writer`, with ANSI colours only if `ansi`.
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Human => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
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

    fn logged(ansi: bool) -> String {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let sub = subscriber(
            LogFormat::Human,
            EnvFilter::new("info"),
            move || out.clone(),
            ansi,
        );
        tracing::subscriber::with_default(sub, || tracing::info!(host = "a", "a line"));
        let bytes = buffer.0.lock().expect("buffer").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn human_logs_have_no_escapes_off_a_terminal() {
        let plain = logged(false);
        assert!(plain.contains("a line"), "{plain}");
        assert!(!plain.contains('\x1b'), "{plain:?}");
        // The same line for a terminal is coloured: the check above can fail.
        assert!(logged(true).contains('\x1b'));
    }
}
