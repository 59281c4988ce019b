//! The admin listener (docs/operations.md): the endpoints (`routes`; readiness in
//! `readiness`, the running log filter in `log_level`), the `/metrics` text (`exposition`,
//! from the counters in `crate::metrics`, in either text format of `text_format`), and the
//! status page (`page`).

pub(crate) mod exposition;
#[cfg(test)]
pub(crate) mod lint;
pub(crate) mod log_level;
pub(crate) mod page;
pub(crate) mod readiness;
pub(crate) mod routes;
pub(crate) mod text_format;

pub(crate) use routes::handle;
