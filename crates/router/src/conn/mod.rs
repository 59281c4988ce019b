//! The client connection, below the request: a connection slot at accept
//! (`limits.max_connections`), the head guard that refuses ambiguous framing below hyper,
//! the hyper-util server (HTTP/1.1 and h2c, header timeout, graceful shutdown) and the guard
//! against clients that stop reading.

pub(crate) mod cap;
pub(crate) mod head_guard;
pub(crate) mod server;
pub(crate) mod stall;
pub(crate) mod workers;
