//! Hostile input: HTTP/1.1 framing and smuggling attempts over raw sockets (each refused with
//! 400/431 and a closed connection, checking exactly what reached the host), bodies over
//! `limits.max_request_body` (413, never the host's fault), request heads over
//! `listen.max_header_bytes` (431), and invalid
//! configs (each refused with its key path; a bad reload keeps the old config serving).

mod body_limit;
mod config;
mod framing;
mod header_size;
