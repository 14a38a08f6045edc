//! The terminal report: one line per case, the evidence of failures and errors, a summary.

use std::fmt::Write;

use super::model::{Redacted, Verdict};
use super::text::printable;

/// Renders the whole report as plain text (no colours: it usually lands in a CI log).
pub fn render(report: &Redacted) -> String {
    let mut out = String::new();
    let id_width = report
        .cases
        .iter()
        .map(|c| c.control_id.len())
        .max()
        .unwrap_or(8);
    let case_width = report
        .cases
        .iter()
        .map(|c| c.case_id.len())
        .max()
        .unwrap_or(8)
        .min(60);
    for c in &report.cases {
        let _ = writeln!(
            out,
            "{:<6} {:<id_width$}  {:<case_width$}  {:>6.2}s",
            c.verdict.label(),
            c.control_id,
            c.case_id,
            c.duration.as_secs_f64(),
        );
    }
    let troubled: Vec<_> = report
        .cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
        .collect();
    if !troubled.is_empty() {
        let _ = writeln!(out, "\nFailures and errors:");
        for c in troubled {
            let _ = writeln!(
                out,
                "\n{} {} {} ({})",
                c.verdict.label(),
                c.control_id,
                printable(&c.case_id),
                printable(&c.name)
            );
            // Reasons and evidence may quote the target: no escape sequence reaches the log.
            let _ = writeln!(out, "  {}", printable(&c.reason));
            for line in &c.evidence.transcript {
                let _ = writeln!(out, "    {}", printable(line));
            }
        }
    }
    if !report.not_run.is_empty() {
        let _ = writeln!(out, "\nNot run (interrupted): {}", report.not_run.len());
    }
    if let Some(after) = &report.target_down_after {
        let skipped = report
            .cases
            .iter()
            .filter(|c| {
                c.reason
                    .starts_with(crate::report::model::NOT_RUN_TARGET_DOWN)
            })
            .count();
        let _ = writeln!(
            out,
            "\nTarget down after {}: {skipped} later destructive case(s) not run",
            printable(after)
        );
    }
    let s = &report.summary;
    let controls_failed = report.failing_controls();
    let _ = writeln!(
        out,
        "\nSummary: {} passed, {} failed, {} errors, {} skipped, {} waived ({} cases, {} of {} controls failing) in {:.1}s",
        s.passed,
        s.failed,
        s.errors,
        s.skipped,
        s.waived,
        report.cases.len(),
        controls_failed,
        report.controls.len(),
        report.wall_time.as_secs_f64(),
    );
    out
}
