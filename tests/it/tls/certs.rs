//! A test certificate authority and the leaf certificates it signs, as PEM files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA whose certificate clients trust (`ca_file`), in a directory of its own.
pub(super) struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

/// How a leaf's validity period is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Validity {
    /// Valid now (rcgen's default: 1975 to 4096).
    Current,
    /// Expired at the end of 2021.
    Expired,
}

impl Pki {
    pub(super) fn new(tag: &str) -> Pki {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ringward-it-tls-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Ringward test CA");
        let ca = params.self_signed(&ca_key).expect("CA certificate");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write CA");
        Pki { dir, ca, ca_key }
    }

    /// The CA certificate's PEM file.
    pub(super) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA certificate, DER.
    pub(super) fn ca_der(&self) -> Vec<u8> {
        self.ca.der().to_vec()
    }

    /// A fresh key and a leaf for `names` signed by the CA, written to `{stem}.crt` (leaf,
    /// then the CA: a full chain) and `{stem}.key`.
    pub(super) fn leaf(
        &self,
        stem: &str,
        names: &[&str],
        validity: Validity,
    ) -> (PathBuf, PathBuf) {
        let (cert, key) = self.paths(stem);
        let (cert_pem, key_pem) = self.leaf_pem(stem, names, validity);
        std::fs::write(&cert, cert_pem).expect("write cert");
        std::fs::write(&key, key_pem).expect("write key");
        (cert, key)
    }

    /// Where `leaf(stem, ..)` writes.
    pub(super) fn paths(&self, stem: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{stem}.crt")),
            self.dir.join(format!("{stem}.key")),
        )
    }

    /// A new leaf's PEM texts (chain, key) for `names`.
    pub(super) fn leaf_pem(
        &self,
        stem: &str,
        names: &[&str],
        validity: Validity,
    ) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, stem);
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 12, 31);
        }
        let leaf = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("leaf certificate");
        (
            format!("{}{}", leaf.pem(), self.ca.pem()),
            key.serialize_pem(),
        )
    }

    /// The directory the files are in.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }
}
