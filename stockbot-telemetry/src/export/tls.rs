//! TLS for the HTTP clients (rustls with the `ring` provider): certificates are always
//! verified — against Mozilla's roots, or against the CA file a setting names — and an `https`
//! endpoint is never reached over plain HTTP.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The certificates of a PEM file (at least one), or why not.
pub(crate) fn load_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
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
    Ok(certs)
}

/// An HTTP client with `timeout` per request, trusting `ca` when given (else Mozilla's roots).
pub(crate) fn agent(timeout: Duration, ca: Option<&[Certificate<'static>]>) -> ureq::Agent {
    let roots = match ca {
        Some(certs) => RootCerts::Specific(Arc::new(certs.to_vec())),
        None => RootCerts::WebPki,
    };
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .https_only(false)
        // Never follow a redirect: it could lead an https request to plain http.
        .max_redirects(0)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into()
}
