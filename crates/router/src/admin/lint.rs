//! A strict Prometheus text-format check for the tests: the output a scraper must accept.

/// A strict reader of the Prometheus text format, for tests: every sample's family has
/// exactly one `# TYPE` line before its first sample, a family is one contiguous group,
/// no series appears twice, and each histogram series has `_bucket{le="+Inf"}`, `_sum`
/// and `_count`.
pub(crate) fn lint_exposition(text: &str) -> Result<(), String> {
    use std::collections::{BTreeSet, HashMap, HashSet};
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut closed: HashSet<String> = HashSet::new();
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
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (what, family) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            match what {
                "HELP" => enter(family, &mut current)?,
                "TYPE" => {
                    enter(family, &mut current)?;
                    let kind = parts.next().unwrap_or("");
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(format!("line {n}: bad type {kind:?}"));
                    }
                    if series
                        .iter()
                        .any(|s| s.starts_with(&format!("{family}{{")) || s == family)
                    {
                        return Err(format!("line {n}: TYPE of {family} after its samples"));
                    }
                    if kinds.insert(family.to_owned(), kind.to_owned()).is_some() {
                        return Err(format!("line {n}: second TYPE line for {family}"));
                    }
                    if kind == "counter" && !family.ends_with("_total") {
                        return Err(format!("line {n}: counter {family} lacks _total"));
                    }
                    if kind != "counter" && family.ends_with("_total") {
                        return Err(format!(
                            "line {n}: {kind} {family} has the counter suffix _total"
                        ));
                    }
                }
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
        let hist_base = ["_bucket", "_sum", "_count"]
            .iter()
            .enumerate()
            .find_map(|(i, suffix)| {
                let base = name.strip_suffix(suffix)?;
                (kinds.get(base).map(String::as_str) == Some("histogram")).then_some((i, base))
            });
        let family = hist_base.map_or(name, |(_, base)| base);
        if !kinds.contains_key(family) {
            return Err(format!(
                "line {n}: sample of {family} before (or without) its TYPE"
            ));
        }
        enter(family, &mut current)?;
        if !series.insert(format!("{name}{{{labels}}}")) {
            return Err(format!("line {n}: duplicate series {name}{{{labels}}}"));
        }
        if let Some((i, base)) = hist_base {
            let le = pairs
                .iter()
                .find(|(k, _)| k == "le")
                .map(|(_, v)| v.clone());
            let rest: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k != "le")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let sets = hist.entry(base.to_owned()).or_default();
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
