//! The `poison` fault's setting: which Val's parallel requests deadlock the pool (the pool
//! keeps its state; `FaultControl` sets it).

use serde::{Deserialize, Serialize};

/// The `poison` fault: a flurry of parallel requests for one Val deadlocks the DB pool.
///
/// Once `concurrency` requests for `val` are in flight on the host at once (queued for or
/// holding a connection, the arriving one included), each of them and every later one for
/// that Val holds its connection forever and is never answered, until released.
/// JSON: `{"val": "alice-hello", "concurrency": 2}`, `concurrency` optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoisonFault {
    /// The Val key, as [`val_key`](crate::val_key) reads it from a request.
    pub val: String,
    /// How many of its requests in flight at once trigger the deadlock (at least 1).
    #[serde(default = "PoisonFault::default_concurrency")]
    pub concurrency: u32,
}

impl PoisonFault {
    /// The `concurrency` when none is given: two parallel edits are enough.
    pub const DEFAULT_CONCURRENCY: u32 = 2;

    /// Poisons `val` with the default concurrency.
    pub fn new(val: impl Into<String>) -> PoisonFault {
        PoisonFault {
            val: val.into(),
            concurrency: PoisonFault::DEFAULT_CONCURRENCY,
        }
    }

    fn default_concurrency() -> u32 {
        PoisonFault::DEFAULT_CONCURRENCY
    }
}
