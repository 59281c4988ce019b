//! The one error type of `router-core`.

/// Why a ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The host set was empty.
    #[error("the ring needs at least one host")]
    NoHosts,
    /// A host had weight 0.
    #[error("host {name:?}: weight must be greater than 0")]
    ZeroWeight {
        /// The offending host.
        name: String,
    },
    /// Two hosts had the same name.
    #[error("host {name:?} is listed more than once")]
    DuplicateName {
        /// The duplicated name.
        name: String,
    },
    /// More hosts than the table's 16-bit host ids can address.
    #[error("{count} hosts is more than the ring supports ({max})", max = crate::host::MAX_HOSTS)]
    TooManyHosts {
        /// How many hosts were given.
        count: usize,
    },
}
