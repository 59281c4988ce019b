//! The control loop: which hosts a request may go to. The ring generation and its per-host
//! facts (`fleet`), lock-free in-flight accounting (`inflight`), the state the tasks share
//! (`shared`), the messages to the health task (`messages`), each proxy worker's batch of
//! them (`outbox`) and the view it publishes
//! (`view`), the health task itself (`task`: health state machine and cascade guard), the
//! active prober (`probe`), the restricted Vals the request path reads (`vals`), hot
//! reload (`reload`), the status page's short history the health task records
//! (`history`), and the hosts given by DNS name: how a name is looked up (`resolver`), one
//! name's state (`resolution`) and the task that re-resolves them (`resolve`); fleet mode's
//! link to etcd (`etcd`: membership, and operator commands and ejections shared).

pub(crate) mod config_diff;
pub(crate) mod etcd;
pub(crate) mod fleet;
pub(crate) mod history;
pub(crate) mod inflight;
pub(crate) mod messages;
pub(crate) mod outbox;
pub(crate) mod probe;
pub(crate) mod reload;
pub(crate) mod resolution;
pub(crate) mod resolve;
pub(crate) mod resolver;
pub(crate) mod shared;
pub(crate) mod task;
pub(crate) mod vals;
pub(crate) mod view;
