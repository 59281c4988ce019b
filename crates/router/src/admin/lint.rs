//! A strict check of the `/metrics` text for the tests, in both formats: the output a scraper
//! must accept.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::admin::text_format::TextFormat;

/// A strict reader of the Prometheus text format 0.0.4, for tests: every sample's family has
/// exactly one `# TYPE` line before its first sample, a family is one contiguous group,
/// no series appears twice, a counter's name ends in `_total` (and only a counter's), and
/// each histogram series has `_bucket{le="+Inf"}`, `_sum` and `_count`.
pub(crate) fn lint_exposition(text: &str) -> Result<(), String> {
    lint(text, TextFormat::Prometheus)
}

/// [`lint_exposition`] for OpenMetrics 1.0: the same rules, plus the text ends with
/// `# EOF` and has no blank line, a counter family is named without `_total` and its samples
/// with it (or `_created`), an info family's samples end in `_info` and are 1, and the only
/// comments are `# HELP`, `# TYPE`, `# UNIT`.
pub(crate) fn lint_openmetrics(text: &str) -> Result<(), String> {
    lint(text, TextFormat::OpenMetrics)
}

fn lint(text: &str, format: TextFormat) -> Result<(), String> {
    let om = format == TextFormat::OpenMetrics;
    let body = if om {
        text.strip_suffix("# EOF\n")
            .ok_or("OpenMetrics text does not end with `# EOF`")?
    } else {
        text
    };
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut sampled: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<String> = HashSet::new();
    // histogram family -> (series with +Inf bucket, with _sum, with _count), labels minus `le`.
    let mut hist: HashMap<String, [BTreeSet<String>; 3]> = HashMap::new();
    let mut enter = |family: &str, current: &mut Option<String>| -> Result<(), String> {
        if current.as_deref() != Some(family) {
            if closed.contains(family) {
                return Err(format!("family {family} appears in two separate groups"));
            }
            if let Some(prev) = current.take() {
                closed.insert(prev);
            }
            *current = Some(family.to_owned());
        }
        Ok(())
    };
    let types: &[&str] = if om {
        &[
            "counter",
            "gauge",
            "histogram",
            "gaugehistogram",
            "summary",
            "info",
            "stateset",
            "unknown",
        ]
    } else {
        &["counter", "gauge", "histogram", "summary", "untyped"]
    };
    for (n, line) in body.lines().enumerate() {
        let n = n + 1;
        if line.is_empty() {
            if om {
                return Err(format!("line {n}: blank line"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.trim_start().splitn(3, ' ');
            let (what, family) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            match what {
                "HELP" => enter(family, &mut current)?,
                "TYPE" => {
                    enter(family, &mut current)?;
                    let kind = parts.next().unwrap_or("");
                    if !types.contains(&kind) {
                        return Err(format!("line {n}: bad type {kind:?}"));
                    }
                    if sampled.contains(family) {
                        return Err(format!("line {n}: TYPE of {family} after its samples"));
                    }
                    if kinds.insert(family.to_owned(), kind.to_owned()).is_some() {
                        return Err(format!("line {n}: second TYPE line for {family}"));
                    }
                    check_family_name(family, kind, om).map_err(|e| format!("line {n}: {e}"))?;
                }
                "UNIT" if om => enter(family, &mut current)?,
                _ if om => return Err(format!("line {n}: not an OpenMetrics comment: {line}")),
                _ => {}
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or(format!("line {n}: no value: {line}"))?;
        let name = &line[..name_end];
        let (labels, value) = if line[name_end..].starts_with('{') {
            let close = line
                .rfind('}')
                .ok_or(format!("line {n}: unclosed labels"))?;
            (&line[name_end + 1..close], line[close + 1..].trim())
        } else {
            ("", line[name_end..].trim())
        };
        if value.parse::<f64>().is_err() && !["+Inf", "-Inf", "NaN"].contains(&value) {
            return Err(format!("line {n}: bad value {value:?}"));
        }
        let mut pairs = Vec::new();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or(format!("line {n}: bad label {pair}"))?;
            if !(v.len() >= 2 && v.starts_with('"') && v.ends_with('"')) {
                return Err(format!("line {n}: unquoted label value {pair}"));
            }
            pairs.push((k.to_owned(), v[1..v.len() - 1].to_owned()));
        }
        let (family, suffix) = family_of(name, &kinds, om);
        let Some(kind) = kinds.get(family).map(String::as_str) else {
            return Err(format!(
                "line {n}: sample of {family} before (or without) its TYPE"
            ));
        };
        if om {
            match (kind, suffix) {
                ("counter", Some(0 | 1)) | ("histogram", Some(_)) | ("info", Some(_)) => {}
                ("counter" | "info" | "histogram", _) => {
                    return Err(format!("line {n}: {kind} sample {name} lacks its suffix"));
                }
                _ => {}
            }
            if kind == "info" && value != "1" {
                return Err(format!("line {n}: info sample {name} is not 1"));
            }
        }
        enter(family, &mut current)?;
        sampled.insert(family.to_owned());
        if !series.insert(format!("{name}{{{labels}}}")) {
            return Err(format!("line {n}: duplicate series {name}{{{labels}}}"));
        }
        if let ("histogram", Some(i)) = (kind, suffix) {
            let le = pairs
                .iter()
                .find(|(k, _)| k == "le")
                .map(|(_, v)| v.clone());
            let rest: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k != "le")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let sets = hist.entry(family.to_owned()).or_default();
            if i == 0 && le.as_deref() == Some("+Inf") || i > 0 {
                sets[i].insert(rest.join(","));
            }
        }
    }
    for (family, [inf, sum, count]) in hist {
        if inf != sum || sum != count {
            return Err(format!(
                "histogram {family}: series with +Inf {inf:?}, _sum {sum:?}, _count {count:?}"
            ));
        }
    }
    Ok(())
}

/// The naming rules of `_total`: Prometheus text names a counter's family with it (and no
/// other family); OpenMetrics names no family with it (its counters' samples carry it).
fn check_family_name(family: &str, kind: &str, om: bool) -> Result<(), String> {
    let total = family.ends_with("_total");
    match (om, kind == "counter", total) {
        (false, true, false) => Err(format!("counter {family} lacks _total")),
        (false, false, true) => Err(format!("{kind} {family} has the counter suffix _total")),
        (true, _, true) => Err(format!("OpenMetrics family {family} is named with _total")),
        (true, false, false) if kind != "info" && family.ends_with("_info") => {
            Err(format!("{kind} {family} has the info suffix _info"))
        }
        _ => Ok(()),
    }
}

/// The family a sample belongs to, and the index of its suffix in its type's suffix list
/// (histogram `_bucket`, `_sum`, `_count`; in OpenMetrics also counter `_total`, `_created`
/// and info `_info`), or `None` for a sample named as its family.
fn family_of<'a>(
    name: &'a str,
    kinds: &HashMap<String, String>,
    om: bool,
) -> (&'a str, Option<usize>) {
    let mut suffixes: Vec<(&str, &[&str])> = vec![("histogram", &["_bucket", "_sum", "_count"])];
    if om {
        suffixes.push(("counter", &["_total", "_created"]));
        suffixes.push(("info", &["_info"]));
    }
    for (kind, list) in suffixes {
        for (i, suffix) in list.iter().enumerate() {
            if let Some(base) = name.strip_suffix(suffix)
                && kinds.get(base).map(String::as_str) == Some(kind)
            {
                return (base, Some(i));
            }
        }
    }
    (name, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linter_refuses_what_the_old_output_did() {
        let split = "# HELP a x\n# TYPE a gauge\na{h=\"1\"} 1\n# HELP b x\n# TYPE b gauge\nb 1\na{h=\"2\"} 1\n";
        assert!(lint_exposition(split).is_err(), "interleaved families");
        let untyped = "# TYPE a gauge\na 1\nc 1\n";
        assert!(lint_exposition(untyped).is_err(), "a sample with no TYPE");
        let total_gauge = "# TYPE a_total gauge\na_total 1\n";
        assert!(
            lint_exposition(total_gauge).is_err(),
            "a gauge named _total"
        );
        let dup = "# TYPE a_total counter\na_total{h=\"x\"} 1\na_total{h=\"x\"} 0\n";
        assert!(lint_exposition(dup).is_err(), "a duplicate series");
        let no_inf = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n";
        assert!(lint_exposition(no_inf).is_err(), "a histogram without +Inf");
        let late_type = "a_total 1\n# TYPE a_total counter\n";
        assert!(lint_exposition(late_type).is_err(), "TYPE after a sample");
        let good = "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n";
        assert_eq!(lint_exposition(good), Ok(()));
    }

    #[test]
    fn the_openmetrics_linter_holds_its_own_rules() {
        let good = "# HELP a x\n# TYPE a counter\na_total{h=\"1\"} 1\n# TYPE b info\nb_info{v=\"1\"} 1\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n# EOF\n";
        assert_eq!(lint_openmetrics(good), Ok(()));
        assert!(lint_exposition(good).is_err(), "not Prometheus text");
        let no_eof = good.trim_end_matches("# EOF\n");
        assert!(lint_openmetrics(no_eof).is_err(), "no # EOF");
        let after_eof = format!("{good}a_total 2\n");
        assert!(lint_openmetrics(&after_eof).is_err(), "text after # EOF");
        let total_family = "# TYPE a_total counter\na_total 1\n# EOF\n";
        assert!(
            lint_openmetrics(total_family).is_err(),
            "family with _total"
        );
        let bare_counter = "# TYPE a counter\na 1\n# EOF\n";
        assert!(
            lint_openmetrics(bare_counter).is_err(),
            "sample lacks _total"
        );
        let blank = "# TYPE a gauge\n\na 1\n# EOF\n";
        assert!(lint_openmetrics(blank).is_err(), "a blank line");
        let info_two = "# TYPE b info\nb_info 2\n# EOF\n";
        assert!(lint_openmetrics(info_two).is_err(), "an info sample not 1");
        let comment = "# a comment\n# TYPE a gauge\na 1\n# EOF\n";
        assert!(lint_openmetrics(comment).is_err(), "a free comment");
        let split = "# TYPE a counter\na_total{h=\"1\"} 1\n# TYPE b gauge\nb 1\na_total{h=\"2\"} 1\n# EOF\n";
        assert!(lint_openmetrics(split).is_err(), "interleaved families");
    }
}
