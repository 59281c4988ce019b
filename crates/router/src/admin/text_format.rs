//! The two text formats `/metrics` speaks: Prometheus text 0.0.4 (the default) and
//! OpenMetrics 1.0 (when the scraper's `Accept` asks for it), and [`Family`], one metric
//! family written as one group in either. The formats differ only in the metadata lines of
//! counters and info metrics and in the closing `# EOF`, so the samples are written once.

use std::fmt::Write as _;

use http::HeaderValue;

/// A `/metrics` text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextFormat {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
}

impl TextFormat {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// `application/openmetrics-text` with a quality at least that of plain text (Prometheus
    /// sends both, OpenMetrics first); Prometheus text otherwise.
    pub(crate) fn negotiate(accept: Option<&HeaderValue>) -> TextFormat {
        let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
            return TextFormat::Prometheus;
        };
        let (mut openmetrics, mut text) = (0.0_f64, 0.0_f64);
        for range in accept.split(',') {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = params
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            TextFormat::OpenMetrics
        } else {
            TextFormat::Prometheus
        }
    }

    /// The response's `Content-Type`.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            TextFormat::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            TextFormat::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The `/metrics` text being written, in one format.
#[derive(Debug)]
pub(crate) struct Exposition {
    format: TextFormat,
    text: String,
}

impl Exposition {
    /// An empty text in `format`.
    pub(crate) fn new(format: TextFormat) -> Self {
        Exposition {
            format,
            text: String::with_capacity(8192),
        }
    }

    /// The whole text; OpenMetrics requires the closing `# EOF`.
    pub(crate) fn finish(mut self) -> String {
        if self.format == TextFormat::OpenMetrics {
            self.text.push_str("# EOF\n");
        }
        self.text
    }
}

/// What a family measures: its `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up; its name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
    /// A constant 1 whose labels carry the information; its name ends in `_info`. A gauge in
    /// Prometheus text, OpenMetrics' own `info` type there.
    Info,
}

/// One metric family. Its samples go into its own buffer and [`Family::write_to`] writes
/// `# HELP`, `# TYPE` and then every sample, so a family is always one group in the output
/// (both formats require it) however the caller interleaves the collection.
#[derive(Debug)]
pub(crate) struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    samples: String,
}

impl Family {
    /// An empty family. `name` is the name of its samples (`..._total` for a counter,
    /// `..._info` for an info metric, the base name of a histogram's samples).
    pub(crate) fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Family {
            name,
            kind,
            help,
            samples: String::new(),
        }
    }

    /// Adds a sample; `labels` is the text between the braces (empty for none).
    pub(crate) fn sample(&mut self, labels: &str, value: impl std::fmt::Display) {
        self.suffixed("", labels, value);
    }

    /// Adds a sample named with `suffix` after the family's name (`_bucket`, `_sum`, ...).
    pub(crate) fn suffixed(&mut self, suffix: &str, labels: &str, value: impl std::fmt::Display) {
        let name = self.name;
        if labels.is_empty() {
            let _ = writeln!(self.samples, "{name}{suffix} {value}");
        } else {
            let _ = writeln!(self.samples, "{name}{suffix}{{{labels}}} {value}");
        }
    }

    /// Writes the family as one group: HELP, TYPE, samples. OpenMetrics names a counter's
    /// family without `_total` and an info family without `_info`; the samples keep them.
    pub(crate) fn write_to(&self, out: &mut Exposition) {
        let (name, help) = (self.name, self.help);
        let (family, kind) = match (out.format, self.kind) {
            (_, Kind::Gauge) => (name, "gauge"),
            (_, Kind::Histogram) => (name, "histogram"),
            (TextFormat::Prometheus, Kind::Counter) => (name, "counter"),
            (TextFormat::Prometheus, Kind::Info) => (name, "gauge"),
            (TextFormat::OpenMetrics, Kind::Counter) => {
                (name.strip_suffix("_total").unwrap_or(name), "counter")
            }
            (TextFormat::OpenMetrics, Kind::Info) => {
                (name.strip_suffix("_info").unwrap_or(name), "info")
            }
        };
        let _ = writeln!(out.text, "# HELP {family} {help}\n# TYPE {family} {kind}");
        out.text.push_str(&self.samples);
    }
}

/// Escapes a label value (the same in both formats).
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiate(accept: &str) -> TextFormat {
        TextFormat::negotiate(Some(&HeaderValue::from_str(accept).expect("header")))
    }

    #[test]
    fn openmetrics_only_when_asked_for() {
        assert_eq!(TextFormat::negotiate(None), TextFormat::Prometheus);
        assert_eq!(negotiate("*/*"), TextFormat::Prometheus);
        assert_eq!(negotiate("text/plain"), TextFormat::Prometheus);
        // What Prometheus sends by default.
        assert_eq!(
            negotiate(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ),
            TextFormat::OpenMetrics
        );
        assert_eq!(
            negotiate("Application/OpenMetrics-Text; version=1.0.0"),
            TextFormat::OpenMetrics
        );
        assert_eq!(
            negotiate("text/plain;q=1, application/openmetrics-text;q=0.5"),
            TextFormat::Prometheus
        );
        assert_eq!(
            negotiate("application/openmetrics-text;q=0"),
            TextFormat::Prometheus
        );
    }

    #[test]
    fn counters_and_info_are_named_per_format() {
        let mut counter = Family::new("x_total", Kind::Counter, "X.");
        counter.sample("a=\"1\"", 2);
        let mut info = Family::new("x_build_info", Kind::Info, "Build.");
        info.sample("version=\"1.0\"", 1);
        let mut prom = Exposition::new(TextFormat::Prometheus);
        counter.write_to(&mut prom);
        info.write_to(&mut prom);
        assert_eq!(
            prom.finish(),
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\"} 2\n\
             # HELP x_build_info Build.\n# TYPE x_build_info gauge\nx_build_info{version=\"1.0\"} 1\n"
        );
        let mut om = Exposition::new(TextFormat::OpenMetrics);
        counter.write_to(&mut om);
        info.write_to(&mut om);
        assert_eq!(
            om.finish(),
            "# HELP x X.\n# TYPE x counter\nx_total{a=\"1\"} 2\n\
             # HELP x_build Build.\n# TYPE x_build info\nx_build_info{version=\"1.0\"} 1\n# EOF\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
