//! The SARIF 2.1.0 report for code-scanning dashboards: one rule per control and one result per
//! failed or waived case, located at the control in the policy file, so a failure shows up where
//! the requirement is written. A waived failure stays a result, suppressed with the waiver's
//! justification, so a dashboard shows it as accepted rather than closing it as fixed; the run
//! names its own category (`automationDetails.id`), so uploads for other targets or other shards
//! of a partitioned run do not replace it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, PropertyBag,
    Region, ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run,
    RunAutomationDetails, Sarif, Suppression, Tool, ToolComponent,
};

use super::model::{CaseResult, ControlResult, Redacted, Verdict, severity_name};
use super::partition::{Partition, stable_hex};
use super::text::{printable, truncate};
use crate::config::Severity;

/// URI of the SARIF 2.1.0 schema, written as `$schema` (an identifier; nothing fetches it).
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Key of the fingerprint in `partialFingerprints`; the `/v1` changes if its input ever does.
pub const FINGERPRINT_KEY: &str = "wsauditCase/v1";

/// Evidence lines quoted in a result message (the full transcript is in the JUnit/JSON reports).
const MESSAGE_EVIDENCE_LINES: usize = 6;
/// Longest evidence line quoted in a result message.
const MESSAGE_LINE_MAX: usize = 200;

/// The `automationDetails.id` of a run: `wsaudit/POLICY/TARGET/`, plus `partition-K-of-N/` for
/// one share of a partitioned run. Code scanning keeps one analysis per category (the id up to
/// its last `/`), so each target and each share needs its own, or their uploads replace each
/// other; GitHub's upload-sarif fills in its `category` input only for runs without an id.
pub fn automation_id(report: &Redacted, partition: Option<&Partition>) -> String {
    let mut id = format!("wsaudit/{}/{}/", report.policy, report.target);
    if let Some(p) = partition {
        id.push_str(&format!("partition-{}-of-{}/", p.k, p.n));
    }
    id
}

/// A category given by the user as an `automationDetails.id`: ending with `/`, as upload-sarif
/// treats its `category` input, so the whole text is the category.
pub fn category_id(category: &str) -> String {
    if category.ends_with('/') {
        category.to_string()
    } else {
        format!("{category}/")
    }
}

/// The justification of a waived case: its reason without the failure it covers (the reason of
/// a waived case reads `waived: JUSTIFICATION (waiver ...); failure was: ...`), or the whole
/// reason when it does not read so.
fn waiver_justification(reason: &str) -> &str {
    let text = reason.strip_prefix("waived: ").unwrap_or(reason);
    text.split_once("; failure was: ")
        .map_or(text, |(justification, _)| justification)
}

/// The `security-severity` GitHub code scanning reads (a CVSS-like score as a string).
pub fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// The SARIF level of a failure: `error` for critical and high controls, else `warning`.
pub fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::Critical | Severity::High => ResultLevel::Error,
        Severity::Medium | Severity::Low => ResultLevel::Warning,
    }
}

/// The stable fingerprint of a finding: a hash of control and case ID, never of timings or
/// evidence, so the same finding keeps its identity across runs.
pub fn fingerprint(control_id: &str, case_id: &str) -> String {
    stable_hex(&[control_id, case_id])
}

/// The policy file as a SARIF artifact URI: relative (to `%SRCROOT%`) when the path is relative
/// or under the current directory, else an absolute `file://` URI.
fn artifact_location(policy_file: &str) -> ArtifactLocation {
    // A page scan has no policy file: its results are located at the scanned page itself.
    if let Ok(url) = url::Url::parse(policy_file)
        && matches!(url.scheme(), "http" | "https")
    {
        return ArtifactLocation::builder().uri(url.to_string()).build();
    }
    let path = Path::new(policy_file);
    let relative = if path.is_absolute() {
        std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
    } else {
        Some(path.to_path_buf())
    };
    match relative {
        Some(rel) => {
            let text = rel.to_string_lossy().replace('\\', "/");
            let text = text.trim_start_matches("./");
            ArtifactLocation::builder()
                .uri(percent_encode_path(text))
                .uri_base_id("%SRCROOT%")
                .build()
        }
        None => {
            let text = policy_file.replace('\\', "/");
            let text = if text.starts_with('/') {
                text
            } else {
                format!("/{text}")
            };
            ArtifactLocation::builder()
                .uri(format!("file://{}", percent_encode_path(&text)))
                .build()
        }
    }
}

