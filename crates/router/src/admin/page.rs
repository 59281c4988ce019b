//! `/` on the admin listener: the status page, for a person at a glance. At the top the
//! version, the uptime and how many hosts take requests; then every host with its state in
//! words (the time left on an ejection, the step of a probation), its figures now and small
//! charts of its last minutes (requests per second, p99 latency, DB pool use, shaded where it
//! was out), the Vals the cascade guard restricts, and the recent events.
//!
//! The history comes from [`crate::control::history`] (recorded by the health task). The
//! page updates itself in place: a few lines of inline script fetch `/admin/page-fragment`
//! (the same content without the document around it) every two seconds and swap it in, so
//! the scroll position stays. Nothing is loaded from elsewhere (no script, font or style
//! from a CDN): the admin listener may be on a machine with no internet. The charts are SVG
//! drawn here.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use health::guard::ValState;
use health::{HostHealth, StateKind};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use crate::control::fleet::{Fleet, HostKey};
use crate::control::history::{self, Event, POINTS, Point, human, reason_words};
use crate::control::shared::Shared;
use crate::control::view::HealthView;
use crate::proxy::body::{self, ProxyBody};

/// The router's version, shown at the top of the page.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The charts' width in the SVG's own units (they stretch to their column).
const W: f64 = 300.0;
/// The charts' height in the SVG's own units.
const H: f64 = 56.0;
/// The charts show at least this much time, so the first seconds are not stretched.
const MIN_SPAN: Duration = Duration::from_secs(30);

/// Renders the status page (the document around [`fragment`]).
pub(crate) fn render(shared: &Shared) -> String {
    let content = fragment(shared, shared.now(), SystemTime::now());
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>ringward status</title><style>{STYLE}</style></head><body>\
<h1>Ringward status <span id=\"live-note\" class=\"muted\"></span></h1>\
<div id=\"live\">{content}</div>\
<noscript><p class=\"muted\">Scripts are off: reload the page to update it.</p></noscript>\
<script>{SCRIPT}</script></body></html>\n"
    )
}

