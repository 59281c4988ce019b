//! Certificate chains and their keys, read from PEM files, and the choice among them by the
//! name a client asks for (SNI).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;

/// What is wrong with a certificate/key pair, by file: the config reports it at that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertError {
    /// The certificate file (unreadable, not PEM, no certificate in it).
    Cert(String),
    /// The key file (unreadable, no key, a kind rustls cannot sign with, not the
    /// certificate's key).
    Key(String),
}

/// Reads the chain in `cert` (leaf first, as a web server's "fullchain" file has it) and the
/// private key in `key` (PKCS#8, PKCS#1 or SEC1), and checks that the key is the leaf's.
pub(crate) fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, CertError> {
    let chain = read_chain(cert).map_err(CertError::Cert)?;
    let der = read_key(key).map_err(CertError::Key)?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, der, &provider)
        .map(Arc::new)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => CertError::Key(format!(
                "{} is not the private key of the certificate in {}",
                key.display(),
                cert.display()
            )),
            other => CertError::Key(format!("{}: {other}", key.display())),
        })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "no certificate in {} (want PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    // Fails early on garbage between the PEM markers, which the handshake would only find
    // when a client is already waiting.
    webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| {
        format!(
            "the first certificate in {} cannot be read: {e}",
            path.display()
        )
    })?;
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "no private key in {} (want PEM: PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            path.display()
        ),
        other => format!("{} is not a PEM private key file: {other}", path.display()),
    })
}

/// The certificates one TLS listener serves: the default one, and others chosen when the
/// client's SNI name is one their certificate is valid for (its subject alternative names,
/// wildcards included, checked as a client would).
#[derive(Clone)]
pub(crate) struct CertSet {
    default: Arc<CertifiedKey>,
    by_name: Vec<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for CertSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertSet")
            .field("certificates", &(1 + self.by_name.len()))
            .finish()
    }
}

impl CertSet {
    /// `default`, with `by_name` tried first, in order, for clients that send an SNI name.
    pub(crate) fn new(default: Arc<CertifiedKey>, by_name: Vec<Arc<CertifiedKey>>) -> CertSet {
        CertSet { default, by_name }
    }

    /// This set with `pair` added after the other SNI certificates.
    pub(crate) fn with(mut self, pair: Arc<CertifiedKey>) -> CertSet {
        self.by_name.push(pair);
        self
    }

    /// The certificate for a client asking for `sni`: the first of the SNI certificates valid
    /// for that name, else the default (a client that asked for another name then fails its
    /// own name check, as it should).
    pub(crate) fn choose(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let chosen = sni
            .filter(|_| !self.by_name.is_empty())
            .and_then(|name| ServerName::try_from(name).ok())
            .and_then(|name| self.by_name.iter().find(|c| valid_for(c, &name)));
        Arc::clone(chosen.unwrap_or(&self.default))
    }

    /// Whether both serve the same certificates (leaf by leaf); a reload that changes none
    /// of them is not reported as a certificate change.
    pub(crate) fn same_certificates(&self, other: &CertSet) -> bool {
        let leaves = |s: &CertSet| -> Vec<Vec<u8>> {
            std::iter::once(&s.default)
                .chain(&s.by_name)
                .map(|c| c.cert.first().map(|d| d.to_vec()).unwrap_or_default())
                .collect()
        };
        leaves(self) == leaves(other)
    }
}

fn valid_for(cert: &CertifiedKey, name: &ServerName<'_>) -> bool {
    cert.cert.first().is_some_and(|leaf| {
        webpki::EndEntityCert::try_from(leaf)
            .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(name).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::testing::{tempdir, write_pair};

    #[test]
    fn a_matching_pair_loads_and_a_foreign_key_is_named_as_the_problem() {
        let dir = tempdir("pair");
        let (cert_a, key_a) = write_pair(&dir, "a", &["a.example.com"]);
        let (_, key_b) = write_pair(&dir, "b", &["b.example.com"]);
        assert!(load_pair(&cert_a, &key_a).is_ok());
        match load_pair(&cert_a, &key_b) {
            Err(CertError::Key(m)) => assert!(m.contains("is not the private key"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_and_wrong_files_are_reported_at_the_file_that_is_wrong() {
        let dir = tempdir("wrong");
        let (cert, key) = write_pair(&dir, "a", &["a.example.com"]);
        let missing = dir.join("missing.pem");
        assert!(
            matches!(load_pair(&missing, &key), Err(CertError::Cert(m)) if m.contains("cannot read"))
        );
        assert!(
            matches!(load_pair(&cert, &missing), Err(CertError::Key(m)) if m.contains("cannot read"))
        );
        // The key file where the certificate should be, and the other way round.
        assert!(
            matches!(load_pair(&key, &key), Err(CertError::Cert(m)) if m.contains("no certificate"))
        );
        assert!(
            matches!(load_pair(&cert, &cert), Err(CertError::Key(m)) if m.contains("no private key"))
        );
    }

    #[test]
    fn sni_picks_the_certificate_valid_for_the_name_wildcards_included() {
        let dir = tempdir("sni");
        let pair = |stem: &str, names: &[&str]| {
            let (c, k) = write_pair(&dir, stem, names);
            load_pair(&c, &k).expect("load")
        };
        let default = pair("default", &["example.com"]);
        let api = pair("api", &["api.example.com"]);
        let wild = pair("wild", &["*.vals.example.com"]);
        let set = CertSet::new(
            Arc::clone(&default),
            vec![Arc::clone(&api), Arc::clone(&wild)],
        );
        assert!(Arc::ptr_eq(&set.choose(Some("api.example.com")), &api));
        assert!(Arc::ptr_eq(
            &set.choose(Some("alice.vals.example.com")),
            &wild
        ));
        // A wildcard covers one label only, as clients check it.
        assert!(Arc::ptr_eq(
            &set.choose(Some("a.b.vals.example.com")),
            &default
        ));
        assert!(Arc::ptr_eq(&set.choose(Some("other.org")), &default));
        assert!(Arc::ptr_eq(&set.choose(None), &default));
        assert!(set.same_certificates(&set.clone()));
        assert!(!set.same_certificates(&CertSet::new(api, vec![])));
    }
}
