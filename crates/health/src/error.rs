//! The crate's one error type.

/// Everything that can go wrong in this crate: a config field breaking a rule, or a
/// health report that cannot be read at all. (A report with a few bad values is not an
/// error: those values are ignored and counted.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// A config field breaks a rule; `field` is its path inside `[health]`.
    #[error("{field}: {rule}")]
    InvalidConfig {
        /// The field path, e.g. `max_ejected_share`.
        field: &'static str,
        /// The rule it breaks, e.g. `must be between 0 and 1`.
        rule: &'static str,
    },
    /// A probe body that is not a JSON object (e.g. a plain `OK`).
    #[error("health body is not a JSON object (at line {line}, column {column})")]
    NotJson {
        /// 1-based line of the syntax error (0 when the JSON was valid but not an object).
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
    },
    /// An ORCA header in a form other than `TEXT` (JSON or BIN are not read).
    #[error("load-report header is not in TEXT form")]
    NotTextForm,
    /// An ORCA header that is not UTF-8.
    #[error("load-report header is not UTF-8")]
    NotUtf8,
}

impl HealthError {
    /// The config field at fault, if this is a config error.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            HealthError::InvalidConfig { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// The error of the report parsers (the crate's one error type).
pub type ReportError = HealthError;
/// The error of config validation (the crate's one error type).
pub type ConfigError = HealthError;

/// The rules of a config, checked one by one; every broken one is kept.
#[derive(Debug, Default)]
pub(crate) struct Rules(Vec<ConfigError>);

impl Rules {
    /// The rule "`field`: `rule`" holds when `ok`.
    pub(crate) fn check(&mut self, ok: bool, field: &'static str, rule: &'static str) {
        if !ok {
            self.0.push(ConfigError::InvalidConfig { field, rule });
        }
    }

    /// Every broken rule, or `Ok` when none is.
    pub(crate) fn finish(self) -> Result<(), Vec<ConfigError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}
