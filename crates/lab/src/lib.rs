//! Ringward's lab: the router in front of simulated Val hosts, for people who want to see how
//! it behaves in an incident without a fleet of their own.
//!
//! - [`demo`]: `ringward demo`, the router on 127.0.0.1:8080 (admin :9901) in front of three
//!   simulated hosts, with a guided tour of the post-mortem's incident.
//! - [`replay`]: `ringward replay`, the incident (a host's DB pool deadlocks) and its trigger
//!   (`--scenario poison`: one Val's flurry of parallel edits) replayed on loopback under
//!   open-loop load, measured against a baseline, written as a report.
//!
//! A Val is a user function; every request carries its key, and Ringward sends all requests
//! for one Val to the same host. The simulated hosts are the `simhost` crate's.
#![forbid(unsafe_code)]

pub mod demo;
pub mod replay;
