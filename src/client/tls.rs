//! TLS for the client: rustls with the operating system's trust roots (the bundled webpki roots
//! when the OS store is empty or unreadable) plus the target's CA, optional version caps
//! (to probe whether a server that must require 1.3 still accepts 1.2), and the facts of each
//! handshake (version, cipher suite, ALPN, certificate names and dates, verification result).

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::{ClientError, Deadline, Phase};
use crate::config::policy::TlsVersion;

/// Which TLS versions the client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersions {
    /// TLS 1.3 and 1.2, like a current browser.
    #[default]
    Default,
    /// Only TLS 1.2: a server that requires 1.3 must refuse this client.
    Tls12Only,
    /// Only TLS 1.3.
    Tls13Only,
}

/// What to do with a certificate that does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertCheck {
    /// Fail the handshake, as a real client would.
    #[default]
    Enforce,
    /// Complete the handshake anyway and record the failure in [`TlsFacts::verified`]
    /// (handshake signatures are still checked).
    RecordOnly,
}

/// How to build a [`TlsClient`].
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// Trust the operating system's roots (the bundled webpki roots when none load).
    pub system_roots: bool,
    /// Extra trust roots, such as the target's CA.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Versions offered.
    pub versions: TlsVersions,
    /// Whether an unverifiable certificate fails the handshake.
    pub cert_check: CertCheck,
    /// ALPN protocols offered (`http/1.1` by default: a WebSocket upgrade is HTTP/1.1).
    pub alpn: Vec<Vec<u8>>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            system_roots: true,
            extra_roots: Vec::new(),
            versions: TlsVersions::Default,
            cert_check: CertCheck::Enforce,
            alpn: vec![b"http/1.1".to_vec()],
        }
    }
}

impl TlsOptions {
    /// Adds the certificates of a PEM text (the reference server's `ca_pem`) as trust roots.
    pub fn with_ca_pem(mut self, pem: &str) -> Result<Self, ClientError> {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::TlsConfig(format!("invalid CA PEM: {e}")))?;
        if certs.is_empty() {
            return Err(ClientError::TlsConfig(
                "no CERTIFICATE block found in the CA PEM".into(),
            ));
        }
        self.extra_roots.extend(certs);
        Ok(self)
    }

    /// Adds the certificates of a PEM file (a target's `tls.ca_file`) as trust roots.
    pub fn with_ca_file(mut self, path: &Path) -> Result<Self, ClientError> {
        let certs =
            crate::crypto::load_roots(path).map_err(|e| ClientError::TlsConfig(e.to_string()))?;
        self.extra_roots.extend(certs);
        Ok(self)
    }

    /// The same options offering only `versions`.
    pub fn versions(mut self, versions: TlsVersions) -> Self {
        self.versions = versions;
        self
    }

    /// The same options with another certificate check.
    pub fn cert_check(mut self, check: CertCheck) -> Self {
        self.cert_check = check;
        self
    }
}

/// The operating system's trust roots, parsed once per process (reading and parsing the store
/// is slow, and every client and probe needs it).
#[derive(Debug, Default)]
pub struct SystemRoots {
    /// The usable roots.
    anchors: Vec<TrustAnchor<'static>>,
    /// Entries of the store that could not be read or parsed (skipped, but counted).
    skipped: usize,
}

impl SystemRoots {
    /// Parses the certificates a store yielded; `load_errors` entries could not even be read.
    pub fn from_certs(certs: Vec<CertificateDer<'static>>, load_errors: usize) -> Self {
        let mut store = RootCertStore::empty();
        let (_, unusable) = store.add_parsable_certificates(certs);
        Self {
            anchors: store.roots,
            skipped: unusable + load_errors,
        }
    }
}

/// The OS trust store, loaded on first use; unreadable entries are counted, not fatal.
pub fn system_roots() -> &'static SystemRoots {
    static ROOTS: OnceLock<SystemRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        SystemRoots::from_certs(loaded.certs, loaded.errors.len())
    })
}

