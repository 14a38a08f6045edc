//! The weaken matrix: the proof that no check is vacuous.
//!
//! The whole reference-fast plan runs against the full reference server (every case passes)
//! and against a server weakened on each defence in turn: exactly the matching controls fail,
//! the documented inconclusive ones are `error`, and every other control passes. Every attack
//! case of the plan fails against at least one weakened server.

use std::collections::{BTreeMap, BTreeSet};
use wsaudit::config::LoadedPolicy;
use wsaudit::demo::audit_reference;
use wsaudit::report::{Role, RunReport, Verdict};
use wsaudit::server::Weakened;

/// Every control of reference-fast.
const CONTROLS: &[&str] = &[
    "WS-TLS-01",
    "WS-ORIGIN-01",
    "WS-AUTH-01",
    "WS-AUTH-02",
    "WS-AUTH-03",
    "WS-MSG-01",
    "WS-MSG-02",
    "WS-MSG-03",
    "WS-HB-01",
    "WS-COOKIE-01",
    "WS-PROTO-01",
];

/// Switch, controls that must fail, controls that must be inconclusive (with why).
const MATRIX: &[(&str, &[&str], Inconclusive)] = &[
    ("tls", &["WS-TLS-01"], Inconclusive::None),
    ("tls-version", &["WS-TLS-01"], Inconclusive::None),
    // A certificate that does not verify stops every other case: the harness does not send
    // credentials to a server it cannot authenticate.
    ("tls-cert", &["WS-TLS-01"], Inconclusive::AllOthers),
    ("origin", &["WS-ORIGIN-01"], Inconclusive::None),
    ("url-token", &["WS-AUTH-02"], Inconclusive::None),
    ("ticket-replay", &["WS-AUTH-01"], Inconclusive::None),
    ("ticket-expiry", &["WS-AUTH-01"], Inconclusive::None),
    ("ticket-validation", &["WS-AUTH-01"], Inconclusive::None),
    ("ticket-binding", &["WS-AUTH-01"], Inconclusive::None),
    // A server that needs no credential cannot show whether a URL credential authenticates:
    // the URL-token baseline fails and WS-AUTH-03 reports the missing authentication.
    (
        "auth-required",
        &["WS-AUTH-03"],
        Inconclusive::Some(&["WS-AUTH-02"]),
    ),
    ("cookie-auth", &["WS-AUTH-03"], Inconclusive::None),
    ("unauth-timeout", &["WS-AUTH-03"], Inconclusive::None),
    ("schema", &["WS-MSG-01"], Inconclusive::None),
    ("rate-limit", &["WS-MSG-02"], Inconclusive::None),
    ("max-size", &["WS-MSG-03"], Inconclusive::None),
    ("heartbeat", &["WS-HB-01"], Inconclusive::None),
    ("cookie-samesite", &["WS-COOKIE-01"], Inconclusive::None),
    ("protocol-strict", &["WS-PROTO-01"], Inconclusive::None),
];

#[derive(Clone, Copy)]
enum Inconclusive {
    None,
    Some(&'static [&'static str]),
    AllOthers,
}

fn policy() -> LoadedPolicy {
    let path = format!(
        "{}/policies/reference-fast.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    LoadedPolicy::load(std::path::Path::new(&path)).expect("reference-fast loads")
}

/// Audits a reference server weakened on `weaken` with the whole reference-fast plan.
async fn audit(weaken: &str) -> RunReport {
    wsaudit::tls::install_crypto_provider();
    let weakened = weaken.parse::<Weakened>().expect("weaken switch");
    let (report, _secrets) = audit_reference(&policy(), weakened)
        .await
        .expect("audit runs");
    report
}

fn control_verdicts(r: &RunReport) -> BTreeMap<String, Verdict> {
    r.controls
        .iter()
        .map(|c| (c.id.clone(), c.verdict))
        .collect()
}

/// Failing and inconclusive cases with their reasons, for assertion messages.
fn troubles(r: &RunReport) -> String {
    r.cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
        .map(|c| format!("  {:?} {}: {}", c.verdict, c.case_id, c.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_fails_against_its_weakened_server_and_passes_against_the_full_one() {
    let full = audit("").await;
    for c in &full.cases {
        let expected = if c.role == Role::Attestation {
            Verdict::Skipped
        } else {
            Verdict::Pass
        };
        assert_eq!(
            c.verdict,
            expected,
            "full server, {}: {}\n{}",
            c.case_id,
            c.reason,
            troubles(&full)
        );
    }
    let attacks: BTreeSet<String> = full
        .cases
        .iter()
        .filter(|c| c.role == Role::Attack)
        .map(|c| c.case_id.clone())
        .collect();
    assert!(
        attacks.len() > 60,
        "the plan has {} attack cases",
        attacks.len()
    );

    // Two weakened servers at a time: fast enough, and light on a 2-core CI machine.
    let mut caught: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for pair in MATRIX.chunks(2) {
        let runs =
            futures_util::future::join_all(pair.iter().map(|(switch, _, _)| audit(switch))).await;
        for ((switch, failing, inconclusive), report) in pair.iter().zip(runs) {
            let verdicts = control_verdicts(&report);
            for control in CONTROLS {
                let expected = if failing.contains(control) {
                    Verdict::Fail
                } else {
                    match inconclusive {
                        Inconclusive::AllOthers => Verdict::Error,
                        Inconclusive::Some(ids) if ids.contains(control) => Verdict::Error,
                        _ => Verdict::Pass,
                    }
                };
                assert_eq!(
                    verdicts.get(*control),
                    Some(&expected),
                    "--weaken {switch}: control {control}\n{}",
                    troubles(&report)
                );
            }
            for c in report.cases.iter().filter(|c| c.verdict == Verdict::Fail) {
                assert!(
                    failing.contains(&c.control_id.as_str()),
                    "--weaken {switch} made {} of another control fail",
                    c.case_id
                );
                caught.entry(c.case_id.clone()).or_default().push(switch);
            }
        }
    }
    let uncaught: Vec<&String> = attacks
        .iter()
        .filter(|a| !caught.contains_key(*a))
        .collect();
    assert!(
        uncaught.is_empty(),
        "attack cases no weakened server makes fail: {uncaught:?}"
    );
}
