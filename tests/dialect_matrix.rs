//! The weaken and flaw matrices in every dialect: the reference server speaking Socket.IO,
//! graphql-transport-ws, STOMP and SignalR (`serve --dialect`) passes the whole plan, and with
//! each defence switched off or subtly broken the matching controls fail, as on the raw server
//! (tests/attack_matrix.rs, which also shows every other control passing on each). A switch
//! applies to a dialect where the dialect's code runs between the attack and the defence; the
//! few that act only on TLS or on the ticket endpoint's HTTP response are proven once, on the
//! raw server. Each weakened or flawed server runs the cases of its controls (and their
//! positive controls): the full plan per row would take minutes of a CI machine for nothing
//! the full-server runs and the raw matrix do not already show.

#[path = "common/matrices.rs"]
mod matrices;

use matrices::*;
use wsaudit::demo::audit_server_only;
use wsaudit::dialect::DialectName;
use wsaudit::report::RunReport;
use wsaudit::server::flaw::Flaws;
use wsaudit::server::{ServerOptions, Weakened};

/// Every dialect besides raw.
const DIALECTS: [DialectName; 4] = [
    DialectName::Socketio,
    DialectName::GraphqlTransportWs,
    DialectName::Stomp,
    DialectName::SignalrJson,
];

/// Switches whose defence no dialect code reaches: the TLS versions and certificate, the
/// cookie the ticket endpoint sets, and extension negotiation under `deflate: refuse`.
const TRANSPORT_ONLY: &[&str] = &[
    "tls-version",
    "tls-cert",
    "cookie-samesite",
    "deflate",
    "cookie-lax",
];

/// Controls that fail besides the raw matrix's in a dialect, and why.
const DIALECT_EXTRA: &[(&str, &str, &str)] = &[(
    "cookie-auth",
    "WS-AUTH-01",
    "a connection the session cookie authenticated is connected again whatever ticket its \
     CONNECT carries, another session's included (a raw server reads that auth message as an \
     invalid business message and answers with an error)",
)];

/// Audits the reference server in `dialect`, weakened and flawed as given, running the
/// controls `only` names (all when empty).
async fn audit(dialect: DialectName, weaken: &str, flaw: &str, only: &[&str]) -> RunReport {
    wsaudit::crypto::install_crypto_provider();
    let mut opts = ServerOptions::local(policy(Fast));
    opts.dialect = dialect;
    opts.weakened = weaken.parse::<Weakened>().expect("weaken switch");
    opts.flaws = flaw.parse::<Flaws>().expect("flaw");
    let (report, _) = audit_server_only(opts, only).await.expect("audit runs");
    report
}

/// One row to run: the dialect, the switch, and the controls that must fail.
struct Row {
    dialect: DialectName,
    weaken: &'static str,
    flaw: &'static str,
    failing: Vec<&'static str>,
}

/// Where a report differs from its row: a control that should fail and does not, or another
/// control of the run that does not pass (attestations are skipped).
fn problems(row: &Row, report: &RunReport) -> Vec<String> {
    let verdicts = control_verdicts(report);
    let mut out = Vec::new();
    for control in &row.failing {
        if !verdicts.contains_key(*control) {
            out.push(format!(
                "--dialect {}: control {control} did not run",
                row.dialect
            ));
        }
    }
    for (id, verdict) in &verdicts {
        let expected = expected_verdict(id, &row.failing);
        if *verdict != expected {
            out.push(format!(
                "--dialect {} --weaken '{}' --flaw '{}': control {id} is {verdict:?}, expected {expected:?}\n{}",
                row.dialect,
                row.weaken,
                row.flaw,
                troubles(report)
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dialect_passes_whole_and_fails_exactly_each_weakened_or_flawed_control() {
    let mut rows: Vec<Row> = Vec::new();
    for dialect in DIALECTS {
        rows.push(Row {
            dialect,
            weaken: "",
            flaw: "",
            failing: Vec::new(),
        });
        for (switch, which, failing, inconclusive) in MATRIX {
            if TRANSPORT_ONLY.contains(switch)
                || *which != Fast
                || matches!(inconclusive, Inconclusive::AllOthers)
            {
                continue;
            }
            let mut failing = failing.to_vec();
            failing.extend(
                DIALECT_EXTRA
                    .iter()
                    .filter(|(s, ..)| switch.split(',').any(|one| one == *s))
                    .map(|(_, control, _)| *control),
            );
            rows.push(Row {
                dialect,
                weaken: switch,
                flaw: "",
                failing,
            });
        }
        for (flaw, control, _) in FLAW_MATRIX {
            if TRANSPORT_ONLY.contains(flaw) {
                continue;
            }
            rows.push(Row {
                dialect,
                weaken: "",
                flaw,
                failing: vec![control],
            });
        }
    }
    assert!(rows.len() >= 4 * 35, "{} rows", rows.len());
    let mut found = Vec::new();
    // Three servers at a time: their cases mostly wait on timers, and a 2-core machine keeps
    // up with three audits' traffic.
    for chunk in rows.chunks(3) {
        let reports = futures_util::future::join_all(
            chunk
                .iter()
                .map(|r| audit(r.dialect, r.weaken, r.flaw, &r.failing)),
        )
        .await;
        for (row, report) in chunk.iter().zip(reports) {
            if row.weaken.is_empty() && row.flaw.is_empty() {
                // The full server: every case passes.
                for c in &report.cases {
                    let expected = full_server_verdict(c);
                    if c.verdict != expected {
                        found.push(format!(
                            "--dialect {}: full server, {} is {:?}: {}",
                            row.dialect, c.case_id, c.verdict, c.reason
                        ));
                    }
                }
            }
            found.extend(problems(row, &report));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
