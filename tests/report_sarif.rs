//! SARIF: validated against the official SARIF 2.1.0 JSON schema (OASIS, as shipped in the
//! serde-sarif crate and committed under `tests/schemas/`), plus the fields code scanning reads:
//! rules, results located at the control, fingerprints, the run's category and waived failures
//! as suppressed results.

use std::time::Duration;

use serde_json::Value;
use wsaudit::report::sample::hostile_report;
use wsaudit::report::{Verdict, sarif};

/// The `run.language` / `toolComponent.language` pattern of the 2.1.0 schema as published: it
/// has a stray `]` (oasis-tcs/sarif-spec issue 488) that the validator refuses to compile.
const LANGUAGE_PATTERN_2_1_0: &str = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
/// The same pattern as corrected by SARIF 2.1.0 Errata 01.
const LANGUAGE_PATTERN_ERRATA_01: &str = r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#;

/// The official schema (committed byte for byte as published) with Errata 01 applied.
fn sarif_schema() -> Value {
    let published = include_str!("schemas/sarif-schema-2.1.0.json");
    assert_eq!(
        published.matches(LANGUAGE_PATTERN_2_1_0).count(),
        2,
        "the committed schema changed: revisit the errata fix-up"
    );
    let corrected = published.replace(LANGUAGE_PATTERN_2_1_0, LANGUAGE_PATTERN_ERRATA_01);
    serde_json::from_str(&corrected).expect("schema is JSON")
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&sarif_schema())
        .expect("schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn render(report: &wsaudit::report::RunReport) -> Value {
    serde_json::from_str(&sarif::render(&report.redact(str::to_string))).expect("SARIF is JSON")
}