/// Fills `roots` from the OS store, or from the bundled webpki roots when the OS store yields
/// no usable certificate; returns what was trusted, for evidence.
fn add_system_roots(roots: &mut RootCertStore, system: &SystemRoots) -> String {
    let skipped = system.skipped;
    if system.anchors.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return format!(
            "bundled webpki roots ({} roots): the operating system store is empty or unreadable \
             ({skipped} entries skipped)",
            webpki_roots::TLS_SERVER_ROOTS.len()
        );
    }
    roots.extend(system.anchors.iter().cloned());
    let added = system.anchors.len();
    if skipped == 0 {
        format!("operating system store ({added} roots)")
    } else {
        format!("operating system store ({added} roots; {skipped} unreadable entries skipped)")
    }
}

/// A ready TLS client: the rustls configurations for connections and probes, and the verifier
/// that judges certificates for [`TlsFacts::verified`]. Cheap to clone.
#[derive(Clone)]
pub struct TlsClient {
    /// Config used for connections (enforcing or not, per the options).
    config: Arc<ClientConfig>,
    /// Config that completes handshakes whatever the certificate (probes record instead).
    lenient: Arc<ClientConfig>,
    verifier: Arc<WebPkiServerVerifier>,
    /// Which roots are trusted, in words (reported with every handshake's facts).
    trust: Arc<str>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient").finish_non_exhaustive()
    }
}

/// Accepts any certificate but still checks handshake signatures; the real verdict is computed
/// afterwards by [`TlsClient::facts`] and recorded.
#[derive(Debug)]
struct RecordOnlyVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for RecordOnlyVerifier {
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
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl TlsClient {
    /// Builds the configurations; fails when no trust root is left or rustls refuses the options.
    pub fn new(options: &TlsOptions) -> Result<Self, ClientError> {
        let cfg_err = |e: &dyn fmt::Display| ClientError::TlsConfig(e.to_string());
        let mut roots = RootCertStore::empty();
        let mut trust = Vec::new();
        if options.system_roots {
            trust.push(add_system_roots(&mut roots, system_roots()));
        }
        for r in &options.extra_roots {
            roots.add(r.clone()).map_err(|e| cfg_err(&e))?;
        }
        if !options.extra_roots.is_empty() {
            trust.push(format!(
                "{} from the target's CA",
                options.extra_roots.len()
            ));
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crate::crypto::provider())
                .build()
                .map_err(|e| cfg_err(&e))?;
        let versions: &[&rustls::SupportedProtocolVersion] = match options.versions {
            TlsVersions::Default => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersions::Tls12Only => &[&rustls::version::TLS12],
            TlsVersions::Tls13Only => &[&rustls::version::TLS13],
        };
        let build = |v: Arc<dyn ServerCertVerifier>| -> Result<Arc<ClientConfig>, ClientError> {
            let mut c = ClientConfig::builder_with_provider(crate::crypto::provider())
                .with_protocol_versions(versions)
                .map_err(|e| cfg_err(&e))?
                .dangerous()
                .with_custom_certificate_verifier(v)
                .with_no_client_auth();
            c.alpn_protocols = options.alpn.clone();
            Ok(Arc::new(c))
        };
        let lenient = build(Arc::new(RecordOnlyVerifier(verifier.clone())))?;
        let config = match options.cert_check {
            CertCheck::Enforce => build(verifier.clone())?,
            CertCheck::RecordOnly => lenient.clone(),
        };
        Ok(Self {
            config,
            lenient,
            verifier,
            trust: trust.join(" + ").into(),
        })
    }

    /// Which roots this client trusts, in words: the OS store or the webpki fallback, plus the
    /// target's CA.
    pub fn trust(&self) -> &str {
        &self.trust
    }

    /// The rustls configuration connections use (for reqwest's preconfigured TLS).
    pub fn rustls_config(&self) -> ClientConfig {
        (*self.config).clone()
    }

    /// Runs the TLS handshake on `tcp` under `deadline`; `lenient` completes it whatever the
    /// certificate (used by [`probe`]).
    pub(crate) async fn handshake<S>(
        &self,
        tcp: S,
        name: ServerName<'static>,
        lenient: bool,
        deadline: &Deadline,
    ) -> Result<tokio_rustls::client::TlsStream<S>, ClientError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let config = if lenient { &self.lenient } else { &self.config };
        let connector = tokio_rustls::TlsConnector::from(config.clone());
        let shown = name.to_str().into_owned();
        deadline
            .run(super::Phase::TlsHandshake, async {
                connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ClientError::Tls {
                        server_name: shown.clone(),
                        reason: e.to_string(),
                        version_refused: version_refused(&e),
                    })
            })
            .await
    }

    /// The facts of a completed handshake, verifying the presented chain against the roots.
    pub fn facts(&self, conn: &ClientConnection, name: &ServerName<'_>) -> TlsFacts {
        let chain = conn.peer_certificates().unwrap_or(&[]);
        let verified = match chain.split_first() {
            None => Err("the server presented no certificate".to_string()),
            Some((leaf, intermediates)) => self
                .verifier
                .verify_server_cert(leaf, intermediates, name, &[], UnixTime::now())
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        TlsFacts {
            server_name: name.to_str().into_owned(),
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "1.3".into(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "1.2".into(),
                Some(v) => format!("{v:?}"),
                None => "unknown".into(),
            },
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map_or_else(|| "unknown".into(), |s| format!("{:?}", s.suite())),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            chain_len: chain.len(),
            leaf: chain
                .first()
                .ok_or_else(|| "no certificate".to_string())
                .and_then(|c| certificate_facts(c)),
            verified,
            trust: self.trust.to_string(),
        }
    }
}

