//! Contract 1, the health report: its types and the two parsers (probe body, ORCA header).
//!
//! Both parsers take what they can: a malformed value is ignored and counted (in the
//! caller's counter and in [`malformed_values_total`]), never a panic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::ReportError;

/// The response header that carries an in-band ORCA load report.
pub const ORCA_HEADER: &str = "endpoint-load-metrics";

/// A host's database pool figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PoolReport {
    /// Pool capacity (0 means "no pool": never judged).
    pub max: u32,
    /// Connections checked out.
    pub in_use: u32,
    /// Tasks waiting to acquire a connection.
    pub waiting: u32,
    /// Age of the longest-held checked-out connection.
    pub oldest_checkout: Duration,
}

/// The `status` field of a health body (IETF health+json draft).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportStatus {
    /// `pass` (aliases `ok`, `up`).
    Pass,
    /// `warn`.
    Warn,
    /// `fail` (aliases `error`, `down`).
    Fail,
}

/// What a host said about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HealthReport {
    /// The self-declared status; informative only, the figures are judged regardless.
    pub status: Option<ReportStatus>,
    /// The pool figures, when reported.
    pub pool: Option<PoolReport>,
}

static MALFORMED: AtomicU64 = AtomicU64::new(0);

/// Malformed values ignored by the parsers since the process started (for metrics).
pub fn malformed_values_total() -> u64 {
    MALFORMED.load(Ordering::Relaxed)
}

fn count_malformed(counter: &mut u64) {
    *counter += 1;
    MALFORMED.fetch_add(1, Ordering::Relaxed);
}

/// Parses a probe body (the JSON of docs/contracts.md: the host health report). Unknown fields are ignored; an empty body is
/// an empty report.
///
/// # Errors
/// [`ReportError::NotJson`] when the body is not a JSON object.
pub fn parse_health_body(body: &[u8]) -> Result<HealthReport, ReportError> {
    let mut malformed = 0;
    parse_health_body_counted(body, &mut malformed)
}

/// As [`parse_health_body`], adding the number of malformed values ignored to `malformed`.
///
/// # Errors
/// [`ReportError::NotJson`] when the body is not a JSON object.
pub fn parse_health_body_counted(
    body: &[u8],
    malformed: &mut u64,
) -> Result<HealthReport, ReportError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(HealthReport::default());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ReportError::NotJson {
            line: e.line(),
            column: e.column(),
        })?;
    let Some(object) = value.as_object() else {
        return Err(ReportError::NotJson { line: 0, column: 0 });
    };
    let mut report = HealthReport::default();
    if let Some(status) = object.get("status") {
        report.status = match status.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("pass" | "ok" | "up") => Some(ReportStatus::Pass),
            Some("warn") => Some(ReportStatus::Warn),
            Some("fail" | "error" | "down") => Some(ReportStatus::Fail),
            _ => {
                count_malformed(malformed);
                None
            }
        };
    }
    match object.get("db_pool") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(pool)) => {
            let mut field = |name: &str| -> Option<f64> {
                let value = pool.get(name)?;
                let number = value.as_f64().filter(|n| n.is_finite() && *n >= 0.0);
                if number.is_none() {
                    count_malformed(malformed);
                }
                number
            };
            let max = field("max");
            let in_use = field("in_use");
            let waiting = field("waiting");
            let oldest = field("oldest_checkout_ms");
            report.pool = assemble_pool(max, in_use, waiting, oldest, malformed);
        }
        Some(_) => count_malformed(malformed),
    }
    Ok(report)
}

/// Parses an ORCA `endpoint-load-metrics` header in TEXT form, as Envoy does:
/// `TEXT named_metrics.db_pool_max=20, named_metrics.db_pool_in_use=20, ...`.
/// `Ok(None)` when it carries no pool figures.
///
/// # Errors
/// [`ReportError::NotTextForm`] for the JSON or BIN forms, [`ReportError::NotUtf8`].
pub fn parse_orca_header(value: &[u8]) -> Result<Option<PoolReport>, ReportError> {
    let mut malformed = 0;
    parse_orca_header_counted(value, &mut malformed)
}

