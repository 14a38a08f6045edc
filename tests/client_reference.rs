//! The client layer against the in-process reference server (127.0.0.1, port 0): handshakes,
//! refusals, TLS facts, tickets and cookies, raw frames, streaming and heartbeats.

use std::path::Path;
use std::time::Duration;

use wsaudit::client::conn::{Event, FrameSpec, Mask, StreamStop, opcode};
use wsaudit::client::http::{HttpClient, HttpOptions, HttpRequestSpec, Ticket};
use wsaudit::client::tls::{CertCheck, TlsClient, TlsOptions, TlsVersions, probe};
use wsaudit::client::{ClientError, Connection, UpgradeRequest, connect};
use wsaudit::config::LoadedPolicy;
use wsaudit::server::{self, ServerHandle, ServerOptions};

/// A guard against hangs, not a timing assertion.
const GUARD: Duration = Duration::from_secs(20);
const PAYMENT: &str =
    r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;

async fn start(weaken: &str) -> ServerHandle {
    let policy = LoadedPolicy::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/reference-fast.yaml"),
    )
    .expect("reference-fast policy loads");
    let mut opts = ServerOptions::local(policy);
    opts.weakened = weaken.parse().expect("known defence");
    server::start(opts).await.expect("server starts")
}

fn options_for(h: &ServerHandle) -> TlsOptions {
    TlsOptions::default()
        .with_ca_pem(h.ca_pem.as_deref().expect("generated CA"))
        .expect("CA PEM parses")
}

fn tls_for(h: &ServerHandle) -> TlsClient {
    TlsClient::new(&options_for(h)).expect("TLS client")
}

fn origin(h: &ServerHandle) -> String {
    h.origin.clone().expect("policy has an allowed origin")
}

fn ticket_request(h: &ServerHandle, token: &str) -> HttpRequestSpec {
    HttpRequestSpec::new("POST", &h.ticket_url())
        .header("Authorization", &format!("Bearer {token}"))
}

async fn fetch_ticket(h: &ServerHandle, tls: &TlsClient) -> Ticket {
    HttpClient::new(tls, HttpOptions::default())
        .expect("HTTP client")
        .fetch_ticket(&ticket_request(h, &h.api_token), "/ticket", GUARD)
        .await
        .expect("ticket")
}

async fn open(h: &ServerHandle, tls: &TlsClient) -> Connection {
    let req = UpgradeRequest::new(&h.ws_url())
        .expect("ws url")
        .origin(origin(h));
    connect(&req, tls, GUARD)
        .await
        .expect("handshake")
        .into_connection()
        .expect("upgraded")
}

/// Sends the ticket as the first message (registered as a secret first) and expects auth_ok.
async fn authenticate(conn: &mut Connection, ticket: &Ticket) {
    conn.add_secret(ticket.value());
    conn.send_text(&format!(
        r#"{{"type":"auth","ticket":"{}"}}"#,
        ticket.value()
    ))
    .await
    .expect("send auth");
    let reply = conn.expect_json_reply(GUARD).await.expect("auth reply");
    assert_eq!(reply["type"], "auth_ok", "{reply}");
}

/// An authenticated connection.
async fn authenticated(h: &ServerHandle, tls: &TlsClient) -> (Connection, Ticket) {
    let ticket = fetch_ticket(h, tls).await;
    let mut conn = open(h, tls).await;
    authenticate(&mut conn, &ticket).await;
    (conn, ticket)
}

