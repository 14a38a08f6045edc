//! A staging server that falls over: in-process JSON payment targets (127.0.0.1, port 0) that
//! die on one specific input, deeply nested JSON, as a default Node `ws` server whose
//! `JSON.stringify` overflows does. One stays down, one comes back after a second. The run must
//! name the one case that took the target down (with what it sent), blame no other case, and
//! either report the remaining destructive cases as `not run: target down after ...` or run
//! them once the target is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use wsaudit::attacks::TargetRuntime;
use wsaudit::config::{LoadedPolicy, LoadedTarget, SourceFile};
use wsaudit::report::model::NOT_RUN_TARGET_DOWN;
use wsaudit::report::{RunReport, Verdict};
use wsaudit::run::{RunOptions, run};

const VALID: &str = r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;
const KILLER: &str = "WS-MSG-01/MSG-DEEP-JSON";

/// The schema, size and protocol controls of the interop policy: the destructive cases.
const POLICY: &str = r#"
policy: target-down
version: 1
controls:
  - id: WS-MSG-01
    check: messages.schema
    with:
      schema:
        type: object
        required: [type, amount, reference, currency]
        properties:
          type: { const: payment }
          amount: { type: number, exclusiveMinimum: 0 }
    severity: high
  - id: WS-MSG-03
    check: messages.max_size
    with: { limit: 64KiB, deflate: refuse }
    severity: high
  - id: WS-PROTO-01
    check: protocol.rfc6455
    severity: medium
"#;

/// How the target behaves after its weak spot is hit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AfterCrash {
    /// Every connection dropped, and every later one at once.
    StaysDown,
    /// Down for a second, then serving again (a supervisor restarted it).
    ComesBack,
}

/// Starts the target; returns its port.
async fn start(after: AfterCrash) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let down = Arc::new(AtomicBool::new(false));
    // Tells open connections the process died.
    let (died_tx, died_rx) = watch::channel(0u32);
    let died_tx = Arc::new(died_tx);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            if down.load(Ordering::SeqCst) {
                // The port is held (never reused), but nothing answers.
                drop(sock);
                continue;
            }
            let (down, died_tx, mut died_rx) = (down.clone(), died_tx.clone(), died_rx.clone());
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await else {
                    return;
                };
                let generation = *died_rx.borrow_and_update();
                loop {
                    let msg = tokio::select! {
                        m = ws.next() => m,
                        _ = died_rx.changed() => return,
                    };
                    let Some(Ok(msg)) = msg else { return };
                    let reply = match msg {
                        Message::Text(t) if t.contains(&"[".repeat(100)) => {
                            // The weak spot: the process dies with every connection.
                            down.store(true, Ordering::SeqCst);
                            died_tx.send_replace(generation + 1);
                            if after == AfterCrash::ComesBack {
                                let down = down.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                    down.store(false, Ordering::SeqCst);
                                });
                            }
                            return;
                        }
                        Message::Text(t) => {
                            let ok = serde_json::from_str::<serde_json::Value>(t.as_str())
                                .ok()
                                .is_some_and(|v| v["type"] == "payment" && v["amount"].is_number());
                            if ok {
                                r#"{"type":"ack"}"#
                            } else {
                                r#"{"type":"error"}"#
                            }
                        }
                        Message::Binary(_) => r#"{"type":"error"}"#,
                        _ => continue,
                    };
                    if ws.send(Message::text(reply)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

async fn audit(after: AfterCrash) -> RunReport {
    wsaudit::crypto::install_crypto_provider();
    let port = start(after).await;
    let target = format!(
        "target: fragile\nurl: ws://127.0.0.1:{port}/ws\norigin: https://app.example.com\nmessages:\n  valid: ['{VALID}']\n  accepted_when: {{ json: {{ \"/type\": \"ack\" }} }}\n  rejected_when: {{ json: {{ \"/type\": \"error\" }} }}\nlimits: {{ connect_timeout: 5s, case_timeout: 30s, max_parallel: 8, recovery: 4s }}\n"
    );
    let target = LoadedTarget::parse(SourceFile::from_text("fragile.yaml", target), &|_| None)
        .expect("target");
    let policy = LoadedPolicy::parse(SourceFile::from_text("down.yaml", POLICY)).expect("policy");
    let suites = wsaudit::config::check::load_suites(&[]).expect("suites");
    let plan = wsaudit::plan::compile(&policy, &target, &suites).expect("plan");
    let rt = Arc::new(TargetRuntime::new(&target).expect("runtime"));
    let (_tx, cancel) = watch::channel(false);
    run(&plan, &policy, rt, RunOptions::all(cancel)).await
}

/// Words a case's reason uses when it blames the target's crash.
fn blames_a_crash(reason: &str) -> bool {
    ["crash", "stopped accepting", "no longer", "target down"]
        .iter()
        .any(|w| reason.contains(w))
}

/// The case that killed the target fails with what it sent; no other case fails or errs
/// because of it.
fn the_killer_alone_is_blamed(report: &RunReport) {
    let killer = report
        .cases
        .iter()
        .find(|c| c.case_id == KILLER)
        .expect("the deep JSON case ran");
    assert_eq!(killer.verdict, Verdict::Fail, "{}", killer.reason);
    assert!(blames_a_crash(&killer.reason), "{}", killer.reason);
    assert!(
        killer
            .evidence
            .transcript
            .iter()
            .any(|l| l.contains("[[[[[[[[")),
        "the evidence shows what it sent: {:#?}",
        killer.evidence.transcript
    );
    for c in &report.cases {
        if c.case_id == KILLER || c.reason.starts_with(NOT_RUN_TARGET_DOWN) {
            continue;
        }
        assert_ne!(c.verdict, Verdict::Error, "{}: {}", c.case_id, c.reason);
        assert!(
            !blames_a_crash(&c.reason),
            "{} is blamed for a crash it did not cause: {}",
            c.case_id,
            c.reason
        );
    }
    assert_eq!(report.exit_code(), 1);
}

/// The killer's evidence says what became of the target after it.
fn killer_notes(report: &RunReport, what: &str) {
    let killer = report.cases.iter().find(|c| c.case_id == KILLER);
    assert!(
        killer.is_some_and(|k| k.evidence.transcript.iter().any(|l| l.contains(what))),
        "no `{what}` in {killer:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_stays_down_ends_the_destructive_cases_after_its_killer() {
    let report = audit(AfterCrash::StaysDown).await;
    the_killer_alone_is_blamed(&report);
    assert_eq!(report.target_down_after.as_deref(), Some(KILLER));
    let not_run: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.reason.starts_with(NOT_RUN_TARGET_DOWN))
        .collect();
    // The size and protocol cases run after the schema control's.
    assert!(not_run.len() >= 10, "{} not run", not_run.len());
    for c in not_run {
        assert_eq!(c.verdict, Verdict::Skipped, "{}", c.case_id);
        assert_eq!(c.reason, format!("{NOT_RUN_TARGET_DOWN}{KILLER}"));
    }
    killer_notes(&report, "did not come back within limits.recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_comes_back_runs_the_remaining_cases() {
    let report = audit(AfterCrash::ComesBack).await;
    the_killer_alone_is_blamed(&report);
    assert_eq!(report.target_down_after, None);
    assert!(
        report
            .cases
            .iter()
            .all(|c| !c.reason.starts_with(NOT_RUN_TARGET_DOWN)),
        "every case runs once the target is back"
    );
    killer_notes(&report, "accepted connections again");
}
