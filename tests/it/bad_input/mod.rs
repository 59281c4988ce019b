//! Hostile input: HTTP/1.1 framing and smuggling attempts over raw sockets (each refused with
//! 400/431 and a closed connection, checking exactly what reached the host), and invalid
//! configs (each refused with its key path; a bad reload keeps the old config serving).

mod config;
mod framing;