/// Percent-encodes everything but unreserved characters and `/`, so any file name is a valid
/// URI reference.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rule(control: &ControlResult) -> ReportingDescriptor {
    let refs = if control.refs.is_empty() {
        "none".to_string()
    } else {
        control.refs.join(", ")
    };
    let help = format!(
        "Control {id} ({check}, severity {severity}): {title}. References: {refs}. \
         Reproduce with `wsaudit run --only {id}`; the JUnit and JSON reports hold the full evidence.",
        id = control.id,
        check = control.check,
        severity = severity_name(control.severity),
        title = control.title,
    );
    let help_markdown = format!(
        "**{id}** (`{check}`, severity {severity}): {title}\n\nReferences: {refs}\n\n\
         Reproduce with `wsaudit run --only {id}`; the JUnit and JSON reports hold the full evidence.",
        id = control.id,
        check = control.check,
        severity = severity_name(control.severity),
        title = control.title,
    );
    let mut tags = vec!["security".to_string()];
    tags.extend(control.refs.iter().cloned());
    ReportingDescriptor::builder()
        .id(control.id.clone())
        .name(control.check.clone())
        .short_description(
            MultiformatMessageString::builder()
                .text(control.title.clone())
                .build(),
        )
        .help(
            MultiformatMessageString::builder()
                .text(help)
                .markdown(help_markdown)
                .build(),
        )
        .default_configuration(
            ReportingConfiguration::builder()
                .level(json!(level(control.severity)))
                .build(),
        )
        .properties(
            PropertyBag::builder()
                .tags(tags)
                .additional_properties(BTreeMap::from([(
                    "security-severity".to_string(),
                    json!(security_severity(control.severity)),
                )]))
                .build(),
        )
        .build()
}

fn message_text(case: &CaseResult) -> String {
    let mut text = format!(
        "{} ({} {}: {})",
        case.reason, case.control_id, case.case_id, case.name
    );
    if !case.evidence.transcript.is_empty() {
        text.push_str("\nEvidence:");
        for line in case.evidence.transcript.iter().take(MESSAGE_EVIDENCE_LINES) {
            text.push_str("\n  ");
            text.push_str(&truncate(line, MESSAGE_LINE_MAX));
        }
        let more = case
            .evidence
            .transcript
            .len()
            .saturating_sub(MESSAGE_EVIDENCE_LINES);
        if more > 0 {
            text.push_str(&format!("\n  ({more} more lines in the JUnit/JSON report)"));
        }
    }
    printable(&text).into_owned()
}

fn result(
    report: &Redacted,
    case: &CaseResult,
    rule_index: usize,
    control: &ControlResult,
) -> SarifResult {
    // A control without a known line is reported at the top of the policy file.
    let line = control.line.unwrap_or(1).max(1);
    let location = Location::builder()
        .physical_location(
            PhysicalLocation::builder()
                .artifact_location(artifact_location(&report.policy_file))
                .region(
                    Region::builder()
                        .start_line(i64::try_from(line).unwrap_or(i64::MAX))
                        .build(),
                )
                .build(),
        )
        .build();
    let properties: BTreeMap<String, Value> = BTreeMap::from([
        ("target".to_string(), json!(report.target)),
        ("target_url".to_string(), json!(report.target_url)),
        ("case_id".to_string(), json!(case.case_id)),
        ("family".to_string(), json!(case.family)),
        ("role".to_string(), json!(case.role)),
    ]);
    let mut result = SarifResult::builder()
        .rule_id(control.id.clone())
        .rule_index(i64::try_from(rule_index).unwrap_or(i64::MAX))
        .level(level(control.severity))
        .message(Message::builder().text(message_text(case)).build())
        .locations(vec![location])
        .partial_fingerprints(BTreeMap::from([(
            FINGERPRINT_KEY.to_string(),
            fingerprint(&case.control_id, &case.case_id),
        )]))
        .properties(
            PropertyBag::builder()
                .additional_properties(properties)
                .build(),
        )
        .build();
    if case.verdict == Verdict::Waived {
        // Kept as a result, with the same fingerprint: dropping it would read as fixed.
        result.suppressions = Some(vec![
            Suppression::builder()
                .kind(json!("external"))
                .status(json!("accepted"))
                .justification(printable(waiver_justification(&case.reason)).into_owned())
                .build(),
        ]);
    }
    result
}