/// `GET /admin/page-fragment`: the page's content alone, for its in-place refresh.
pub(crate) fn fragment_response(shared: &Shared) -> Response<ProxyBody> {
    let mut resp = Response::new(body::full(fragment(
        shared,
        shared.now(),
        SystemTime::now(),
    )));
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The page's content at `now` (`wall` is the same instant on the wall clock, for the
/// events' times).
fn fragment(shared: &Shared, now: Instant, wall: SystemTime) -> String {
    let published = shared.published.load();
    let view = shared.view.load();
    let fleet = &published.fleet;
    let steps = shared.config.load().health.passive.probation_steps;
    // Copied out, so the health task never waits on the rendering.
    let (series, events, oldest) = {
        let recorder = shared.history.lock();
        let series: Vec<Vec<Point>> = fleet
            .hosts
            .iter()
            .map(|h| recorder.points(h.key).copied().collect())
            .collect();
        let events: Vec<Event> = recorder.events().cloned().collect();
        (series, events, recorder.oldest())
    };
    let span = oldest
        .map_or(Duration::ZERO, |o| {
            now.saturating_duration_since(o) + Duration::from_secs(1)
        })
        .clamp(MIN_SPAN, Duration::from_secs(POINTS as u64));

    let mut out = String::with_capacity(16 * 1024);
    summary(&mut out, shared, &view, now);
    let _ = write!(
        out,
        "<h2>Hosts</h2><p class=\"muted\">Charts: the last {}, one point a second, newest on \
the right; red shading: out of service (ejected or draining), amber: degraded or on probation.</p>\
<table class=\"hosts\"><thead><tr><th>host</th><th>requests per second</th><th>p99 latency</th>\
<th>DB pool in use</th></tr></thead><tbody>",
        human(span)
    );
    let slots = fleet.ring.slot_counts();
    let total_slots = fleet.ring.slots().max(1) as f64;
    for (i, points) in series.iter().enumerate() {
        let share = 100.0 * f64::from(slots.get(i).copied().unwrap_or(0)) / total_slots;
        host_row(&mut out, fleet, i, &view, now, steps, share, points, span);
    }
    out.push_str("</tbody></table>");
    vals_section(&mut out, &view, fleet, now);
    events_section(&mut out, &events, now, wall);
    out.push_str(
        "<p class=\"muted links\">JSON: <a href=\"admin/hosts\">/admin/hosts</a> &middot; \
<a href=\"admin/vals\">/admin/vals</a> &middot; <a href=\"admin/route?key=example\">/admin/route?key=</a> \
&middot; <a href=\"metrics\">/metrics</a></p>",
    );
    out
}

/// The line at the top: version, uptime, hosts taking requests, requests in flight, Vals
/// restricted, and the panic banner.
fn summary(out: &mut String, shared: &Shared, view: &HealthView, now: Instant) {
    let published = shared.published.load();
    let total = published.fleet.hosts.len();
    let eligible = published.eligible();
    let (quarantined, suspect) = view.vals.iter().fold((0, 0), |(q, s), v| match v.state {
        ValState::Quarantined => (q + 1, s),
        ValState::Suspect => (q, s + 1),
        ValState::Normal => (q, s),
    });
    let hosts_class = if eligible == total { "good" } else { "bad" };
    let vals = match (quarantined, suspect) {
        (0, 0) => "no Val quarantined".to_owned(),
        (q, 0) => format!("<b class=\"bad\">{q} Val{} quarantined</b>", plural(q)),
        (0, s) => format!("<b class=\"warn\">{s} suspect Val{}</b>", plural(s)),
        (q, s) => format!(
            "<b class=\"bad\">{q} Val{} quarantined</b>, <b class=\"warn\">{s} suspect</b>",
            plural(q)
        ),
    };
    let changes = published.snapshot.generation();
    let _ = write!(
        out,
        "<div class=\"summary\">\
<span class=\"item\">version <b class=\"version\">ringward {VERSION}</b></span>\
<span class=\"item\">up <b>{uptime}</b></span>\
<span class=\"item\"><b class=\"{hosts_class}\">{eligible} of {total}</b> hosts take requests</span>\
<span class=\"item\"><b>{in_flight}</b> request{r} in flight</span>\
<span class=\"item\">{vals}</span>\
<span class=\"item muted\">routing changed {changes} time{s} since start</span></div>",
        uptime = human(now.saturating_duration_since(shared.history.started())),
        in_flight = shared.global.count(),
        r = plural(shared.global.count() as usize),
        s = plural(usize::try_from(changes).unwrap_or(usize::MAX)),
    );
    if view.snapshot.panic.is_some() {
        out.push_str(
            "<p class=\"banner\"><b>Panic mode</b>: too few healthy hosts, so health verdicts \
are suspended by policy (health.panic_policy).</p>",
        );
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// One host: who and what state in words on the left, its charts on the right.
#[allow(clippy::too_many_arguments)]
fn host_row(
    out: &mut String,
    fleet: &Fleet,
    i: usize,
    view: &HealthView,
    now: Instant,
    steps: u32,
    ring_share: f64,
    points: &[Point],
    span: Duration,
) {
    let h = &fleet.hosts[i];
    let health = view.host(h.key);
    let state = view.state_of(h.key);
    let (in_flight, oldest) = fleet.loads.oldest(i, now);
    let _ = write!(
        out,
        "<tr class=\"host {state}\" data-host=\"{name}\"><td class=\"info\">\
<div><span class=\"name\">{name}</span> <span class=\"badge {state}\">{state}</span></div>",
        name = html(&h.name),
    );
    if let Some(health) = health {
        state_detail(out, health, now, steps);
    }
    match (&h.location.addr, &h.location.error) {
        (None, error) => {
            let why = error.as_deref().unwrap_or("its name is not resolved yet");
            let _ = write!(
                out,
                "<div><b class=\"bad\">takes no requests:</b> {}</div>",
                html(why)
            );
        }
        (Some(addr), Some(error)) => {
            let _ = write!(
                out,
                "<div><b class=\"warn\">keeps {addr}:</b> {}</div>",
                html(error)
            );
        }
        (Some(_), None) => {}
    }
    let addr = match (h.configured.socket_addr(), h.location.addr) {
        (Some(addr), _) => addr.to_string(),
        (None, Some(resolved)) => format!("{} ({resolved})", h.configured),
        (None, None) => h.configured.to_string(),
    };
    let oldest = oldest.map_or(String::new(), |d| format!(", oldest {}", human(d)));
    let probe = health
        .and_then(|s| s.last_probe)
        .map_or("not probed yet".to_owned(), |t| {
            format!("probed {} ago", human(now.saturating_duration_since(t)))
        });
    let _ = write!(
        out,
        "<div class=\"muted\"><span class=\"nw\">{addr}</span> &middot; <span class=\"nw\">{in_flight} in flight{oldest}</span> \
&middot; <span class=\"nw\">{ring_share:.0}% of the ring</span> &middot; <span class=\"nw\">weight {weight}</span> \
&middot; <span class=\"nw\">{probe}</span></div></td>",
        addr = html(&addr),
        weight = h.weight,
    );
    let pool = health.and_then(|s| s.pool);
    charts(out, points, pool, now, span);
    out.push_str("</tr>\n");
}

/// The state in words: why, since when, and for an ejection the time left (with a bar of the
/// time served), for a probation its step (with a bar of the steps done).
fn state_detail(out: &mut String, s: &HostHealth<HostKey>, now: Instant, steps: u32) {
    let why = s.reason.map_or(String::new(), |r| {
        format!("{} <code>{}</code>", reason_words(r), r.as_str())
    });
    let since = human(now.saturating_duration_since(s.since));
    match s.state {
        StateKind::Healthy => {
            let _ = write!(out, "<div>healthy for {since}</div>");
        }
        StateKind::Degraded => {
            let _ = write!(
                out,
                "<div>{why}</div><div>degraded for {since}: keeps its own Vals, takes no others</div>"
            );
        }
        StateKind::Ejected => {
            let _ = write!(out, "<div>{why}</div>");
            match s.until {
                Some(until) => {
                    let left = until.saturating_duration_since(now);
                    let whole = until.saturating_duration_since(s.since).as_secs_f64();
                    let done = now.saturating_duration_since(s.since).as_secs_f64();
                    let next = if s.reason == Some(health::Reason::Operator) {
                        "then probation (or restore it now)"
                    } else {
                        "then probation"
                    };
                    let _ = write!(
                        out,
                        "<div><b class=\"left\" data-ms=\"{ms}\">{left} left</b>, {next}; out for {since}</div>{bar}",
                        ms = left.as_millis(),
                        left = human(left),
                        bar = bar("bad", done / whole.max(1e-9)),
                    );
                }
                None => {
                    let _ = write!(out, "<div>out for {since}</div>");
                }
            }
        }
        StateKind::Probation => {
            let steps = steps.max(1);
            // The snapshot's share is (step + 1) / (steps + 1).
            let step = ((s.admit_share * f64::from(steps + 1)).round() as u32).clamp(1, steps);
            let _ = write!(
                out,
                "<div>probation step <b>{step} of {steps}</b>: takes {share:.0}% of its own Vals; for {since}</div>{bar}",
                share = 100.0 * s.admit_share,
                bar = bar("warn", f64::from(step) / f64::from(steps + 1)),
            );
        }
        StateKind::Draining => {
            let _ = write!(
                out,
                "<div>draining for {since}: no new requests until an operator restores it</div>"
            );
        }
    }
}

/// A thin progress bar, `done` in 0..=1.
fn bar(class: &str, done: f64) -> String {
    format!(
        "<div class=\"bar\"><i class=\"{class}\" style=\"width:{:.1}%\"></i></div>",
        100.0 * done.clamp(0.0, 1.0)
    )
}

/// The three chart cells of one host (`pool`: its last reported figures, for "now").
fn charts(
    out: &mut String,
    points: &[Point],
    pool_now: Option<health::PoolReport>,
    now: Instant,
    span: Duration,
) {
    let last = points.last();
    let peak = |f: &dyn Fn(&Point) -> Option<f64>| {
        points
            .iter()
            .filter_map(f)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };

    let rps = |p: &Point| Some(f64::from(p.rps));
    let rps_peak = peak(&rps).unwrap_or(0.0);
    let fig = match last {
        Some(p) => format!(
            "<b>{}</b> now &middot; peak {}",
            rate(f64::from(p.rps)),
            rate(rps_peak)
        ),
        None => "collecting&hellip;".to_owned(),
    };
    let top = nice(rps_peak.max(1.0) * 1.2);
    let scale = rate(top);
    let chart = Chart {
        now,
        span,
        top,
        scale: &scale,
        peak: rps_peak,
    };
    chart_cell(out, "rps", &fig, points, &rps, &chart);

    let p99 = |p: &Point| p.p99.map(f64::from);
    let p99_peak = peak(&p99).unwrap_or(0.0);
    let fig = match last {
        Some(p) => format!(
            "<b>{}</b> now &middot; peak {}",
            p.p99
                .map_or("&ndash;".to_owned(), |v| latency(f64::from(v))),
            latency(p99_peak)
        ),
        None => "collecting&hellip;".to_owned(),
    };
    let top = nice(p99_peak.max(0.001) * 1.2);
    let scale = latency(top);
    let chart = Chart {
        now,
        span,
        top,
        scale: &scale,
        peak: p99_peak,
    };
    chart_cell(out, "p99", &fig, points, &p99, &chart);

    let pool = |p: &Point| {
        p.pool
            .filter(|u| u.max > 0)
            .map(|u| f64::from(u.in_use) / f64::from(u.max))
    };
    let pool_peak = peak(&pool).unwrap_or(0.0);
    let fig = match pool_now {
        Some(u) => format!(
            "<b>{} of {}</b> now, {} waiting &middot; peak {:.0}%",
            u.in_use,
            u.max,
            u.waiting,
            100.0 * pool_peak
        ),
        None if last.is_some() => "no pool reported".to_owned(),
        None => "collecting&hellip;".to_owned(),
    };
    let chart = Chart {
        now,
        span,
        top: 1.0,
        scale: "full",
        peak: pool_peak,
    };
    chart_cell(out, "pool", &fig, points, &pool, &chart);
}

/// How one chart is drawn.
struct Chart<'a> {
    /// The right edge.
    now: Instant,
    /// The time from the left edge to the right.
    span: Duration,
    /// The value at the top (the bottom is 0).
    top: f64,
    /// `top` in words, shown in the corner.
    scale: &'a str,
    /// The largest value drawn (for tests and scripts: `data-peak`).
    peak: f64,
}

/// One chart cell: the figures line and the SVG. `value` maps a point to the plotted value
/// (none: a gap).
fn chart_cell(
    out: &mut String,
    class: &str,
    fig: &str,
    points: &[Point],
    value: &dyn Fn(&Point) -> Option<f64>,
    chart: &Chart<'_>,
) {
    let Chart {
        now,
        span,
        top,
        scale,
        peak,
    } = *chart;
    let span_s = span.as_secs_f64();
    let x = |at: Instant| {
        let age = now.saturating_duration_since(at).as_secs_f64();
        (W * (1.0 - age / span_s)).clamp(0.0, W)
    };
    let y = |v: f64| H - 1.0 - (H - 2.0) * (v / top).clamp(0.0, 1.0);
    let _ = write!(
        out,
        "<td class=\"chart {class}\"><div class=\"fig\" data-peak=\"{peak:.4}\">{fig}</div>\
<div class=\"plot\"><span class=\"top\">{scale}</span><svg class=\"spark\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" aria-hidden=\"true\">"
    );
    // Shading: runs of points in the same state other than healthy.
    let mut run: Option<(&'static str, f64, f64)> = None;
    let flush = |out: &mut String, run: Option<(&'static str, f64, f64)>| {
        if let Some((class, x0, x1)) = run {
            let _ = write!(
                out,
                "<rect class=\"band {class}\" x=\"{x0:.1}\" y=\"0\" width=\"{:.1}\" height=\"{H}\"/>",
                (x1 - x0).max(0.5)
            );
        }
    };
    for p in points {
        let band = match p.state {
            StateKind::Ejected | StateKind::Draining => Some("out"),
            StateKind::Degraded | StateKind::Probation => Some("warn"),
            _ => None,
        };
        let (x0, x1) = (x(p.at - history::SAMPLE_EVERY), x(p.at));
        run = match (run, band) {
            (Some((c, a, _)), Some(b)) if c == b => Some((c, a, x1)),
            (r, b) => {
                flush(out, r);
                b.map(|b| (b, x0, x1))
            }
        };
    }
    flush(out, run);
    // The line, broken where a value is missing or a sample was skipped.
    let mut d = String::new();
    let mut area = String::new();
    let mut prev: Option<Instant> = None;
    let mut segment: Vec<(f64, f64)> = Vec::new();
    let mut close = |segment: &mut Vec<(f64, f64)>| {
        if let (Some(first), Some(last)) = (segment.first(), segment.last()) {
            let _ = write!(d, "M{:.1} {:.1}", first.0, first.1);
            let _ = write!(area, "M{:.1} {H}L{:.1} {:.1}", first.0, first.0, first.1);
            if segment.len() == 1 {
                d.push_str("l0.01 0");
            }
            for (px, py) in &segment[1..] {
                let _ = write!(d, "L{px:.1} {py:.1}");
                let _ = write!(area, "L{px:.1} {py:.1}");
            }
            let _ = write!(area, "L{:.1} {H}Z", last.0);
        }
        segment.clear();
    };
    for p in points {
        let gap =
            prev.is_some_and(|t| p.at.saturating_duration_since(t) > Duration::from_millis(2500));
        prev = Some(p.at);
        match value(p) {
            Some(v) if !gap => segment.push((x(p.at), y(v))),
            Some(v) => {
                close(&mut segment);
                segment.push((x(p.at), y(v)));
            }
            None => close(&mut segment),
        }
    }
    close(&mut segment);
    let _ = write!(
        out,
        "<path class=\"area\" d=\"{area}\"/><path class=\"line\" d=\"{d}\"/></svg></div></td>"
    );
}

/// A scale's top: the next of 1, 2, 5 times a power of ten at or above `v`.
fn nice(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&t| t >= v * 0.999)
        .unwrap_or(10.0 * p)
}

/// Requests per second, for a person.
fn rate(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}/s")
    } else {
        format!("{v:.1}/s")
    }
}

