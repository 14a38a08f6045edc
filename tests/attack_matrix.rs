//! The weaken and flaw matrices: the proof that no check is vacuous.
//!
//! Flaws: real servers rarely lack a defence outright; they have one that is subtly wrong. The
//! reference server with each `--flaw` (a realistic partial implementation) is audited with the
//! whole plan: exactly the flawed control fails, through the case that catches that flaw, and
//! every other control still passes.
//!
//! The whole reference-fast plan runs against the full reference server (every case passes)
//! and against a server weakened on each defence in turn: exactly the matching controls fail,
//! the documented inconclusive ones are `error`, and every other control passes. Every attack
//! case of the plan fails against at least one weakened server, and every switch of the server
//! ([`Defence::ALL`]) has its row. A switch that only matters under another policy (`deflate`,
//! under `deflate: refuse`) runs under that policy, whose full audit passes as well; an attack on
//! the target file itself (a credential in its URL) runs with a target shaped that way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use wsaudit::attacks::TargetRuntime;
use wsaudit::config::SourceFile;
use wsaudit::config::check::load_suites;
use wsaudit::config::target::LoadedTarget;
use wsaudit::demo::audit_reference;
use wsaudit::demo::audit_server;
use wsaudit::report::{CaseResult, Role, RunReport, Verdict};
use wsaudit::run::progress::Progress;
use wsaudit::run::{RunOptions, run};
use wsaudit::server::flaw::{Flaw, Flaws};
use wsaudit::server::{self, Defence, ServerOptions, Weakened};

#[path = "common/matrices.rs"]
mod matrices;
use matrices::*;

/// Audits a reference server weakened on `weaken` with the whole plan of `which`.
async fn audit(weaken: &str, which: Policy) -> RunReport {
    wsaudit::crypto::install_crypto_provider();
    let weakened = weaken.parse::<Weakened>().expect("weaken switch");
    let (report, _secrets) = audit_reference(&policy(which), weakened)
        .await
        .expect("audit runs");
    report
}

/// Audits a reference server enforcing `server_policy` (weakened on `weaken`) with the cases
/// `only` selects of `plan_policy`'s plan, against the target file the server emits as
/// `edit_target` rewrites it; `env` fills the target's `${VAR}`s.
async fn audit_custom(
    server_policy: Policy,
    plan_policy: Policy,
    weaken: &str,
    only: &[&str],
    edit_target: impl Fn(&mut serde_yaml::Mapping, &server::ServerHandle),
    env: &dyn Fn(&str) -> Option<String>,
) -> RunReport {
    wsaudit::crypto::install_crypto_provider();
    let mut opts = ServerOptions::local(policy(server_policy));
    opts.weakened = weaken.parse::<Weakened>().expect("weaken switch");
    let handle = server::start(opts).await.expect("server starts");
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("reference.yaml");
    handle.write_target(&path).expect("target written");
    let mut yaml: serde_yaml::Mapping =
        serde_yaml::from_str(&std::fs::read_to_string(&path).expect("target readable"))
            .expect("emitted target is a mapping");
    edit_target(&mut yaml, &handle);
    std::fs::write(
        &path,
        serde_yaml::to_string(&yaml).expect("target serialises"),
    )
    .expect("target rewritten");
    let target = LoadedTarget::parse(SourceFile::read(Path::new(&path)).expect("read"), env)
        .expect("edited target loads");
    let suites = load_suites(&[]).expect("shipped suites");
    let plan = wsaudit::plan::compile(&policy(plan_policy), &target, &suites).expect("compiles");
    let rt = Arc::new(TargetRuntime::new(&target).expect("runtime"));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let opts = RunOptions {
        only: only.iter().map(|s| s.to_string()).collect(),
        partition: None,
        max_parallel: None,
        cancel,
        progress: Progress::Silent,
        stop_on_crash: false,
    };
    run(&plan, &policy(plan_policy), rt, opts).await
}

/// The environment variable the URL-token target reads its token from.
const URL_TOKEN_VAR: &str = "WSAUDIT_TEST_URL_TOKEN";

