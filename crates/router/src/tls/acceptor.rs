//! The server side of a TLS handshake: TLS 1.2 and 1.3 (what rustls speaks), ALPN offering
//! h2 then http/1.1, a session cache for resumption, and a deadline for the whole handshake
//! so a client that opens TCP and never finishes cannot hold a connection slot.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::ServerSessionMemoryCache;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use super::certs::CertSet;
use super::store::CertStore;

/// Sessions remembered for resumption (a few hundred bytes each).
const SESSION_CACHE: usize = 4096;

/// A TLS listener's handshake side, shared by its workers.
#[derive(Clone)]
pub(crate) struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    store: Arc<CertStore>,
    /// Handshakes by outcome, for `/metrics`.
    pub(crate) stats: Arc<HandshakeStats>,
}

/// Handshakes so far, by outcome.
#[derive(Debug, Default)]
pub(crate) struct HandshakeStats {
    /// Completed.
    pub(crate) completed: AtomicU64,
    /// Refused or broken off by either side (no shared version or cipher, a client that
    /// rejected the certificate, a reset).
    pub(crate) failed: AtomicU64,
    /// Cut at `listen.tls.handshake_timeout`.
    pub(crate) timed_out: AtomicU64,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("store", &self.store)
            .finish()
    }
}

impl TlsAcceptor {
    /// An acceptor serving `certs`.
    pub(crate) fn new(certs: CertSet) -> TlsAcceptor {
        let store = Arc::new(CertStore::new(certs));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            // Both versions are in the provider; this cannot fail.
            .unwrap_or_else(|e| unreachable!("TLS 1.2 and 1.3 with aws-lc-rs: {e}"))
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&store) as Arc<_>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        TlsAcceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            store,
            stats: Arc::default(),
        }
    }

    /// Serves `certs` to handshakes from now on (open connections are not touched).
    pub(crate) fn replace_certs(&self, certs: CertSet) {
        self.store.replace(certs);
    }

    /// Completes the handshake on `stream` within `timeout`.
    ///
    /// # Errors
    /// The handshake failed or did not finish in time (`TimedOut`).
    pub(crate) async fn accept<IO>(
        &self,
        stream: IO,
        timeout: Duration,
    ) -> io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        // The handshake (and the client's socket in it) lives until this function returns:
        // the outcome is counted before a cut client sees its connection close.
        let handshake = self.inner.accept(stream);
        tokio::pin!(handshake);
        let (counter, result) = match tokio::time::timeout(timeout, &mut handshake).await {
            Ok(Ok(stream)) => (&self.stats.completed, Ok(stream)),
            Ok(Err(e)) => (&self.stats.failed, Err(e)),
            Err(_) => (
                &self.stats.timed_out,
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake did not finish in time",
                )),
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }
}
