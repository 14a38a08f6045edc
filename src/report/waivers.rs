//! Waivers: a team's signed-off exceptions. A waiver names a control or case ID with a required
//! justification and an optional expiry; a failed case it covers is reported as `waived`, and an
//! expired waiver stops applying loudly rather than silently.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use time::Date;
use time::macros::format_description;

use super::model::RunReport;
use super::model::Verdict;
use crate::config::deser::{Report, parse_document};
use crate::config::source::{ConfigError, SourceFile};
use crate::config::yaml_index::YamlPath;

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

/// The file as written: `waivers:` and nothing else; its entries are read one by one so an
/// error in one does not hide errors in the next.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    waivers: Vec<serde_yaml::Value>,
}

/// One entry as written: `{ id, justification, expires }`, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverEntry {
    #[serde(deserialize_with = "non_empty")]
    id: String,
    #[serde(deserialize_with = "non_empty")]
    justification: String,
    #[serde(default, deserialize_with = "expiry_date")]
    expires: Option<Date>,
}

fn non_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Err(serde::de::Error::custom(
            "empty text: expected a non-empty string",
        ));
    }
    Ok(text.trim().to_string())
}

fn expiry_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Date>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_date(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
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

    /// Validates waivers text: unknown keys, a missing or empty id or justification and a
    /// malformed date are errors, every one of the file reported with its line and column,
    /// the line, a caret and what was expected (the diagnostics of policy files).
    pub fn parse(source: &SourceFile) -> Result<Self, ConfigError> {
        if source.text.trim().is_empty() {
            let d = source.error_without_location(
                "empty waivers file: expected `waivers:` with a list of { id, justification, expires }",
            );
            return Err(ConfigError::new(source, vec![d]));
        }
        let (doc, index) = parse_document(source)?;
        let mut report = Report::new(source, &index);
        let root = YamlPath::root();
        let head: Option<WaiverFile> = report.deserialize(&doc, &root, &root, "");
        let list = root.key("waivers");
        let entries = head.map(|h| h.waivers).unwrap_or_default();
        let mut waivers = Vec::with_capacity(entries.len());
        for (i, raw) in entries.iter().enumerate() {
            let path = list.index(i);
            let label = match raw.get("id").and_then(|v| v.as_str()) {
                Some(id) if !id.trim().is_empty() => format!("waiver {}: ", id.trim()),
                _ => format!("waiver #{}: ", i + 1),
            };
            if let Some(w) = report.deserialize::<WaiverEntry>(raw, &path, &path, &label) {
                waivers.push(Waiver {
                    id: w.id,
                    justification: w.justification,
                    expires: w.expires,
                });
            }
        }
        if !report.is_empty() {
            return Err(report.into_error());
        }
        Ok(Self {
            path: source.path.clone(),
            waivers,
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

    fn error_text(text: &str) -> String {
        parse(text).expect_err("invalid file").to_string()
    }

    #[test]
    fn unknown_keys_are_located() {
        assert_eq!(
            error_text("waivers:\n  - id: X\n    justification: y\n    expiry: 2025-01-01\n"),
            "error: waivers.yaml:4:5: waiver X: unknown key `expiry`: expected one of `id`, `justification`, `expires`
  |
4 |     expiry: 2025-01-01
  |     ^"
        );
        assert_eq!(
            error_text("waiver: []\n"),
            "error: waivers.yaml:1:1: unknown key `waiver`: expected `waivers`
  |
1 | waiver: []
  | ^
error: waivers.yaml:1:1: missing key `waivers`: expected `waivers: ...` in this mapping
  |
1 | waiver: []
  | ^"
        );
    }

    #[test]
    fn every_error_of_the_file_is_reported_with_what_was_expected() {
        let text = error_text(
            "waivers:\n  - id: X\n  - id: A\n    justification: \"  \"\n  - justification: y\n    expires: 2025-13-01\n  - { id: B, justification: y, expires: 1/2/2025 }\n",
        );
        let expected = "error: waivers.yaml:2:5: waiver X: missing key `justification`: expected `justification: ...` in this mapping
  |
2 |   - id: X
  |     ^
error: waivers.yaml:4:20: waiver A: justification: empty text: expected a non-empty string
  |
4 |     justification: \"  \"
  |                    ^
error: waivers.yaml:5:5: waiver #3: missing key `id`: expected `id: ...` in this mapping
  |
5 |   - justification: y
  |     ^
error: waivers.yaml:6:14: waiver #3: expires: expected a date as YYYY-MM-DD, got \"2025-13-01\" (the 'month' component could not be parsed)
  |
6 |     expires: 2025-13-01
  |              ^
error: waivers.yaml:7:41: waiver B: expires: expected a date as YYYY-MM-DD, got \"1/2/2025\" (the 'year' component could not be parsed)
  |
7 |   - { id: B, justification: y, expires: 1/2/2025 }
  |                                         ^";
        assert_eq!(text, expected);
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
