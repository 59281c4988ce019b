//! `[listen.tls]`: the TLS listener, its default certificate and the certificates chosen by
//! SNI (`[[listen.tls.certificates]]`). The PEM files are read here, while validating, so a
//! certificate that cannot be served is an error at its key (in `ringward check`, at start,
//! and on reload, which then keeps the running certificates).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::defaults;
use super::error::ConfigErrors;
use super::reader::{Errors, Section};
use super::types::{TlsCertFiles, TlsConfig};
use crate::tls::{CertError, CertSet, load_pair};

impl TlsConfig {
    /// A TLS listener on `addr` serving the chain in `cert` with the private key in `key`
    /// (PEM files, read now), with the default handshake timeout.
    ///
    /// # Errors
    /// A file cannot be read, holds no certificate or key, or the key is not the
    /// certificate's; each error names `listen.tls.cert` or `listen.tls.key`.
    pub fn load(
        addr: SocketAddr,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<TlsConfig, ConfigErrors> {
        let (files, default) = load_files(cert.into(), key.into(), "listen.tls")?;
        Ok(TlsConfig {
            addr,
            handshake_timeout: defaults::TLS_HANDSHAKE_TIMEOUT,
            certs: CertSet::new(default, Vec::new()),
            files: vec![files],
        })
    }

    /// Adds a certificate served to clients whose SNI name it is valid for.
    ///
    /// # Errors
    /// As [`TlsConfig::load`], named `listen.tls.certificates[i]`.
    pub fn with_sni_certificate(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<TlsConfig, ConfigErrors> {
        let at = format!("listen.tls.certificates[{}]", self.files.len() - 1);
        let (files, pair) = load_files(cert.into(), key.into(), &at)?;
        self.certs = self.certs.with(pair);
        self.files.push(files);
        Ok(self)
    }
}

/// [`load_into`] for a config built in code: the pair, or its errors.
fn load_files(
    cert: PathBuf,
    key: PathBuf,
    at: &str,
) -> Result<(TlsCertFiles, std::sync::Arc<rustls::sign::CertifiedKey>), ConfigErrors> {
    let files = TlsCertFiles { cert, key };
    let mut errors = Errors::default();
    match load_into(&files, at, &mut errors) {
        Some(pair) => Ok((files, pair)),
        None => Err(errors.into_errors()),
    }
}

/// Loads one pair, reporting a problem at `{at}.cert` or `{at}.key`.
fn load_into(
    files: &TlsCertFiles,
    at: &str,
    errors: &mut Errors,
) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
    match load_pair(&files.cert, &files.key) {
        Ok(pair) => Some(pair),
        Err(CertError::Cert(m)) => {
            errors.push(format!("{at}.cert"), m);
            None
        }
        Err(CertError::Key(m)) => {
            errors.push(format!("{at}.key"), m);
            None
        }
    }
}

/// A required path: absent or empty is an error at its key.
fn path(s: &mut Section<'_>, key: &'static str, errors: &mut Errors) -> Option<PathBuf> {
    match s.string(key, errors) {
        Some(p) if !p.is_empty() => Some(Path::new(p).to_path_buf()),
        Some(_) => {
            errors.push(s.path_of(key), "must be a file path");
            None
        }
        None => {
            if !s.has(key) {
                errors.push(s.path_of(key), "is required (a PEM file)");
            }
            None
        }
    }
}

/// The `cert`/`key` pair of a section, both read and checked.
fn pair(
    s: &mut Section<'_>,
    errors: &mut Errors,
) -> Option<(TlsCertFiles, std::sync::Arc<rustls::sign::CertifiedKey>)> {
    let cert = path(s, "cert", errors);
    let key = path(s, "key", errors);
    let files = TlsCertFiles {
        cert: cert?,
        key: key?,
    };
    let loaded = load_into(&files, s.path(), errors)?;
    Some((files, loaded))
}

/// `[listen.tls]`, or `None` when the section is absent.
pub(super) fn read(listen: &mut Section<'_>, errors: &mut Errors) -> Option<TlsConfig> {
    let mut s = listen.table("tls", errors);
    if !s.is_present() {
        return None;
    }
    let addr = s.socket_addr("addr", errors);
    if !s.has("addr") {
        errors.push(
            s.path_of("addr"),
            "is required (the TLS listener's ip:port)",
        );
    }
    let handshake_timeout: Duration =
        s.duration("handshake_timeout", defaults::TLS_HANDSHAKE_TIMEOUT, errors);
    let default = pair(&mut s, errors);
    let mut files = Vec::new();
    let mut by_name = Vec::new();
    for mut c in s.tables("certificates", errors) {
        if let Some((f, loaded)) = pair(&mut c, errors) {
            files.push(f);
            by_name.push(loaded);
        }
        c.finish(errors);
    }
    s.finish(errors);
    let (default_files, default) = default?;
    files.insert(0, default_files);
    Some(TlsConfig {
        addr: addr?,
        handshake_timeout,
        files,
        certs: CertSet::new(default, by_name),
    })
}
