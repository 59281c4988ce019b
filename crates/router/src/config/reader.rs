//! A small reader over a parsed TOML table that records every problem with its key path.
//!
//! serde's derive stops at the first error; an operator fixing a config wants all of
//! them at once, each with its path (`hosts[1].weight: must be greater than 0`), so the
//! raw file is read through this walker instead. It also names every unknown key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use toml::{Table, Value};

use super::{ConfigError, ConfigErrors, HostAddr};

/// Collects errors while a config is being read and validated.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<ConfigError>);

impl Errors {
    /// Records one error at `path`.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// True when some error is recorded at `path`.
    pub(crate) fn has_path(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }

    /// True when nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The collected errors.
    pub(crate) fn into_errors(self) -> ConfigErrors {
        ConfigErrors(self.0)
    }
}

/// One TOML table being read: remembers which keys were used, so the rest can be named as unknown.
pub(crate) struct Section<'t> {
    table: Option<&'t Table>,
    path: String,
    used: BTreeSet<&'static str>,
}

impl<'t> Section<'t> {
    /// True when the file has this table (even an empty one).
    pub(crate) fn is_present(&self) -> bool {
        self.table.is_some()
    }

    /// A section over `table` (None when the file has no such table: every key takes its default).
    pub(crate) fn new(table: Option<&'t Table>, path: impl Into<String>) -> Self {
        Section {
            table,
            path: path.into(),
            used: BTreeSet::new(),
        }
    }

