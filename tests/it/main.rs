//! Ringward's integration tests: one binary, one module per area.
#![forbid(unsafe_code)]