/// Whether a failed handshake ended with the server's `protocol_version` alert (tokio-rustls
/// wraps rustls' error in the I/O error).
fn version_refused(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion
        ))
    )
}

/// What a TLS handshake established, as evidence for the transport controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    /// The name the certificate was checked against (host name or IP).
    pub server_name: String,
    /// Negotiated version: `1.3`, `1.2`, or rustls' name for anything else.
    pub version: String,
    /// Negotiated cipher suite, as rustls names it.
    pub cipher_suite: String,
    /// Negotiated ALPN protocol.
    pub alpn: Option<String>,
    /// Certificates the server presented.
    pub chain_len: usize,
    /// Facts of the leaf certificate, or why they could not be read.
    pub leaf: Result<CertificateFacts, String>,
    /// Whether the chain verifies for the name against the trust roots, with rustls' error text.
    pub verified: Result<(), String>,
    /// The trust roots it was verified against (OS store or webpki fallback, target's CA).
    pub trust: String,
}

impl TlsFacts {
    /// Whether the negotiated version is at least `min`.
    pub fn version_at_least(&self, min: TlsVersion) -> bool {
        let have = match self.version.as_str() {
            "1.3" => TlsVersion::V1_3,
            "1.2" => TlsVersion::V1_2,
            _ => return false,
        };
        have >= min
    }
}

/// Facts of one X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<String>,
    /// Start of validity, as written in the certificate.
    pub not_before: String,
    /// End of validity, as written in the certificate.
    pub not_after: String,
    /// Start of validity, Unix seconds.
    pub not_before_unix: i64,
    /// End of validity, Unix seconds.
    pub not_after_unix: i64,
    /// The public key: its type and size (`RSA 2048 bits`, `EC 256 bits (prime256v1)`).
    pub key: String,
    /// The signature algorithm the issuer signed it with (`ecdsa-with-SHA256`).
    pub signature: String,
}

impl CertificateFacts {
    /// Whole days from now until the certificate expires (negative once it has).
    pub fn days_left(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        (self.not_after_unix - now).div_euclid(86_400)
    }

    /// Key, signature and expiry, for evidence.
    pub fn summary(&self) -> String {
        format!(
            "{} key, signed {}, expires {} ({} days left)",
            self.key,
            self.signature,
            self.not_after,
            self.days_left()
        )
    }
}

/// The short name of an OID from the registry x509-parser knows, else its dotted form.
fn oid_name(oid: &x509_parser::der_parser::oid::Oid) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map_or_else(|_| oid.to_id_string(), str::to_string)
}

