//! Compiling policy x target x suites: determinism, content of the plan, secrets, user suites.

use std::path::{Path, PathBuf};

use wsaudit::config::check::load_suites;
use wsaudit::config::{LoadedPolicy, LoadedTarget, SourceFile};
use wsaudit::plan::inputs::compile_files;
use wsaudit::plan::{Expectation, Plan, Role, Step, compile};

const TOKEN: &str = "tok-s3cr3t-value";

fn env(name: &str) -> Option<String> {
    (name == "WSAUDIT_TEST_TOKEN").then(|| TOKEN.to_string())
}

fn plan_for(policy: &str, suites: &[PathBuf]) -> Plan {
    compile_files(
        Path::new(policy),
        Path::new("tests/compile_data/target.yaml"),
        suites,
        &env,
    )
    .unwrap_or_else(|e| panic!("{policy} compiles:\n{e}"))
}

#[test]
fn compiling_twice_gives_identical_bytes_for_every_shipped_policy() {
    for policy in [
        "policies/fintech.yaml",
        "policies/reference-fast.yaml",
        "policies/baseline.yaml",
    ] {
        let a = plan_for(policy, &[]).to_yaml();
        let b = plan_for(policy, &[]).to_yaml();
        assert!(a == b, "{policy}: two compilations differ");
        assert!(a.contains("case_id:"), "{policy}: the plan has no case");
    }
}

#[test]
fn every_control_gets_cases_and_every_family_a_positive_control() {
    let plan = plan_for("policies/fintech.yaml", &[]);
    let policy = LoadedPolicy::load(Path::new("policies/fintech.yaml")).expect("policy loads");
    for control in &policy.policy.controls {
        let cases: Vec<_> = plan.cases_of(&control.id).collect();
        assert!(!cases.is_empty(), "{} has no case", control.id);
        if control.check != "attestation" {
            assert!(
                cases.iter().any(|c| c.role == Role::Positive),
                "{} has no positive control",
                control.id
            );
        }
    }
    let mut ids: Vec<&str> = plan.cases.iter().map(|c| c.case_id.as_str()).collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "case ids are unique");
}

#[test]
fn origin_look_alikes_and_schema_violations_are_derived() {
    let plan = plan_for("policies/fintech.yaml", &[]);
    let ids: Vec<&str> = plan.cases.iter().map(|c| c.case_id.as_str()).collect();
    for expected in [
        "WS-ORIGIN-01/ORIGIN-SUFFIX[https://app.example.com.evil.example]",
        "WS-ORIGIN-01/ORIGIN-PREFIX[https://evilapp.example.com]",
        "WS-ORIGIN-01/ORIGIN-REGEX-DOT[https://appXexample.com]",
        "WS-ORIGIN-01/ORIGIN-SUBDOMAIN[https://evil.app.example.com]",
        "WS-ORIGIN-01/ORIGIN-SCHEME[http://app.example.com]",
        "WS-ORIGIN-01/ORIGIN-PORT[https://app.example.com:8443]",
        "WS-MSG-01/MSG-SCHEMA[missing-amount]",
        "WS-MSG-01/MSG-SCHEMA[maximum-amount]",
        "WS-MSG-01/MSG-SCHEMA[pattern-reference]",
        "WS-MSG-01/MSG-SCHEMA[enum-currency]",
        "WS-MSG-01/MSG-SCHEMA[extra-field]",
        "WS-LOG-01/ATTESTED",
    ] {
        assert!(ids.contains(&expected), "missing {expected}");
    }
    let refused = plan
        .cases
        .iter()
        .find(|c| c.case_id == "WS-ORIGIN-01/ORIGIN-FOREIGN")
        .expect("foreign origin case");
    assert!(matches!(
        refused.expect.as_slice(),
        [Expectation::HandshakeRefused(r)] if r.status == Some(403)
    ));
}

#[test]
fn timing_cases_state_bound_and_slack_and_fit_their_deadline() {
    let plan = plan_for("policies/reference-fast.yaml", &[]);
    let stale = plan
        .cases
        .iter()
        .find(|c| c.case_id == "WS-HB-01/HB-STALE-CLOSED")
        .expect("heartbeat case");
    let Some(Expectation::Closed(closed)) = stale.expect.first() else {
        panic!("expected a closed expectation: {:?}", stale.expect);
    };
    // interval_max 500ms x missed_max 2, plus a stated slack of 1s.
    assert_eq!(closed.within.bound, std::time::Duration::from_secs(1));
    assert_eq!(closed.within.slack, std::time::Duration::from_secs(1));
    for case in &plan.cases {
        let waits: std::time::Duration = case
            .steps
            .iter()
            .map(Step::planned_time)
            .chain(case.expect.iter().map(Expectation::planned_time))
            .sum();
        assert!(
            case.deadline > waits,
            "{}: deadline below its waits",
            case.case_id
        );
    }
}

