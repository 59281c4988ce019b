//! The Ringward router. (Being built: issue 5.)
#![forbid(unsafe_code)]
