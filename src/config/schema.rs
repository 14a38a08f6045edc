//! JSON Schemas of the policy and target files (and suites), for editors' YAML language
//! servers. `wsaudit schema --write schemas` regenerates the files kept in `schemas/`.

use std::path::Path;

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::policy::{CheckParams, Policy};
use super::suite::Suite;
use super::target::Target;

/// A function producing one schema.
pub type SchemaFn = fn() -> Value;

/// The schema files kept in `schemas/`, as (file name, generator).
pub const SCHEMA_FILES: [(&str, SchemaFn); 3] = [
    ("policy.schema.json", policy_schema),
    ("target.schema.json", target_schema),
    ("suite.schema.json", suite_schema),
];

fn generator() -> SchemaGenerator {
    SchemaSettings::draft07().into_generator()
}

/// The policy file's schema; `with` is typed by `check` for every built-in check.
pub fn policy_schema() -> Value {
    let mut g = generator();
    let by_check = CheckParams::param_schemas(&mut g);
    let mut schema = g.into_root_schema_for::<Policy>().to_value();
    schema["$id"] = json!("https://wsaudit.invalid/schemas/policy.schema.json");
    if let Some(control) = schema.pointer_mut("/definitions/Control") {
        let checks: Vec<&str> = by_check.iter().map(|(c, _)| *c).collect();
        control["properties"]["check"] = json!({
            "description": "Which check family tests it: a built-in check, or one a suite given with --suites provides.",
            "type": "string",
            "anyOf": [ { "enum": checks }, { "type": "string" } ]
        });
        let rules: Vec<Value> = by_check
            .into_iter()
            .map(|(check, params)| {
                json!({
                    "if": { "properties": { "check": { "const": check } }, "required": ["check"] },
                    "then": { "properties": { "with": params } }
                })
            })
            .collect();
        control["allOf"] = Value::Array(rules);
    }
    schema
}

/// The target file's schema.
pub fn target_schema() -> Value {
    let mut schema = generator().into_root_schema_for::<Target>().to_value();
    schema["$id"] = json!("https://wsaudit.invalid/schemas/target.schema.json");
    schema
}

/// The suite file's schema (steps and expectations are described in suites/README.md).
pub fn suite_schema() -> Value {
    let mut schema = generator().into_root_schema_for::<Suite>().to_value();
    schema["$id"] = json!("https://wsaudit.invalid/schemas/suite.schema.json");
    schema
}

/// A schema as the text kept in `schemas/` (pretty JSON with a final newline).
pub fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes every schema file into `dir`.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, make) in SCHEMA_FILES {
        std::fs::write(dir.join(name), render(&make()))?;
    }
    Ok(())
}