#[test]
fn output_validates_against_the_sarif_2_1_0_schema() {
    let doc = render(&hostile_report());
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

#[test]
fn the_validator_rejects_a_broken_log() {
    // Guards the test above against a validator that accepts anything, formats included.
    let valid = render(&hostile_report());
    let broken: [(&str, Value); 3] = [
        ("/runs/0/results/0/level", Value::from("fatal")),
        ("/version", Value::from("2.0.0")),
        (
            "/runs/0/results/0/locations/0/physicalLocation/artifactLocation/uri",
            Value::from("not a uri\\"),
        ),
    ];
    for (pointer, value) in broken {
        let mut doc = valid.clone();
        *doc.pointer_mut(pointer).expect("field exists") = value;
        assert!(!schema_errors(&doc).is_empty(), "{pointer} accepted");
    }
}

#[test]
fn one_rule_per_control_with_tags_and_security_severity() {
    let report = hostile_report();
    let doc = render(&report);
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    assert_eq!(rules.len(), report.controls.len());
    let tls = &rules[0];
    assert_eq!(tls["id"], "WS-TLS-01");
    assert_eq!(tls["name"], "transport.tls");
    assert_eq!(
        tls["shortDescription"]["text"],
        "WebSocket traffic uses TLS; plaintext upgrades are refused"
    );
    assert!(
        tls["help"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("wsaudit run --only WS-TLS-01"))
    );
    assert_eq!(
        tls["properties"]["tags"],
        serde_json::json!(["security", "pci-dss-4.0:4.2.1", "cwe:1385"])
    );
    let severities: Vec<&str> = rules
        .iter()
        .map(|r| {
            r["properties"]["security-severity"]
                .as_str()
                .expect("string")
        })
        .collect();
    assert_eq!(severities, ["9.5", "8.0", "5.5", "3.0", "3.0"]);
}

#[test]
fn one_result_per_failed_case_located_at_the_control() {
    let mut report = hostile_report();
    // Fail a case of a control without a known line and of a low-severity control.
    for case in &mut report.cases {
        if case.case_id == "messages.deflate-bomb"
            || case.case_id == "attestation.lifecycle-logging"
        {
            case.verdict = Verdict::Fail;
        }
    }
    report.finish();
    let doc = render(&report);
    let results = doc["runs"][0]["results"].as_array().expect("results");
    let failed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .collect();
    // Waived failures are results too (suppressed; see below).
    let waived = report
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Waived)
        .count();
    assert_eq!(results.len(), failed.len() + waived);
    let results: Vec<&Value> = results
        .iter()
        .filter(|r| r.get("suppressions").is_none())
        .collect();
    assert_eq!(results.len(), failed.len());
    let summary: Vec<(String, String, i64)> = results
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            assert_eq!(loc["artifactLocation"]["uri"], "policies/fintech.yaml");
            assert_eq!(
                r["properties"]["target_url"],
                "wss://staging.example.com/ws"
            );
            (
                r["ruleId"].as_str().expect("ruleId").to_string(),
                r["level"].as_str().expect("level").to_string(),
                loc["region"]["startLine"].as_i64().expect("line"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("WS-ORIGIN-01".to_string(), "error".to_string(), 12),
            ("WS-MSG-03".to_string(), "warning".to_string(), 1),
            ("WS-LOG-01".to_string(), "warning".to_string(), 40),
        ]
    );
    let message = results[0]["message"]["text"].as_str().expect("message");
    assert!(
        message.starts_with("foreign origin was upgraded (101)"),
        "{message}"
    );
    assert!(message.contains("Evidence:\n  > Origin: https://app.example.com.evil.example"));
    assert!(!message.contains('\u{0}') && !message.contains('\u{1b}'));
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn fingerprints_ignore_timings_and_evidence() {
    let first = render(&hostile_report());
    let mut later = hostile_report();
    for case in &mut later.cases {
        case.started += Duration::from_secs(7);
        case.duration *= 3;
        case.evidence.transcript.push("# slower this time".into());
    }
    later.wall_time *= 2;
    let later = render(&later);
    let prints = |doc: &Value| -> Vec<Value> {
        doc["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["partialFingerprints"].clone())
            .collect()
    };
    assert_eq!(prints(&first), prints(&later));
    assert_eq!(
        prints(&first)[0][sarif::FINGERPRINT_KEY],
        sarif::fingerprint("WS-ORIGIN-01", "origin.suffix-confusion")
    );
}

#[test]
fn the_run_names_its_category_per_policy_target_and_share() {
    let report = hostile_report().redact(str::to_string);
    let doc: Value = serde_json::from_str(&sarif::render(&report)).expect("SARIF is JSON");
    assert_eq!(
        doc["runs"][0]["automationDetails"]["id"],
        "wsaudit/fintech-websocket/staging-payments/"
    );
    let share: wsaudit::report::partition::Partition = "2/4".parse().expect("partition");
    assert_eq!(
        sarif::automation_id(&report, Some(&share)),
        "wsaudit/fintech-websocket/staging-payments/partition-2-of-4/"
    );
    let other = wsaudit::report::RunReport {
        target: "prod-payments".into(),
        ..hostile_report()
    }
    .redact(str::to_string);
    assert_ne!(
        sarif::automation_id(&other, None),
        sarif::automation_id(&report, None),
        "two targets under one policy must not share a category"
    );
    let chosen: Value =
        serde_json::from_str(&sarif::render_as(&report, &sarif::category_id("payments")))
            .expect("SARIF is JSON");
    assert_eq!(chosen["runs"][0]["automationDetails"]["id"], "payments/");
    assert!(schema_errors(&chosen).is_empty());
}

#[test]
fn a_waived_failure_stays_a_result_suppressed_with_its_justification() {
    let report = hostile_report();
    let waived = report
        .cases
        .iter()
        .find(|c| c.verdict == Verdict::Waived)
        .expect("the sample has a waived case");
    let doc = render(&report);
    let results = doc["runs"][0]["results"].as_array().expect("results");
    let key = sarif::fingerprint(&waived.control_id, &waived.case_id);
    let result = results
        .iter()
        .find(|r| r["partialFingerprints"][sarif::FINGERPRINT_KEY] == key.as_str())
        .unwrap_or_else(|| panic!("no result for the waived case {}", waived.case_id));
    assert_eq!(result["ruleId"], waived.control_id.as_str());
    assert_eq!(
        result["suppressions"],
        serde_json::json!([{
            "kind": "external",
            "status": "accepted",
            "justification": "load balancer closes idle connections; tracked in SEC-42 \
                (waiver for WS-HB-01 in waivers.yaml, expires 2099-12-31)",
        }])
    );
    // The same finding when it failed: same fingerprint, no suppression.
    let mut failed = hostile_report();
    for c in &mut failed.cases {
        if c.case_id == waived.case_id {
            c.verdict = Verdict::Fail;
        }
    }
    let failed = render(&failed);
    let unsuppressed: Vec<&Value> = failed["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["partialFingerprints"][sarif::FINGERPRINT_KEY] == key.as_str())
        .collect();
    assert_eq!(unsuppressed.len(), 1);
    assert!(unsuppressed[0].get("suppressions").is_none());
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "{errors:#?}");
    // The schema checks suppressions too.
    let index = results
        .iter()
        .position(|r| r.get("suppressions").is_some())
        .expect("suppressed result");
    let mut broken = doc.clone();
    *broken
        .pointer_mut(&format!("/runs/0/results/{index}/suppressions/0/kind"))
        .expect("kind") = Value::from("somewhere");
    assert!(!schema_errors(&broken).is_empty());
}
