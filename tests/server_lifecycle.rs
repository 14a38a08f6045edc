//! Reference server lifecycle: heartbeats, RFC 6455 strictness, lifecycle logs, and the `serve`
//! command's handling of bad files.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test]
async fn server_pings_within_the_interval_and_drops_clients_that_stop_answering() {
    // reference-fast: interval 500 ms, 2 missed pongs. Raw never answers pings.
    let srv = start_keeping(&[Timing::Heartbeat], "").await;
    // The heartbeat runs from the upgrade whether or not the client authenticates, so this
    // client does not: nothing but the heartbeat is on the clock.
    // Taken before connecting: the server's heartbeat clock starts at the upgrade, later, so
    // load can only make the measured time longer.
    let started = Instant::now();
    let (mut raw, _) = Raw::connect(&srv, "").await;
    let mut pings = 0;
    let code = loop {
        match raw.next(STEP).await {
            RawEvent::Frame { opcode, .. } if opcode == ping_opcode() => pings += 1,
            RawEvent::Frame { opcode: 8, payload } => {
                break Some(u16::from_be_bytes([payload[0], payload[1]]));
            }
            RawEvent::Ended => break None,
            RawEvent::Frame { .. } => continue,
            RawEvent::Silence => panic!("stale connection was never closed"),
        }
    };
    assert_eq!(pings, 2, "pings before the close");
    assert_eq!(code, Some(1001));
    // Not before the second unanswered interval has passed.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn answering_client_stays_connected() {
    let srv = start_keeping(&[Timing::Heartbeat], "").await;
    let mut ws = srv.authed().await;
    // Four heartbeat intervals, tungstenite answering every ping.
    assert_eq!(
        next_seen(&mut ws, Duration::from_secs(2)).await,
        Seen::Silence
    );
    expect_ack(&mut ws).await;
}

#[tokio::test]
async fn weakened_heartbeat_never_pings_nor_drops() {
    // The policy's 500 ms interval stays, so the full server would ping within the wait.
    let srv = start_keeping(&[Timing::Heartbeat], "heartbeat").await;
    let mut raw = Raw::authed(&srv).await;
    assert_eq!(raw.pings_while_authenticating, 0);
    match raw.next(Duration::from_millis(1500)).await {
        RawEvent::Silence => {}
        RawEvent::Frame { opcode, .. } => panic!("unexpected frame with opcode {opcode}"),
        RawEvent::Ended => panic!("weakened server dropped the connection"),
    }
    assert!(
        raw.payment_reply(STEP)
            .await
            .is_some_and(|v| v["type"] == "ack")
    );
}

/// Frames a conforming client never sends.
fn violations() -> Vec<(&'static str, Vec<u8>)> {
    let close_1005 = raw_frame(0x88, &1005u16.to_be_bytes(), true);
    vec![
        ("reserved data opcode 0x3", raw_frame(0x83, b"x", true)),
        ("reserved control opcode 0xB", raw_frame(0x8B, b"x", true)),
        ("RSV2 bit", raw_frame(0xA1, br#"{"type":"x"}"#, true)),
        (
            "RSV1 without deflate",
            raw_frame(0xC1, br#"{"type":"x"}"#, true),
        ),
        ("unmasked frame", raw_frame(0x81, br#"{"type":"x"}"#, false)),
        ("fragmented ping", raw_frame(0x09, b"x", true)),
        ("oversized ping", raw_frame(0x89, &[0u8; 126], true)),
        ("continuation without start", raw_frame(0x80, b"x", true)),
        ("close code 1005", close_1005),
        ("close with one byte", raw_frame(0x88, &[3], true)),
    ]
}

#[tokio::test]
async fn rfc6455_violations_close_1002_and_the_server_stays_healthy() {
    let srv = start("").await;
    for (name, frame) in violations() {
        let mut raw = Raw::authed(&srv).await;
        raw.send(&frame).await;
        assert_eq!(raw.close_code(STEP).await, Some(1002), "{name}");
    }
    let mut ws = srv.authed().await;
    expect_ack(&mut ws).await;
}

#[tokio::test]
async fn weakened_protocol_strictness_tolerates_violations() {
    let srv = start("protocol-strict").await;
    // Everything but the close frames leaves the connection usable.
    for (name, frame) in violations()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("close"))
    {
        let mut raw = Raw::authed(&srv).await;
        raw.send(&frame).await;
        let reply = raw.payment_reply(STEP).await;
        assert!(reply.is_some(), "{name}: connection closed by a lax server");
    }
    // A bad close code is answered with a normal close (1000) instead of 1002.
    let mut raw = Raw::authed(&srv).await;
    raw.send(&raw_frame(0x88, &1005u16.to_be_bytes(), true))
        .await;
    assert_eq!(raw.close_code(STEP).await, Some(1000));
}

#[tokio::test]
async fn lifecycle_events_are_json_lines_without_secrets() {
    let srv = start("").await;
    let (ticket, session) = srv.ticket().await;
    let mut ws = srv.ws_ok().await;
    send_text(&mut ws, &auth_message(&ticket)).await;
    let _ = next_json(&mut ws).await;
    send_text(&mut ws, r#"{"type":"payment"}"#).await;
    let _ = next_json(&mut ws).await;
    // A second use of the same ticket: an auth failure.
    let mut again = srv.ws_ok().await;
    send_text(&mut again, &auth_message(&ticket)).await;
    expect_close(&mut again, 1008).await;
    drop(ws);
    // Both connections end: the close events are logged once each has finished lingering.
    assert!(
        srv.log.wait_for("close", 2).await,
        "no close events: {}",
        srv.log.text()
    );

    let log = srv.log.text();
    let events = srv.log.events();
    for kind in [
        "listening",
        "ticket",
        "connect",
        "auth",
        "violation",
        "close",
    ] {
        assert!(
            events.iter().any(|e| e["event"] == kind),
            "no {kind} event in {log}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "auth" && e["ok"] == true && e["method"] == "ticket")
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "auth" && e["ok"] == false && e["reason"] == "ticket_replayed")
    );
    for secret in [&ticket, &session, &srv.handle.api_token] {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
}

#[test]
fn serve_rejects_a_bad_policy_with_its_location_and_exit_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "policy: broken\nversion: 1\ncontrols:\n  - id: WS-1\n    check: heartbeat\n    colour: red\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsaudit"))
        .args(["serve", "--policy"])
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run wsaudit");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:6:5"), "{stderr}");
    assert!(
        stderr.contains("unknown key `colour`: expected one of `id`"),
        "{stderr}"
    );
}

#[test]
fn serve_rejects_an_unknown_weaken_switch_with_exit_code_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsaudit"))
        .args([
            "serve",
            "--policy",
            "policies/fintech.yaml",
            "--weaken",
            "orign",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run wsaudit");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected one of tls"));
}
