//! The admin listener (docs/operations.md): the endpoints (`routes`, with `/metrics` rendered
//! from [`crate::metrics`]) and the status page (`page`).

pub mod page;
pub mod routes;

pub use routes::handle;
