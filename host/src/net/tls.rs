//! The TLS client settings of every connection mecha makes itself (plugin requests through the
//! gate, plugin downloads, OCI registries, PostgreSQL): the webpki roots, ring, safe protocol
//! versions.
//!
//! reqwest is built without TLS (the daemon's own clients speak to loopback and to workers the
//! operator runs), so the few places that need HTTPS share this one configuration.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// The client configuration, built once, as loading the roots is the slow part. The error says
/// why it could not be built, starting with "TLS setup failed".
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG.get_or_init(|| build(webpki_roots())).clone()
}

/// [`client_config`] that also trusts the certificate authorities in the PEM file `ca`: the
/// private authority a database server's certificate often comes from.
pub fn client_config_trusting(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let unreadable = |err: &dyn std::fmt::Display| {
        format!(
            "TLS setup failed: cannot read the certificates in {}: {err}",
            ca.display()
        )
    };
    let mut roots = webpki_roots();
    let certificates = CertificateDer::pem_file_iter(ca).map_err(|err| unreadable(&err))?;
    let mut added = 0;
    for certificate in certificates {
        let certificate = certificate.map_err(|err| unreadable(&err))?;
        roots.add(certificate).map_err(|err| unreadable(&err))?;
        added += 1;
    }
    if added == 0 {
        return Err(unreadable(&"the file holds no PEM certificate"));
    }
    build(roots)
}

fn webpki_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    }
}

fn build(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|err| format!("TLS setup failed: {err}"))
}
