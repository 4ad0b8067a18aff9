//! The TLS client settings of every connection mecha makes itself (plugin requests through the
//! gate, plugin downloads, OCI registries): the webpki roots, ring, safe protocol versions.
//!
//! reqwest is built without TLS (the daemon's own clients speak to loopback and to workers the
//! operator runs), so the few places that need HTTPS share this one configuration.

use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls;

/// The client configuration, built once, as loading the roots is the slow part. The error says
/// why it could not be built, starting with "TLS setup failed".
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|err| format!("TLS setup failed: {err}"))
        })
        .clone()
}
