//! Reference server, before the upgrade: transport, Origin allowlist, ticket endpoint, cookies.
//! Each defence is checked on the full server and shown to be gone on the weakened one.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn plaintext_upgrade_status(srv: &Srv) -> String {
    let addr = srv.handle.plain_addr.expect("plaintext listener");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {}\r\n\r\n",
        srv.origin()
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn plaintext_listener_refuses_upgrades_unless_tls_is_weakened() {
    let full = start("").await;
    assert_eq!(
        plaintext_upgrade_status(&full).await,
        "HTTP/1.1 426 Upgrade Required"
    );
    let weak = start("tls").await;
    assert_eq!(
        plaintext_upgrade_status(&weak).await,
        "HTTP/1.1 101 Switching Protocols"
    );
}

#[tokio::test]
async fn tls_13_is_required_by_the_strict_policy_unless_tls_version_is_weakened() {
    let full = start("").await;
    let tls = full.tls().await.expect("TLS handshake");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let only12 = full.client_config(&[&rustls::version::TLS12]);
    assert!(
        full.tls_with(only12).await.is_err(),
        "TLS 1.2 client must be refused"
    );

    let weak = start("tls-version").await;
    let only12 = weak.client_config(&[&rustls::version::TLS12]);
    let tls = weak
        .tls_with(only12)
        .await
        .expect("weakened server speaks 1.2");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
}

#[tokio::test]
async fn certificate_names_the_host_unless_tls_cert_is_weakened() {
    let full = start("").await;
    assert!(full.tls().await.is_ok());
    let weak = start("tls-cert").await;
    let err = weak.tls().await.expect_err("certificate for another host");
    assert!(err.to_string().contains("not valid for name"), "{err}");
}

async fn handshake_status(srv: &Srv, origin: Option<&str>) -> u16 {
    match srv.ws("/ws", origin, &[]).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected handshake error {e}"),
    }
}

const HOSTILE_ORIGINS: &[Option<&str>] = &[
    Some("https://evil.example"),
    Some("null"),
    None,
    Some("https://app.example.com.evil.example"),
    Some("https://evilapp.example.com"),
    Some("https://appXexample.com"),
    Some("https://sub.app.example.com"),
    Some("http://app.example.com"),
    Some("https://app.example.com:8443"),
    Some("https://app.example.com/"),
];

#[tokio::test]
async fn origins_outside_the_allowlist_get_403_before_the_upgrade() {
    let full = start("").await;
    assert_eq!(handshake_status(&full, Some(&full.origin())).await, 101);
    for origin in HOSTILE_ORIGINS {
        assert_eq!(
            handshake_status(&full, *origin).await,
            403,
            "origin {origin:?}"
        );
    }
    let log = full.log.text();
    assert!(log.contains(r#""reason":"origin_not_allowed""#), "{log}");
    assert!(log.contains(r#""reason":"origin_missing""#), "{log}");
}

#[tokio::test]
async fn weakened_origin_check_accepts_any_origin() {
    let weak = start("origin").await;
    for origin in HOSTILE_ORIGINS {
        assert_eq!(
            handshake_status(&weak, *origin).await,
            101,
            "origin {origin:?}"
        );
    }
}

#[tokio::test]
async fn missing_origin_follows_the_policy() {
    let text = std::fs::read_to_string(format!(
        "{}/policies/reference-fast.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("policy")
    .replace("missing_origin: reject", "missing_origin: allow");
    let srv = start_with(policy_from(&text), "").await;
    assert_eq!(handshake_status(&srv, None).await, 101);
    assert_eq!(
        handshake_status(&srv, Some("https://evil.example")).await,
        403
    );
}

#[tokio::test]
async fn ticket_endpoint_requires_the_api_token_and_issues_random_tickets() {
    let srv = start("").await;
    let client = srv.http();
    let denied = client
        .post(srv.handle.ticket_url())
        .send()
        .await
        .expect("request");
    assert_eq!(denied.status(), 401);
    let wrong = client
        .post(srv.handle.ticket_url())
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 401);
    let (a, _) = srv.ticket().await;
    let (b, _) = srv.ticket().await;
    assert_ne!(a, b);
    // base64url without padding: 43 characters carry 256 bits, well over the 128 required.
    assert!(a.len() >= 22, "ticket too short: {} chars", a.len());
    let get = client
        .get(srv.handle.ticket_url())
        .send()
        .await
        .expect("request");
    assert_eq!(get.status(), 405);
}

async fn session_cookie(srv: &Srv) -> String {
    let resp = srv.ticket_response().await;
    resp.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("Set-Cookie")
        .to_string()
}

#[tokio::test]
async fn session_cookie_is_secure_httponly_samesite_strict_unless_weakened() {
    let full = start("").await;
    let cookie = session_cookie(&full).await;
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        attrs.contains(&"Secure") && attrs.contains(&"HttpOnly"),
        "{cookie}"
    );
    assert!(attrs.contains(&"SameSite=Strict"), "{cookie}");

    let weak = start("cookie-samesite").await;
    let cookie = session_cookie(&weak).await;
    assert!(!cookie.contains("SameSite"), "{cookie}");
}

#[tokio::test]
async fn given_certificate_and_key_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    wsaudit::tls::install_crypto_provider();
    let mut opts = wsaudit::server::ServerOptions::local(policy("reference-fast.yaml"));
    opts.cert = Some((cert, key));
    let handle = wsaudit::server::start(opts).await.expect("server starts");
    assert!(
        handle.ca_pem.is_none(),
        "no CA is generated when a certificate is given"
    );
    let srv = Srv {
        handle,
        roots: vec![generated.cert.der().clone()],
        log: Captured::default(),
    };
    let tls = srv.tls().await.expect("TLS with the given certificate");
    let presented = tls.get_ref().1.peer_certificates().expect("peer certs");
    assert_eq!(presented[0].as_ref(), generated.cert.der().as_ref());
}

#[tokio::test]
async fn emitted_target_describes_the_server_and_keeps_the_token_private() {
    let srv = start("").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ref.yaml");
    srv.handle.write_target(&path).expect("write target");
    let text = std::fs::read_to_string(&path).expect("read target");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("target is YAML");
    assert_eq!(doc["url"].as_str(), Some(srv.handle.ws_url().as_str()));
    assert_eq!(
        doc["plaintext_url"].as_str(),
        srv.handle.plain_ws_url().as_deref()
    );
    assert_eq!(doc["origin"].as_str(), Some("https://app.example.com"));
    assert_eq!(
        doc["auth"]["ticket"]["request"]["url"].as_str(),
        Some(srv.handle.ticket_url().as_str())
    );
    let bearer = format!("Bearer {}", srv.handle.api_token);
    assert_eq!(
        doc["auth"]["ticket"]["request"]["headers"]["Authorization"].as_str(),
        Some(bearer.as_str())
    );
    let ca = dir
        .path()
        .join(doc["tls"]["ca_file"].as_str().expect("ca_file"));
    assert_eq!(
        std::fs::read_to_string(ca).expect("CA beside the target"),
        srv.handle.ca_pem.clone().expect("CA")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "target file readable by others: {mode:o}");
    }
}
