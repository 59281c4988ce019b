//! The admin listener (docs/operations.md): the endpoints (`routes`, with `/metrics` rendered
//! from [`crate::metrics`]) and the status page (`page`).

pub(crate) mod page;
pub(crate) mod routes;

pub(crate) use routes::handle;
