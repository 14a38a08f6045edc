//! JSON report: checked against the committed JSON Schema of format version 1 (every field,
//! no others) and against `docs/report-json.md` (every field documented, nothing stale).

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
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["controls"][2]["line"], Value::Null);
}