/// A latency in seconds, for a person.
fn latency(secs: f64) -> String {
    match secs {
        s if s < 0.001 => format!("{:.0}\u{a0}µs", s * 1e6),
        s if s < 0.01 => format!("{:.1}\u{a0}ms", s * 1e3),
        s if s < 1.0 => format!("{:.0}\u{a0}ms", s * 1e3),
        s => format!("{s:.1}\u{a0}s"),
    }
}

/// The cascade guard's Vals: suspects and quarantines with the host and share that
/// implicated them.
fn vals_section(out: &mut String, view: &HealthView, fleet: &Fleet, now: Instant) {
    out.push_str("<h2>Cascade guard</h2>");
    let restricted: Vec<_> = view
        .vals
        .iter()
        .filter(|v| v.state != ValState::Normal)
        .collect();
    if restricted.is_empty() {
        out.push_str(
            "<p class=\"muted\">No Val is quarantined or suspect. (A Val whose requests make host \
after host sick is quarantined: answered 503 instead of carried to the next host.)</p>",
        );
        return;
    }
    out.push_str(
        "<table class=\"vals\"><thead><tr><th>Val</th><th>state</th><th>why</th><th>for</th>\
<th>ends</th><th>implicated on</th></tr></thead><tbody>",
    );
    for v in restricted {
        let evidence = v.implications.last().map_or(String::new(), |i| {
            let host = fleet
                .id_of_key(i.host)
                .map_or("?", |id| fleet.host(id).name.as_str());
            format!(
                "<span class=\"name\">{}</span>: {:.0}% of its in-flight time, {} in flight, oldest {}",
                html(host),
                100.0 * i.share,
                i.in_flight,
                human(i.oldest)
            )
        });
        let ends = v.until.map_or("when released".to_owned(), |u| {
            format!("in {}", human(u.saturating_duration_since(now)))
        });
        let _ = writeln!(
            out,
            "<tr class=\"{state}\"><td><span class=\"name\">{key}</span></td><td><span class=\"badge {state}\">{state}</span></td>\
<td><code>{reason}</code></td><td class=\"nw\">{since}</td><td class=\"nw\">{ends}</td><td>{evidence}</td></tr>",
            key = html(v.name.as_deref().unwrap_or("?")),
            state = v.state,
            reason = v.reason,
            since = human(now.saturating_duration_since(v.since)),
        );
    }
    out.push_str("</tbody></table>");
}

