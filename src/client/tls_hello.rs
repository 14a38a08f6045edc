//! Raw ClientHellos for probing TLS below the minimum, as testssl.sh does: rustls cannot speak
//! SSL 3.0, TLS 1.0/1.1 or the weak suites, so the probe sends a hand-built ClientHello and
//! reads only the server's first flight (a ServerHello, an alert, or something that is not TLS).
//!
//! This module is sans-IO: it builds bytes and parses bytes; the caller owns the socket and the
//! deadline. No byte the server sends can panic the parser, and nothing the server *declares* (a
//! record or message length) is allocated, only what arrived.

use std::borrow::Cow;
use std::net::IpAddr;

pub use crate::config::policy::{LegacyVersion, SuiteClass};
use tls_parser::{
    TlsCipherSuite, TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_message_alert,
    parse_tls_message_handshake, parse_tls_server_hello_extensions,
};

impl SuiteClass {
    /// The IANA code points of the class's suites, for TLS 1.2 and below. A suite can be in more
    /// than one class (anonymous RC4 is anonymous and RC4).
    pub fn suites(self) -> &'static [u16] {
        match self {
            SuiteClass::Null => NULL_SUITES,
            SuiteClass::Export => EXPORT_SUITES,
            SuiteClass::Anonymous => ANON_SUITES,
            SuiteClass::Rc4 => RC4_SUITES,
            SuiteClass::TripleDes => TRIPLE_DES_SUITES,
            SuiteClass::CbcRsaKx => CBC_RSA_SUITES,
        }
    }
}

// The class tables hold every suite of the class in the IANA registry that TLS 1.2 and below
// can negotiate (left out: TLS_NULL_WITH_NULL_NULL, which only names the initial state, and the
// TLS 1.3 integrity-only suites 0xC0B4/0xC0B5), so a server cannot dodge a probe by supporting
// only an obscure member. The tests check each entry against tls-parser's copy of the registry.

const NULL_SUITES: &[u16] = &[
    0x0001, // TLS_RSA_WITH_NULL_MD5
    0x0002, // TLS_RSA_WITH_NULL_SHA
    0x002C, // TLS_PSK_WITH_NULL_SHA
    0x002D, // TLS_DHE_PSK_WITH_NULL_SHA
    0x002E, // TLS_RSA_PSK_WITH_NULL_SHA
    0x003B, // TLS_RSA_WITH_NULL_SHA256
    0x00B0, // TLS_PSK_WITH_NULL_SHA256
    0x00B1, // TLS_PSK_WITH_NULL_SHA384
    0x00B4, // TLS_DHE_PSK_WITH_NULL_SHA256
    0x00B5, // TLS_DHE_PSK_WITH_NULL_SHA384
    0x00B8, // TLS_RSA_PSK_WITH_NULL_SHA256
    0x00B9, // TLS_RSA_PSK_WITH_NULL_SHA384
    0xC001, // TLS_ECDH_ECDSA_WITH_NULL_SHA
    0xC006, // TLS_ECDHE_ECDSA_WITH_NULL_SHA
    0xC00B, // TLS_ECDH_RSA_WITH_NULL_SHA
    0xC010, // TLS_ECDHE_RSA_WITH_NULL_SHA
    0xC015, // TLS_ECDH_anon_WITH_NULL_SHA
    0xC039, // TLS_ECDHE_PSK_WITH_NULL_SHA
    0xC03A, // TLS_ECDHE_PSK_WITH_NULL_SHA256
    0xC03B, // TLS_ECDHE_PSK_WITH_NULL_SHA384
];

const EXPORT_SUITES: &[u16] = &[
    0x0003, // TLS_RSA_EXPORT_WITH_RC4_40_MD5
    0x0006, // TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5
    0x0008, // TLS_RSA_EXPORT_WITH_DES40_CBC_SHA
    0x000B, // TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA
    0x000E, // TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA
    0x0011, // TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA
    0x0014, // TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA
    0x0017, // TLS_DH_anon_EXPORT_WITH_RC4_40_MD5
    0x0019, // TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA
    0x0026, // TLS_KRB5_EXPORT_WITH_DES_CBC_40_SHA
    0x0027, // TLS_KRB5_EXPORT_WITH_RC2_CBC_40_SHA
    0x0028, // TLS_KRB5_EXPORT_WITH_RC4_40_SHA
    0x0029, // TLS_KRB5_EXPORT_WITH_DES_CBC_40_MD5
    0x002A, // TLS_KRB5_EXPORT_WITH_RC2_CBC_40_MD5
    0x002B, // TLS_KRB5_EXPORT_WITH_RC4_40_MD5
    // The 56-bit "export1024" suites: never registered by IANA (0x0060-0x0066 are reserved
    // for them), but OpenSSL shipped them for years.
    0x0060, // TLS_RSA_EXPORT1024_WITH_RC4_56_MD5
    0x0061, // TLS_RSA_EXPORT1024_WITH_RC2_CBC_56_MD5
    0x0062, // TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA
    0x0063, // TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA
    0x0064, // TLS_RSA_EXPORT1024_WITH_RC4_56_SHA
    0x0065, // TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA
];

