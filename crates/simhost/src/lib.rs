//! A simulated Val host. (Being built: issue 4.)
#![forbid(unsafe_code)]
