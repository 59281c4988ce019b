//! The `ringward` binary.
#![forbid(unsafe_code)]

fn main() {}