const ANON_SUITES: &[u16] = &[
    0x0017, // TLS_DH_anon_EXPORT_WITH_RC4_40_MD5
    0x0018, // TLS_DH_anon_WITH_RC4_128_MD5
    0x0019, // TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA
    0x001A, // TLS_DH_anon_WITH_DES_CBC_SHA
    0x001B, // TLS_DH_anon_WITH_3DES_EDE_CBC_SHA
    0x0034, // TLS_DH_anon_WITH_AES_128_CBC_SHA
    0x003A, // TLS_DH_anon_WITH_AES_256_CBC_SHA
    0x0046, // TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA
    0x006C, // TLS_DH_anon_WITH_AES_128_CBC_SHA256
    0x006D, // TLS_DH_anon_WITH_AES_256_CBC_SHA256
    0x0089, // TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA
    0x009B, // TLS_DH_anon_WITH_SEED_CBC_SHA
    0x00A6, // TLS_DH_anon_WITH_AES_128_GCM_SHA256
    0x00A7, // TLS_DH_anon_WITH_AES_256_GCM_SHA384
    0x00BF, // TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256
    0x00C5, // TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256
    0xC015, // TLS_ECDH_anon_WITH_NULL_SHA
    0xC016, // TLS_ECDH_anon_WITH_RC4_128_SHA
    0xC017, // TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA
    0xC018, // TLS_ECDH_anon_WITH_AES_128_CBC_SHA
    0xC019, // TLS_ECDH_anon_WITH_AES_256_CBC_SHA
    0xC046, // TLS_DH_anon_WITH_ARIA_128_CBC_SHA256
    0xC047, // TLS_DH_anon_WITH_ARIA_256_CBC_SHA384
    0xC05A, // TLS_DH_anon_WITH_ARIA_128_GCM_SHA256
    0xC05B, // TLS_DH_anon_WITH_ARIA_256_GCM_SHA384
    0xC084, // TLS_DH_anon_WITH_CAMELLIA_128_GCM_SHA256
    0xC085, // TLS_DH_anon_WITH_CAMELLIA_256_GCM_SHA384
];

const RC4_SUITES: &[u16] = &[
    0x0003, // TLS_RSA_EXPORT_WITH_RC4_40_MD5
    0x0004, // TLS_RSA_WITH_RC4_128_MD5
    0x0005, // TLS_RSA_WITH_RC4_128_SHA
    0x0017, // TLS_DH_anon_EXPORT_WITH_RC4_40_MD5
    0x0018, // TLS_DH_anon_WITH_RC4_128_MD5
    0x0020, // TLS_KRB5_WITH_RC4_128_SHA
    0x0024, // TLS_KRB5_WITH_RC4_128_MD5
    0x0028, // TLS_KRB5_EXPORT_WITH_RC4_40_SHA
    0x002B, // TLS_KRB5_EXPORT_WITH_RC4_40_MD5
    0x0060, // TLS_RSA_EXPORT1024_WITH_RC4_56_MD5
    0x0064, // TLS_RSA_EXPORT1024_WITH_RC4_56_SHA
    0x0065, // TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA
    0x0066, // TLS_DHE_DSS_WITH_RC4_128_SHA (unregistered, shipped by OpenSSL)
    0x008A, // TLS_PSK_WITH_RC4_128_SHA
    0x008E, // TLS_DHE_PSK_WITH_RC4_128_SHA
    0x0092, // TLS_RSA_PSK_WITH_RC4_128_SHA
    0xC002, // TLS_ECDH_ECDSA_WITH_RC4_128_SHA
    0xC007, // TLS_ECDHE_ECDSA_WITH_RC4_128_SHA
    0xC00C, // TLS_ECDH_RSA_WITH_RC4_128_SHA
    0xC011, // TLS_ECDHE_RSA_WITH_RC4_128_SHA
    0xC016, // TLS_ECDH_anon_WITH_RC4_128_SHA
    0xC033, // TLS_ECDHE_PSK_WITH_RC4_128_SHA
];

const TRIPLE_DES_SUITES: &[u16] = &[
    0x000A, // TLS_RSA_WITH_3DES_EDE_CBC_SHA
    0x000D, // TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA
    0x0010, // TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA
    0x0013, // TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA
    0x0016, // TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA
    0x001B, // TLS_DH_anon_WITH_3DES_EDE_CBC_SHA
    0x001F, // TLS_KRB5_WITH_3DES_EDE_CBC_SHA
    0x0023, // TLS_KRB5_WITH_3DES_EDE_CBC_MD5
    0x008B, // TLS_PSK_WITH_3DES_EDE_CBC_SHA
    0x008F, // TLS_DHE_PSK_WITH_3DES_EDE_CBC_SHA
    0x0093, // TLS_RSA_PSK_WITH_3DES_EDE_CBC_SHA
    0xC003, // TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA
    0xC008, // TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA
    0xC00D, // TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA
    0xC012, // TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
    0xC017, // TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA
    0xC01A, // TLS_SRP_SHA_WITH_3DES_EDE_CBC_SHA
    0xC01B, // TLS_SRP_SHA_RSA_WITH_3DES_EDE_CBC_SHA
    0xC01C, // TLS_SRP_SHA_DSS_WITH_3DES_EDE_CBC_SHA
    0xC034, // TLS_ECDHE_PSK_WITH_3DES_EDE_CBC_SHA
];

const CBC_RSA_SUITES: &[u16] = &[
    0x0007, // TLS_RSA_WITH_IDEA_CBC_SHA
    0x0009, // TLS_RSA_WITH_DES_CBC_SHA
    0x000A, // TLS_RSA_WITH_3DES_EDE_CBC_SHA
    0x002F, // TLS_RSA_WITH_AES_128_CBC_SHA
    0x0035, // TLS_RSA_WITH_AES_256_CBC_SHA
    0x003C, // TLS_RSA_WITH_AES_128_CBC_SHA256
    0x003D, // TLS_RSA_WITH_AES_256_CBC_SHA256
    0x0041, // TLS_RSA_WITH_CAMELLIA_128_CBC_SHA
    0x0084, // TLS_RSA_WITH_CAMELLIA_256_CBC_SHA
    0x0096, // TLS_RSA_WITH_SEED_CBC_SHA
    0x00BA, // TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256
    0x00C0, // TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256
    0xC03C, // TLS_RSA_WITH_ARIA_128_CBC_SHA256
    0xC03D, // TLS_RSA_WITH_ARIA_256_CBC_SHA384
];

