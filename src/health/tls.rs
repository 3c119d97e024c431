//! TLS for HTTPS probes: rustls client configurations, built once per
//! distinct set of TLS settings and shared by every probe that uses them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Largest PEM file (CA, client certificate or key) read.
pub const PEM_FILE_LIMIT: u64 = 1 << 20;

/// The TLS settings that make two probes need different configurations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsKey {
    /// Verify chain and name.
    pub verify: bool,
    /// Extra trusted roots (PEM).
    pub ca_cert: Option<PathBuf>,
    /// Client certificate and key (PEM).
    pub identity: Option<(PathBuf, PathBuf)>,
}

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's trusted roots, read once.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = store.add(cert);
        }
        store
    })
}

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.map(|c| c.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Reads a PEM private key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_pem(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("{} is not a readable PEM private key: {e}", path.display()))
}

/// A PEM file's bytes, at most [`PEM_FILE_LIMIT`] of them.
fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    crate::fsutil::read_bytes(path, PEM_FILE_LIMIT, "the limit for PEM files")
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Builds a client configuration. Errors name the file at fault.
pub fn client_config(key: &TlsKey) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let builder = if key.verify {
        let mut roots = system_roots().clone();
        if let Some(ca) = &key.ca_cert {
            for cert in load_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: unusable CA certificate: {e}", ca.display()))?;
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(
                provider().signature_verification_algorithms,
            )))
    };
    let mut config = match &key.identity {
        Some((cert, pkey)) => {
            let certs = load_certs(cert)?;
            let private = load_key(pkey)?;
            builder.with_client_auth_cert(certs, private).map_err(|e| {
                format!("cannot use {} with {}: {e}", cert.display(), pkey.display())
            })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Builds each distinct configuration once.
#[derive(Default)]
pub struct ConfigCache {
    built: HashMap<TlsKey, Arc<ClientConfig>>,
}

impl ConfigCache {
    /// The configuration for `key`, built on first use.
    pub fn get(&mut self, key: &TlsKey) -> Result<Arc<ClientConfig>, String> {
        if let Some(c) = self.built.get(key) {
            return Ok(c.clone());
        }
        let c = client_config(key)?;
        self.built.insert(key.clone(), c.clone());
        Ok(c)
    }
}

/// `tls_verify = false`: any certificate and name are accepted, but the
/// handshake signatures are still checked, so the session is still the one
/// the server's key signed.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
