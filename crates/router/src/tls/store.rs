//! The certificates a TLS listener serves, swapped whole on reload: handshakes that start
//! after the swap get the new ones, open connections keep the session they have, and the
//! rustls server config (with its session cache) lives on.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::CertSet;

/// Resolves each handshake's certificate from the current [`CertSet`].
#[derive(Debug)]
pub(crate) struct CertStore {
    current: ArcSwap<CertSet>,
}

impl CertStore {
    pub(crate) fn new(certs: CertSet) -> CertStore {
        CertStore {
            current: ArcSwap::from_pointee(certs),
        }
    }

    /// Serves `certs` from the next handshake on.
    pub(crate) fn replace(&self, certs: CertSet) {
        self.current.store(Arc::new(certs));
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().choose(hello.server_name()))
    }
}