/// The signalling suite of RFC 5746: the client supports secure renegotiation.
pub const EMPTY_RENEGOTIATION_INFO_SCSV: u16 = 0x00FF;

// What real clients of each era offered (OpenSSL 1.0.x and browsers of the time), strongest
// first, so a server that refuses a probe refuses the version and not an exotic suite list.

const SSL3_SUITES: &[u16] = &[
    0x0039, // TLS_DHE_RSA_WITH_AES_256_CBC_SHA
    0x0038, // TLS_DHE_DSS_WITH_AES_256_CBC_SHA
    0x0035, // TLS_RSA_WITH_AES_256_CBC_SHA
    0x0033, // TLS_DHE_RSA_WITH_AES_128_CBC_SHA
    0x0032, // TLS_DHE_DSS_WITH_AES_128_CBC_SHA
    0x002F, // TLS_RSA_WITH_AES_128_CBC_SHA
    0x0016, // TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA
    0x0013, // TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA
    0x000A, // TLS_RSA_WITH_3DES_EDE_CBC_SHA
    0x0005, // TLS_RSA_WITH_RC4_128_SHA
    0x0004, // TLS_RSA_WITH_RC4_128_MD5
    0x0009, // TLS_RSA_WITH_DES_CBC_SHA
    EMPTY_RENEGOTIATION_INFO_SCSV,
];

const TLS10_SUITES: &[u16] = &[
    0xC014, // TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
    0xC00A, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
    0xC013, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
    0xC009, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
    0x0039, // TLS_DHE_RSA_WITH_AES_256_CBC_SHA
    0x0038, // TLS_DHE_DSS_WITH_AES_256_CBC_SHA
    0x0033, // TLS_DHE_RSA_WITH_AES_128_CBC_SHA
    0x0032, // TLS_DHE_DSS_WITH_AES_128_CBC_SHA
    0x0035, // TLS_RSA_WITH_AES_256_CBC_SHA
    0x002F, // TLS_RSA_WITH_AES_128_CBC_SHA
    0xC012, // TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
    0xC008, // TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA
    0x0016, // TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA
    0x000A, // TLS_RSA_WITH_3DES_EDE_CBC_SHA
    0xC011, // TLS_ECDHE_RSA_WITH_RC4_128_SHA
    0xC007, // TLS_ECDHE_ECDSA_WITH_RC4_128_SHA
    0x0005, // TLS_RSA_WITH_RC4_128_SHA
    0x0004, // TLS_RSA_WITH_RC4_128_MD5
    EMPTY_RENEGOTIATION_INFO_SCSV,
];

const TLS12_SUITES: &[u16] = &[
    0xC02C, // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    0xC030, // TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    0xCCA9, // TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    0xCCA8, // TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    0xC02B, // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    0xC02F, // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    0x009F, // TLS_DHE_RSA_WITH_AES_256_GCM_SHA384
    0xCCAA, // TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    0x009E, // TLS_DHE_RSA_WITH_AES_128_GCM_SHA256
    0xC024, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384
    0xC028, // TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384
    0xC023, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
    0xC027, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256
    0x006B, // TLS_DHE_RSA_WITH_AES_256_CBC_SHA256
    0x0067, // TLS_DHE_RSA_WITH_AES_128_CBC_SHA256
    0x009D, // TLS_RSA_WITH_AES_256_GCM_SHA384
    0x009C, // TLS_RSA_WITH_AES_128_GCM_SHA256
    0x003D, // TLS_RSA_WITH_AES_256_CBC_SHA256
    0x003C, // TLS_RSA_WITH_AES_128_CBC_SHA256
    0xC014, // TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
    0xC00A, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
    0xC013, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
    0xC009, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
    0x0039, // TLS_DHE_RSA_WITH_AES_256_CBC_SHA
    0x0033, // TLS_DHE_RSA_WITH_AES_128_CBC_SHA
    0x0035, // TLS_RSA_WITH_AES_256_CBC_SHA
    0x002F, // TLS_RSA_WITH_AES_128_CBC_SHA
    0xC012, // TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
    0x000A, // TLS_RSA_WITH_3DES_EDE_CBC_SHA
    EMPTY_RENEGOTIATION_INFO_SCSV,
];

/// The suites a real client of `version` offered, ending with the renegotiation SCSV; a
/// version probe offers these, so a refusal is about the version, not the suites.
pub fn legacy_suites(version: LegacyVersion) -> &'static [u16] {
    match version {
        LegacyVersion::Ssl3 => SSL3_SUITES,
        // TLS 1.1 added no suites a client of the time offered (only dropped export ones).
        LegacyVersion::Tls10 | LegacyVersion::Tls11 => TLS10_SUITES,
        LegacyVersion::Tls12 => TLS12_SUITES,
    }
}

/// The IANA name of a cipher suite ("TLS_RSA_WITH_AES_128_CBC_SHA"), or its code point in hex
/// ("0x1301") when tls-parser's registry does not know it.
pub fn suite_name(id: u16) -> String {
    TlsCipherSuite::from_id(id)
        .map_or_else(|| format!("0x{id:04X}"), |suite| suite.name.to_string())
}

/// The most suites one ClientHello carries: their list must fit its 16-bit length with room for
/// the rest of the hello in one record.
pub const MAX_HELLO_SUITES: usize = 4096;