/// The recent events, newest first, with their wall-clock time (UTC) and age.
fn events_section(out: &mut String, events: &[Event], now: Instant, wall: SystemTime) {
    let _ = write!(
        out,
        "<h2 id=\"events\">Recent events</h2><p class=\"muted\">The last {} (at most {}), newest first; times in UTC.</p>",
        events.len(),
        history::EVENTS
    );
    if events.is_empty() {
        out.push_str("<p class=\"muted\">Nothing has happened yet.</p>");
        return;
    }
    out.push_str("<table class=\"events\"><tbody>");
    for e in events {
        let ago = now.saturating_duration_since(e.at);
        let at = wall.checked_sub(ago).unwrap_or(wall);
        let stamp = humantime::format_rfc3339_seconds(at).to_string();
        let clock = stamp.get(11..19).unwrap_or(&stamp);
        let _ = writeln!(
            out,
            "<tr class=\"event {tone}\"><td class=\"nw\"><span class=\"dot\"></span>{clock}</td>\
<td class=\"nw muted\">{ago} ago</td><td><span class=\"name\">{subject}</span></td><td>{text}</td></tr>",
            tone = e.tone.as_str(),
            ago = human(ago),
            subject = html(&e.subject),
            text = html(&e.text),
        );
    }
    out.push_str("</tbody></table>");
}

