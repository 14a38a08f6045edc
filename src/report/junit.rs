//! The JUnit XML report: one `<testsuite>` per control and one `<testcase>` per case, the shape
//! GitLab, Jenkins and the GitHub test-report actions read.
//!
//! `junit-report` writes text as given: it neither drops the characters XML 1.0 forbids nor
//! splits `]]>` inside the CDATA sections it uses for bodies. Every text therefore passes
//! [`printable`] and, for bodies, [`cdata_body`] before it reaches the crate.

use std::borrow::Cow;
use std::collections::HashMap;

use junit_report::{Report, TestCase, TestResult, TestSuite};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::model::{CaseResult, Redacted, Verdict};
use super::text::{html_escape, printable};

/// Renders the report as a JUnit XML document (UTF-8, with declaration).
pub fn render(report: &Redacted) -> String {
    let run_start = OffsetDateTime::parse(&report.started_at, &Rfc3339)
        // A malformed start time must not make the document non-deterministic or fail it.
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // One suite per control, in policy order; a case whose control is not in the report still
    // gets a suite, so no result can silently vanish from CI.
    let mut suites: Vec<(&str, String)> = report
        .controls
        .iter()
        .map(|c| (c.id.as_str(), format!("{}: {}", c.id, c.title)))
        .collect();
    for case in &report.cases {
        if !suites.iter().any(|(id, _)| *id == case.control_id) {
            suites.push((
                &case.control_id,
                format!("{}: (not in the policy)", case.control_id),
            ));
        }
    }
    // Cases an interrupted run never reached are listed too, as skipped, under their control.
    let not_run: Vec<(&str, &str)> = report
        .not_run
        .iter()
        .map(|id| (control_of(report, id), id.as_str()))
        .collect();
    for (control_id, _) in &not_run {
        if !suites.iter().any(|(id, _)| id == control_id) {
            suites.push((control_id, format!("{control_id}: (not in the policy)")));
        }
    }
    let mut junit = Report::new();
    for (control_id, suite_name) in suites {
        let cases: Vec<&CaseResult> = report
            .cases
            .iter()
            .filter(|c| c.control_id == control_id)
            .collect();
        let mut suite = TestSuite::new(&printable(&suite_name));
        let first_start = cases.iter().map(|c| c.started).min().unwrap_or_default();
        suite.set_timestamp(run_start + first_start);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for case in cases {
            let count = seen.entry(case.case_id.as_str()).or_insert(0);
            *count += 1;
            // Names must be unique within a suite for CI systems to track a case over time.
            let name = match *count {
                1 => case.case_id.clone(),
                n => format!("{} #{n}", case.case_id),
            };
            suite.add_testcase(testcase(case, &name, control_id));
        }
        for (_, case_id) in not_run.iter().filter(|(c, _)| *c == control_id) {
            let mut tc = TestCase::skipped(&printable(case_id));
            tc.result = TestResult::SkippedWithCause {
                type_: "not_run".into(),
                message: NOT_RUN.into(),
                cause: None,
            };
            tc.set_classname(&printable(control_id));
            suite.add_testcase(tc);
        }
        junit.add_testsuite(suite);
    }
    let mut out = Vec::new();
    match junit.write_xml(&mut out) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => fallback_document(&e.to_string()),
    }
}

/// The message of a case the run never reached.
pub const NOT_RUN: &str = "not run: interrupted";

/// The control a not-run case ID belongs to: the report's control it starts with (`ID/...`),
/// else the part before the first `/`.
fn control_of<'a>(report: &'a Redacted, case_id: &'a str) -> &'a str {
    report
        .controls
        .iter()
        .map(|c| c.id.as_str())
        .find(|id| {
            case_id
                .strip_prefix(id)
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .unwrap_or_else(|| case_id.split('/').next().unwrap_or(case_id))
}

/// Builds one `<testcase>`; every text has already or here passes the sanitiser.
fn testcase(case: &CaseResult, name: &str, control_id: &str) -> TestCase {
    let time = time::Duration::try_from(case.duration).unwrap_or(time::Duration::MAX);
    let type_ = printable(&case.family).into_owned();
    let message = printable(&case.reason).into_owned();
    let transcript = (!case.evidence.transcript.is_empty())
        .then(|| cdata_body(&case.evidence.transcript.join("\n")));
    let mut tc = TestCase::success(&printable(name), time);
    tc.set_classname(&printable(control_id));
    let no_evidence = || "(no evidence recorded)".to_string();
    // Evidence of cases without a failure body still matters (attestations, expired waivers),
    // so it goes to `<system-out>`.
    let (result, system_out) = match case.verdict {
        Verdict::Pass => (TestResult::Success, transcript),
        Verdict::Fail => (
            TestResult::Failure {
                type_,
                message,
                cause: Some(transcript.unwrap_or_else(no_evidence)),
            },
            None,
        ),
        Verdict::Error => (
            TestResult::Error {
                type_,
                message,
                cause: Some(transcript.unwrap_or_else(no_evidence)),
            },
            None,
        ),
        // The reason of a waived case carries the waiver's justification and expiry.
        Verdict::Skipped | Verdict::Waived => (
            TestResult::SkippedWithCause {
                type_: case.verdict.as_str().into(),
                message,
                cause: None,
            },
            transcript,
        ),
    };
    tc.result = result;
    if let Some(out) = system_out {
        tc.set_system_out(&out);
    }
    tc
}

/// Text for a CDATA section: [`printable`], with every `]]>` split across two sections so it
/// cannot end the one the crate opens (`]]]]><![CDATA[>` reads back as `]]>`).
fn cdata_body(text: &str) -> String {
    match printable(text) {
        Cow::Borrowed(t) if !t.contains("]]>") => t.to_string(),
        t => t.replace("]]>", "]]]]><![CDATA[>"),
    }
}

/// A minimal valid document reporting that rendering failed (writing to memory cannot fail
/// today; this keeps CI from reading a truncated file if that ever changes).
fn fallback_document(error: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites><testsuite name=\"wsaudit\" tests=\"1\" failures=\"0\" errors=\"1\"><testcase name=\"report\" classname=\"wsaudit\"><error type=\"report\" message=\"{}\"/></testcase></testsuite></testsuites>\n",
        html_escape(&format!("the JUnit report could not be written: {error}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_body_splits_terminators_and_escapes_controls() {
        assert_eq!(cdata_body("a]]>b\u{1}"), "a]]]]><![CDATA[>b\\x01");
        assert_eq!(cdata_body("plain"), "plain");
    }

    #[test]
    fn fallback_document_is_escaped() {
        let doc = fallback_document("<\"&\u{0}");
        assert!(
            doc.contains("message=\"the JUnit report could not be written: &lt;&quot;&amp;\\x00\"")
        );
    }
}
