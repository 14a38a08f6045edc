//! JSON report: checked against the committed JSON Schema of format version 1 (every field,
//! no others) and against `docs/report-json.md` (every field documented, nothing stale), for
//! the synthetic report with every verdict and for a real full run against the reference server.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use wsaudit::report::json;
use wsaudit::report::sample::{HOSTILE_TEXT, hostile_report};

fn rendered() -> Value {
    serde_json::from_str(&json::render(&hostile_report().redact(str::to_string)))
        .expect("output is JSON")
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn schema_errors(doc: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(&read("tests/schemas/wsaudit-report-v1.schema.json"))
        .expect("schema is JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Every field path of `value`: `summary.failed`, `cases[].evidence.transcript`, ...
fn field_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                field_paths(child, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items.iter().filter(|i| i.is_object()) {
                field_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The first cell of every table row of the doc, when it is a `code` span.
fn documented_fields(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn output_validates_against_the_format_1_schema() {
    let doc = rendered();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(doc["format_version"], json::FORMAT_VERSION);
}

#[test]
fn the_schema_rejects_unknown_and_missing_fields() {
    let mut extra = rendered();
    extra["cases"][0]["surprise"] = Value::from(1);
    assert!(!schema_errors(&extra).is_empty());
    let mut missing = rendered();
    missing["summary"]
        .as_object_mut()
        .expect("object")
        .remove("waived");
    assert!(!schema_errors(&missing).is_empty());
}

#[test]
fn every_field_is_documented_and_every_documented_field_exists() {
    let mut emitted = BTreeSet::new();
    field_paths(&rendered(), "", &mut emitted);
    let documented = documented_fields(&read("docs/report-json.md"));
    let undocumented: Vec<_> = emitted.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&emitted).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/report-json.md: {undocumented:?}"
    );
    assert!(stale.is_empty(), "documented but not emitted: {stale:?}");
}

#[test]
fn the_documented_example_is_a_valid_report() {
    let doc = read("docs/report-json.md");
    let example = doc
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/report-json.md has a ```json example");
    let example: Value = serde_json::from_str(example).expect("example is JSON");
    let errors = schema_errors(&example);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn values_round_trip_losslessly() {
    let report = hostile_report();
    let doc = rendered();
    let failed = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["case_id"] == "origin.suffix-confusion")
        .expect("failed case");
    // JSON can carry every character, so the evidence is kept exactly as redacted.
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.ends_with(HOSTILE_TEXT))
    );
    assert_eq!(doc["summary"]["waived"], report.summary.waived);
    assert_eq!(doc["wall_time"], 4.25);
    // The sample lists cases not run: an interrupted run, whatever failed.
    assert_eq!(doc["exit_code"], 130);
    assert_eq!(doc["exit_code"], report.exit_code());
    assert_eq!(doc["controls"][2]["line"], Value::Null);
}

/// A real `wsaudit run --json` of the whole reference-fast plan against the reference server:
/// every case, every role the shipped suites use (`baseline` included), and the exit code the
/// process returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_full_run_validates_against_the_schema() {
    wsaudit::crypto::install_crypto_provider();
    let policy = wsaudit::config::LoadedPolicy::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/reference-fast.yaml"),
    )
    .expect("policy");
    let handle = wsaudit::server::start(wsaudit::server::ServerOptions::local(policy))
        .await
        .expect("reference server starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("target.yaml");
    handle.write_target(&target).expect("target written");
    let json_path = dir.path().join("wsaudit.json");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wsaudit"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "--policy",
            "policies/reference-fast.yaml",
            "--target",
        ])
        .arg(&target)
        .arg("--json")
        .arg(&json_path);
    // The server lives on this test's runtime: wait for the child on a blocking thread.
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("wsaudit runs"))
        .await
        .expect("join");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("written")).expect("JSON");
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(
        doc["exit_code"].as_i64(),
        out.status.code().map(i64::from),
        "the report's exit code is the process's\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let roles: BTreeSet<&str> = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["role"].as_str())
        .collect();
    assert_eq!(
        roles,
        BTreeSet::from(["attack", "attestation", "baseline", "positive"])
    );
    assert!(doc["not_run"].as_array().is_some_and(Vec::is_empty));
}
