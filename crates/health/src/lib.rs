//! Ringward's health state machine. (Being built: issue 3.)
#![forbid(unsafe_code)]
