//! TLS set-up shared by the server and the harness: the one crypto provider (ring), certificate
//! generation with rcgen, and loading PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Installs ring as the process-wide rustls crypto provider; safe to call more than once.
///
/// rustls panics at first use when no provider is installed and more than one is compiled in,
/// so every entry point (CLI, tests, benches) calls this first.
pub fn install_crypto_provider() {
    // An `Err` only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The crypto provider all TLS configs are built with.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key, with the PEM of the trust root that signed it.
pub struct CertifiedKey {
    /// Leaf first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// PEM of the CA clients should trust (written beside an emitted target).
    pub ca_pem: Option<String>,
}

/// Errors building TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not build a certificate.
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file was unreadable or held no usable item.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
}

/// Generates a throw-away CA and a leaf certificate for `names`, signed by it.
///
/// IP literals become IP subject alternative names, other names DNS names.
pub fn generate_ca_and_leaf(names: &[String]) -> Result<CertifiedKey, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    };

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "wsaudit reference server CA");
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params = CertificateParams::new(names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    leaf_params.distinguished_name = dn;
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    Ok(CertifiedKey {
        chain: vec![leaf.der().clone(), ca_cert.der().clone()],
        key: PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(|e| TlsError::Pem {
            path: "<generated>".into(),
            message: e.to_string(),
        })?,
        ca_pem: Some(ca_pem),
    })
}

/// Loads a PEM certificate chain and private key.
pub fn load_cert_and_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let pem_err = |path: &Path, message: String| TlsError::Pem {
        path: path.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, format!("invalid certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(pem_err(
            cert,
            "no CERTIFICATE block found: expected a PEM certificate chain".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        pem_err(
            key,
            format!("no usable private key: {e}; expected a PEM PKCS#8, PKCS#1 or SEC1 key"),
        )
    })?;
    Ok(CertifiedKey {
        chain,
        key,
        ca_pem: None,
    })
}

/// Loads every certificate of a PEM file as trust roots.
pub fn load_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Pem {
            path: path.display().to_string(),
            message: format!("cannot read CA file: {e}"),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.display().to_string(),
            message: format!("invalid CA PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.display().to_string(),
            message: "no CERTIFICATE block found: expected PEM certificates".into(),
        });
    }
    Ok(certs)
}

/// A client config trusting only `roots` (tests and tools talking to the reference server).
pub fn client_config_with_roots(
    roots: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone())?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth())
}
