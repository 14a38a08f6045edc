//! Issue 20: TLS below the minimum is probed with raw ClientHellos, as testssl.sh does.
//!
//! A Python `ssl` server (`tests/tls_old/server.py`: OpenSSL at security level 0) that really
//! accepts TLS 1.0, 1.1 and 1.2 and the weak suites this machine's OpenSSL still has makes
//! exactly those probes fail, naming the version and suite the server chose; the probes of
//! what it cannot serve pass. The server checks by an in-memory handshake with itself that it
//! really serves each version it is asked for: where this machine's OpenSSL cannot, the test
//! fails saying so, rather than pass with nothing proven. The reference server (rustls) passing
//! every TLS case is shown by the attack matrix and the demo.

mod hostile;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use wsaudit::report::Verdict::{Fail, Pass};

/// The server child, killed when the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An RSA leaf for 127.0.0.1 (the key is `tests/tls_old/rsa-test-key.pem`, a test-only key:
/// RSA key exchange needs an RSA certificate, and ring cannot generate RSA keys), signed by a
/// fresh CA: the chain and key as PEM, and the CA's PEM.
fn rsa_leaf() -> Result<(String, String, String), String> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let e = |e: rcgen::Error| e.to_string();
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().map_err(e)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca, ca_key);
    let key_pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/tls_old/rsa-test-key.pem"
    ))
    .map_err(|e| e.to_string())?;
    let key = KeyPair::from_pem(&key_pem).map_err(e)?;
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .map_err(e)?
        .signed_by(&key, &issuer)
        .map_err(e)?;
    Ok((
        format!("{}{}", leaf.pem(), ca_cert.pem()),
        key_pem,
        ca_cert.pem(),
    ))
}

/// Starts `server.py` with [`rsa_leaf`], serving `versions` with `ciphers`; the server, its
/// port and the CA to trust, or why it could not start.
fn start(
    dir: &std::path::Path,
    versions: &str,
    ciphers: &str,
) -> Result<(Server, u16, String), String> {
    let (chain, key, ca) = rsa_leaf()?;
    std::fs::write(dir.join("cert.pem"), chain).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("key.pem"), key).map_err(|e| e.to_string())?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls_old/server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg("--cert")
        .arg(dir.join("cert.pem"))
        .arg("--key")
        .arg(dir.join("key.pem"))
        .args(["--versions", versions, "--ciphers", ciphers])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start python3 {script}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    match line.trim().split_once(' ') {
        Some(("LISTENING", port)) => {
            let port = port.parse().map_err(|e| format!("port {port}: {e}"))?;
            Ok((server, port, ca))
        }
        _ => Err(format!(
            "this machine's OpenSSL cannot serve what the test needs, so the old-TLS probes are unproven here: {}",
            line.trim()
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_accepting_old_versions_and_weak_suites_fails_exactly_those_probes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Every version this OpenSSL has below 1.3, and every suite it still has, NULL included.
    let (_server, port, ca) = start(dir.path(), "tls1,tls1_1,tls1_2", "ALL:COMPLEMENTOFALL")
        .unwrap_or_else(|e| panic!("{e}"));
    let target = hostile::write_target(
        dir.path(),
        &format!("wss://127.0.0.1:{port}/ws"),
        &format!("https://127.0.0.1:{port}/ws/ticket"),
        Some(&ca),
        hostile::LIMITS,
    );
    let audit = hostile::prepare("old-tls", &target, &["WS-TLS-01"])
        .expect("the audit compiles")
        .run()
        .await
        .expect("the audit runs");
    let check = |id: &str, verdict, what: &str| {
        audit
            .expect(id, verdict, what)
            .unwrap_or_else(|e| panic!("{e}"));
    };
    // The legitimate handshake (TLS 1.2 with rustls) upgrades; the certificate is valid.
    check("WS-TLS-01/TLS-UPGRADE", Pass, "upgraded");
    check("WS-TLS-01/TLS-NEGOTIATED", Fail, "below the required");
    check(
        "WS-TLS-01/TLS-VERSION-BELOW-MIN[tls1.0]",
        Fail,
        "accepted TLS 1.0 (suite TLS_",
    );
    check(
        "WS-TLS-01/TLS-VERSION-BELOW-MIN[tls1.1]",
        Fail,
        "accepted TLS 1.1 (suite TLS_",
    );
    check(
        "WS-TLS-01/TLS-VERSION-BELOW-MIN[tls1.2]",
        Fail,
        "accepted TLS 1.2 (suite TLS_",
    );
    // This OpenSSL is built without SSL 3.0: the server refuses it as any modern one does.
    check("WS-TLS-01/TLS-VERSION-BELOW-MIN[ssl3]", Pass, "refused");
    check("WS-TLS-01/TLS-WEAK-SUITE[null]", Fail, "_WITH_NULL_");
    check("WS-TLS-01/TLS-WEAK-SUITE[anon]", Fail, "_anon_");
    check("WS-TLS-01/TLS-WEAK-SUITE[cbc-rsa]", Fail, "TLS_RSA_WITH_");
    // RC4, 3DES and the export suites are gone from this OpenSSL: refused, as the server
    // itself reported when it checked what it serves (its cipher string matched none).
    for class in ["rc4", "3des", "export"] {
        check(
            &format!("WS-TLS-01/TLS-WEAK-SUITE[{class}]"),
            Pass,
            "refused",
        );
    }
    audit.sound().unwrap_or_else(|e| panic!("{e}"));
    for c in audit
        .report
        .cases
        .iter()
        .filter(|c| c.case_id.contains("TLS-VERSION") || c.case_id.contains("TLS-WEAK"))
    {
        eprintln!("{:?} {}: {}", c.verdict, c.case_id, c.reason);
    }
    eprintln!(
        "RC4, 3DES and EXPORT suites are not in this machine's OpenSSL: their probes are shown \
         refused here; the same judgement catches the NULL, anonymous and CBC-RSA ones above"
    );
}