/// A ClientHello offering `version` and `suites`, as one whole TLS record ready to write.
///
/// The hello has an empty session id and only the null compression method. From TLS 1.0 on it
/// carries server_name (when `server_name` is a DNS name, not an IP literal), supported_groups,
/// ec_point_formats, signature_algorithms (TLS 1.2 only) and an empty renegotiation_info (unless
/// `suites` holds the SCSV, since RFC 5746 advises against sending both); SSL 3.0 hellos carry
/// no extensions. It never carries supported_versions, which would offer TLS 1.3. Suites past
/// [`MAX_HELLO_SUITES`] are dropped.
pub fn client_hello(
    version: LegacyVersion,
    suites: &[u16],
    server_name: Option<&str>,
    random: [u8; 32],
) -> Vec<u8> {
    let suites = &suites[..suites.len().min(MAX_HELLO_SUITES)];
    // Record versions other than 0x0300/0x0301 upset old servers; TLS clients send 0x0301.
    let record_version: u16 = if version == LegacyVersion::Ssl3 {
        0x0300
    } else {
        0x0301
    };
    let mut record = Vec::with_capacity(128 + 2 * suites.len());
    record.push(CONTENT_HANDSHAKE);
    record.extend_from_slice(&record_version.to_be_bytes());
    with_u16_length(&mut record, |record| {
        record.push(HANDSHAKE_CLIENT_HELLO);
        with_u24_length(record, |hello| {
            hello.extend_from_slice(&version.wire().to_be_bytes());
            hello.extend_from_slice(&random);
            hello.push(0); // empty session id: nothing to resume
            with_u16_length(hello, |list| {
                for suite in suites {
                    list.extend_from_slice(&suite.to_be_bytes());
                }
            });
            hello.extend_from_slice(&[1, 0]); // one compression method: null
            if version != LegacyVersion::Ssl3 {
                let scsv = suites.contains(&EMPTY_RENEGOTIATION_INFO_SCSV);
                with_u16_length(hello, |extensions| {
                    hello_extensions(extensions, version, server_name, scsv);
                });
            }
        });
    });
    record
}

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;
const CONTENT_HEARTBEAT: u8 = 24;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_SERVER_HELLO: u8 = 2;

/// The extensions of a TLS 1.0-1.2 ClientHello, each as type, length, body.
fn hello_extensions(
    out: &mut Vec<u8>,
    version: LegacyVersion,
    server_name: Option<&str>,
    scsv: bool,
) {
    if let Some(name) = server_name.and_then(sni_host) {
        extension(out, 0x0000, |body| {
            with_u16_length(body, |list| {
                list.push(0); // name type: host_name
                with_u16_length(list, |host| host.extend_from_slice(name.as_bytes()));
            });
        });
    }
    // secp256r1, secp384r1, secp521r1, x25519: without them a server cannot pick an ECDHE suite.
    extension(out, 0x000A, |body| {
        with_u16_length(body, |groups| {
            for group in [0x0017u16, 0x0018, 0x0019, 0x001D] {
                groups.extend_from_slice(&group.to_be_bytes());
            }
        });
    });
    // ec_point_formats: uncompressed only.
    extension(out, 0x000B, |body| body.extend_from_slice(&[1, 0]));
    if version == LegacyVersion::Tls12 {
        // signature_algorithms exists from TLS 1.2 on; an older hello with it is malformed.
        extension(out, 0x000D, |body| {
            with_u16_length(body, |schemes| {
                for scheme in [
                    0x0401u16, // rsa_pkcs1_sha256
                    0x0501,    // rsa_pkcs1_sha384
                    0x0601,    // rsa_pkcs1_sha512
                    0x0403,    // ecdsa_secp256r1_sha256
                    0x0503,    // ecdsa_secp384r1_sha384
                    0x0603,    // ecdsa_secp521r1_sha512
                    0x0804,    // rsa_pss_rsae_sha256
                    0x0805,    // rsa_pss_rsae_sha384
                    0x0806,    // rsa_pss_rsae_sha512
                    0x0201,    // rsa_pkcs1_sha1
                    0x0203,    // ecdsa_sha1
                ] {
                    schemes.extend_from_slice(&scheme.to_be_bytes());
                }
            });
        });
    }
    if !scsv {
        // renegotiation_info, empty: the initial handshake's way of saying RFC 5746 is spoken.
        extension(out, 0xFF01, |body| body.push(0));
    }
}

/// `name` as an SNI host name: without a trailing dot, and `None` for an IP literal or
/// anything that cannot be one (RFC 6066 allows neither).
fn sni_host(name: &str) -> Option<&str> {
    let host = name.strip_suffix('.').unwrap_or(name);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let usable = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && bare.parse::<IpAddr>().is_err();
    usable.then_some(host)
}

/// One extension: its type, then `body` behind a 16-bit length.
fn extension(out: &mut Vec<u8>, kind: u16, body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(&kind.to_be_bytes());
    with_u16_length(out, body);
}

/// Appends what `body` writes behind its 16-bit big-endian length.
fn with_u16_length(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    body(out);
    // The hello is bounded by MAX_HELLO_SUITES, so every length fits.
    let len = u16::try_from(out.len() - at - 2).unwrap_or(u16::MAX);
    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Appends what `body` writes behind its 24-bit big-endian length.
fn with_u24_length(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0]);
    body(out);
    let len = u32::try_from(out.len() - at - 3)
        .unwrap_or(u32::MAX)
        .min(0xFF_FFFF);
    out[at..at + 3].copy_from_slice(&len.to_be_bytes()[1..]);
}

/// What the server answered a raw ClientHello with: the start of its first flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstFlight {
    /// The server accepted: it picked `version` and `suite`.
    ServerHello {
        /// The negotiated version: the ServerHello's version field, or its supported_versions
        /// extension when it carries one.
        version: u16,
        /// The chosen cipher suite's code point.
        suite: u16,
    },
    /// The server refused with an alert.
    Alert {
        /// 1 for a warning, 2 for a fatal alert.
        level: u8,
        /// The alert's description code (see [`alert_name`]).
        description: u8,
    },
    /// The server closed the connection without a byte. The caller reports this on EOF:
    /// [`parse_first_flight`] sees only bytes and never returns it.
    Closed,
    /// The server answered with something that is not a TLS record, such as an HTTP response
    /// from a plaintext port.
    NotTls {
        /// The start of what arrived, printable ASCII with every other byte as '.'.
        preview: String,
    },
}

