//! The crate's one error type.

/// What can go wrong configuring or controlling a simulated host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A service-time specification could not be parsed.
    #[error("service time `{input}`: {reason}")]
    ServiceTime {
        /// The text given.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A fault patch was malformed or out of range.
    #[error("fault `{field}`: {reason}")]
    Fault {
        /// The offending field of the patch.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
}
