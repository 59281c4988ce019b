//! The admin listener (docs/operations.md): the endpoints (`routes`), the `/metrics` text
//! (`exposition`, from the counters in `crate::metrics`), and the status page (`page`).

pub(crate) mod exposition;
#[cfg(test)]
pub(crate) mod lint;
pub(crate) mod page;
pub(crate) mod routes;

pub(crate) use routes::handle;