/// A target that authenticates the way SPEC lets a target describe it and the URL-token
/// control forbids: `url: wss://host/ws?token=${TOKEN}`, no ticket flow, no API credential.
async fn audit_url_token_target(weaken: &str, only: &[&str]) -> RunReport {
    let token = std::sync::Mutex::new(String::new());
    let report = audit_custom(
        Fast,
        Fast,
        weaken,
        only,
        |yaml, handle| {
            *token.lock().expect("token lock") = handle.api_token.clone();
            let url = format!("{}?token=${{{URL_TOKEN_VAR}}}", handle.ws_url());
            yaml.insert("url".into(), url.into());
            yaml.remove("auth");
        },
        &|name| (name == URL_TOKEN_VAR).then(|| token.lock().expect("token lock").clone()),
    )
    .await;
    let token = token.lock().expect("token lock").clone();
    for c in &report.cases {
        assert!(
            !c.reason.contains(&token),
            "{}: the URL token leaked into the reason",
            c.case_id
        );
    }
    report
}

/// What the audit of the URL-token target must show: its legitimate flow works, the cases
/// needing an API credential it does not have are skipped (never passed with `?token=`), and
/// the case on its own URL fails. Returns that case's id.
fn url_token_target_verdicts(report: &RunReport) -> &str {
    let legit = case(report, "WS-AUTH-02/URLTOKEN-LEGITIMATE");
    assert_eq!(legit.verdict, Verdict::Pass, "{}", troubles(report));
    let creds: Vec<&CaseResult> = report
        .cases
        .iter()
        .filter(|c| c.case_id.starts_with("WS-AUTH-02/URLTOKEN-CREDENTIAL["))
        .collect();
    // The policy's five names and the built-in ones it lacks.
    let names = wsaudit::plan::derive::url_params(
        &["token", "access_token", "ticket", "auth", "jwt"].map(String::from),
    );
    assert_eq!(creds.len(), names.len(), "{}", troubles(report));
    for c in creds {
        assert_eq!(c.verdict, Verdict::Skipped, "{}: {}", c.case_id, c.reason);
        assert!(
            c.reason.contains("{{credential}} has no value"),
            "{}: {}",
            c.case_id,
            c.reason
        );
    }
    let own_url = case(report, "WS-AUTH-02/URLTOKEN-TARGET-URL");
    assert_eq!(own_url.verdict, Verdict::Fail, "{}", troubles(report));
    assert!(
        own_url.reason.contains("?token= in its url"),
        "{}",
        own_url.reason
    );
    &own_url.case_id
}

fn case<'a>(r: &'a RunReport, id: &str) -> &'a CaseResult {
    r.cases
        .iter()
        .find(|c| c.case_id == id)
        .unwrap_or_else(|| panic!("no case {id} in the report:\n{}", troubles(r)))
}

#[test]
fn the_matrix_has_a_row_for_every_switch_of_the_server() {
    // Rows of one switch each, and rows combining switches (a defence that only matters
    // when another is off) whose switches each have their own row.
    let (combined, rows): (Vec<&str>, Vec<&str>) = MATRIX
        .iter()
        .map(|(switch, ..)| *switch)
        .partition(|s| s.contains(','));
    let switches = Defence::ALL.iter().map(|d| d.name());
    assert_one_row_each(&rows, switches, "--weaken");
    for row in combined {
        assert!(
            row.split(',').all(|one| rows.contains(&one)),
            "the combined row {row} names a switch without its own row"
        );
    }
}

/// Each switch has exactly one row, and each row is a switch.
fn assert_one_row_each<'a>(rows: &[&'a str], switches: impl Iterator<Item = &'a str>, what: &str) {
    let unique: BTreeSet<&str> = rows.iter().copied().collect();
    assert_eq!(unique.len(), rows.len(), "a {what} switch has two rows");
    let switches: BTreeSet<&str> = switches.collect();
    assert_eq!(
        unique, switches,
        "every {what} switch needs a matrix row (and every row a switch)"
    );
}

