//! The JSON report: the whole result model with stable field names (documented field by field in
//! `docs/report-json.md`), versioned by `format_version` so consumers can detect changes.

use serde::Serialize;

use super::model::{Redacted, RunReport};

/// Version of the JSON layout; raised only when a field is renamed, removed or changes meaning
/// (adding a field does not raise it).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct JsonReport<'a> {
    format_version: u32,
    exit_code: u8,
    #[serde(flatten)]
    report: &'a RunReport,
}

/// Renders the report as pretty-printed JSON with a trailing newline.
pub fn render(report: &Redacted) -> String {
    let doc = JsonReport {
        format_version: FORMAT_VERSION,
        exit_code: report.exit_code(),
        report,
    };
    match serde_json::to_string_pretty(&doc) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        // Unreachable with this model (string keys, finite numbers); kept valid JSON regardless.
        Err(e) => format!(
            "{}\n",
            serde_json::json!({
                "format_version": FORMAT_VERSION,
                "error": format!("the JSON report could not be written: {e}"),
            })
        ),
    }
}
