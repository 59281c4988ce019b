//! `/` on the admin listener: one HTML page a person reads at a glance (hosts, states, pool
//! figures, in flight, probe age; Vals the cascade guard restricts, with their evidence). No
//! scripts; it refreshes itself every two seconds.

use std::fmt::Write as _;

use std::time::Instant;

use health::guard::ValState;

use crate::control::fleet::Fleet;
use crate::control::shared::Shared;
use crate::control::view::HealthView;

/// Renders the status page.
pub(crate) fn render(shared: &Shared) -> String {
    let published = shared.published.load();
    let view = shared.view.load();
    let now = shared.now();
    let fleet = &published.fleet;
    let mut rows = String::new();
    let eligible = published.eligible();
    let slots = fleet.ring.slot_counts();
    let total_slots = fleet.ring.slots().max(1) as f64;
    for (i, h) in fleet.hosts.iter().enumerate() {
        let health = view.host(h.key);
        let state = view.state_of(h.key);
        let reason = health.and_then(|s| s.reason).map_or("", |r| r.as_str());
        let since = health.map_or(0.0, |s| {
            now.saturating_duration_since(s.since).as_secs_f64()
        });
        let (in_flight, oldest) = fleet.loads.oldest(i, now);
        let pool = health.and_then(|s| s.pool).map_or("-".to_owned(), |p| {
            format!(
                "{}/{} in use, {} waiting, oldest {:.1}s",
                p.in_use,
                p.max,
                p.waiting,
                p.oldest_checkout.as_secs_f64()
            )
        });
        let probe = health
            .and_then(|s| s.last_probe)
            .map_or("never".to_owned(), |t| {
                format!("{:.1}s ago", now.saturating_duration_since(t).as_secs_f64())
            });
        let _ = writeln!(
            rows,
            "<tr class=\"{state}\"><td>{name}</td><td>{addr}</td><td>{weight}</td><td>{share:.1}%</td><td><b>{state}</b></td><td>{reason}</td>\
             <td>{since:.1}s</td><td>{in_flight}{oldest}</td><td>{pool}</td><td>{probe}</td></tr>",
            name = html(&h.name),
            addr = h.addr,
            weight = h.weight,
            share = 100.0 * f64::from(slots.get(i).copied().unwrap_or(0)) / total_slots,
            oldest = oldest.map_or(String::new(), |d| format!(
                " (oldest {:.1}s)",
                d.as_secs_f64()
            )),
        );
    }
    let vals = vals_table(&view, fleet, now);
    let panic = if view.snapshot.panic.is_some() {
        "<p class=\"ejected\"><b>PANIC MODE</b>: too few healthy hosts; health verdicts suspended by policy.</p>"
    } else {
        ""
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2\">\
<title>ringward</title><style>\
body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}\
td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}\
.healthy td:nth-child(5){{color:#070}}.degraded td:nth-child(5),.probation td:nth-child(5){{color:#a60}}\
.ejected td:nth-child(5),.ejected,.quarantined td:nth-child(2){{color:#b00}}.suspect td:nth-child(2){{color:#a60}}.draining td:nth-child(5){{color:#555}}\
</style></head><body><h1>ringward</h1>\
<p>{eligible} of {total} hosts eligible &middot; {in_flight} requests in flight &middot; snapshot generation {generation}</p>{panic}\
<table><tr><th>host</th><th>address</th><th>weight</th><th>ring share</th><th>state</th><th>reason</th><th>for</th><th>in flight</th><th>DB pool</th><th>last probe</th></tr>\n{rows}</table>\
{vals}\
<p><a href=\"/admin/hosts\">/admin/hosts</a> &middot; <a href=\"/admin/vals\">/admin/vals</a> &middot; <a href=\"/metrics\">/metrics</a> &middot; <a href=\"/admin/route?key=example\">/admin/route?key=</a></p>\
</body></html>\n",
        total = fleet.hosts.len(),
        in_flight = shared.global.count(),
        generation = published.snapshot.generation(),
    )
}

/// The cascade guard's Vals: suspects and quarantines with the host and share that
/// implicated them (nothing when there are none).
fn vals_table(view: &HealthView, fleet: &Fleet, now: Instant) -> String {
    let restricted: Vec<_> = view
        .vals
        .iter()
        .filter(|v| v.state != ValState::Normal)
        .collect();
    if restricted.is_empty() {
        return "<p>Cascade guard: no suspect or quarantined Val.</p>".to_owned();
    }
    let mut rows = String::new();
    for v in restricted {
        let evidence = v.implications.last().map_or(String::new(), |i| {
            let host = fleet
                .id_of_key(i.host)
                .map_or("?", |id| fleet.host(id).name.as_str());
            format!(
                "{} ({:.0}% of its in-flight time, {} in flight, oldest {:.1}s)",
                html(host),
                100.0 * i.share,
                i.in_flight,
                i.oldest.as_secs_f64()
            )
        });
        let left = v.until.map_or("until released".to_owned(), |u| {
            format!(
                "{:.0}s left",
                u.saturating_duration_since(now).as_secs_f64().ceil()
            )
        });
        let _ = writeln!(
            rows,
            "<tr class=\"{state}\"><td>{key}</td><td><b>{state}</b></td><td>{reason}</td><td>{since:.1}s</td><td>{left}</td><td>{evidence}</td></tr>",
            key = html(v.name.as_deref().unwrap_or("?")),
            state = v.state,
            reason = v.reason,
            since = now.saturating_duration_since(v.since).as_secs_f64(),
        );
    }
    format!(
        "<h2>Cascade guard</h2><table><tr><th>Val</th><th>state</th><th>reason</th><th>for</th><th>ends</th><th>implicated on</th></tr>\n{rows}</table>"
    )
}

/// Escapes text for HTML.
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
