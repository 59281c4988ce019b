//! A self-contained SVG chart of a replay: p99 latency, and requests that
//! failed, hung or took over a second, per second for each run, with the fault, the ejection and the
//! clear marked. No scripts, no fonts to fetch: it opens in any browser.

use std::fmt::Write as _;

use super::report::RunReport;

const WIDTH: f64 = 960.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const COLORS: [&str; 3] = ["#1b7f3b", "#c0392b", "#2c5aa0"];

/// Markers shared by every run, in seconds from the start.
pub(crate) struct Marks {
    pub(crate) fault_s: f64,
    pub(crate) clear_s: f64,
}

/// Renders the runs side by side on one time axis.
pub(crate) fn render(runs: &[RunReport], marks: &Marks) -> String {
    let seconds = runs
        .iter()
        .map(|r| r.per_second.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |t: f64| LEFT + (WIDTH - LEFT - RIGHT) * t / seconds;
    let height = 2.0 * PANEL + 120.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    svg.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="18" font-size="15">Incident replay: one host's DB pool deadlocks at {:.0} s, released at {:.0} s</text>"#,
        marks.fault_s, marks.clear_s
    );

    // Panel 1: p99 latency, log scale from 1 ms to 100 s.
    let top1 = 40.0;
    let y_lat = |ms: f64| {
        let v = ms.clamp(1.0, 100_000.0).log10() / 5.0;
        top1 + PANEL * (1.0 - v)
    };
    axes(
        &mut svg,
        top1,
        "p99 latency (log)",
        &[
            (1.0, "1ms"),
            (10.0, "10ms"),
            (100.0, "100ms"),
            (1000.0, "1s"),
            (10_000.0, "10s"),
            (100_000.0, "100s"),
        ],
        y_lat,
    );
    // Panel 2: failed + pending per second, linear.
    let top2 = top1 + PANEL + 40.0;
    let peak = runs
        .iter()
        .flat_map(|r| r.per_second.iter().map(|s| f64::from(bad(s))))
        .fold(1.0_f64, f64::max);
    let y_err = |n: f64| top2 + PANEL * (1.0 - n / peak);
    let half = (peak / 2.0).round();
    axes(
        &mut svg,
        top2,
        "requests failed, pending or over 1 s, per second of sending",
        &[
            (0.0, "0".to_owned()),
            (half, format!("{half}")),
            (peak, format!("{peak}")),
        ]
        .iter()
        .map(|(v, l)| (*v, l.as_str()))
        .collect::<Vec<_>>(),
        y_err,
    );

    for (i, run) in runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        polyline(
            &mut svg,
            color,
            run.per_second
                .iter()
                .map(|s| (x(f64::from(s.t) + 0.5), y_lat(s.p99_ms))),
        );
        polyline(
            &mut svg,
            color,
            run.per_second
                .iter()
                .map(|s| (x(f64::from(s.t) + 0.5), y_err(f64::from(bad(s))))),
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" fill="{color}">&#9632; {}</text>"#,
            LEFT + 10.0 + 160.0 * i as f64,
            height - 12.0,
            run.name
        );
        if let Some(ms) = run.ejected_after_ms {
            let t = marks.fault_s + ms as f64 / 1000.0;
            marker(
                &mut svg,
                x(t),
                top1,
                top2 + PANEL,
                color,
                &format!("{} ejects ({ms} ms)", run.name),
            );
        }
    }
    marker(
        &mut svg,
        x(marks.fault_s),
        top1,
        top2 + PANEL,
        "#555",
        "pool deadlocked",
    );
    marker(
        &mut svg,
        x(marks.clear_s),
        top1,
        top2 + PANEL,
        "#555",
        "released",
    );
    let step = if seconds > 30.0 { 10 } else { 2 };
    for t in (0..=seconds as u32).step_by(step) {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{t}</text>"#,
            x(f64::from(t)),
            top2 + PANEL + 16.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}">seconds</text>"#,
        WIDTH / 2.0,
        top2 + PANEL + 34.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// Requests of one second that a user would call broken.
fn bad(s: &super::report::Second) -> u32 {
    s.failed + s.pending + s.over_1s
}

fn axes(svg: &mut String, top: f64, title: &str, ticks: &[(f64, &str)], y: impl Fn(f64) -> f64) {
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{top}" width="{}" height="{PANEL}" fill="none" stroke="#999"/><text x="{}" y="{}">{title}</text>"##,
        WIDTH - LEFT - RIGHT,
        LEFT + 4.0,
        top - 4.0
    );
    for (value, label) in ticks {
        let yy = y(*value);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy}" y2="{yy}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        );
    }
}

fn polyline(svg: &mut String, color: &str, points: impl Iterator<Item = (f64, f64)>) {
    let points: Vec<String> = points.map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = write!(
        svg,
        r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
        points.join(" ")
    );
}

fn marker(svg: &mut String, x: f64, top: f64, bottom: f64, color: &str, label: &str) {
    let _ = write!(
        svg,
        r#"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{bottom}" stroke="{color}" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="{color}" transform="rotate(-90 {:.1} {})">{label}</text>"#,
        x - 3.0,
        top + 150.0,
        x - 3.0,
        top + 150.0
    );
}
