//! Waivers files from disk: loading, located errors, and their effect on a report and its
//! JUnit output with the day injected.

use std::path::{Path, PathBuf};

use time::macros::date;
use wsaudit::report::sample::hostile_report;
use wsaudit::report::waivers::{Waivers, apply};
use wsaudit::report::{RunReport, Verdict, junit};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(name)
}

#[test]
fn a_waivers_file_applies_live_waivers_and_warns_about_expired_ones() {
    let waivers = Waivers::load(&fixture("waivers.yaml")).expect("valid waivers file");
    assert_eq!(waivers.waivers.len(), 3);
    let mut report = hostile_report();
    let warnings = apply(&mut report, &waivers, date!(2025 - 03 - 01));

    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("origin.suffix-confusion"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("waivers.yaml"), "{warnings:?}");
    assert!(
        warnings[0].contains("expired on 2024-12-31"),
        "{warnings:?}"
    );

    let verdict = |id: &str| {
        report
            .cases
            .iter()
            .find(|c| c.case_id == id)
            .map(|c| c.verdict)
            .expect("case exists")
    };
    assert_eq!(verdict("origin.suffix-confusion"), Verdict::Fail);
    assert_eq!(verdict("heartbeat.stale-connection"), Verdict::Waived);
    // A waiver never turns a skipped attestation into anything else.
    assert_eq!(verdict("attestation.lifecycle-logging"), Verdict::Skipped);
    // As a finished run: the sample's cases not run alone would make it 130.
    let finished = RunReport {
        not_run: Vec::new(),
        ..report.clone()
    };
    assert_eq!(finished.exit_code(), 1);

    // The JUnit report shows the ignored waiver next to the failure it no longer covers.
    let xml = junit::render(&report.redact(str::to_string));
    assert!(xml.contains("expired on 2024-12-31 and was not applied"));
}

#[test]
fn once_every_failure_is_waived_the_run_is_inconclusive_not_failed() {
    let waivers = Waivers::load(&fixture("waivers.yaml")).expect("valid waivers file");
    let mut report = hostile_report();
    let warnings = apply(&mut report, &waivers, date!(2024 - 12 - 31));
    assert!(
        warnings.is_empty(),
        "still live on its expiry day: {warnings:?}"
    );
    assert_eq!(report.summary.failed, 0);
    // The inconclusive case is never waived, so the exit code is 3, not 0 (as a finished run:
    // the sample's cases not run alone would make it 130).
    report.not_run.clear();
    assert_eq!(report.exit_code(), 3);
}

#[test]
fn errors_name_the_file_line_and_column() {
    let err = Waivers::load(&fixture("waivers-invalid.yaml")).expect_err("unknown key");
    let text = err.to_string();
    assert!(
        text.starts_with("error: ") && text.contains("waivers-invalid.yaml:4:5: "),
        "{text}"
    );
    assert!(text.contains("unknown key `expiry`"), "{text}");
    assert!(
        text.contains("expected one of `id`, `justification`, `expires`"),
        "{text}"
    );

    let missing = Waivers::load(&fixture("no-such-waivers.yaml")).expect_err("missing file");
    assert!(
        missing.to_string().contains("cannot read file"),
        "{missing}"
    );
}
