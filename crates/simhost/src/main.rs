//! The `simhost` binary.
#![forbid(unsafe_code)]

fn main() {}
