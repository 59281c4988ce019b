//! One request through the router: framing checks, the key, body limits, the routing
//! decision, the upstream request and its headers, the pooled client, retries and rescues,
//! the streamed response. [`handle`] is the entry point.

pub mod body;
pub mod body_limit;
pub mod client;
pub mod framing;
pub mod handler;
pub mod headers;
pub mod key;
pub mod retry;

pub use handler::handle;
