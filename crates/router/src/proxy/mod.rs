//! One request through the router: framing checks, the key, body limits, the routing
//! decision, the upstream request and its headers, the pooled client, retries and rescues,
//! the streamed response. [`handle`] is the entry point.

pub(crate) mod access_log;
mod answer;
mod attempts;
pub(crate) mod body;
pub(crate) mod body_limit;
pub(crate) mod client;
mod exchange;
pub(crate) mod framing;
pub(crate) mod handler;
pub(crate) mod headers;
pub(crate) mod key;
pub(crate) mod request_id;
pub(crate) mod retry;
pub(crate) mod upgrade;
mod upload;

pub(crate) use handler::handle;
