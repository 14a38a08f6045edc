//! Waivers: a team's signed-off exceptions. A waiver names a control or case ID with a required
//! justification and an optional expiry; a failed case it covers is reported as `waived`, and an
//! expired waiver stops applying loudly rather than silently.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use time::Date;
use time::macros::format_description;

use super::model::RunReport;
use super::model::Verdict;
use crate::config::source::{ConfigError, Diagnostic, SourceFile, yaml_diagnostic};

/// One exception: which control or case it covers, why, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    /// A control ID (covers all its cases) or a single case ID.
    pub id: String,
    /// Why the failure is accepted; never empty.
    pub justification: String,
    /// Last day the waiver applies (inclusive); `None` never expires.
    pub expires: Option<Date>,
}

impl Waiver {
    /// Whether the waiver still applies on `today` (the expiry day itself included).
    pub fn is_live(&self, today: Date) -> bool {
        self.expires.is_none_or(|expires| today <= expires)
    }

    /// A control ID, a case ID, or a case ID without its `[item]` (as `--only` reads them).
    fn covers(&self, control_id: &str, case_id: &str) -> bool {
        self.id == control_id
            || self.id == case_id
            || case_id.split('[').next() == Some(self.id.as_str())
    }

    fn expiry_text(&self) -> String {
        match self.expires {
            Some(date) => format!("expires {}", iso_date(date)),
            None => "no expiry".into(),
        }
    }
}

/// The waivers of one file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Waivers {
    /// The file they came from (named in warnings).
    pub path: PathBuf,
    /// The waivers, in file order; the first live match wins.
    pub waivers: Vec<Waiver>,
}

/// The file as written: `waivers: [{ id, justification, expires }]`, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    waivers: Vec<WaiverEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverEntry {
    #[serde(deserialize_with = "non_empty_id")]
    id: String,
    #[serde(deserialize_with = "non_empty_justification")]
    justification: String,
    #[serde(default, deserialize_with = "expiry_date")]
    expires: Option<Date>,
}

/// Marks the message of a value error (after serde_yaml's `waivers[N]: ` path); the field name follows, so the error can be moved
/// from the entry (where serde_yaml puts it) to the offending value.
const INVALID_FIELD: &str = "invalid `";

fn non_empty<'de, D: Deserializer<'de>>(field: &str, deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Err(serde::de::Error::custom(format!(
            "{INVALID_FIELD}{field}`: expected a non-empty string"
        )));
    }
    Ok(text.trim().to_string())
}

fn non_empty_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    non_empty("id", deserializer)
}

fn non_empty_justification<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    non_empty("justification", deserializer)
}

fn expiry_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Date>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_date(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{INVALID_FIELD}expires`: {e}")))
}

/// serde_yaml locates errors raised while reading a value at the start of the enclosing entry;
/// this moves such an error to the value of `field` within that entry, when it can be found.
fn locate_value(source: &SourceFile, diagnostic: Diagnostic) -> Diagnostic {
    let (Some(at), Some(field)) = (
        diagnostic.location,
        diagnostic
            .message
            .split_once(INVALID_FIELD)
            .and_then(|(_, rest)| rest.split('`').next()),
    ) else {
        return diagnostic;
    };
    let key = format!("{field}:");
    for (offset, line) in source
        .text
        .lines()
        .skip(at.line.saturating_sub(1))
        .enumerate()
    {
        // Stop at the next entry of the list: the field belongs to this one.
        if offset > 0 && line.trim_start().starts_with('-') {
            break;
        }
        let from = if offset == 0 {
            at.column.saturating_sub(1)
        } else {
            0
        };
        if let Some(i) = line.get(from..).and_then(|rest| rest.find(&key)) {
            let after = from + i + key.len();
            let value = line[after..].len() - line[after..].trim_start().len();
            return source.error_at(at.line + offset, after + value + 1, diagnostic.message);
        }
    }
    diagnostic
}

/// Parses a `YYYY-MM-DD` calendar date, explaining what was expected when it is not one.
pub fn parse_date(text: &str) -> Result<Date, String> {
    Date::parse(text.trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|e| format!("expected a date as YYYY-MM-DD, got {text:?} ({e})"))
}

fn iso_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