/// The name of a TLS alert description ("protocol_version"), from the IANA registry;
/// "unknown" for a code it does not list.
pub fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown",
    }
}

/// The largest record body TLS allows: 2^14 bytes plus the 2048 bytes of expansion a TLS 1.2
/// ciphertext may add (RFC 5246 section 6.2.3).
const MAX_RECORD_BODY: usize = (1 << 14) + 2048;

/// The largest ServerHello message, header included: version, random, a 32-byte session id,
/// suite, compression method and a full 16-bit extensions block.
const MAX_SERVER_HELLO: usize = 4 + 2 + 32 + 1 + 32 + 2 + 1 + 2 + 0xFFFF;

/// Characters a [`FirstFlight::NotTls`] preview keeps.
const PREVIEW_CHARS: usize = 40;

/// The server's first flight as far as `bytes` (everything read so far) holds it.
///
/// `Ok(None)` means more bytes are needed: the first record, or the ServerHello, is not whole
/// yet (a ServerHello fragmented over several handshake records is reassembled). `Err` is a
/// TLS answer that is malformed or not a ServerHello or alert. Bytes that cannot start a TLS
/// record give [`FirstFlight::NotTls`] at once. Never panics, and allocates only to reassemble
/// a fragmented ServerHello, bounded by the bytes given.
pub fn parse_first_flight(bytes: &[u8]) -> Result<Option<FirstFlight>, String> {
    let (content_type, body, mut rest) = match split_record(bytes)? {
        Split::NeedMore => return Ok(None),
        Split::NotTls => {
            return Ok(Some(FirstFlight::NotTls {
                preview: preview(bytes),
            }));
        }
        Split::Record {
            content_type,
            body,
            rest,
        } => (content_type, body, rest),
    };
    match content_type {
        CONTENT_ALERT => match parse_tls_message_alert(body) {
            Ok((_, TlsMessage::Alert(alert))) => Ok(Some(FirstFlight::Alert {
                level: alert.severity.0,
                description: alert.code.0,
            })),
            _ => Err(format!("malformed alert record ({} bytes)", body.len())),
        },
        CONTENT_HANDSHAKE => {
            // Borrowed unless the server fragmented its ServerHello over several records.
            let mut gathered = Cow::Borrowed(body);
            loop {
                if let Some(len) = whole_server_hello(&gathered)? {
                    return server_hello(&gathered[..len]).map(Some);
                }
                match split_record(rest)? {
                    Split::NeedMore => return Ok(None),
                    Split::NotTls => {
                        return Err("bytes that are not TLS cut the ServerHello short".to_string());
                    }
                    Split::Record {
                        content_type: CONTENT_HANDSHAKE,
                        body,
                        rest: after,
                    } => {
                        gathered.to_mut().extend_from_slice(body);
                        rest = after;
                    }
                    Split::Record { content_type, .. } => {
                        return Err(format!(
                            "the ServerHello is cut short by a record of type {}",
                            record_name(content_type)
                        ));
                    }
                }
            }
        }
        other => Err(format!(
            "the first record is of type {}, neither handshake nor alert",
            record_name(other)
        )),
    }
}

/// One record at the start of some bytes.
enum Split<'a> {
    /// The header or the body is not whole yet.
    NeedMore,
    /// The bytes cannot start a TLS record.
    NotTls,
    /// A whole record and what follows it.
    Record {
        content_type: u8,
        body: &'a [u8],
        rest: &'a [u8],
    },
}

/// The first record of `bytes`, judged on as many header bytes as have arrived.
fn split_record(bytes: &[u8]) -> Result<Split<'_>, String> {
    // A content type TLS defines, then major version 3 and a minor version up to TLS 1.3's.
    let plausible = matches!(bytes.first(), None | Some(20..=24))
        && matches!(bytes.get(1), None | Some(3))
        && matches!(bytes.get(2), None | Some(0..=4));
    if !plausible {
        return Ok(Split::NotTls);
    }
    let &[content_type, _, _, high, low, ..] = bytes else {
        return Ok(Split::NeedMore);
    };
    let len = usize::from(u16::from_be_bytes([high, low]));
    if len > MAX_RECORD_BODY {
        return Err(format!("record declares {len} bytes, more than TLS allows"));
    }
    match bytes.get(5..5 + len) {
        Some(body) => Ok(Split::Record {
            content_type,
            body,
            rest: &bytes[5 + len..],
        }),
        None => Ok(Split::NeedMore),
    }
}

/// The length of the ServerHello at the start of the handshake bytes `gathered`, once it is
/// whole; an error when the first message is not a ServerHello or is longer than one can be.
fn whole_server_hello(gathered: &[u8]) -> Result<Option<usize>, String> {
    let Some(&kind) = gathered.first() else {
        return Ok(None);
    };
    if kind != HANDSHAKE_SERVER_HELLO {
        return Err(format!(
            "the first handshake message is {}, not a ServerHello",
            handshake_name(kind)
        ));
    }
    let &[_, a, b, c, ..] = gathered else {
        return Ok(None);
    };
    let len = 4 + usize::from(a) * 65536 + usize::from(b) * 256 + usize::from(c);
    if len > MAX_SERVER_HELLO {
        return Err(format!(
            "the ServerHello declares {} bytes, more than one can hold",
            len - 4
        ));
    }
    Ok((gathered.len() >= len).then_some(len))
}