/// As [`parse_orca_header`], adding the number of malformed values ignored to `malformed`.
///
/// # Errors
/// [`ReportError::NotTextForm`] for the JSON or BIN forms, [`ReportError::NotUtf8`].
pub fn parse_orca_header_counted(
    value: &[u8],
    malformed: &mut u64,
) -> Result<Option<PoolReport>, ReportError> {
    let text = std::str::from_utf8(value).map_err(|_| ReportError::NotUtf8)?;
    let text = text.trim();
    let rest = match text.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("TEXT") => &text[4..],
        _ => return Err(ReportError::NotTextForm),
    };
    if !rest.is_empty() && !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return Err(ReportError::NotTextForm);
    }
    let (mut max, mut in_use, mut waiting, mut oldest) = (None, None, None, None);
    for pair in rest.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let Some((key, number)) = pair.split_once('=') else {
            count_malformed(malformed);
            continue;
        };
        let slot = match key.trim() {
            "named_metrics.db_pool_max" => &mut max,
            "named_metrics.db_pool_in_use" => &mut in_use,
            "named_metrics.db_pool_waiting" => &mut waiting,
            "named_metrics.db_pool_oldest_checkout_ms" => &mut oldest,
            _ => continue, // other ORCA metrics are not ours
        };
        match number.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => *slot = Some(n),
            _ => count_malformed(malformed),
        }
    }
    Ok(assemble_pool(max, in_use, waiting, oldest, malformed))
}

