//! The JSON Schemas in `schemas/` stay in step with the models, and the shipped files
//! validate against them.

use wsaudit::config::schema::{SCHEMA_FILES, policy_schema, render, target_schema};

#[test]
fn schema_files_are_up_to_date() {
    for (name, make) in SCHEMA_FILES {
        let path = format!("schemas/{name}");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == render(&make()),
            "{path} is out of date with the Rust models: regenerate it with `cargo run -- schema --write schemas`"
        );
    }
}

fn yaml_as_json(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("readable");
    serde_yaml::from_str(&text).expect("valid YAML")
}

#[test]
fn shipped_policies_validate_against_the_policy_schema() {
    let schema = policy_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for policy in [
        "policies/fintech.yaml",
        "policies/reference-fast.yaml",
        "policies/baseline.yaml",
    ] {
        let doc = yaml_as_json(policy);
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{policy}: {errors:?}");
    }
}

#[test]
fn the_policy_schema_types_with_by_check() {
    let validator = jsonschema::validator_for(&policy_schema()).expect("the schema compiles");
    let bad: serde_json::Value = serde_json::json!({
        "policy": "p", "version": 1,
        "controls": [{ "id": "A", "check": "heartbeat", "with": { "interval_max": "30s", "missed_max": 3, "grace": 1 } }]
    });
    assert!(
        !validator.is_valid(&bad),
        "an unknown key in `with` must be flagged"
    );
    let good: serde_json::Value = serde_json::json!({
        "policy": "p", "version": 1,
        "controls": [{ "id": "A", "check": "my.custom", "with": { "anything": 1 } }]
    });
    assert!(
        validator.is_valid(&good),
        "a check from a user suite keeps free parameters"
    );
}

#[test]
fn a_full_target_validates_against_the_target_schema() {
    let validator = jsonschema::validator_for(&target_schema()).expect("the schema compiles");
    let doc: serde_json::Value =
        serde_yaml::from_str(include_str!("compile_data/target.yaml")).expect("yaml");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let unknown: serde_json::Value =
        serde_json::json!({ "target": "t", "url": "wss://h/ws", "tsl": {} });
    assert!(!validator.is_valid(&unknown));
}
