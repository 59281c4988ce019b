//! TLS termination with rustls (the aws-lc-rs provider): certificates and keys read from PEM
//! files (`certs`), chosen per handshake by the client's SNI name and swapped on reload
//! without touching open connections (`store`), and the server side of the handshake with
//! its timeout (`acceptor`).

mod acceptor;
mod certs;
mod store;
#[cfg(test)]
pub(crate) mod testing;

pub(crate) use acceptor::TlsAcceptor;
pub(crate) use certs::{CertError, CertSet, load_pair};