#[test]
fn secrets_never_reach_the_printed_plan() {
    let plan = plan_for("policies/fintech.yaml", &[]);
    assert!(plan.secrets.leaks(&format!("Bearer {TOKEN}")));
    let text = plan.to_yaml();
    assert!(!text.contains(TOKEN), "the token leaked into the plan");
    assert!(
        text.contains("Authorization: '***'"),
        "the header is shown redacted"
    );
}

#[test]
fn a_printed_plan_without_secrets_reads_back_identically() {
    let policy = LoadedPolicy::load(Path::new("policies/reference-fast.yaml")).expect("policy");
    let target = LoadedTarget::parse(
        SourceFile::from_text(
            "t.yaml",
            "target: t\nurl: wss://h.example/ws\norigin: https://app.example.com\nmessages:\n  valid: ['{\"type\":\"payment\",\"amount\":1,\"reference\":\"TX-000001\",\"currency\":\"EUR\"}']\n",
        ),
        &|_| None,
    )
    .expect("target");
    let suites = load_suites(&[]).expect("suites");
    let plan = compile(&policy, &target, &suites).expect("compiles");
    let back: Plan = serde_yaml::from_str(&plan.to_yaml()).expect("the plan reads back");
    assert_eq!(back, plan);
}

#[test]
fn user_suites_add_cases_and_new_checks() {
    let plan = plan_for(
        "policies/fintech.yaml",
        &[PathBuf::from("tests/compile_data/user-suites")],
    );
    assert!(plan.cases.iter().any(|c| c.case_id
        == "WS-ORIGIN-01/ORIGIN-UPPERCASE-SCHEME[https://app.example.com]"
        && c.family == "origin-extra"));
    let custom = plan_for(
        "tests/compile_data/custom-policy.yaml",
        &[PathBuf::from("tests/compile_data/custom-check")],
    );
    let ids: Vec<&str> = custom.cases.iter().map(|c| c.case_id.as_str()).collect();
    assert_eq!(ids, ["GQL-01/GQL-NORMAL", "GQL-01/GQL-INTROSPECTION"]);
    let err = compile_files(
        Path::new("tests/compile_data/custom-policy.yaml"),
        Path::new("tests/compile_data/target.yaml"),
        &[],
        &env,
    )
    .expect_err("without the suite the check is unknown");
    assert!(err.to_string().contains(
        "custom-policy.yaml:5:12: control GQL-01: unknown check `graphql.introspection`"
    ));
}

#[test]
fn a_target_lacking_what_a_family_needs_is_a_located_error() {
    let err = compile_files(
        Path::new("policies/baseline.yaml"),
        Path::new("tests/compile_data/no-messages-target.yaml"),
        &[],
        &env,
    )
    .expect_err("cases that send business data need a valid message");
    assert_eq!(
        err.to_string(),
        "error: tests/compile_data/no-messages-target.yaml:1:1: messages.valid is missing: expected at least one valid business message: control WS-BASE-ORIGIN (origin.allowlist) needs it for case ORIGIN-FOREIGN-WITH-SESSION-COOKIE\n  |\n1 | target: bare\n  | ^"
    );
}

#[test]
fn compiling_a_control_no_suite_serves_is_an_error() {
    let source =
        SourceFile::read(Path::new("tests/compile_data/custom-policy.yaml")).expect("readable");
    let policy =
        LoadedPolicy::parse_with_checks(source, &["graphql.introspection"]).expect("loads");
    let target = LoadedTarget::parse(
        SourceFile::from_text("t.yaml", include_str!("compile_data/target.yaml")),
        &env,
    )
    .expect("target");
    let err = compile(&policy, &target, &load_suites(&[]).expect("suites")).expect_err("no suite");
    assert!(err.to_string().starts_with(
        "error: tests/compile_data/custom-policy.yaml:5:12: control GQL-01: unknown check `graphql.introspection`"
    ), "{err}");
}
