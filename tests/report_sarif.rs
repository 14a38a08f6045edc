//! SARIF: validated against the official SARIF 2.1.0 JSON schema (OASIS, as shipped in the
//! serde-sarif crate and committed under `tests/schemas/`), plus the fields code scanning reads.

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