impl Waivers {
    /// Reads and validates a waivers file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(&SourceFile::read(path)?)
    }

    /// Validates waivers text; unknown keys, a missing or empty justification and a malformed
    /// date are errors located at their line and column.
    pub fn parse(source: &SourceFile) -> Result<Self, ConfigError> {
        if source.text.trim().is_empty() {
            let d = source.error_without_location(
                "empty waivers file: expected `waivers:` with a list of { id, justification, expires }",
            );
            return Err(ConfigError::new(source, vec![d]));
        }
        let file: WaiverFile = serde_yaml::from_str(&source.text).map_err(|e| {
            let d = locate_value(source, yaml_diagnostic(source, &e));
            ConfigError::new(source, vec![d])
        })?;
        Ok(Self {
            path: source.path.clone(),
            waivers: file
                .waivers
                .into_iter()
                .map(|w| Waiver {
                    id: w.id,
                    justification: w.justification,
                    expires: w.expires,
                })
                .collect(),
        })
    }
}

/// Turns each failed case covered by a live waiver into `waived`, with the justification and
/// expiry in its reason, then recomputes the summary. Returns warnings for the caller to show:
/// one per expired waiver, which no longer applies (the cases it would have covered stay failed
/// and say so in their evidence). Passed, inconclusive and skipped cases are never waived.
#[must_use = "expired waivers must be shown to the user"]
pub fn apply(report: &mut RunReport, waivers: &Waivers, today: Date) -> Vec<String> {
    let file = waivers.path.display();
    let mut still_failed = vec![0usize; waivers.waivers.len()];
    for case in report
        .cases
        .iter_mut()
        .filter(|c| c.verdict == Verdict::Fail)
    {
        let matching: Vec<(usize, &Waiver)> = waivers
            .waivers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.covers(&case.control_id, &case.case_id))
            .collect();
        if let Some((_, w)) = matching.iter().find(|(_, w)| w.is_live(today)) {
            case.verdict = Verdict::Waived;
            case.reason = format!(
                "waived: {} (waiver for {} in {file}, {}); failure was: {}",
                w.justification,
                w.id,
                w.expiry_text(),
                case.reason
            );
            case.evidence.transcript.push(format!(
                "# waiver for {} applied ({})",
                w.id,
                w.expiry_text()
            ));
            continue;
        }
        // Every matching waiver has expired (live ones would have matched above).
        for (i, w) in matching {
            still_failed[i] += 1;
            // The note bypasses the evidence line limit on purpose: an ignored waiver must be
            // visible next to the failure it no longer covers.
            case.evidence.transcript.push(format!(
                "# waiver for {} in {file} expired on {} and was not applied",
                w.id,
                w.expires.map(iso_date).unwrap_or_default()
            ));
        }
    }
    report.finish();
    waivers
        .waivers
        .iter()
        .zip(still_failed)
        .filter_map(|(w, failed)| {
            let expired = w.expires.filter(|_| !w.is_live(today))?;
            Some(format!(
                "waiver for {} in {file} expired on {} and no longer applies ({failed} failed case{} not waived); renew or remove it",
                w.id,
                iso_date(expired),
                if failed == 1 { "" } else { "s" },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::report::sample::hostile_report;

    fn parse(text: &str) -> Result<Waivers, ConfigError> {
        Waivers::parse(&SourceFile::from_text("waivers.yaml", text))
    }

    #[test]
    fn parses_ids_justifications_and_optional_expiry() {
        let w = parse(
            "waivers:\n  - id: WS-HB-01\n    justification: LB closes idle sockets\n    expires: 2025-06-30\n  - id: origin.null\n    justification: ' tracked in SEC-1 '\n",
        )
        .expect("valid file");
        assert_eq!(
            w.waivers,
            vec![
                Waiver {
                    id: "WS-HB-01".into(),
                    justification: "LB closes idle sockets".into(),
                    expires: Some(date!(2025 - 06 - 30)),
                },
                Waiver {
                    id: "origin.null".into(),
                    justification: "tracked in SEC-1".into(),
                    expires: None,
                },
            ]
        );
    }

    fn first_error(text: &str) -> (Option<(usize, usize)>, String) {
        let err = parse(text).expect_err("invalid file");
        let d = &err.diagnostics[0];
        (d.location.map(|l| (l.line, l.column)), d.message.clone())
    }

    #[test]
    fn unknown_keys_are_located() {
        let (loc, msg) =
            first_error("waivers:\n  - id: X\n    justification: y\n    expiry: 2025-01-01\n");
        assert_eq!(loc.map(|l| l.0), Some(4), "{msg}");
        assert!(msg.contains("unknown field `expiry`"), "{msg}");
        let (loc, msg) = first_error("waiver: []\n");
        assert_eq!(loc.map(|l| l.0), Some(1), "{msg}");
        assert!(msg.contains("unknown field `waiver`"), "{msg}");
    }

    #[test]
    fn missing_or_empty_justification_and_bad_dates_are_errors() {
        let (loc, msg) = first_error("waivers:\n  - id: X\n");
        assert_eq!(loc.map(|l| l.0), Some(2), "{msg}");
        assert!(msg.contains("missing field `justification`"), "{msg}");
        let (loc, msg) = first_error("waivers:\n  - id: X\n    justification: \"  \"\n");
        assert_eq!(loc, Some((3, 20)), "{msg}");
        assert!(
            msg.contains("`justification`: expected a non-empty string"),
            "{msg}"
        );
        let (loc, msg) = first_error(
            "waivers:\n  - id: A\n    justification: y\n  - justification: y\n    expires: 2025-13-01\n",
        );
        assert_eq!(loc, Some((5, 14)), "{msg}");
        assert!(msg.contains("YYYY-MM-DD"), "{msg}");
        let (loc, msg) = first_error("waivers: [{ id: A, justification: y, expires: 1/2/2025 }]\n");
        assert_eq!(loc, Some((1, 47)), "{msg}");
        assert!(msg.contains("`expires`"), "{msg}");
        let err = parse("  \n").expect_err("empty file");
        assert!(err.to_string().contains("empty waivers file"), "{err}");
    }

    fn waivers(list: &[(&str, Option<Date>)]) -> Waivers {
        Waivers {
            path: "w.yaml".into(),
            waivers: list
                .iter()
                .map(|(id, expires)| Waiver {
                    id: (*id).into(),
                    justification: format!("accepted for {id}"),
                    expires: *expires,
                })
                .collect(),
        }
    }

    #[test]
    fn live_waiver_turns_failures_into_waived_and_recomputes() {
        let mut report = hostile_report();
        let failed_before = report.summary.failed;
        let warnings = apply(
            &mut report,
            &waivers(&[("origin.suffix-confusion", Some(date!(2025 - 01 - 02)))]),
            date!(2025 - 01 - 02),
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        let case = report
            .cases
            .iter()
            .find(|c| c.case_id == "origin.suffix-confusion")
            .expect("case exists");
        assert_eq!(case.verdict, Verdict::Waived);
        assert!(
            case.reason
                .starts_with("waived: accepted for origin.suffix-confusion")
        );
        assert!(
            case.reason.contains("expires 2025-01-02"),
            "{}",
            case.reason
        );
        assert!(case.reason.contains("failure was: foreign origin"));
        assert_eq!(report.summary.failed, failed_before - 1);
        // The control still has an inconclusive case, so it is an error, not waived.
        let control = report
            .controls
            .iter()
            .find(|c| c.id == "WS-ORIGIN-01")
            .expect("control exists");
        assert_eq!(control.verdict, Verdict::Error);
    }

    #[test]
    fn expired_waiver_is_ignored_noted_and_warned() {
        let mut report = hostile_report();
        let warnings = apply(
            &mut report,
            &waivers(&[("WS-ORIGIN-01", Some(date!(2025 - 01 - 01)))]),
            date!(2025 - 01 - 02),
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("expired on 2025-01-01")
                && warnings[0].contains("1 failed case not waived"),
            "{warnings:?}"
        );
        let case = report
            .cases
            .iter()
            .find(|c| c.case_id == "origin.suffix-confusion")
            .expect("case exists");
        assert_eq!(case.verdict, Verdict::Fail);
        assert!(
            case.evidence
                .transcript
                .iter()
                .any(|l| l.contains("expired on 2025-01-01 and was not applied")),
            "{:?}",
            case.evidence.transcript
        );
    }

    #[test]
    fn pass_error_and_skipped_cases_are_never_waived() {
        let mut report = hostile_report();
        let before: Vec<_> = report
            .cases
            .iter()
            .map(|c| (c.case_id.clone(), c.verdict))
            .collect();
        let all: Vec<(&str, Option<Date>)> = report
            .controls
            .iter()
            .map(|c| (c.id.as_str(), None))
            .collect();
        let all = waivers(&all);
        let _warnings = apply(&mut report, &all, date!(2025 - 01 - 02));
        for (case, (id, verdict)) in report.cases.iter().zip(before) {
            assert_eq!(case.case_id, id);
            let expected = if verdict == Verdict::Fail {
                Verdict::Waived
            } else {
                verdict
            };
            assert_eq!(case.verdict, expected, "{id}");
        }
        assert_eq!(report.summary.failed, 0);
    }
}
