//! One host name's resolution over time, pure (lookup answers and `now` are arguments): the
//! address in use, kept through failed lookups (a DNS outage must not take a working host
//! out), and the change each answer makes, so it is logged once per change of state rather
//! than at every interval.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::control::fleet::Location;

/// A host name's address in use and its latest failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolution {
    /// The last good address (`None` until the name first resolves).
    addr: Option<SocketAddr>,
    /// Set while lookups fail.
    failure: Option<Failure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    /// The latest lookup's error, as shown to an operator.
    error: Arc<str>,
    /// When lookups started failing.
    since: Instant,
}

/// What one lookup changed, worth one log line. A lookup that changes nothing (the same
/// address again, or another failure while failing) gives none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// The name resolved for the first time.
    Resolved {
        /// The address now used.
        addr: SocketAddr,
    },
    /// The name resolves to other addresses, none of them the one in use.
    Moved {
        /// The address used until now.
        from: SocketAddr,
        /// The address now used.
        to: SocketAddr,
    },
    /// Lookups started failing.
    Failing {
        /// Why.
        error: Arc<str>,
        /// The last good address, still used; `None`: the name never resolved, so the host
        /// takes no requests.
        kept: Option<SocketAddr>,
    },
    /// Lookups succeed again.
    Recovered {
        /// The address now used (the kept one, if the answer still has it).
        addr: SocketAddr,
        /// The address used while failing, if any.
        kept: Option<SocketAddr>,
        /// How long lookups failed.
        failed_for: Duration,
    },
}

impl Resolution {
    /// A name whose address in use is `addr` (carried over from the fleet), with no failure
    /// on record.
    pub(crate) fn starting_at(addr: Option<SocketAddr>) -> Resolution {
        Resolution {
            addr,
            failure: None,
        }
    }

    /// Takes one lookup's answer at `now`: a list of addresses, or the error to show (an
    /// empty list is a failure too). A failure keeps the last good address.
    pub(crate) fn observe(
        &mut self,
        answer: Result<Vec<SocketAddr>, String>,
        now: Instant,
    ) -> Option<Change> {
        let chosen = match &answer {
            Ok(addrs) => choose(self.addr, addrs),
            Err(_) => None,
        };
        let Some(to) = chosen else {
            let error: Arc<str> = match answer {
                Err(e) => e.into(),
                Ok(_) => "the name has no addresses".into(),
            };
            return match &mut self.failure {
                Some(failure) => {
                    // Still failing: the latest reason is shown, but nothing is logged.
                    failure.error = error;
                    None
                }
                None => {
                    self.failure = Some(Failure {
                        error: Arc::clone(&error),
                        since: now,
                    });
                    Some(Change::Failing {
                        error,
                        kept: self.addr,
                    })
                }
            };
        };
        let from = self.addr.replace(to);
        match (self.failure.take(), from) {
            (Some(failure), kept) => Some(Change::Recovered {
                addr: to,
                kept,
                failed_for: now.saturating_duration_since(failure.since),
            }),
            (None, None) => Some(Change::Resolved { addr: to }),
            (None, Some(from)) if from != to => Some(Change::Moved { from, to }),
            (None, Some(_)) => None,
        }
    }

    /// Where the host is, as the fleet records it.
    pub(crate) fn location(&self) -> Location {
        Location {
            addr: self.addr,
            error: self.failure.as_ref().map(|f| Arc::clone(&f.error)),
        }
    }
}