/// Builds a pool report from the figures that parsed: `max` and `in_use` are required
/// (a report without them is dropped and counted), `waiting` and the age default to 0.
fn assemble_pool(
    max: Option<f64>,
    in_use: Option<f64>,
    waiting: Option<f64>,
    oldest_ms: Option<f64>,
    malformed: &mut u64,
) -> Option<PoolReport> {
    if max.is_none() && in_use.is_none() && waiting.is_none() && oldest_ms.is_none() {
        return None;
    }
    let mut count = |n: Option<f64>| -> Option<u32> {
        let n = n?;
        if n.fract() == 0.0 && n <= f64::from(u32::MAX) {
            Some(n as u32)
        } else {
            count_malformed(malformed);
            None
        }
    };
    let (max, in_use, waiting) = (count(max), count(in_use), count(waiting));
    let (Some(max), Some(in_use)) = (max, in_use) else {
        count_malformed(malformed);
        return None;
    };
    // Ages beyond a year are nonsense; cap rather than overflow.
    let oldest_ms = oldest_ms.unwrap_or(0.0).min(365.0 * 24.0 * 3600.0 * 1000.0);
    Some(PoolReport {
        max,
        in_use,
        waiting: waiting.unwrap_or(0),
        oldest_checkout: Duration::from_secs_f64(oldest_ms / 1000.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max: u32, in_use: u32, waiting: u32, oldest_ms: u64) -> PoolReport {
        PoolReport {
            max,
            in_use,
            waiting,
            oldest_checkout: Duration::from_millis(oldest_ms),
        }
    }

    #[test]
    fn body_of_the_documented_health_report() {
        let body = br#"{"status":"pass","extra":[1],"db_pool":{"max":20,"in_use":4,"waiting":0,"oldest_checkout_ms":35}}"#;
        let mut bad = 0;
        let report = parse_health_body_counted(body, &mut bad).unwrap();
        assert_eq!(report.status, Some(ReportStatus::Pass));
        assert_eq!(report.pool, Some(pool(20, 4, 0, 35)));
        assert_eq!(bad, 0);
    }

    #[test]
    fn body_status_aliases_and_no_pool() {
        let report = parse_health_body(br#"{"status":"DOWN"}"#).unwrap();
        assert_eq!(report.status, Some(ReportStatus::Fail));
        assert_eq!(report.pool, None);
        assert_eq!(parse_health_body(b"  ").unwrap(), HealthReport::default());
    }

    #[test]
    fn body_malformed_values_are_ignored_and_counted() {
        let mut bad = 0;
        let body = br#"{"status":7,"db_pool":{"max":20,"in_use":20,"waiting":-3,"oldest_checkout_ms":"old"}}"#;
        let report = parse_health_body_counted(body, &mut bad).unwrap();
        assert_eq!(report.status, None);
        assert_eq!(report.pool, Some(pool(20, 20, 0, 0)));
        assert_eq!(bad, 3, "status, waiting, oldest_checkout_ms");

        let mut bad = 0;
        let body = br#"{"db_pool":{"max":2.5,"in_use":1}}"#;
        assert_eq!(
            parse_health_body_counted(body, &mut bad).unwrap().pool,
            None
        );
        assert_eq!(bad, 2, "fractional max, then the pool without max");

        let mut bad = 0;
        let report = parse_health_body_counted(br#"{"db_pool":"full"}"#, &mut bad).unwrap();
        assert_eq!((report.pool, bad), (None, 1));
    }

    #[test]
    fn body_that_is_not_json_is_an_error() {
        assert!(matches!(
            parse_health_body(b"OK"),
            Err(ReportError::NotJson { line: 1, .. })
        ));
        assert!(matches!(
            parse_health_body(b"[1,2]"),
            Err(ReportError::NotJson { line: 0, .. })
        ));
        let before = malformed_values_total();
        assert!(parse_health_body(&[0xff, 0xfe]).is_err());
        assert!(malformed_values_total() >= before);
    }

    #[test]
    fn orca_header_as_envoy_writes_it() {
        let header = b"TEXT named_metrics.db_pool_max=20, named_metrics.db_pool_in_use=20, named_metrics.db_pool_waiting=7, named_metrics.db_pool_oldest_checkout_ms=41000";
        assert_eq!(
            parse_orca_header(header).unwrap(),
            Some(pool(20, 20, 7, 41_000))
        );
        let other = b"TEXT cpu_utilization=0.3, named_metrics.db_pool_max=10.0,named_metrics.db_pool_in_use=3,";
        assert_eq!(parse_orca_header(other).unwrap(), Some(pool(10, 3, 0, 0)));
        assert_eq!(
            parse_orca_header(b"TEXT cpu_utilization=0.5").unwrap(),
            None
        );
        assert_eq!(parse_orca_header(b"TEXT").unwrap(), None);
    }

    #[test]
    fn orca_malformed_values_are_ignored_and_counted() {
        let mut bad = 0;
        let header = b"TEXT named_metrics.db_pool_max=20, named_metrics.db_pool_in_use=NaN, garbage, named_metrics.db_pool_waiting=1e99";
        assert_eq!(parse_orca_header_counted(header, &mut bad).unwrap(), None);
        // in_use NaN, "garbage" without '=', waiting beyond u32, then the pool without in_use.
        assert_eq!(bad, 4);

        let mut bad = 0;
        let header = b"TEXT named_metrics.db_pool_max=8, named_metrics.db_pool_in_use=8, named_metrics.db_pool_oldest_checkout_ms=-5";
        assert_eq!(
            parse_orca_header_counted(header, &mut bad).unwrap(),
            Some(pool(8, 8, 0, 0))
        );
        assert_eq!(bad, 1);
    }

    #[test]
    fn orca_other_forms_are_errors() {
        assert_eq!(
            parse_orca_header(b"JSON {\"cpu_utilization\": 0.3}"),
            Err(ReportError::NotTextForm)
        );
        assert_eq!(
            parse_orca_header(b"TEXTnamed_metrics.db_pool_max=1"),
            Err(ReportError::NotTextForm)
        );
        assert_eq!(parse_orca_header(&[0xc3, 0x28]), Err(ReportError::NotUtf8));
        assert_eq!(parse_orca_header(b""), Err(ReportError::NotTextForm));
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: every prefix of some hostile inputs.
        let inputs: [&[u8]; 3] = [
            b"TEXT named_metrics.db_pool_max=\xff\xfe, =, ,=5, named_metrics.db_pool_in_use=1",
            br#"{"db_pool":{"max":1e400,"in_use":[],"waiting":{},"oldest_checkout_ms":1e300}}"#,
            "TEXT named_metrics.db_pool_max=２".as_bytes(),
        ];
        for input in inputs {
            for end in 0..=input.len() {
                let _ = parse_orca_header(&input[..end]);
                let _ = parse_health_body(&input[..end]);
            }
        }
    }
}
