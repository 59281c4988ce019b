//! Ringward's integration tests: one binary, one module per area. Every test runs the real
//! router in-process on 127.0.0.1:0 in front of real simulated hosts on ephemeral ports,
//! and waits on events or polls with a deadline (never a blind sleep).
#![forbid(unsafe_code)]

mod access_log;
mod admin;
mod bad_input;
mod capacity;
mod ejection;
mod faults;
mod fuzz;
mod guard;
mod incident;
mod names;
mod operability;
mod probation;
mod reload;
mod replay;
mod retries;
mod routing;
mod shutdown;
mod status_page;
mod support;
mod timeouts;
mod tls;
mod upgrade;
mod websocket;