/// The address to use from a lookup's answer: the one in use while the answer still has it
/// (round-robin DNS does not move the host at every lookup), else the first IPv4 address
/// (`localhost` is often `::1` first, where most workers listen on IPv4 only), else the
/// first; `None` for an empty answer.
pub(crate) fn choose(current: Option<SocketAddr>, answer: &[SocketAddr]) -> Option<SocketAddr> {
    if let Some(current) = current.filter(|c| answer.contains(c)) {
        return Some(current);
    }
    answer
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| answer.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_answer_resolves_and_the_same_answer_changes_nothing() {
        let t0 = Instant::now();
        let mut r = Resolution::default();
        assert_eq!(r.location(), Location::default());
        let a = addr("10.0.0.1:9001");
        assert_eq!(
            r.observe(Ok(vec![a]), t0),
            Some(Change::Resolved { addr: a })
        );
        assert_eq!(r.observe(Ok(vec![a]), t0 + SECOND), None);
        assert_eq!(r.location(), Location::at(a));
    }

    #[test]
    fn a_new_address_moves_the_host() {
        let t0 = Instant::now();
        let (a, b) = (addr("10.0.0.1:9001"), addr("10.0.0.2:9001"));
        let mut r = Resolution::starting_at(Some(a));
        assert_eq!(
            r.observe(Ok(vec![b]), t0),
            Some(Change::Moved { from: a, to: b })
        );
        assert_eq!(r.location().addr, Some(b));
    }

    #[test]
    fn a_failure_keeps_the_last_good_address_and_is_reported_once() {
        let t0 = Instant::now();
        let a = addr("10.0.0.1:9001");
        let mut r = Resolution::starting_at(Some(a));
        assert_eq!(
            r.observe(Err("w:9001 did not resolve: timed out".into()), t0),
            Some(Change::Failing {
                error: "w:9001 did not resolve: timed out".into(),
                kept: Some(a)
            })
        );
        // Still failing, for another reason: no new change, the latest reason shown.
        assert_eq!(r.observe(Err("nxdomain".into()), t0 + SECOND), None);
        assert_eq!(r.observe(Ok(vec![]), t0 + 2 * SECOND), None);
        assert_eq!(
            r.location(),
            Location {
                addr: Some(a),
                error: Some("the name has no addresses".into())
            }
        );
        assert_eq!(
            r.observe(Ok(vec![a]), t0 + 5 * SECOND),
            Some(Change::Recovered {
                addr: a,
                kept: Some(a),
                failed_for: 5 * SECOND
            })
        );
        assert_eq!(r.location(), Location::at(a));
        assert_eq!(r.observe(Ok(vec![a]), t0 + 6 * SECOND), None);
    }

    #[test]
    fn a_name_that_never_resolved_has_no_address() {
        let t0 = Instant::now();
        let mut r = Resolution::default();
        assert_eq!(
            r.observe(Err("nxdomain".into()), t0),
            Some(Change::Failing {
                error: "nxdomain".into(),
                kept: None
            })
        );
        assert_eq!(r.observe(Err("nxdomain".into()), t0 + SECOND), None);
        assert_eq!(r.location().addr, None);
        assert_eq!(r.location().error.as_deref(), Some("nxdomain"));
        // Its first address, after failing: a recovery with nothing kept.
        let a = addr("10.0.0.1:9001");
        assert_eq!(
            r.observe(Ok(vec![a]), t0 + 3 * SECOND),
            Some(Change::Recovered {
                addr: a,
                kept: None,
                failed_for: 3 * SECOND
            })
        );
        assert_eq!(r.location().addr, Some(a));
    }

    #[test]
    fn the_address_in_use_is_kept_while_the_answer_has_it_else_ipv4_first() {
        let (v6, a, b) = (
            addr("[::1]:9001"),
            addr("127.0.0.1:9001"),
            addr("10.0.0.2:9001"),
        );
        assert_eq!(choose(None, &[v6, a, b]), Some(a), "IPv4 first");
        assert_eq!(choose(Some(b), &[v6, a, b]), Some(b), "the one in use");
        assert_eq!(choose(Some(b), &[v6, a]), Some(a), "the one in use is gone");
        assert_eq!(choose(None, &[v6]), Some(v6), "IPv6 only");
        assert_eq!(choose(Some(a), &[]), None);
    }
}
