//! Support code for Ringward's integration tests.
#![forbid(unsafe_code)]
