//! Ringward's routing core: the consistent-hash ring. (Being built: issue 2.)
#![forbid(unsafe_code)]