/// The version and suite of a whole ServerHello message (header included).
fn server_hello(message: &[u8]) -> Result<FirstFlight, String> {
    match parse_tls_message_handshake(message) {
        Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHello(hello)))) => {
            let version = hello
                .ext
                .and_then(selected_version)
                .unwrap_or(hello.version.0);
            Ok(FirstFlight::ServerHello {
                version,
                suite: hello.cipher.0,
            })
        }
        Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHelloV13Draft18(hello)))) => {
            Ok(FirstFlight::ServerHello {
                version: hello.version.0,
                suite: hello.cipher.0,
            })
        }
        _ => {
            let field = match message.get(4..6) {
                Some(&[high, low]) => u16::from_be_bytes([high, low]),
                _ => 0,
            };
            Err(format!(
                "malformed ServerHello ({} bytes, version field 0x{field:04X})",
                message.len()
            ))
        }
    }
}

/// The version a ServerHello's supported_versions extension selects, if it has one.
fn selected_version(extensions: &[u8]) -> Option<u16> {
    let (_, extensions) = parse_tls_server_hello_extensions(extensions).ok()?;
    extensions.iter().find_map(|extension| match extension {
        TlsExtension::SupportedVersions(versions) => match versions.as_slice() {
            [selected] => Some(selected.0),
            _ => None,
        },
        _ => None,
    })
}

/// `bytes` as a short printable line: ASCII graphic characters and spaces kept, others as '.'.
fn preview(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(PREVIEW_CHARS)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect()
}

/// A record content type's name, for error messages.
fn record_name(content_type: u8) -> String {
    match content_type {
        CONTENT_CHANGE_CIPHER_SPEC => "change_cipher_spec".to_string(),
        CONTENT_ALERT => "alert".to_string(),
        CONTENT_HANDSHAKE => "handshake".to_string(),
        CONTENT_APPLICATION_DATA => "application_data".to_string(),
        CONTENT_HEARTBEAT => "heartbeat".to_string(),
        other => format!("type {other}"),
    }
}

