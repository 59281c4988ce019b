//! The cascade guard: which Val made a host fail, and keeping that Val from taking the next
//! host down too.
//!
//! A host fails; the router ejects it; the Val that caused it (the post-mortem's "flurry of
//! parallel edits") follows its ring walk to the next host and fails that one as well. The
//! guard breaks that chain. It is pure like the rest of this crate: every input carries
//! `now`, nothing reads a clock.
//!
//! - **Attribution** ([`Guard::sample`], [`Guard::record_completion`]): per host, the
//!   requests in flight now with their ages, and a decayed baseline of each Val's normal
//!   share of the host's work: of the requests it answered, by number and by the time they
//!   took (two top-K sketches). A request is *stuck* once it is older than `stuck_after` and
//!   `stuck_latency_multiple` times the host's mean answered latency; a Val's *share* is the
//!   age of its stuck requests over the age of all stuck requests. Bounded memory:
//!   `2 x top_k` entries per host, whatever the number of Vals.
//! - **Suspicion** ([`Guard::on_host_failure`]): when a host turns exhausted, hung or
//!   ejected, a Val with at least `min_in_flight` stuck requests whose share is at least
//!   `overrepresentation` times its baseline share is implicated. A share of
//!   `dominant_share` or more quarantines it at once; `implicated_share` or more makes it a
//!   suspect, and a second host within `window` quarantines it. When a host stalls for
//!   everyone, each Val's stuck requests pile up in proportion to its traffic, and a slow
//!   Val's are old because it is slow: both are within their baseline, so neither a popular
//!   Val nor a slow one is implicated, whatever its volume. A poison Val's requests have
//!   been stuck since the failure began: they hold far more of the stuck time than its
//!   share of the work.
//! - **Quarantine** lasts `quarantine`, doubled for each repeat offence up to
//!   `quarantine_max`, and not while a host it was implicated on is still out (so it comes
//!   back to its own host, not a new one); an operator may quarantine or release by hand.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ringward_health::guard::{Guard, GuardConfig, ValState};
//!
//! # #[allow(clippy::disallowed_methods)] // a doc example needs an origin
//! let t0 = Instant::now();
//! let mut guard: Guard<&str, u64> = Guard::new(GuardConfig::default());
//! guard.set_hosts(["a", "b"]);
//! // Host "a" served Val 1 quickly for a while...
//! for i in 0..100u64 {
//!     guard.record_completion("a", 1, Duration::from_millis(2), t0 + Duration::from_millis(10 * i));
//! }
//! // ...then Val 7's requests got stuck on it while Val 1 kept flowing.
//! let t = t0 + Duration::from_secs(1);
//! let age = Duration::from_millis(400);
//! guard.sample("a", [(7, age), (7, age), (7, age), (1, Duration::from_millis(1))]);
//! let mut out = Vec::new();
//! guard.on_host_failure("a", t, &mut out);
//! assert_eq!(out[0].to, ValState::Quarantined);
//! assert_eq!(guard.state_of(7), ValState::Quarantined);
//! assert_eq!(guard.state_of(1), ValState::Normal);
//! ```

mod config;
mod record;
mod sketch;
mod trace;
mod vals;

pub use config::GuardConfig;
pub use record::{Implication, ValInfo, ValReason, ValState, ValTransition};
pub use vals::Guard;