/// Asserts every case of a full-server report gets [`full_server_verdict`].
fn assert_all_pass(full: &RunReport, which: Policy) {
    for c in &full.cases {
        let expected = full_server_verdict(c);
        assert_eq!(
            c.verdict,
            expected,
            "full server, {which:?} policy, {}: {}\n{}",
            c.case_id,
            c.reason,
            troubles(full)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_fails_against_its_weakened_server_and_passes_against_the_full_one() {
    let mut attacks: BTreeSet<String> = BTreeSet::new();
    for which in [Fast, DeflateRefused] {
        let full = audit("", which).await;
        assert_all_pass(&full, which);
        if which == DeflateRefused {
            let declined = case(&full, "WS-MSG-03/SIZE-DEFLATE-DECLINED");
            assert!(
                declined
                    .reason
                    .contains("without negotiating any extension"),
                "{}",
                declined.reason
            );
        }
        attacks.extend(
            full.cases
                .iter()
                .filter(|c| c.role == Role::Attack)
                .map(|c| c.case_id.clone()),
        );
    }
    assert!(
        attacks.len() > 60,
        "the plans have {} attack cases",
        attacks.len()
    );
    assert!(
        attacks.contains("WS-MSG-03/SIZE-DEFLATE-DECLINED"),
        "the deflate: refuse plan has the declined-deflate case"
    );

    // Two weakened servers at a time: fast enough, and light on a 2-core CI machine.
    let mut caught: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for pair in MATRIX.chunks(2) {
        let runs = futures_util::future::join_all(
            pair.iter()
                .map(|(switch, which, _, _)| audit(switch, *which)),
        )
        .await;
        for ((switch, _, failing, inconclusive), report) in pair.iter().zip(runs) {
            let verdicts = control_verdicts(&report);
            for control in CONTROLS {
                let expected = if failing.contains(control) {
                    Verdict::Fail
                } else {
                    match inconclusive {
                        Inconclusive::AllOthers => Verdict::Error,
                        Inconclusive::None => Verdict::Pass,
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

    assert_eq!(
        caught
            .get("WS-MSG-03/SIZE-DEFLATE-DECLINED")
            .map(Vec::as_slice),
        Some(&["deflate"][..]),
        "only the deflate switch negotiates the compression the policy refuses"
    );

    // Two connections racing to redeem one ticket: a server whose tickets can be used again
    // lets both in.
    let race = caught
        .get("WS-AUTH-01/TICKET-RACE")
        .expect("the race case is in the plan and some switch makes it fail");
    assert!(
        race.contains(&"ticket-replay"),
        "the race fails against --weaken ticket-replay (caught by {race:?})"
    );

    // A target whose own URL carries the credential, against a server that honours it.
    let url_target = audit_url_token_target("url-token", &["WS-AUTH-01", "WS-AUTH-02"]).await;
    let own_url = url_token_target_verdicts(&url_target);
    caught
        .entry(own_url.to_string())
        .or_default()
        .push("url-token (URL-token target)");
    // The same target lacks the ticket flow the policy requires: the ticket control fails on
    // it, with what its legitimate client does instead; the ticket cases are not applicable.
    let flow = case(&url_target, "WS-AUTH-01/TICKET-FLOW");
    assert_eq!(flow.verdict, Verdict::Fail, "{}", troubles(&url_target));
    assert!(
        flow.reason.contains("with a credential in its URL")
            && flow
                .reason
                .contains("sent a business message with no ticket"),
        "{}",
        flow.reason
    );
    for c in url_target
        .cases
        .iter()
        .filter(|c| c.control_id == "WS-AUTH-01" && c.case_id != flow.case_id)
    {
        assert_eq!(c.verdict, Verdict::Skipped, "{}: {}", c.case_id, c.reason);
    }
    caught
        .entry(flow.case_id.clone())
        .or_default()
        .push("url-token (URL-token target)");

    let uncaught: Vec<&String> = attacks
        .iter()
        .filter(|a| !caught.contains_key(*a))
        .filter(|a| !FLAW_PROVEN.iter().any(|p| a.starts_with(p)))
        .filter(|a| !OLD_TLS_PROVEN.iter().any(|p| a.starts_with(p)))
        .collect();
    assert!(
        uncaught.is_empty(),
        "attack cases no weakened server makes fail: {uncaught:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deflate_bomb_is_skipped_when_the_server_declines_deflate() {
    // The plan allows deflate (so it has the bomb), the server's policy refuses it.
    let report = audit_custom(DeflateRefused, Fast, "", &["WS-MSG-03"], |_, _| {}, &|_| {
        None
    })
    .await;
    let bomb = case(&report, "WS-MSG-03/SIZE-DEFLATE-BOMB");
    assert_eq!(bomb.verdict, Verdict::Skipped, "{}", bomb.reason);
    assert!(
        bomb.reason.contains("did not negotiate permessage-deflate"),
        "{}",
        bomb.reason
    );
    for c in report.cases.iter().filter(|c| c.case_id != bomb.case_id) {
        assert_eq!(c.verdict, Verdict::Pass, "{}: {}", c.case_id, c.reason);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_authentication_fails_every_auth_control_never_errs() {
    // A server that needs no credential, described as it is: no `auth` at all.
    let report = audit_custom(
        Fast,
        Fast,
        "auth-required",
        &["WS-AUTH-01", "WS-AUTH-02", "WS-AUTH-03"],
        |yaml, _| {
            yaml.remove("auth");
        },
        &|_| None,
    )
    .await;
    let verdicts = control_verdicts(&report);
    for control in ["WS-AUTH-01", "WS-AUTH-02", "WS-AUTH-03"] {
        assert_eq!(
            verdicts.get(control),
            Some(&Verdict::Fail),
            "{control}\n{}",
            troubles(&report)
        );
    }
    assert_eq!(report.exit_code(), 1);
    let flow = case(&report, "WS-AUTH-01/TICKET-FLOW");
    assert!(
        flow.reason.contains("without any credential")
            && flow
                .reason
                .contains("sent a business message with no ticket")
            && flow.reason.contains("\"type\":\"ack\""),
        "{}",
        flow.reason
    );
    let before_auth = case(&report, "WS-AUTH-03/UNAUTH-MESSAGE-BEFORE-AUTH");
    assert!(
        before_auth.reason.contains("accepted"),
        "{}",
        before_auth.reason
    );
}

async fn audit_flawed(flaw: &str) -> RunReport {
    wsaudit::crypto::install_crypto_provider();
    let mut opts = ServerOptions::local(policy(Fast));
    opts.flaws = flaw.parse::<Flaws>().expect("flaw name");
    let (report, _) = audit_server(opts).await.expect("audit runs");
    report
}

#[test]
fn the_matrix_has_a_row_for_every_flaw_of_the_server() {
    let rows: Vec<&str> = FLAW_MATRIX.iter().map(|(flaw, ..)| *flaw).collect();
    assert_one_row_each(&rows, Flaw::ALL.iter().map(|f| f.name()), "--flaw");
    assert!(FLAW_MATRIX.len() >= 20, "at least 20 flaws");
    // Every family with a testable control has at least one flaw.
    let families: BTreeSet<&str> = FLAW_MATRIX.iter().map(|(_, control, _)| *control).collect();
    for control in CONTROLS {
        assert!(families.contains(control), "no flaw of {control}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_flaw_fails_exactly_its_control_through_its_variant() {
    let mut problems = Vec::new();
    let mut caught: BTreeSet<String> = BTreeSet::new();
    // Two flawed servers at a time: fast enough, and light on a 2-core CI machine.
    for pair in FLAW_MATRIX.chunks(2) {
        let runs =
            futures_util::future::join_all(pair.iter().map(|(flaw, ..)| audit_flawed(flaw))).await;
        for ((flaw, control, case), report) in pair.iter().zip(runs) {
            for (id, verdict) in &control_verdicts(&report) {
                let expected = expected_verdict(id, &[control]);
                if *verdict != expected {
                    problems.push(format!(
                        "--flaw {flaw}: control {id} is {verdict:?}, expected {expected:?}\n{}",
                        troubles(&report)
                    ));
                }
            }
            caught.extend(
                report
                    .cases
                    .iter()
                    .filter(|c| c.verdict == Verdict::Fail)
                    .map(|c| c.case_id.clone()),
            );
            match report.cases.iter().find(|c| c.case_id == *case) {
                Some(c) if c.verdict == Verdict::Fail => {}
                Some(c) => problems.push(format!(
                    "--flaw {flaw}: {case} is {:?} ({}), expected Fail",
                    c.verdict, c.reason
                )),
                None => problems.push(format!("--flaw {flaw}: no case {case} in the plan")),
            }
        }
    }
    for id in FLAW_PROVEN {
        if !caught.iter().any(|c| c.starts_with(id)) {
            problems.push(format!("no flawed server makes {id} fail"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
