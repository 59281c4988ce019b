//! The control loop: which hosts a request may go to. The ring generation and its per-host
//! facts (`fleet`), lock-free in-flight accounting (`inflight`), the state the tasks share
//! (`shared`), the messages to the health task (`messages`) and the view it publishes
//! (`view`), the health task itself (`task`: health state machine and cascade guard), the
//! active prober (`probe`), the restricted Vals the request path reads (`vals`), and hot
//! reload (`reload`).

pub mod fleet;
pub mod inflight;
pub mod messages;
pub mod probe;
pub mod reload;
pub mod shared;
pub mod task;
pub mod vals;
pub mod view;