    /// The full path of `key` inside this section.
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// True when the table has `key` (whatever its type).
    /// The section's own key path (`listen.tls`, `hosts[2]`).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Whether the table has `key` (asked for or not).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.is_some_and(|t| t.contains_key(key))
    }

    fn raw(&mut self, key: &'static str) -> Option<&'t Value> {
        self.used.insert(key);
        self.table.and_then(|t| t.get(key))
    }

    fn wrong_type(&self, errors: &mut Errors, key: &str, want: &str, got: &Value) {
        errors.push(
            self.path_of(key),
            format!("expected {want}, found {}", got.type_str()),
        );
    }

    /// A sub-table (`[listen]`), or None when absent or of the wrong type (recorded).
    pub(crate) fn table(&mut self, key: &'static str, errors: &mut Errors) -> Section<'t> {
        let path = self.path_of(key);
        match self.raw(key) {
            None => Section::new(None, path),
            Some(Value::Table(t)) => Section::new(Some(t), path),
            Some(other) => {
                self.wrong_type(errors, key, "a table", other);
                Section::new(None, path)
            }
        }
    }

    /// An array of tables (`[[hosts]]`); each element comes back with its index.
    pub(crate) fn tables(&mut self, key: &'static str, errors: &mut Errors) -> Vec<Section<'t>> {
        let path = self.path_of(key);
        match self.raw(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Table(t) => Some(Section::new(Some(t), format!("{path}[{i}]"))),
                    other => {
                        errors.push(
                            format!("{path}[{i}]"),
                            format!("expected a table, found {}", other.type_str()),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.wrong_type(errors, key, "an array of tables", other);
                Vec::new()
            }
        }
    }

    /// A string, or None when absent or of the wrong type (recorded).
    pub(crate) fn string(&mut self, key: &'static str, errors: &mut Errors) -> Option<&'t str> {
        match self.raw(key)? {
            Value::String(s) => Some(s.as_str()),
            other => {
                self.wrong_type(errors, key, "a string", other);
                None
            }
        }
    }

    /// An array of strings.
    pub(crate) fn strings(
        &mut self,
        key: &'static str,
        errors: &mut Errors,
    ) -> Option<Vec<(String, &'t str)>> {
        let path = self.path_of(key);
        match self.raw(key)? {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push((format!("{path}[{i}]"), s.as_str())),
                        other => errors.push(
                            format!("{path}[{i}]"),
                            format!("expected a string, found {}", other.type_str()),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                self.wrong_type(errors, key, "an array of strings", other);
                None
            }
        }
    }

    /// A boolean, or `default`.
    pub(crate) fn boolean(
        &mut self,
        key: &'static str,
        default: bool,
        errors: &mut Errors,
    ) -> bool {
        match self.raw(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                self.wrong_type(errors, key, "true or false", other);
                default
            }
        }
    }

    /// An integer, or None when absent or invalid (recorded).
    pub(crate) fn integer(&mut self, key: &'static str, errors: &mut Errors) -> Option<i64> {
        match self.raw(key)? {
            Value::Integer(n) => Some(*n),
            other => {
                self.wrong_type(errors, key, "an integer", other);
                None
            }
        }
    }

    /// A positive `u32` (zero refused), or `default`.
    pub(crate) fn positive_u32(
        &mut self,
        key: &'static str,
        default: u32,
        errors: &mut Errors,
    ) -> u32 {
        match self.integer(key, errors) {
            None => default,
            Some(n) if n <= 0 => {
                errors.push(self.path_of(key), "must be greater than 0");
                default
            }
            Some(n) => u32::try_from(n).unwrap_or_else(|_| {
                errors.push(self.path_of(key), format!("must be at most {}", u32::MAX));
                default
            }),
        }
    }

    /// A non-negative `u32` (zero allowed), or `default`.
    pub(crate) fn u32_or(&mut self, key: &'static str, default: u32, errors: &mut Errors) -> u32 {
        match self.integer(key, errors) {
            None => default,
            Some(n) => u32::try_from(n).unwrap_or_else(|_| {
                errors.push(
                    self.path_of(key),
                    format!("must be between 0 and {}", u32::MAX),
                );
                default
            }),
        }
    }

    /// A float (integers accepted), or `default`.
    pub(crate) fn float(&mut self, key: &'static str, default: f64, errors: &mut Errors) -> f64 {
        match self.raw(key) {
            None => default,
            Some(Value::Float(f)) if f.is_finite() => *f,
            Some(Value::Integer(n)) => *n as f64,
            Some(other) => {
                self.wrong_type(errors, key, "a number", other);
                default
            }
        }
    }

    /// A share between 0 and 1 (`0.5`) or a percentage string (`"50%"`), or `default`.
    pub(crate) fn share(&mut self, key: &'static str, default: f64, errors: &mut Errors) -> f64 {
        let value = match self.raw(key) {
            None => return default,
            Some(Value::Float(f)) => *f,
            Some(Value::Integer(n)) => *n as f64,
            Some(Value::String(s)) => match s.trim().strip_suffix('%').map(str::trim) {
                Some(p) => match p.parse::<f64>() {
                    Ok(p) => p / 100.0,
                    Err(_) => {
                        errors.push(self.path_of(key), format!("`{s}` is not a percentage"));
                        return default;
                    }
                },
                None => {
                    errors.push(
                        self.path_of(key),
                        format!("`{s}` is not a share (write 0.5 or \"50%\")"),
                    );
                    return default;
                }
            },
            Some(other) => {
                self.wrong_type(errors, key, "a share (0.5 or \"50%\")", other);
                return default;
            }
        };
        if !(0.0..=1.0).contains(&value) || value.is_nan() {
            errors.push(self.path_of(key), "must be between 0 and 1 (0% to 100%)");
            return default;
        }
        value
    }

    /// A duration written as a string with a unit (`"500ms"`, `"10s"`); zero is refused.
    pub(crate) fn duration(
        &mut self,
        key: &'static str,
        default: Duration,
        errors: &mut Errors,
    ) -> Duration {
        let Some(value) = self.raw(key) else {
            return default;
        };
        let Value::String(text) = value else {
            errors.push(
                self.path_of(key),
                format!(
                    "expected a duration string with a unit such as \"500ms\" or \"10s\", found {}",
                    value.type_str()
                ),
            );
            return default;
        };
        match parse_duration(text) {
            Ok(d) => d,
            Err(message) => {
                errors.push(self.path_of(key), message);
                default
            }
        }
    }

    /// A byte size: an integer count of bytes (`1048576`) or a string with a unit
    /// (`"10MiB"`, `"512KiB"`, `"1MB"`, `"100B"`); zero is refused.
    pub(crate) fn byte_size(
        &mut self,
        key: &'static str,
        default: u64,
        errors: &mut Errors,
    ) -> u64 {
        let Some(value) = self.raw(key) else {
            return default;
        };
        let parsed = match value {
            Value::Integer(n) if *n > 0 => Ok(n.unsigned_abs()),
            Value::Integer(_) => Err("must be greater than 0".to_owned()),
            Value::String(text) => parse_byte_size(text),
            other => Err(format!(
                "expected a byte count or a size string such as \"10MiB\", found {}",
                other.type_str()
            )),
        };
        parsed.unwrap_or_else(|message| {
            errors.push(self.path_of(key), message);
            default
        })
    }

    /// A socket address (`127.0.0.1:8080`), or None when absent or invalid (recorded).
    pub(crate) fn socket_addr(
        &mut self,
        key: &'static str,
        errors: &mut Errors,
    ) -> Option<SocketAddr> {
        let text = self.string(key, errors)?;
        match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(
                    self.path_of(key),
                    format!(
                        "`{text}` is not a socket address (write ip:port, e.g. 127.0.0.1:9001)"
                    ),
                );
                None
            }
        }
    }

    /// A host's address: `ip:port` or `name:port` ([`HostAddr`]), or None when absent or
    /// invalid (recorded).
    pub(crate) fn host_addr(&mut self, key: &'static str, errors: &mut Errors) -> Option<HostAddr> {
        let text = self.string(key, errors)?;
        match text.parse::<HostAddr>() {
            Ok(addr) => Some(addr),
            Err(message) => {
                errors.push(self.path_of(key), message);
                None
            }
        }
    }

    /// Records every key of the table that no reader asked for.
    pub(crate) fn finish(self, errors: &mut Errors) {
        let Some(table) = self.table else { return };
        for key in table.keys() {
            if !self.used.contains(key.as_str()) {
                let known: Vec<&str> = self.used.iter().copied().collect();
                errors.push(
                    self.path_of(key),
                    format!("unknown key (known keys here: {})", known.join(", ")),
                );
            }
        }
    }
}

/// Parses a byte size: digits, then an optional unit (`B`, `KB`/`MB`/`GB` in powers of 1000,
/// `KiB`/`MiB`/`GiB` in powers of 1024), greater than zero.
///
/// # Errors
/// A message naming the rule broken: no digits, an unknown unit, zero, or too large.
pub(crate) fn parse_byte_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}` is not a size (write a number with B, KB, MB, GB, KiB, MiB or GiB, e.g. \"10MiB\")"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (write e.g. \"10MiB\" or 1048576)"))?;
    if n == 0 {
        return Err("must be greater than 0".to_owned());
    }
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a config duration: a number with a unit, greater than zero.
///
/// # Errors
/// A message naming the rule broken: missing unit, zero, or unparsable.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "`{text}` has no unit (write e.g. \"{trimmed}ms\" or \"{trimmed}s\")"
        ));
    }
    match humantime::parse_duration(trimmed) {
        Ok(d) if d.is_zero() => Err("must be greater than 0".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!(
            "`{text}` is not a duration ({e}); write e.g. \"500ms\" or \"10s\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_must_be_positive() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("500").unwrap_err().contains("no unit"));
        assert!(parse_duration("0s").unwrap_err().contains("greater than 0"));
        assert!(parse_duration("0").is_err());
        assert!(
            parse_duration("fast")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn byte_sizes_take_a_unit_or_a_plain_count() {
        assert_eq!(parse_byte_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_byte_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_byte_size("100B"), Ok(100));
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert!(
            parse_byte_size("0MiB")
                .unwrap_err()
                .contains("greater than 0")
        );
        assert!(parse_byte_size("10mb").unwrap_err().contains("not a size"));
        assert!(parse_byte_size("MiB").unwrap_err().contains("not a size"));
        assert!(parse_byte_size("-1").unwrap_err().contains("not a size"));
        assert!(
            parse_byte_size("1.5MiB")
                .unwrap_err()
                .contains("not a size")
        );
        assert!(
            parse_byte_size("99999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
    }
}
