//! Reference server, before the upgrade: transport, Origin allowlist, ticket endpoint, cookies.
//! Each defence is checked on the full server and shown to be gone on the weakened one.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn plaintext_upgrade_status_of(srv: &Srv) -> String {
    let addr = srv.handle.plain_addr.expect("plaintext listener");
    plaintext_upgrade_status(addr, &srv.origin()).await
}

#[tokio::test]
async fn plaintext_listener_refuses_upgrades_unless_tls_is_weakened() {
    let full = start("").await;
    assert_eq!(
        plaintext_upgrade_status_of(&full).await,
        "HTTP/1.1 426 Upgrade Required"
    );
    let weak = start("tls").await;
    assert_eq!(
        plaintext_upgrade_status_of(&weak).await,
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
    for reason in ["origin_not_allowed", "origin_missing"] {
        full.log.assert_has(
            "handshake_refused",
            &[("reason", serde_json::json!(reason))],
        );
    }
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
    let text = fast_policy_text(&[]).replace("missing_origin: reject", "missing_origin: allow");
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

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let srv = start("").await;
    let client = srv.http();
    for (authorization, status) in [
        (format!("bearer {}", srv.handle.api_token), 200),
        (format!("BEARER {}", srv.handle.api_token), 200),
        (format!("Bearer  {}", srv.handle.api_token), 200),
        (format!("Basic {}", srv.handle.api_token), 401),
        (format!("Bearer{}", srv.handle.api_token), 401),
    ] {
        let resp = client
            .post(srv.handle.ticket_url())
            .header("authorization", &authorization)
            .send()
            .await
            .expect("request");
        assert_eq!(
            resp.status(),
            status,
            "{}",
            authorization.split(' ').next().unwrap_or("")
        );
    }
}

/// Status line and Location of a plaintext `GET path` with the given Host header.
async fn plaintext_get(srv: &Srv, path: &str, host: Option<&str>) -> (String, Option<String>) {
    let addr = srv.handle.plain_addr.expect("plaintext listener");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\n{host}Connection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(STEP, tcp.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.lines().next().unwrap_or("").to_string();
    let location = text
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
        })
        .map(|(_, v)| v.trim().to_string());
    (status, location)
}

#[tokio::test]
async fn plaintext_requests_are_redirected_to_https_on_a_validated_host() {
    let srv = start("").await;
    let port = srv.handle.addr.port();
    for (host, location) in [
        (
            "app.example.com",
            format!("https://app.example.com:{port}/healthz"),
        ),
        (
            "127.0.0.1:8080",
            format!("https://127.0.0.1:{port}/healthz"),
        ),
        ("[::1]:8080", format!("https://[::1]:{port}/healthz")),
        ("[::1]", format!("https://[::1]:{port}/healthz")),
    ] {
        assert_eq!(
            plaintext_get(&srv, "/healthz", Some(host)).await,
            ("HTTP/1.1 301 Moved Permanently".to_string(), Some(location)),
            "Host: {host}"
        );
    }
    // Not a host: no redirect built from it, a refusal instead.
    for host in ["evil.example/x", "user@evil.example", "[::1", "a b"] {
        assert_eq!(
            plaintext_get(&srv, "/healthz", Some(host)).await,
            ("HTTP/1.1 426 Upgrade Required".to_string(), None),
            "Host: {host}"
        );
    }
    assert_eq!(
        plaintext_get(&srv, "/healthz", None).await,
        ("HTTP/1.1 426 Upgrade Required".to_string(), None),
        "no Host"
    );
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
    let given = write_self_signed(dir.path());
    wsaudit::crypto::install_crypto_provider();
    let mut opts = wsaudit::server::ServerOptions::local(policy("reference-fast.yaml"));
    opts.cert = Some((given.cert, given.key));
    let handle = wsaudit::server::start(opts).await.expect("server starts");
    assert!(
        handle.ca_pem.is_none(),
        "no CA is generated when a certificate is given"
    );
    let srv = Srv {
        handle,
        roots: vec![given.der.clone()],
        log: Captured::default(),
    };
    let tls = srv.tls().await.expect("TLS with the given certificate");
    let presented = tls.get_ref().1.peer_certificates().expect("peer certs");
    assert_eq!(presented[0].as_ref(), given.der.as_ref());
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

#[cfg(unix)]
#[tokio::test]
async fn an_existing_world_readable_target_file_is_replaced_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let srv = start("").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ref.yaml");
    std::fs::write(&path, "old target\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    srv.handle.write_target(&path).expect("write target");
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "target file mode {mode:o}");
    let text = std::fs::read_to_string(&path).expect("read target");
    assert!(
        text.contains(&srv.handle.api_token),
        "the target was not rewritten"
    );
    // Only the target and its CA are left: no temporary file.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ref-ca.pem", "ref.yaml"]);
}

#[tokio::test]
async fn two_controls_of_one_enforced_check_are_refused_with_the_location_of_the_second() {
    let text = fast_policy_text(&[]);
    let extra = "  - id: WS-HB-02\n    title: A second heartbeat\n    check: heartbeat\n    with: { interval_max: 5s, missed_max: 3 }\n    severity: low\n";
    // The second control's `check:` value, three lines into it.
    let line = text.lines().count() + 3;
    let policy = policy_from(&format!("{text}{extra}"));
    let Err(err) = wsaudit::server::start(wsaudit::server::ServerOptions::local(policy)).await
    else {
        panic!("a policy with two heartbeat controls was accepted");
    };
    let shown = err.to_string();
    assert!(
        shown.contains(&format!(
            "test.yaml:{line}:12: control WS-HB-02 repeats check `heartbeat` of control WS-HB-01"
        )),
        "{shown}"
    );
    // Checks the server does not enforce may repeat.
    let extra =
        "  - id: WS-PROTO-02\n    title: Again\n    check: protocol.rfc6455\n    severity: low\n";
    let policy = policy_from(&format!("{text}{extra}"));
    assert!(
        wsaudit::server::start(wsaudit::server::ServerOptions::local(policy))
            .await
            .is_ok()
    );
}