/// The type and size of a certificate's public key.
fn key_description(spki: &x509_parser::x509::SubjectPublicKeyInfo) -> String {
    use x509_parser::public_key::PublicKey;
    let algorithm = oid_name(&spki.algorithm.algorithm);
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {} bits", rsa.key_size()),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map_or_else(|| "unnamed curve".to_string(), |o| oid_name(&o));
            format!("EC {} bits ({curve})", point.key_size())
        }
        Ok(PublicKey::DSA(_)) => "DSA".to_string(),
        Ok(_) | Err(_) => algorithm,
    }
}

/// Reads names and dates from a DER certificate; never panics on malformed input.
pub fn certificate_facts(der: &[u8]) -> Result<CertificateFacts, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("unparsable certificate: {e}"))?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push((*d).to_string()),
                GeneralName::IPAddress(b) => ip_addresses.push(ip_to_string(b)),
                _ => {}
            }
        }
    }
    let validity = cert.validity();
    Ok(CertificateFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        dns_names,
        ip_addresses,
        not_before: validity.not_before.to_string(),
        not_after: validity.not_after.to_string(),
        not_before_unix: validity.not_before.timestamp(),
        not_after_unix: validity.not_after.timestamp(),
        key: key_description(cert.public_key()),
        signature: oid_name(&cert.signature_algorithm.algorithm),
    })
}

fn ip_to_string(bytes: &[u8]) -> String {
    if let Ok(b) = <[u8; 4]>::try_from(bytes) {
        std::net::IpAddr::from(b).to_string()
    } else if let Ok(b) = <[u8; 16]>::try_from(bytes) {
        std::net::IpAddr::from(b).to_string()
    } else {
        format!("invalid IP SAN of {} bytes", bytes.len())
    }
}

/// The endpoint of a `wss://` or `https://` URL; any other URL is not one to probe.
fn tls_endpoint(url: &str) -> Result<super::endpoint::Endpoint, ClientError> {
    let url = super::endpoint::parse_url(url)?;
    let endpoint = super::endpoint::Endpoint::of(&url)?;
    if !endpoint.tls {
        return Err(ClientError::InvalidUrl {
            url: super::display_url(&url),
            reason: "a TLS probe needs a wss:// or https:// URL".into(),
        });
    }
    Ok(endpoint)
}

/// Connects to a `wss://` (or `https://`) URL, completes a TLS handshake whatever the
/// certificate, and returns its facts; `verified` says whether the certificate is valid.
pub async fn probe(url: &str, tls: &TlsClient, timeout: Duration) -> Result<TlsFacts, ClientError> {
    let endpoint = tls_endpoint(url)?;
    let deadline = Deadline::after(timeout);
    let tcp = endpoint.connect_tcp(&deadline).await?;
    let stream = tls
        .handshake(tcp, endpoint.server_name()?, true, &deadline)
        .await?;
    Ok(tls.facts(stream.get_ref().1, &endpoint.server_name()?))
}

