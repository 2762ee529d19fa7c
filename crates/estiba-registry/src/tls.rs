//! TLS to registries (rustls): the system's trusted roots plus Docker's per-registry
//! directory `<certs-dir>/<host:port>/` — `*.crt` files are extra CAs, a `*.cert` with the
//! `*.key` of the same name is a client certificate — as dockerd reads
//! `/etc/docker/certs.d`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::RegistryError;

/// Most files read from one registry's certificate directory.
const MAX_CERT_FILES: usize = 64;

/// The system's roots, read once per process (a few hundred certificates).
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

fn bad(path: &Path, what: &str) -> RegistryError {
    RegistryError::Invalid(format!("{}: {what}", path.display()))
}

/// The client configuration for `host` ("registry.example:5000"): system roots, the host's
/// extra CAs and client certificate from `certs_dir`.
pub(crate) fn client_config(
    certs_dir: &Path,
    host: &str,
) -> Result<Arc<ClientConfig>, RegistryError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(native_roots().iter().cloned());
    let mut client_auth = None;
    // A host name with a path separator or ".." cannot name a directory of its own.
    let dir = (!host.contains('/') && !host.contains("..")).then(|| certs_dir.join(host));
    let entries = dir
        .as_ref()
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .flatten()
        .take(MAX_CERT_FILES);
    for entry in entries {
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                for cert in
                    CertificateDer::pem_file_iter(&path).map_err(|e| bad(&path, &e.to_string()))?
                {
                    let cert = cert.map_err(|e| bad(&path, &e.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|e| bad(&path, &format!("not a CA certificate: {e}")))?;
                }
            }
            Some("cert") => {
                let key_path = path.with_extension("key");
                let chain = CertificateDer::pem_file_iter(&path)
                    .map_err(|e| bad(&path, &e.to_string()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(&path, &e.to_string()))?;
                let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| {
                    // dockerd's wording for a certificate without its key.
                    bad(
                        &path,
                        &format!("missing key {} for client certificate", key_path.display()),
                    )
                })?;
                client_auth = Some((chain, key));
            }
            _ => {}
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Invalid(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots);
    let config = match client_auth {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| RegistryError::Invalid(format!("client certificate for {host}: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
