//! The one redaction point: a secret that reached the result model (in evidence, reasons, names,
//! the target URL or the policy path) appears in no output byte of any format once the report is
//! redacted. The end-to-end canary test through a real run comes with the attack engine.

use wsaudit::report::sample::hostile_report;
use wsaudit::report::{Redacted, RunReport, html, json, junit, sarif, terminal};

/// Plain letters and digits, so no format's escaping could disguise a leak from `contains`.
const CANARY: &str = "wsauditCanary7f3b9e21";

fn report_with_canary() -> RunReport {
    let mut report = hostile_report();
    report.target_url = format!("wss://staging.example.com/ws?token={CANARY}");
    report.target = format!("staging-{CANARY}");
    report.policy_file = format!("policies/{CANARY}.yaml");
    for case in &mut report.cases {
        case.reason = format!("{} (Authorization: Bearer {CANARY})", case.reason);
        case.name = format!("{} {CANARY}", case.name);
        case.evidence
            .transcript
            .push(format!("> Authorization: Bearer {CANARY}"));
    }
    report.not_run.push(format!("replay-{CANARY}"));
    report
}

fn every_format(report: &Redacted) -> [(&'static str, String); 5] {
    [
        ("terminal", terminal::render(report)),
        ("junit", junit::render(report)),
        ("json", json::render(report)),
        ("sarif", sarif::render(report)),
        ("html", html::render(report)),
    ]
}

#[test]
fn no_format_leaks_a_redacted_secret() {
    let report = report_with_canary();
    // Without redaction every format carries the canary: the test data reaches each output.
    for (format, text) in every_format(&report.redact(str::to_string)) {
        assert!(text.contains(CANARY), "{format} never showed the canary");
    }
    let redacted = report.redact(|s| s.replace(CANARY, "***"));
    for (format, text) in every_format(&redacted) {
        assert!(!text.contains(CANARY), "{format} leaked the secret");
        assert!(text.contains("***"), "{format} lost the redaction marker");
    }
}
