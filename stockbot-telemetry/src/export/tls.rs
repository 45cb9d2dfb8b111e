//! TLS for the HTTP clients (feature `tls`, on by default: rustls with the `ring` provider):
//! certificates are always verified — against Mozilla's roots, or against the CA file a
//! setting names — and an `https` endpoint is never reached over plain HTTP. Without the
//! feature no TLS stack is built, and `https` URLs are refused when the configuration is
//! validated.

use std::path::Path;
use std::time::Duration;

/// Trusted CA certificates read from a PEM file.
#[cfg(feature = "tls")]
#[derive(Debug, Clone)]
pub(crate) struct Ca(Vec<ureq::tls::Certificate<'static>>);

/// Trusted CA certificates: none can be loaded without the `tls` feature.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub(crate) enum Ca {}

/// Whether this build can speak TLS.
pub(crate) const AVAILABLE: bool = cfg!(feature = "tls");

/// Why an `https` URL cannot be used by this build.
pub(crate) const MISSING: &str =
    "this build has no TLS: enable the `tls` feature of stockbot-telemetry (on by default)";

/// The certificates of a PEM file (at least one), or why not.
#[cfg(feature = "tls")]
pub(crate) fn load_ca_file(path: &Path) -> Result<Ca, String> {
    use ureq::tls::PemItem;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("not valid PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)".into());
    }
    Ok(Ca(certs))
}

/// Without TLS there is nothing to load a CA file for.
#[cfg(not(feature = "tls"))]
pub(crate) fn load_ca_file(_path: &Path) -> Result<Ca, String> {
    Err(MISSING.into())
}

/// An HTTP client with `timeout` per request, trusting `ca` when given (else Mozilla's roots).
pub(crate) fn agent(timeout: Duration, ca: Option<&Ca>) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .https_only(false)
        // Never follow a redirect: it could lead an https request to plain http.
        .max_redirects(0);
    #[cfg(feature = "tls")]
    let config = {
        use ureq::tls::{RootCerts, TlsConfig};
        let roots = match ca {
            Some(Ca(certs)) => RootCerts::Specific(std::sync::Arc::new(certs.clone())),
            None => RootCerts::WebPki,
        };
        config.tls_config(TlsConfig::builder().root_certs(roots).build())
    };
    #[cfg(not(feature = "tls"))]
    if let Some(ca) = ca {
        match *ca {}
    }
    config.build().into()
}