/// Builds the SARIF log as a typed value, its run identified by `automation_id` (see
/// [`automation_id`]).
pub fn log(report: &Redacted, automation_id: &str) -> Sarif {
    let rules: Vec<ReportingDescriptor> = report.controls.iter().map(rule).collect();
    let results: Vec<SarifResult> = report
        .cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Waived))
        .filter_map(|case| {
            let (index, control) = report
                .controls
                .iter()
                .enumerate()
                .find(|(_, c)| c.id == case.control_id)?;
            Some(result(report, case, index, control))
        })
        .collect();
    let driver = ToolComponent::builder()
        .name("wsaudit")
        .version(report.wsaudit_version.clone())
        .semantic_version(report.wsaudit_version.clone())
        .rules(rules)
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .automation_details(RunAutomationDetails::builder().id(automation_id).build())
        .results(results)
        .properties(
            PropertyBag::builder()
                .additional_properties(BTreeMap::from([
                    ("policy".to_string(), json!(report.policy)),
                    ("target".to_string(), json!(report.target)),
                    ("target_url".to_string(), json!(report.target_url)),
                    ("started_at".to_string(), json!(report.started_at)),
                ]))
                .build(),
        )
        .build();
    Sarif::builder()
        .schema(SCHEMA_URI)
        .version(json!("2.1.0"))
        .runs(vec![run])
        .build()
}

/// Renders the report as a pretty-printed SARIF 2.1.0 log with a trailing newline, its run
/// identified by the default [`automation_id`] of an unpartitioned run.
pub fn render(report: &Redacted) -> String {
    render_as(report, &automation_id(report, None))
}

/// [`render`], with the run identified by `automation_id`.
pub fn render_as(report: &Redacted, automation_id: &str) -> String {
    match serde_json::to_string_pretty(&log(report, automation_id)) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        // Unreachable with these types; still a valid, empty SARIF log for the uploader.
        Err(e) => format!(
            "{}\n",
            json!({
                "$schema": SCHEMA_URI,
                "version": "2.1.0",
                "runs": [{
                    "tool": { "driver": { "name": "wsaudit" } },
                    "automationDetails": { "id": automation_id },
                    "results": [],
                    "properties": { "error": format!("the SARIF report could not be written: {e}") },
                }],
            })
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_paths_become_uri_references() {
        let loc = artifact_location("./policies/my policy#1.yaml");
        assert_eq!(loc.uri.as_deref(), Some("policies/my%20policy%231.yaml"));
        assert_eq!(loc.uri_base_id.as_deref(), Some("%SRCROOT%"));
        let loc = artifact_location("/nowhere-else/p.yaml");
        assert_eq!(loc.uri.as_deref(), Some("file:///nowhere-else/p.yaml"));
        assert_eq!(loc.uri_base_id, None);
        // Page scans are located at the page.
        let loc = artifact_location("https://app.example.com/dashboard");
        assert_eq!(
            loc.uri.as_deref(),
            Some("https://app.example.com/dashboard")
        );
        assert_eq!(loc.uri_base_id, None);
    }

    #[test]
    fn fingerprint_depends_on_ids_only() {
        assert_eq!(fingerprint("A", "b"), fingerprint("A", "b"));
        assert_ne!(fingerprint("A", "b"), fingerprint("Ab", ""));
        assert_eq!(fingerprint("A", "b").len(), 64);
    }
}
