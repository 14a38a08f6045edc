//! Reference server authentication: first-message tickets (replay, expiry, forgery, session
//! binding), credentials in the URL, cookie-only handshakes and the unauthenticated timeout.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Connects, sends `first`, and returns what the server does next.
async fn first_message_outcome(srv: &Srv, first: &str, headers: &[(&str, &str)]) -> Seen {
    let mut ws = srv
        .ws("/ws", Some(&srv.origin()), headers)
        .await
        .expect("handshake");
    send_text(&mut ws, first).await;
    next_seen(&mut ws, STEP).await
}

fn auth_ok() -> Seen {
    Seen::Json(serde_json::json!({"type": "auth_ok"}))
}

#[tokio::test]
async fn valid_ticket_authenticates_and_data_flows() {
    let srv = start("").await;
    let mut ws = srv.authed().await;
    expect_ack(&mut ws).await;
    srv.log
        .assert_has("auth", &[("ok", json!(true)), ("method", json!("ticket"))]);
}

#[tokio::test]
async fn replayed_ticket_is_refused_unless_ticket_replay_is_weakened() {
    for (weaken, replay_ok) in [("", false), ("ticket-replay", true)] {
        let srv = start(weaken).await;
        let (ticket, _) = srv.ticket().await;
        assert_eq!(
            first_message_outcome(&srv, &auth_message(&ticket), &[]).await,
            auth_ok()
        );
        let second = first_message_outcome(&srv, &auth_message(&ticket), &[]).await;
        if replay_ok {
            assert_eq!(second, auth_ok(), "weakened: {weaken}");
        } else {
            assert_eq!(second, Seen::Close(Some(1008)));
        }
    }
}

#[tokio::test]
async fn expired_ticket_is_refused_unless_ticket_expiry_is_weakened() {
    // reference-fast: ttl_max 1s; wait the TTL plus a stated slack of 400 ms.
    let full = start_keeping(&[Timing::TicketTtl], "").await;
    let weak = start_keeping(&[Timing::TicketTtl], "ticket-expiry").await;
    let (t_full, _) = full.ticket().await;
    let (t_weak, _) = weak.ticket().await;
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert_eq!(
        first_message_outcome(&full, &auth_message(&t_full), &[]).await,
        Seen::Close(Some(1008))
    );
    assert_eq!(
        first_message_outcome(&weak, &auth_message(&t_weak), &[]).await,
        auth_ok()
    );
}

#[tokio::test]
async fn forged_and_malformed_tickets_are_refused_unless_ticket_validation_is_weakened() {
    let full = start("").await;
    for first in [
        auth_message("forged-ticket-0000000000000000000000"),
        auth_message(""),
        r#"{"type":"auth"}"#.to_string(),
        r#"{"type":"auth","ticket":42}"#.to_string(),
    ] {
        assert_eq!(
            first_message_outcome(&full, &first, &[]).await,
            Seen::Close(Some(1008)),
            "{first}"
        );
    }
    let weak = start("ticket-validation").await;
    assert_eq!(
        first_message_outcome(&weak, &auth_message("forged-ticket-0000"), &[]).await,
        auth_ok()
    );
}

#[tokio::test]
async fn ticket_from_another_session_is_refused_unless_ticket_binding_is_weakened() {
    for (weaken, expected) in [("", Seen::Close(Some(1008))), ("ticket-binding", auth_ok())] {
        let srv = start(weaken).await;
        let (ticket_a, _session_a) = srv.ticket().await;
        let (_ticket_b, session_b) = srv.ticket().await;
        let cookie = format!("wsaudit_session={session_b}");
        let outcome =
            first_message_outcome(&srv, &auth_message(&ticket_a), &[("cookie", &cookie)]).await;
        assert_eq!(outcome, expected, "weakened: {weaken:?}");
    }
}

#[tokio::test]
async fn business_message_before_auth_is_refused_unless_auth_required_is_weakened() {
    let full = start("").await;
    assert_eq!(
        first_message_outcome(&full, VALID_PAYMENT, &[]).await,
        Seen::Close(Some(1008))
    );
    let weak = start("auth-required").await;
    match first_message_outcome(&weak, VALID_PAYMENT, &[]).await {
        Seen::Json(v) => assert_eq!(v["type"], "ack"),
        other => panic!("weakened server should ack, saw {other:?}"),
    }
}

#[tokio::test]
async fn credentials_in_the_url_never_authenticate_unless_url_token_is_weakened() {
    let full = start("").await;
    let weak = start("url-token").await;
    for param in ["token", "access_token", "ticket"] {
        let (ticket, _) = full.ticket().await;
        assert_eq!(
            url_credential_outcome(&full, param, &ticket).await,
            Seen::Close(Some(1008)),
            "?{param}= on the full server"
        );
        let (ticket, _) = weak.ticket().await;
        let seen = url_credential_outcome(&weak, param, &ticket).await;
        assert!(acked(&seen), "?{param}= on the weakened server: {seen:?}");
    }
    let api = weak.handle.api_token.clone();
    let seen = url_credential_outcome(&weak, "access_token", &api).await;
    assert!(acked(&seen), "API token in the URL: {seen:?}");
    assert_url_credential_logged_as_ignored(&full);
}

