//! Each dialect of the reference server completes a session with that protocol's official
//! client library (tests/official_clients/*.cjs: npm `socket.io-client`, `graphql-ws`,
//! `@stomp/stompjs`, `@microsoft/signalr`, pinned in tests/env/package.json): ticket, connect
//! and authenticate, a valid payment acknowledged, an invalid one refused, the protocol's
//! heartbeat seen, a clean disconnect, and a bogus ticket refused. wsaudit's dialect code is so
//! checked against the real protocol, not only against itself.

#[path = "common/provision.rs"]
mod provision;

use std::process::Stdio;
use std::time::Duration;

use wsaudit::config::LoadedPolicy;
use wsaudit::dialect::DialectName;
use wsaudit::server::{self, ServerOptions};

const VALID: &str = r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;
const INVALID: &str = r#"{"type":"payment","amount":-1,"reference":"TX-123456","currency":"USD"}"#;

/// reference-fast's heartbeat interval (`interval_max`), what the scripts wait three of.
const HEARTBEAT_MS: u32 = 500;

/// Runs `script` against the reference server speaking `dialect`; returns the script's verdict
/// line (the process's exit status must be success).
async fn session(dialect: DialectName, script: &str) -> serde_json::Value {
    wsaudit::crypto::install_crypto_provider();
    let policy = LoadedPolicy::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/reference-fast.yaml"),
    )
    .expect("reference-fast policy");
    let mut opts = ServerOptions::local(policy);
    opts.dialect = dialect;
    let handle = server::start(opts).await.expect("server starts");
    let dir = tempfile::tempdir().expect("temporary directory");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, handle.ca_pem.as_deref().expect("generated CA")).expect("write CA");
    let base = format!("127.0.0.1:{}", handle.addr.port());
    let ws_path = match dialect {
        DialectName::Socketio => "/socket.io/",
        _ => "/ws",
    };
    let mut command = tokio::process::Command::from(provision::node());
    command
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/official_clients")
                .join(script),
        )
        .env("WS_URL", format!("wss://{base}{ws_path}"))
        .env("TICKET_URL", format!("https://{base}/ws/ticket"))
        .env("API_TOKEN", &handle.api_token)
        .env(
            "ORIGIN",
            handle.origin.as_deref().expect("an allowed origin"),
        )
        .env("VALID", VALID)
        .env("INVALID", INVALID)
        .env("HEARTBEAT_MS", HEARTBEAT_MS.to_string())
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("start node");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within 60 s"))
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let verdict: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{script} printed no verdict line:\n{stdout}\n{stderr}"));
    assert!(
        out.status.success() && verdict["ok"] == true,
        "{script} against --dialect {dialect}: {verdict}\nstderr:\n{stderr}"
    );
    verdict
}

/// The steps the verdict line lists, by name.
fn steps(verdict: &serde_json::Value) -> Vec<String> {
    verdict["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["step"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every script reports these steps of the session, in this order (some report more: the
/// SignalR client connects before it authenticates).
const SESSION: [&str; 6] = [
    "ticket",
    "valid_payment_acknowledged",
    "invalid_payment_rejected",
    "heartbeat",
    "disconnected",
    "bogus_ticket_refused",
];

fn assert_session(dialect: DialectName, verdict: &serde_json::Value) {
    let seen = steps(verdict);
    let mut at = 0;
    for want in SESSION {
        let found = seen[at..].iter().position(|s| s == want);
        assert!(
            found.is_some(),
            "--dialect {dialect}: step `{want}` missing in order from {seen:?}"
        );
        at += found.unwrap_or(0) + 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_completes_a_session() {
    let v = session(DialectName::Socketio, "socketio.cjs").await;
    assert_session(DialectName::Socketio, &v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_client_completes_a_session() {
    let v = session(DialectName::GraphqlTransportWs, "graphql_ws.cjs").await;
    assert_session(DialectName::GraphqlTransportWs, &v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stompjs_client_completes_a_session() {
    let v = session(DialectName::Stomp, "stomp.cjs").await;
    assert_session(DialectName::Stomp, &v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signalr_client_completes_a_session() {
    let v = session(DialectName::SignalrJson, "signalr.cjs").await;
    assert_session(DialectName::SignalrJson, &v);
}
