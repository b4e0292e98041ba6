//! TLS for the sinks that connect out (`syslog+tls://`, `smtp://` with STARTTLS, `smtps://`):
//! which certificate authorities a server's certificate must chain to, and the rustls client
//! settings (ring provider, server authentication, no client certificate).
//!
//! **Whom to trust.** By default the CA bundle Debian's `ca-certificates` maintains,
//! [`SYSTEM_CA_BUNDLE`] — what `openssl`, `curl` and rsyslog's gtls driver use there — or the
//! file named by `SSL_CERT_FILE`, as OpenSSL honours it. A sink's `ca_file` option replaces it
//! (a private CA for an internal SIEM or relay: then only that CA is trusted, not every public
//! one). The server's name (`server_name`, by default the host of the URL) must be in its
//! certificate: a certificate for another name is refused.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Debian's bundle of the system's trusted CAs (package `ca-certificates`).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The certificates of a PEM file (every `CERTIFICATE` block); an error names the file.
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no CERTIFICATE block found", path.display()));
    }
    Ok(certs)
}

/// The PEM file of the CAs to trust: `ca_file`, else `SSL_CERT_FILE`, else the system bundle.
pub fn trust_file(ca_file: Option<&Path>) -> std::path::PathBuf {
    match ca_file {
        Some(path) => path.to_path_buf(),
        None => std::env::var_os("SSL_CERT_FILE")
            .filter(|v| !v.is_empty())
            .map_or_else(|| SYSTEM_CA_BUNDLE.into(), Into::into),
    }
}

/// Client settings that trust the CAs of [`trust_file`].
///
/// ```
/// let missing = secpipe::sink::tls::client_config(Some("/nonexistent/ca.pem".as_ref()));
/// assert!(missing.unwrap_err().contains("/nonexistent/ca.pem"));
/// ```
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    // A bundle may hold a certificate rustls cannot use (an old, odd encoding): skipped, as
    // OpenSSL skips it, while one usable CA is enough.
    let (added, _skipped) = roots.add_parsable_certificates(read_pem_certs(&trust_file(ca_file))?);
    if added == 0 {
        return Err(format!(
            "{}: no usable CA certificate",
            trust_file(ca_file).display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name a server's certificate must carry: `server_name` if given, else the host of
/// `HOST:PORT` (brackets of an IPv6 address removed; an IP address is checked as one).
///
/// ```
/// use secpipe::sink::tls::server_name;
/// assert_eq!(server_name("siem.example:6514", None).unwrap().to_str(), "siem.example");
/// assert_eq!(server_name("[::1]:6514", None).unwrap().to_str(), "::1");
/// assert_eq!(server_name("10.0.0.5:6514", Some("siem.example")).unwrap().to_str(), "siem.example");
/// assert!(server_name("bad name:6514", None).is_err());
/// ```
pub fn server_name(address: &str, configured: Option<&str>) -> Result<ServerName<'static>, String> {
    let host = match configured {
        Some(name) => name,
        None => {
            let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
            host.trim_start_matches('[').trim_end_matches(']')
        }
    };
    ServerName::try_from(host.to_string()).map_err(|e| format!("server name {host:?}: {e}"))
}
