//! Shared inputs for Ringward's benchmarks.
#![forbid(unsafe_code)]