/// What the server does with a payment sent as the first message of a handshake whose URL
/// carries `?{param}={credential}`.
async fn url_credential_outcome(srv: &Srv, param: &str, credential: &str) -> Seen {
    let mut ws = srv
        .ws(
            &format!("/ws?{param}={credential}"),
            Some(&srv.origin()),
            &[],
        )
        .await
        .expect("handshake");
    send_text(&mut ws, VALID_PAYMENT).await;
    next_seen(&mut ws, STEP).await
}

fn acked(seen: &Seen) -> bool {
    matches!(seen, Seen::Json(v) if v["type"] == "ack")
}

/// Asserts the server logged a credential it found in a URL and ignored.
fn assert_url_credential_logged_as_ignored(srv: &Srv) {
    srv.log.assert_has(
        "violation",
        &[("reason", json!("credential_in_url_ignored"))],
    );
}

/// reference-fast with `auth.no_url_tokens` naming only `session_key`.
fn policy_with_url_param(name: &str) -> wsaudit::config::LoadedPolicy {
    let text = fast_policy_text(&[]);
    let names = "params: [token, access_token, ticket, auth, jwt]";
    assert!(text.contains(names));
    policy_from(&text.replace(names, &format!("params: [{name}]")))
}

#[tokio::test]
async fn url_token_weakening_reads_the_parameters_the_policy_names() {
    let weak = start_with(policy_with_url_param("session_key"), "url-token").await;
    let (ticket, _) = weak.ticket().await;
    let seen = url_credential_outcome(&weak, "session_key", &ticket).await;
    assert!(
        acked(&seen),
        "?session_key= on the weakened server: {seen:?}"
    );
    // The weakened server also reads the common names (`token`), as careless servers do ...
    let (ticket, _) = weak.ticket().await;
    assert!(acked(
        &url_credential_outcome(&weak, "token", &ticket).await
    ));
    // ... but a name that is neither the policy's nor a common one is not read.
    let (ticket, _) = weak.ticket().await;
    assert_eq!(
        url_credential_outcome(&weak, "not_a_credential_name", &ticket).await,
        Seen::Close(Some(1008))
    );

    let full = start_with(policy_with_url_param("session_key"), "").await;
    let (ticket, _) = full.ticket().await;
    assert_eq!(
        url_credential_outcome(&full, "session_key", &ticket).await,
        Seen::Close(Some(1008))
    );
    assert_url_credential_logged_as_ignored(&full);
}

#[tokio::test]
async fn a_binary_first_message_closes_1008_and_invalid_utf8_closes_1007() {
    let full = start("").await;
    let mut ws = full.ws_ok().await;
    send_binary(&mut ws, VALID_PAYMENT.as_bytes()).await;
    assert_eq!(next_seen(&mut ws, STEP).await, Seen::Close(Some(1008)));
    // Even a valid auth message does not authenticate as binary.
    let (ticket, _) = full.ticket().await;
    let mut ws = full.ws_ok().await;
    send_binary(&mut ws, auth_message(&ticket).as_bytes()).await;
    assert_eq!(next_seen(&mut ws, STEP).await, Seen::Close(Some(1008)));
    full.log.assert_has(
        "auth",
        &[("ok", json!(false)), ("reason", json!("not_authenticated"))],
    );
    // RFC 6455 section 8.1: invalid UTF-8 in a text message fails the connection with 1007.
    let mut ws = full.ws_ok().await;
    let invalid = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(invalid)).await.expect("send");
    assert_eq!(next_seen(&mut ws, STEP).await, Seen::Close(Some(1007)));

    // Without the auth requirement, the message rules apply: binary closes 1003.
    let weak = start("auth-required").await;
    let mut ws = weak.ws_ok().await;
    send_binary(&mut ws, VALID_PAYMENT.as_bytes()).await;
    assert_eq!(next_seen(&mut ws, STEP).await, Seen::Close(Some(1003)));
}

#[tokio::test]
async fn cookie_only_handshake_does_not_authenticate_unless_cookie_auth_is_weakened() {
    for (weaken, acked) in [("", false), ("cookie-auth", true)] {
        let srv = start(weaken).await;
        let (_ticket, session) = srv.ticket().await;
        let cookie = format!("wsaudit_session={session}");
        let outcome = first_message_outcome(&srv, VALID_PAYMENT, &[("cookie", &cookie)]).await;
        match (acked, outcome) {
            (false, Seen::Close(Some(1008))) => {}
            (true, Seen::Json(v)) if v["type"] == "ack" => {}
            (_, other) => panic!("weakened {weaken:?}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn idle_unauthenticated_connection_is_closed_even_while_answering_pings() {
    // reference-fast: unauthenticated timeout 1s, pings every 500 ms; tungstenite answers them.
    let keep = [Timing::UnauthTimeout, Timing::Heartbeat];
    let full = start_keeping(&keep, "").await;
    // Taken before the handshake: the server's clock starts at the upgrade, later, so load can
    // only make the measured time longer.
    let started = std::time::Instant::now();
    let mut ws = full.ws_ok().await;
    assert_eq!(next_seen(&mut ws, STEP).await, Seen::Close(Some(1008)));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "closed before the 1 s timeout: {:?}",
        started.elapsed()
    );
    full.log.assert_has(
        "auth",
        &[("ok", json!(false)), ("reason", json!("auth_timeout"))],
    );

    let weak = start_keeping(&keep, "unauth-timeout").await;
    let mut ws = weak.ws_ok().await;
    // Three times the timeout: still open, pings answered.
    assert_eq!(
        next_seen(&mut ws, Duration::from_secs(3)).await,
        Seen::Silence
    );
}
