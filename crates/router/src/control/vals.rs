//! The Vals the cascade guard restricts, as the request path reads them: a small map from key
//! hash to verdict, published by the health task through `ArcSwap` (no lock to read). With no
//! suspect and no quarantine it is empty, and a lookup is one branch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use health::guard::ValState;

/// What the request path must do with one Val.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Kept to its own host: no retry, no rescue and no spill to another host.
    Suspect,
    /// Answered 503 at once; `until` is when it ends by itself (none: by hand only).
    Quarantined {
        /// When the quarantine ends by itself, if it does.
        until: Option<Instant>,
    },
}

/// The restricted Vals, by key hash.
#[derive(Debug, Default)]
pub(crate) struct ValSet {
    vals: HashMap<u64, Verdict>,
}

impl ValSet {
    /// The set from the guard's restricted Vals.
    pub(crate) fn from_guard(
        restricted: impl Iterator<Item = (u64, ValState, Option<Instant>)>,
    ) -> Self {
        let vals = restricted
            .filter_map(|(val, state, until)| match state {
                ValState::Normal => None,
                ValState::Suspect => Some((val, Verdict::Suspect)),
                ValState::Quarantined => Some((val, Verdict::Quarantined { until })),
            })
            .collect();
        ValSet { vals }
    }

    /// The verdict on the Val with key hash `val`, if any.
    #[inline]
    pub(crate) fn get(&self, val: u64) -> Option<Verdict> {
        if self.vals.is_empty() {
            return None;
        }
        self.vals.get(&val).copied()
    }

    /// How many Vals are restricted.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.vals.len()
    }
}

impl Verdict {
    /// How long a client should wait before trying again, at `now`: the time left on an
    /// automatic quarantine, or `otherwise` for one held by hand.
    pub(crate) fn retry_after(self, now: Instant, otherwise: Duration) -> Duration {
        match self {
            Verdict::Quarantined { until: Some(until) } => until
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)),
            _ => otherwise,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_restricted_vals_are_in_the_set() {
        let now = Instant::now();
        let until = now + Duration::from_secs(30);
        let set = ValSet::from_guard(
            [
                (1, ValState::Quarantined, Some(until)),
                (2, ValState::Suspect, Some(until)),
                (3, ValState::Normal, None),
            ]
            .into_iter(),
        );
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.get(1),
            Some(Verdict::Quarantined { until: Some(until) })
        );
        assert_eq!(set.get(2), Some(Verdict::Suspect));
        assert_eq!(set.get(3), None);
        assert!(ValSet::default().get(1).is_none());
        let q = set.get(1).unwrap();
        assert_eq!(
            q.retry_after(now, Duration::from_secs(5)),
            Duration::from_secs(30)
        );
        let by_hand = Verdict::Quarantined { until: None };
        assert_eq!(
            by_hand.retry_after(now, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert_eq!(
            q.retry_after(until + Duration::from_secs(9), Duration::from_secs(5)),
            Duration::from_secs(1),
            "never 0"
        );
    }
}