/// Escapes text for HTML.
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The refresh: fetch the content every two seconds and swap it in place (the scroll
/// position stays); not while the reader has text selected; on failure the last content
/// stays, with a note.
const SCRIPT: &str = r#"(function(){
var live=document.getElementById('live'),note=document.getElementById('live-note');
function next(){setTimeout(tick,2000);}
function tick(){
 if(String(window.getSelection()).length){note.textContent='(paused while text is selected)';return next();}
 fetch('admin/page-fragment',{cache:'no-store'}).then(function(r){
  if(!r.ok)throw new Error('HTTP '+r.status);return r.text();
 }).then(function(t){live.innerHTML=t;note.textContent='';},function(e){
  note.textContent='(cannot reach the router: '+e.message+'; showing '+new Date().toLocaleTimeString()+'\u2019s last view)';
 }).then(next);
}
next();
})();"#;

/// The page's style (inline: nothing is fetched from elsewhere).
const STYLE: &str = "\
:root{color-scheme:light}\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;margin:1.2rem 1.6rem;color:#1d232a;background:#f5f6f8}\
h1{font-size:1.35rem;margin:0 0 .5rem}h1 .muted{font-size:.8rem;font-weight:400}\
h2{font-size:1.05rem;margin:1.3rem 0 .3rem}p{margin:.3rem 0}\
a{color:#2f6fb0}\
.summary{display:flex;flex-wrap:wrap;gap:.25rem 1.4rem;align-items:baseline;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:.55rem .8rem}\
.summary .item,.nw{white-space:nowrap}\
.muted{color:#5b6570;font-size:.86rem}\
b.good{color:#16632f}b.bad{color:#a61b17}b.warn{color:#8a5300}\
.banner{background:#fde2e1;border:1px solid #f2b8b5;padding:.5rem .8rem;border-radius:6px}\
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e6;width:100%}\
th,td{padding:.45rem .7rem;text-align:left;vertical-align:top;border-bottom:1px solid #eceef1}\
th{font-weight:600;font-size:.8rem;color:#5b6570;white-space:nowrap}\
.name{font-weight:650;white-space:nowrap;word-break:keep-all}\
.hosts .name{font-size:1.05rem}\
code{font:.8rem ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef0f3;padding:0 .25rem;border-radius:3px;white-space:nowrap}\
.badge{display:inline-block;padding:0 .5rem;border-radius:999px;font-size:.78rem;font-weight:600;white-space:nowrap;vertical-align:1px}\
.badge.healthy{background:#dcf2e3;color:#16632f}\
.badge.degraded,.badge.probation,.badge.suspect{background:#fcebc7;color:#8a5300}\
.badge.ejected,.badge.quarantined{background:#fbd9d7;color:#a61b17}\
.badge.draining{background:#e5e7eb;color:#39414a}\
tr.host td.info{width:30%;min-width:19rem;box-shadow:inset 4px 0 #3a9a5b}\
tr.host.degraded td.info,tr.host.probation td.info{box-shadow:inset 4px 0 #d99a1e}\
tr.host.ejected td.info{box-shadow:inset 4px 0 #c0392b}tr.host.draining td.info{box-shadow:inset 4px 0 #8a939c}\
tr.host.ejected{background:#fff8f7}\
b.left{color:#a61b17}\
.bar{height:5px;background:#eceef1;border-radius:3px;margin:.3rem 0 .2rem;overflow:hidden;max-width:17rem}\
.bar i{display:block;height:100%}.bar i.bad{background:#c0392b}.bar i.warn{background:#d99a1e}\
td.chart{min-width:10rem}\
.fig{font-size:.82rem;white-space:nowrap;color:#5b6570;margin-bottom:.2rem}.fig b{color:#1d232a;font-size:.92rem}\
.plot{position:relative}.plot .top{position:absolute;top:1px;left:4px;font-size:.68rem;line-height:1;color:#8a939c}\
svg.spark{display:block;width:100%;height:56px;background:#fafbfc;border:1px solid #e6e9ed;border-radius:3px}\
.band.out{fill:#f6cfcc}.band.warn{fill:#f9e6bd}\
.line{fill:none;stroke-width:1.6;vector-effect:non-scaling-stroke;stroke-linejoin:round;stroke-linecap:round}\
.area{stroke:none;fill-opacity:.13}\
.rps .line{stroke:#2f6fb0}.rps .area{fill:#2f6fb0}\
.p99 .line{stroke:#7b4bb3}.p99 .area{fill:#7b4bb3}\
.pool .line{stroke:#0f8a7e}.pool .area{fill:#0f8a7e}\
table.events td{padding:.28rem .7rem}\
.dot{display:inline-block;width:.55rem;height:.55rem;border-radius:50%;margin-right:.45rem;background:#8a939c}\
tr.bad .dot{background:#c0392b}tr.warn .dot{background:#d99a1e}tr.good .dot{background:#3a9a5b}\
.links{margin-top:1rem}\
@media (max-width:900px){table.hosts thead{display:none}table.hosts tr,table.hosts td{display:block;width:auto}tr.host td.info{width:auto}}";

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use health::{HealthSnapshot, PoolReport, Reason, Routing};

    use super::*;
    use crate::control::history::{Counts, HostSample, PoolUse};

    fn shared(names: &[&str]) -> Arc<Shared> {
        let hosts: Vec<(String, SocketAddr)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    (*n).to_owned(),
                    SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
                )
            })
            .collect();
        Shared::for_tests(&hosts).0
    }

    fn health(key: HostKey, state: StateKind, now: Instant) -> HostHealth<HostKey> {
        HostHealth {
            host: key,
            state,
            reason: None,
            since: now,
            until: None,
            strikes: 0,
            pool: Some(PoolReport {
                max: 10,
                in_use: 4,
                waiting: 0,
                oldest_checkout: Duration::ZERO,
            }),
            last_probe: Some(now),
            routing: Routing::Full,
            admit_share: 1.0,
        }
    }

    // Paused: the page's clock (tokio's) stands still, so the time left is exact.
    #[tokio::test(start_paused = true)]
    async fn the_page_reads_at_a_glance() {
        let shared = shared(&["a-rather-long-host-name-that-must-not-break", "host-b"]);
        let fleet = shared.fleet();
        let now = shared.now();
        let (a, b) = (fleet.hosts[0].key, fleet.hosts[1].key);
        let mut ejected = health(a, StateKind::Ejected, now - Duration::from_secs(2));
        ejected.reason = Some(Reason::PoolExhausted);
        ejected.until = Some(now + Duration::from_secs(3));
        ejected.routing = Routing::None;
        let mut probation = health(b, StateKind::Probation, now);
        probation.admit_share = 0.5; // step 2 of 3
        shared.view.store(Arc::new(HealthView {
            snapshot: HealthSnapshot {
                hosts: vec![ejected, probation],
                panic: None,
            },
            vals: Arc::default(),
        }));
        {
            let mut r = shared.history.lock();
            for s in 0..5u64 {
                let at = now - Duration::from_secs(5 - s);
                let mut counts = Counts::read(&fleet.hosts[0].metrics);
                counts.requests = 10 * s;
                counts.buckets[2] = 10 * s;
                r.sample(
                    at,
                    [HostSample {
                        key: a,
                        counts,
                        pool: Some(PoolUse {
                            in_use: 10,
                            max: 10,
                            waiting: 3,
                        }),
                        state: StateKind::Ejected,
                    }],
                );
            }
            r.event(Event::router(
                now - Duration::from_secs(1),
                "config <reloaded>".into(),
            ));
        }
        let page = render(&shared);
        assert!(page.contains(&format!("ringward {VERSION}")), "version");
        assert!(page.contains("up <b>"), "uptime");
        assert!(!page.contains("generation"), "plain words");
        assert!(!page.contains("http-equiv=\"refresh\""), "no full reload");
        assert!(
            page.contains("fetch('admin/page-fragment'"),
            "refreshes in place"
        );
        assert!(!page.contains("src=\"http"), "nothing from elsewhere");
        // The ejected host: its reason and the time left.
        assert!(page.contains("<code>pool_exhausted</code>"));
        assert!(page.contains("data-ms=\"3000\""), "time left");
        assert!(page.contains("3.0\u{a0}s left"));
        // The host in probation: its step.
        assert!(page.contains("probation step <b>2 of 3</b>"), "{page}");
        // Host names never break.
        assert!(
            page.contains(
                "<span class=\"name\">a-rather-long-host-name-that-must-not-break</span>"
            )
        );
        assert!(page.contains(".name{font-weight:650;white-space:nowrap"));
        // Charts: 4 points (the first sample is the baseline), 10 requests a second, the
        // pool full, shaded as out of service; the scale in the corner.
        assert!(page.contains("<b>10/s</b> now"), "{page}");
        // The pool now is the last report; its peak comes from the history.
        assert!(
            page.contains("<b>4 of 10</b> now, 0 waiting &middot; peak 100%"),
            "{page}"
        );
        assert!(page.contains("class=\"band out\""));
        assert!(page.contains("<span class=\"top\">20/s</span>"), "{page}");
        assert!(page.contains("<svg class=\"spark\""));
        // Events, escaped.
        assert!(page.contains("config &lt;reloaded&gt;"));
        assert!(page.contains("The last 1 (at most 200)"));
    }

    #[test]
    fn scales_and_figures() {
        assert_eq!(nice(1.0), 1.0);
        assert_eq!(nice(1.3), 2.0);
        assert_eq!(nice(62.0), 100.0);
        assert_eq!(nice(0.0042), 0.005);
        assert_eq!(latency(0.0005), "500\u{a0}µs");
        assert_eq!(latency(0.0032), "3.2\u{a0}ms");
        assert_eq!(latency(0.25), "250\u{a0}ms");
        assert_eq!(latency(2.5), "2.5\u{a0}s");
        assert_eq!(rate(48.0), "48/s");
        assert_eq!(rate(4.5), "4.5/s");
        assert_eq!(rate(0.0), "0/s");
    }
}