#[tokio::test]
async fn allowed_origin_upgrades_over_tls_13_and_a_payment_is_acknowledged() {
    let h = start("").await;
    let tls = tls_for(&h);
    let ticket = fetch_ticket(&h, &tls).await;
    let req = UpgradeRequest::new(&h.ws_url())
        .expect("ws url")
        .origin(origin(&h));
    let hs = connect(&req, &tls, GUARD).await.expect("handshake");
    assert_eq!(hs.response.status, 101, "{}", hs.response.status_line());
    let facts = hs.response.tls.clone().expect("wss has TLS facts");
    assert_eq!(facts.version, "1.3");
    assert_eq!(facts.verified, Ok(()));
    let mut conn = hs.into_connection().expect("upgraded");
    authenticate(&mut conn, &ticket).await;
    conn.send_text(PAYMENT).await.expect("send payment");
    let ack = conn.expect_json_reply(GUARD).await.expect("payment reply");
    assert_eq!(ack["type"], "ack", "{ack}");
    let transcript = conn.transcript().to_string();
    assert!(!transcript.contains(ticket.value()), "{transcript}");
    assert!(transcript.contains(r#""ticket":"***""#), "{transcript}");
    assert!(transcript.contains("HTTP 101"), "{transcript}");
}

#[tokio::test]
async fn foreign_and_missing_origins_are_refused_with_their_status_captured() {
    let h = start("").await;
    let tls = tls_for(&h);
    for req in [
        UpgradeRequest::new(&h.ws_url())
            .expect("ws url")
            .origin("https://app.example.com.evil.example"),
        UpgradeRequest::new(&h.ws_url())
            .expect("ws url")
            .without_origin(),
        UpgradeRequest::new(&h.ws_url())
            .expect("ws url")
            .origin(b"\xffnull".to_vec()),
    ] {
        let hs = connect(&req, &tls, GUARD).await.expect("an HTTP answer");
        assert_eq!(hs.response.status, 403, "{:?}", req);
        assert!(hs.response.body_preview().contains("origin not allowed"));
        assert!(hs.connection.is_none());
        assert!(matches!(
            hs.into_connection(),
            Err(ClientError::Refused { status: 403, .. })
        ));
    }
    // A NUL byte is refused by the HTTP parser itself: still never an upgrade.
    let nul = UpgradeRequest::new(&h.ws_url())
        .expect("ws url")
        .origin(b"https://app.example.com\x00".to_vec());
    let hs = connect(&nul, &tls, GUARD).await.expect("an HTTP answer");
    assert_eq!(hs.response.status, 400);
}

#[tokio::test]
async fn plaintext_upgrades_are_refused_with_426() {
    let h = start("").await;
    let url = h.plain_ws_url().expect("plaintext listener");
    let req = UpgradeRequest::new(&url)
        .expect("ws url")
        .origin(origin(&h));
    let hs = connect(&req, &tls_for(&h), GUARD)
        .await
        .expect("an HTTP answer");
    assert_eq!(hs.response.status, 426);
    assert!(hs.response.tls.is_none());
    assert!(hs.response.body_preview().contains("use wss://"));
}

#[tokio::test]
async fn tls_facts_record_version_names_and_verification() {
    let h = start("").await;
    let facts = probe(&h.ws_url(), &tls_for(&h), GUARD)
        .await
        .expect("probe");
    assert_eq!(facts.version, "1.3");
    assert_eq!(facts.verified, Ok(()));
    assert_eq!(facts.alpn.as_deref(), Some("http/1.1"));
    // System roots (the OS store, or the webpki fallback where it is empty) plus the CA.
    assert!(
        (facts.trust.starts_with("operating system store")
            || facts.trust.starts_with("bundled webpki roots"))
            && facts.trust.ends_with(" + 1 from the target's CA"),
        "{}",
        facts.trust
    );
    let leaf = facts.leaf.expect("leaf facts");
    assert!(
        leaf.ip_addresses.contains(&"127.0.0.1".to_string()),
        "{leaf:?}"
    );
    assert!(leaf.not_after_unix > leaf.not_before_unix);

    // Without the CA the probe still completes and records why the certificate fails...
    let no_ca = TlsClient::new(&TlsOptions::default()).expect("TLS client");
    let facts = probe(&h.ws_url(), &no_ca, GUARD).await.expect("probe");
    let err = facts.verified.expect_err("unknown issuer");
    assert!(err.contains("invalid peer certificate"), "{err}");
    // ...while an enforcing connection fails with rustls' text.
    let req = UpgradeRequest::new(&h.ws_url())
        .expect("ws url")
        .origin(origin(&h));
    match connect(&req, &no_ca, GUARD).await {
        Err(ClientError::Tls { reason, .. }) => {
            assert!(reason.contains("invalid peer certificate"), "{reason}")
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    // RecordOnly connections upgrade and carry the failed verdict.
    let lenient = TlsClient::new(&TlsOptions::default().cert_check(CertCheck::RecordOnly))
        .expect("TLS client");
    let hs = connect(&req, &lenient, GUARD).await.expect("handshake");
    assert_eq!(hs.response.status, 101);
    assert!(hs.response.tls.expect("facts").verified.is_err());
}

#[tokio::test]
async fn a_tls_12_only_client_is_refused_unless_the_version_defence_is_off() {
    let hardened = start("").await;
    let old = TlsClient::new(&options_for(&hardened).versions(TlsVersions::Tls12Only))
        .expect("TLS client");
    match probe(&hardened.ws_url(), &old, GUARD).await {
        Err(ClientError::Tls { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("a 1.3-only server must refuse TLS 1.2, got {other:?}"),
    }
    let weak = start("tls-version").await;
    let old =
        TlsClient::new(&options_for(&weak).versions(TlsVersions::Tls12Only)).expect("TLS client");
    let facts = probe(&weak.ws_url(), &old, GUARD).await.expect("probe");
    assert_eq!(facts.version, "1.2");
    assert_eq!(facts.verified, Ok(()));
}

#[tokio::test]
async fn a_certificate_for_another_host_fails_verification() {
    let h = start("tls-cert").await;
    let facts = probe(&h.ws_url(), &tls_for(&h), GUARD)
        .await
        .expect("probe");
    let err = facts.verified.expect_err("wrong host");
    assert!(err.contains("not valid for name"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_frame_is_streamed_and_refused_from_its_header() {
    let h = start("").await;
    let mut conn = open(&h, &tls_for(&h)).await;
    let report = conn
        .stream_frame(&FrameSpec::binary(b"x".to_vec()), 100 << 20, GUARD)
        .await;
    assert!(report.header_sent);
    assert!(report.payload_sent < 100 << 20, "{report:?}");
    assert!(
        matches!(
            report.stop,
            StreamStop::PeerEnded | StreamStop::WriteFailed(_)
        ),
        "{report:?}"
    );
    match conn.wait_for_close(GUARD).await.end {
        Event::Close { code, .. } => assert_eq!(code, Some(1009)),
        Event::Dropped { .. } => {}
        other => panic!("expected close 1009 or a drop, got {other:?}"),
    }
}

#[tokio::test]
async fn a_declared_length_alone_gets_1009() {
    let h = start("").await;
    let mut conn = open(&h, &tls_for(&h)).await;
    conn.send_frame(&FrameSpec::binary(b"abc".to_vec()).declaring(100 << 20))
        .await
        .expect("send");
    let end = conn.wait_for_close(GUARD).await.end;
    assert!(
        matches!(
            end,
            Event::Close {
                code: Some(1009),
                ..
            }
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn reserved_opcodes_and_unmasked_frames_are_closed_with_1002() {
    let h = start("").await;
    let tls = tls_for(&h);
    for spec in [
        FrameSpec::new(0x3, b"x".to_vec()),
        FrameSpec::new(0xB, b"x".to_vec()),
        FrameSpec::text("{}").mask(Mask::Unmasked),
        FrameSpec::text("{}").rsv(false, true, false),
        FrameSpec::new(opcode::PING, b"x".to_vec()).fin(false),
    ] {
        let mut conn = open(&h, &tls).await;
        conn.send_frame(&spec).await.expect("send");
        let observed = conn.wait_for_close(GUARD).await;
        assert!(
            matches!(
                observed.end,
                Event::Close {
                    code: Some(1002),
                    ..
                }
            ),
            "{spec:?}: {observed:?}"
        );
        assert_eq!(observed.data_messages, 0);
    }
}

#[tokio::test]
async fn fragmented_messages_authenticate() {
    let h = start("").await;
    let tls = tls_for(&h);
    let ticket = fetch_ticket(&h, &tls).await;
    let mut conn = open(&h, &tls).await;
    conn.add_secret(ticket.value());
    let auth = format!(r#"{{"type":"auth","ticket":"{}"}}"#, ticket.value());
    let (a, b) = auth.as_bytes().split_at(10);
    let (b, c) = b.split_at(5);
    conn.send_fragmented(opcode::TEXT, &[a, b, c])
        .await
        .expect("send");
    let reply = conn.expect_json_reply(GUARD).await.expect("reply");
    assert_eq!(reply["type"], "auth_ok", "{reply}");
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_terminated() {
    let h = start("").await;
    let (mut conn, _) = authenticated(&h, &tls_for(&h)).await;
    conn.answer_pings(false);
    let end = conn.wait_for_close(GUARD).await.end;
    assert!(
        matches!(
            end,
            Event::Close {
                code: Some(1001),
                ..
            } | Event::Dropped { .. }
        ),
        "{end:?}"
    );
    let pings = conn.pings();
    assert!(!pings.is_empty());
    // Only pings before the switch (there may be none) were answered.
    assert!(!pings.last().expect("a ping").answered);
}

#[tokio::test]
async fn answered_pings_keep_the_connection_alive() {
    let h = start("").await;
    let (mut conn, _) = authenticated(&h, &tls_for(&h)).await;
    let deadline = wsaudit::client::Deadline::after(GUARD);
    while conn.pings().len() < 4 {
        let e = conn.read_event_by(&deadline).await;
        assert!(!e.is_end() && e != Event::Timeout, "{e:?}");
    }
    assert!(conn.pings().iter().all(|p| p.answered));
}

#[tokio::test]
async fn tickets_come_with_a_strict_session_cookie() {
    let h = start("").await;
    let tls = tls_for(&h);
    let ticket = fetch_ticket(&h, &tls).await;
    assert!(!ticket.value().is_empty());
    let cookie = ticket.set_cookies.first().expect("a session cookie");
    assert!(cookie.secure && cookie.http_only);
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"));
    assert!(ticket.cookie_header().is_some());

    let weak = start("cookie-samesite").await;
    let ticket = fetch_ticket(&weak, &tls_for(&weak)).await;
    assert_eq!(ticket.set_cookies[0].same_site, None);
}

#[tokio::test]
async fn ticket_errors_name_the_status_but_never_the_secret() {
    let h = start("").await;
    let http = HttpClient::new(&tls_for(&h), HttpOptions::default()).expect("HTTP client");
    let wrong = "WRONG-SECRET-TOKEN";
    let err = http
        .fetch_ticket(&ticket_request(&h, wrong), "/ticket", GUARD)
        .await
        .expect_err("401");
    assert!(
        matches!(err, ClientError::HttpStatus { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(wrong), "{err}");
    assert!(!format!("{err:?}").contains(wrong), "{err:?}");

    let err = http
        .fetch_ticket(&ticket_request(&h, &h.api_token), "/token", GUARD)
        .await
        .expect_err("wrong pointer");
    let text = err.to_string();
    assert!(matches!(err, ClientError::TicketMissing { .. }), "{err:?}");
    assert!(
        text.contains("ticket") && text.contains("expires_in"),
        "{text}"
    );
}