/// A handshake message type's name, for error messages.
fn handshake_name(kind: u8) -> String {
    let name = match kind {
        0 => "hello_request",
        1 => "client_hello",
        2 => "server_hello",
        4 => "new_session_ticket",
        8 => "encrypted_extensions",
        11 => "certificate",
        12 => "server_key_exchange",
        13 => "certificate_request",
        14 => "server_hello_done",
        20 => "finished",
        other => return format!("type {other}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use tls_parser::{
        SNIType, TlsCipherEnc, TlsCipherMac, TlsCompressionID, TlsExtensionType,
        parse_tls_client_hello_extensions, parse_tls_plaintext,
    };

    use super::*;

    const RANDOM: [u8; 32] = [0xAB; 32];

    /// The ClientHello inside `record`, parsed back by tls-parser, with its extensions.
    fn parse_hello(record: &[u8]) -> (u16, u16, Vec<u16>, Option<Vec<String>>) {
        let (rest, plaintext) = parse_tls_plaintext(record).expect("a whole record");
        assert!(rest.is_empty(), "trailing bytes after the record");
        assert_eq!(usize::from(plaintext.hdr.len), record.len() - 5);
        let [TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello))] =
            plaintext.msg.as_slice()
        else {
            panic!("not one ClientHello: {:?}", plaintext.msg);
        };
        assert_eq!(hello.random, &RANDOM[..]);
        assert_eq!(hello.session_id, None);
        assert_eq!(hello.comp, vec![TlsCompressionID::Null]);
        let extensions = hello.ext.map(|block| {
            let (rest, extensions) = parse_tls_client_hello_extensions(block).expect("extensions");
            assert!(rest.is_empty(), "an extension overruns its block");
            extensions
                .iter()
                .map(|extension| match extension {
                    TlsExtension::SNI(names) => {
                        let [(kind, host)] = names.as_slice() else {
                            panic!("{} server names", names.len());
                        };
                        assert!(*kind == SNIType::HostName, "name type {}", kind.0);
                        format!("sni={}", String::from_utf8_lossy(host))
                    }
                    // tls-parser displays a known extension type by its name.
                    other => TlsExtensionType::from(other).to_string(),
                })
                .collect()
        });
        (
            plaintext.hdr.version.0,
            hello.version.0,
            hello.ciphers.iter().map(|id| id.0).collect(),
            extensions,
        )
    }

    #[test]
    fn client_hello_parses_back_with_consistent_lengths() {
        let suites = legacy_suites(LegacyVersion::Tls10);
        let record = client_hello(LegacyVersion::Tls10, suites, Some("localhost"), RANDOM);
        let (record_version, version, offered, extensions) = parse_hello(&record);
        assert_eq!(record_version, 0x0301);
        assert_eq!(version, 0x0301);
        assert_eq!(offered, suites);
        let extensions = extensions.expect("TLS 1.0 hellos carry extensions");
        assert_eq!(extensions[0], "sni=localhost");
        // The SCSV is offered, so renegotiation_info is not; no signature_algorithms before
        // TLS 1.2, and never supported_versions.
        assert_eq!(
            extensions[1..],
            ["SupportedGroups", "EcPointFormats"].map(String::from)
        );
        // The handshake length is the record length less the handshake header.
        assert_eq!(record[6..9], ((record.len() - 9) as u32).to_be_bytes()[1..]);
    }

    /// The bytes of a hex string (test vectors).
    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn client_hello_matches_an_independent_encoding() {
        // Written by a separate Python encoder of the same hello, which OpenSSL 3.0 servers
        // (`openssl s_server -tls1`, Python's ssl) answered with a TLS 1.0 ServerHello.
        let expected = unhex(concat!(
            "1603010079010000750301ababababababababababababababababababababab",
            "ababababababababababab000026c014c00ac013c00900390038003300320035",
            "002fc012c0080016000ac011c0070005000400ff010000260000000e000c0000",
            "096c6f63616c686f7374000a000a0008001700180019001d000b00020100",
        ));
        let record = client_hello(
            LegacyVersion::Tls10,
            legacy_suites(LegacyVersion::Tls10),
            Some("localhost"),
            RANDOM,
        );
        assert_eq!(record, expected);
    }

    #[test]
    fn client_hello_extensions_follow_the_version_and_the_name() {
        let weak = SuiteClass::Rc4.suites();
        let (_, version, offered, extensions) = parse_hello(&client_hello(
            LegacyVersion::Tls12,
            weak,
            Some("example.com."),
            RANDOM,
        ));
        assert_eq!((version, offered.as_slice()), (0x0303, weak));
        assert_eq!(
            extensions.expect("extensions"),
            [
                "sni=example.com",
                "SupportedGroups",
                "EcPointFormats",
                "SignatureAlgorithms",
                "RenegotiationInfo"
            ]
            .map(String::from)
        );
        for literal in ["127.0.0.1", "::1", "[::1]"] {
            let (_, _, _, extensions) = parse_hello(&client_hello(
                LegacyVersion::Tls11,
                weak,
                Some(literal),
                RANDOM,
            ));
            let extensions = extensions.expect("extensions");
            assert!(
                !extensions[0].starts_with("sni="),
                "{literal}: {extensions:?}"
            );
        }
        let ssl3 = client_hello(
            LegacyVersion::Ssl3,
            legacy_suites(LegacyVersion::Ssl3),
            None,
            RANDOM,
        );
        assert_eq!(ssl3[1..3], [3, 0]);
        let (_, version, _, extensions) = parse_hello(&ssl3);
        assert_eq!((version, extensions), (0x0300, None));
    }

    #[test]
    fn versions_round_trip_their_wire_values() {
        for version in [
            LegacyVersion::Ssl3,
            LegacyVersion::Tls10,
            LegacyVersion::Tls11,
            LegacyVersion::Tls12,
        ] {
            assert_eq!(LegacyVersion::from_wire(version.wire()), Some(version));
        }
        assert_eq!(LegacyVersion::Tls11.name(), "TLS 1.1");
        assert_eq!(LegacyVersion::from_wire(0x0304), None);
    }

    #[test]
    fn every_class_suite_is_a_registered_suite_of_its_class() {
        for class in SuiteClass::ALL {
            assert_eq!(SuiteClass::from_slug(class.slug()), Some(class));
            let suites = class.suites();
            let mut sorted = suites.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(
                sorted.len(),
                suites.len(),
                "{} has a duplicate",
                class.name()
            );
            for &id in suites {
                let suite = TlsCipherSuite::from_id(id)
                    .unwrap_or_else(|| panic!("{}: 0x{id:04X} unknown", class.name()));
                let fits = match class {
                    SuiteClass::Null => suite.enc == TlsCipherEnc::Null,
                    SuiteClass::Export => suite.name.contains("_EXPORT"),
                    SuiteClass::Anonymous => suite.name.contains("_anon_"),
                    SuiteClass::Rc4 => suite.enc == TlsCipherEnc::Rc4,
                    SuiteClass::TripleDes => suite.enc == TlsCipherEnc::TripleDes,
                    SuiteClass::CbcRsaKx => {
                        suite.name.starts_with("TLS_RSA_WITH_") && suite.name.contains("_CBC_")
                    }
                };
                assert!(fits, "{} does not belong to {}", suite.name, class.name());
            }
        }
        assert_eq!(SuiteClass::from_slug("des"), None);
    }

    #[test]
    fn legacy_suites_are_known_and_fit_their_version() {
        for version in [
            LegacyVersion::Ssl3,
            LegacyVersion::Tls10,
            LegacyVersion::Tls11,
            LegacyVersion::Tls12,
        ] {
            let suites = legacy_suites(version);
            assert_eq!(suites.last(), Some(&EMPTY_RENEGOTIATION_INFO_SCSV));
            for &id in suites {
                let suite = TlsCipherSuite::from_id(id).expect("known suite");
                // SHA-256 MACs and AEAD suites exist only from TLS 1.2 on.
                let tls12_only = matches!(
                    suite.mac,
                    TlsCipherMac::Aead | TlsCipherMac::HmacSha256 | TlsCipherMac::HmacSha384
                );
                assert!(
                    version == LegacyVersion::Tls12 || !tls12_only,
                    "{} offered in {}",
                    suite.name,
                    version.name()
                );
            }
        }
        assert_eq!(suite_name(0x002F), "TLS_RSA_WITH_AES_128_CBC_SHA");
        assert_eq!(suite_name(0xFAFA), "0xFAFA");
    }

    /// A ServerHello record (record version TLS 1.0) choosing `version` and `suite`, with
    /// `extensions`.
    fn server_hello_record(version: u16, suite: u16, extensions: &[u8]) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&[0x11; 32]); // random
        body.push(0); // no session id
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0); // null compression
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(extensions);
        let mut message = vec![2, 0];
        message.extend_from_slice(&(body.len() as u16).to_be_bytes());
        message.extend_from_slice(&body);
        let mut record = vec![22, 3, 1];
        record.extend_from_slice(&(message.len() as u16).to_be_bytes());
        record.extend_from_slice(&message);
        record
    }

    const RENEGOTIATION_INFO: &[u8] = &[0xFF, 0x01, 0x00, 0x01, 0x00];

    #[test]
    fn server_hello_gives_version_and_suite() {
        let record = server_hello_record(0x0301, 0x002F, RENEGOTIATION_INFO);
        assert_eq!(record[..5], [0x16, 0x03, 0x01, 0x00, 0x31]);
        let expected = FirstFlight::ServerHello {
            version: 0x0301,
            suite: 0x002F,
        };
        assert_eq!(parse_first_flight(&record), Ok(Some(expected.clone())));
        // Certificate and the rest of the flight may follow, whole or not.
        let mut flight = record.clone();
        flight.extend_from_slice(&[0x16, 0x03, 0x01, 0x10, 0x00, 0x0B]);
        assert_eq!(parse_first_flight(&flight), Ok(Some(expected)));
        // supported_versions, when present, names the version.
        let selected = [0x00, 0x2B, 0x00, 0x02, 0x03, 0x04];
        assert_eq!(
            parse_first_flight(&server_hello_record(0x0303, 0x1301, &selected)),
            Ok(Some(FirstFlight::ServerHello {
                version: 0x0304,
                suite: 0x1301
            }))
        );
    }

    #[test]
    fn parses_the_first_flight_of_openssl() {
        // OpenSSL 3.0's ServerHello record to a TLS 1.0 probe: a 32-byte session id and the
        // renegotiation_info and ec_point_formats extensions; the Certificate record follows.
        let mut flight = unhex(concat!(
            "1603010059020000550301f3a64b6545aafd70ef9276979cecffa4a0962d8840",
            "0b444278fc5d17d99902cc2072d3256107d4d5c5371cded63eb35de8b0e2f3ef",
            "b44493131917873c7786d15dc01400000dff01000100000b000403000102",
        ));
        flight.extend_from_slice(&[0x16, 0x03, 0x01, 0x03, 0x17, 0x0B, 0x00, 0x03]);
        assert_eq!(
            parse_first_flight(&flight),
            Ok(Some(FirstFlight::ServerHello {
                version: 0x0301,
                suite: 0xC014
            }))
        );
        // Its answer to an SSL 3.0 probe, having no SSL 3.0.
        assert_eq!(
            parse_first_flight(&[0x15, 0x03, 0x00, 0x00, 0x02, 0x02, 0x28]),
            Ok(Some(FirstFlight::Alert {
                level: 2,
                description: 40
            }))
        );
    }

    #[test]
    fn every_prefix_of_a_server_hello_needs_more_bytes() {
        let record = server_hello_record(0x0302, 0xC013, RENEGOTIATION_INFO);
        for end in 0..record.len() {
            assert_eq!(
                parse_first_flight(&record[..end]),
                Ok(None),
                "prefix of {end}"
            );
        }
    }

    #[test]
    fn a_server_hello_fragmented_over_records_is_reassembled() {
        let record = server_hello_record(0x0301, 0x000A, RENEGOTIATION_INFO);
        let message = &record[5..];
        let mut split = Vec::new();
        for part in [&message[..3], &message[3..20], &message[20..]] {
            split.extend_from_slice(&[22, 3, 1]);
            split.extend_from_slice(&(part.len() as u16).to_be_bytes());
            split.extend_from_slice(part);
        }
        let third = split.len() - (message.len() - 20) - 5;
        assert_eq!(parse_first_flight(&split[..third]), Ok(None));
        assert_eq!(
            parse_first_flight(&split),
            Ok(Some(FirstFlight::ServerHello {
                version: 0x0301,
                suite: 0x000A
            }))
        );
        let mut cut = split[..third].to_vec();
        cut.extend_from_slice(&[21, 3, 1, 0, 2, 2, 40]);
        let err = parse_first_flight(&cut).expect_err("an alert inside the ServerHello");
        assert!(err.contains("cut short by a record of type alert"), "{err}");
    }

    #[test]
    fn alert_record_gives_level_and_description() {
        let record = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46];
        assert_eq!(
            parse_first_flight(&record),
            Ok(Some(FirstFlight::Alert {
                level: 2,
                description: 70
            }))
        );
        assert_eq!(alert_name(70), "protocol_version");
        assert_eq!(alert_name(40), "handshake_failure");
        assert_eq!(alert_name(200), "unknown");
        assert!(parse_first_flight(&[0x15, 0x03, 0x01, 0x00, 0x01, 0x02]).is_err());
    }

    #[test]
    fn plaintext_answer_is_not_tls() {
        let answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nBad Request";
        assert_eq!(
            parse_first_flight(answer),
            Ok(Some(FirstFlight::NotTls {
                preview: "HTTP/1.1 400 Bad Request..Content-Length".to_string()
            }))
        );
        // A record header whose version is not TLS's is not TLS either.
        assert!(matches!(
            parse_first_flight(&[0x16, 0x01, 0x00]),
            Ok(Some(FirstFlight::NotTls { .. }))
        ));
    }

    #[test]
    fn partial_and_oversized_records() {
        assert_eq!(parse_first_flight(&[]), Ok(None));
        assert_eq!(parse_first_flight(&[0x16, 0x03, 0x01, 0x00]), Ok(None));
        assert_eq!(
            parse_first_flight(&[0x16, 0x03, 0x01, 0x00, 0x31, 0x02]),
            Ok(None)
        );
        assert_eq!(
            parse_first_flight(&[0x16, 0x03, 0x01, 0xFF, 0xFF]),
            Err("record declares 65535 bytes, more than TLS allows".to_string())
        );
        let err = parse_first_flight(&[0x16, 0x03, 0x01, 0x00, 0x04, 0x0B, 0x00, 0x00, 0x00])
            .expect_err("a Certificate first");
        assert!(err.contains("certificate, not a ServerHello"), "{err}");
        let err = parse_first_flight(&[0x17, 0x03, 0x03, 0x00, 0x01, 0x00]).expect_err("data");
        assert!(err.contains("application_data"), "{err}");
        let err = parse_first_flight(&[0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0xFF, 0xFF, 0xFF])
            .expect_err("a ServerHello of 16 MiB");
        assert!(err.contains("more than one can hold"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn parse_first_flight_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1024),
            header in proptest::sample::select(vec![
                Vec::<u8>::new(),
                vec![0x16u8, 0x03, 0x01],
                vec![0x15u8, 0x03, 0x03],
                vec![0x16u8, 0x03, 0x01, 0x00, 0x40, 0x02, 0x00, 0x00],
            ]),
        ) {
            // Behind a plausible header the parser goes past its first checks.
            let mut input = header;
            input.extend_from_slice(&bytes);
            let _ = parse_first_flight(&input);
        }
    }
}