/// Sends a hand-built ClientHello (`hello`, one TLS record from
/// [`super::tls_hello::client_hello`]) to the TLS endpoint of `url` and reads the server's
/// first flight, within `timeout`: a ServerHello, an alert, a close, or bytes that are not TLS.
/// At most [`HELLO_READ_CAP`] bytes are read.
pub async fn hello_probe(
    url: &str,
    hello: &[u8],
    timeout: Duration,
) -> Result<super::tls_hello::FirstFlight, ClientError> {
    use super::tls_hello::{FirstFlight, parse_first_flight};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = tls_endpoint(url)?;
    let deadline = Deadline::after(timeout);
    let mut tcp = endpoint.connect_tcp(&deadline).await?;
    deadline
        .run(Phase::TlsHandshake, async {
            tcp.write_all(hello)
                .await
                .map_err(|e| super::io_error(Phase::TlsHandshake, &e))
        })
        .await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = deadline
            .run(Phase::TlsHandshake, async {
                match tcp.read(&mut buf).await {
                    Ok(n) => Ok(n),
                    // A reset after the hello refuses it as surely as a close.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(0),
                    Err(e) => Err(super::io_error(Phase::TlsHandshake, &e)),
                }
            })
            .await?;
        if n == 0 {
            return Ok(match parse_first_flight(&got) {
                Ok(Some(flight)) => flight,
                _ if got.is_empty() => FirstFlight::Closed,
                _ => FirstFlight::NotTls {
                    preview: crate::config::secrets::preview(&got, 40),
                },
            });
        }
        got.extend_from_slice(&buf[..n]);
        match parse_first_flight(&got) {
            Ok(Some(flight)) => return Ok(flight),
            Ok(None) if got.len() < HELLO_READ_CAP => {}
            Ok(None) => {
                return Err(ClientError::MalformedResponse {
                    reason: format!(
                        "no whole ServerHello in the first {HELLO_READ_CAP} bytes of the TLS answer"
                    ),
                });
            }
            Err(e) => {
                return Err(ClientError::MalformedResponse {
                    reason: format!("the TLS answer to a ClientHello: {e}"),
                });
            }
        }
    }
}

/// Most bytes [`hello_probe`] reads looking for the ServerHello (a whole first flight with a
/// certificate chain fits; a ServerHello alone is far smaller).
pub const HELLO_READ_CAP: usize = 128 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_facts_read_names_and_dates() {
        let ck = crate::crypto::generate_ca_and_leaf(&["127.0.0.1".into(), "localhost".into()])
            .expect("certificates");
        let f = certificate_facts(&ck.chain[0]).expect("facts");
        assert_eq!(f.ip_addresses, ["127.0.0.1"]);
        assert_eq!(f.dns_names, ["localhost"]);
        assert!(f.not_after_unix > f.not_before_unix);
        assert!(f.key.starts_with("EC 256 bits"), "{}", f.key);
        assert!(f.signature.contains("ecdsa"), "{}", f.signature);
        assert!(f.days_left() > 30, "{}", f.summary());
        assert!(
            f.issuer.contains("wsaudit reference server CA"),
            "{}",
            f.issuer
        );
        assert!(certificate_facts(b"\x30\x03garbage").is_err());
        assert!(certificate_facts(&[]).is_err());
    }

    #[test]
    fn the_os_store_is_trusted_and_an_empty_one_falls_back_to_webpki_roots() {
        let mut roots = RootCertStore::empty();
        let said = add_system_roots(&mut roots, &SystemRoots::default());
        assert!(said.contains("bundled webpki roots"), "{said}");
        assert!(said.contains("empty or unreadable"), "{said}");
        assert_eq!(roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());

        let ck = crate::crypto::generate_ca_and_leaf(&["localhost".into()]).expect("certificates");
        let pem = ck.ca_pem.expect("generated CA");
        let ca = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("pem");
        let system = SystemRoots::from_certs(
            [ca, vec![CertificateDer::from(b"garbage".to_vec())]].concat(),
            2,
        );
        let mut roots = RootCertStore::empty();
        let said = add_system_roots(&mut roots, &system);
        assert_eq!(
            roots.len(),
            1,
            "only the OS store's roots, no webpki fallback"
        );
        assert!(
            said.contains("operating system store (1 roots; 3 unreadable"),
            "{said}"
        );
    }

    #[test]
    fn configs_build_with_caps_and_fail_without_roots() {
        crate::crypto::install_crypto_provider();
        let ck = crate::crypto::generate_ca_and_leaf(&["localhost".into()]).expect("certificates");
        let pem = ck.ca_pem.expect("generated CA");
        let opts = TlsOptions::default()
            .with_ca_pem(&pem)
            .expect("pem")
            .versions(TlsVersions::Tls12Only);
        assert!(TlsClient::new(&opts).is_ok());
        assert!(TlsOptions::default().with_ca_pem("not a pem").is_err());
        let none = TlsOptions {
            system_roots: false,
            ..TlsOptions::default()
        };
        assert!(matches!(
            TlsClient::new(&none),
            Err(ClientError::TlsConfig(_))
        ));
    }
}
