//! The Ringward router. (Being built: issue 5.)
#![forbid(unsafe_code)]

pub mod demo;
pub mod replay;
