//! The HTML report: one self-contained file (inline CSS and SVG, no script, no external URL) a
//! person can open from a CI artifact: summary, controls with their cases, evidence of failures
//! and errors, and a timeline of when each case ran.

use std::fmt::Write;
use std::time::Duration;

use super::exit::Exit;
use super::model::{CaseResult, Redacted, Verdict, severity_name};
use super::text::html_escape;

const STYLE: &str = r#"
:root { --pass:#1a7f37; --fail:#cf222e; --error:#bc4c00; --skipped:#6e7781; --waived:#8250df; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header, section { max-width: 1100px; margin: 0 auto; padding: 12px 24px; }
header { background: #fff; border-bottom: 1px solid #d0d7de; max-width: none; }
header > * { max-width: 1052px; margin-left: auto; margin-right: auto; }
h1 { font-size: 22px; margin: 8px auto 4px; }
h2 { font-size: 17px; margin: 18px 0 8px; }
.meta { color: #57606a; margin: 0 auto 6px; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.counts { display: flex; flex-wrap: wrap; gap: 10px; }
.count { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.count b { display: block; font-size: 22px; }
.count.overall { border-width: 2px; }
.badge { display: inline-block; min-width: 62px; text-align: center; color: #fff; border-radius: 10px; padding: 0 8px; font-size: 11px; font-weight: 600; letter-spacing: .03em; }
.v-pass { --c: var(--pass); } .v-fail { --c: var(--fail); } .v-error { --c: var(--error); }
.v-skipped { --c: var(--skipped); } .v-waived { --c: var(--waived); }
.badge { background: var(--c); } .overall { border-color: var(--c); }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #d0d7de; }
td, th { padding: 4px 8px; text-align: left; vertical-align: top; border-top: 1px solid #eaeef2; }
th { background: #f6f8fa; font-weight: 600; }
tr.control td { background: #f6f8fa; border-top: 2px solid #d0d7de; font-weight: 600; }
tr.case td:nth-child(2) { padding-left: 24px; }
.reason { color: #57606a; font-size: 12px; overflow-wrap: anywhere; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
details { background: #fff; border: 1px solid #d0d7de; border-left: 4px solid var(--c); border-radius: 6px; margin: 8px 0; padding: 6px 10px; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0 2px; }
svg { background: #fff; border: 1px solid #d0d7de; width: 100%; height: auto; }
svg text { font: 11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; fill: #1f2328; }
svg .grid { stroke: #eaeef2; } svg .bar { fill: var(--c); }
"#;

/// Width of the timeline's label column, in SVG units.
const LABEL_WIDTH: f64 = 300.0;
/// Width of the timeline's time axis, in SVG units.
const AXIS_WIDTH: f64 = 680.0;
/// Height of one timeline row.
const ROW_HEIGHT: f64 = 18.0;
/// Longest case ID shown in the timeline's label column (the table has the full one).
const LABEL_CHARS: usize = 40;

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn badge(verdict: Verdict) -> String {
    format!(
        r#"<span class="badge v-{}">{}</span>"#,
        verdict.as_str(),
        verdict.label()
    )
}

/// Renders the report as one HTML document.
pub fn render(report: &Redacted) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let title = format!("wsaudit: {} against {}", report.policy, report.target);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        html_escape(&title)
    );
    header(&mut out, report);
    summary(&mut out, report);
    controls(&mut out, report);
    evidence(&mut out, report);
    timeline(&mut out, report);
    if !report.not_run.is_empty() {
        let _ = write!(
            out,
            "<section id=\"not-run\">\n<h2>Not run (interrupted): {}</h2>\n<ul>\n",
            report.not_run.len()
        );
        for id in &report.not_run {
            let _ = writeln!(out, "<li><code>{}</code></li>", html_escape(id));
        }
        out.push_str("</ul>\n</section>\n");
    }
    if let Some(after) = &report.target_down_after {
        let not_run = report
            .cases
            .iter()
            .filter(|c| c.reason.starts_with(super::model::NOT_RUN_TARGET_DOWN))
            .count();
        let _ = writeln!(
            out,
            "<section id=\"target-down\">\n<h2>Target down</h2>\n<p>The target stopped accepting connections after <code>{}</code> and did not come back: {not_run} later destructive case(s) not run.</p>\n</section>",
            html_escape(after)
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn header(out: &mut String, report: &Redacted) {
    let _ = write!(
        out,
        "<header>\n<h1>wsaudit report</h1>\n\
         <p class=\"meta\">Policy <b id=\"policy\">{}</b> (<code>{}</code>) against target \
         <b id=\"target\">{}</b> (<code>{}</code>)</p>\n\
         <p class=\"meta\">Started {}, wall time <span id=\"wall-time\">{}</span>, wsaudit {}</p>\n</header>\n",
        html_escape(&report.policy),
        html_escape(&report.policy_file),
        html_escape(&report.target),
        html_escape(&report.target_url),
        html_escape(&report.started_at),
        secs(report.wall_time),
        html_escape(&report.wsaudit_version),
    );
}

fn summary(out: &mut String, report: &Redacted) {
    let s = &report.summary;
    let (overall, overall_text) = match report.exit() {
        Exit::Passed => (Verdict::Pass, "passed (exit 0)"),
        Exit::Failed => (Verdict::Fail, "failed (exit 1)"),
        Exit::Interrupted => (Verdict::Error, "interrupted (exit 130)"),
        Exit::Inconclusive | Exit::Invalid => (Verdict::Error, "inconclusive (exit 3)"),
    };
    let failing = report.failing_controls();
    let _ = write!(
        out,
        "<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"counts\">\n\
         <div class=\"count overall v-{}\" id=\"overall\"><b>{}</b>{failing} of {} controls failing</div>\n",
        overall.as_str(),
        overall_text,
        report.controls.len(),
    );
    for (verdict, count, word) in [
        (Verdict::Pass, s.passed, "passed"),
        (Verdict::Fail, s.failed, "failed"),
        (Verdict::Error, s.errors, "errors"),
        (Verdict::Skipped, s.skipped, "skipped"),
        (Verdict::Waived, s.waived, "waived"),
    ] {
        let _ = writeln!(
            out,
            "<div class=\"count v-{v}\" id=\"count-{v}\"><b>{count}</b>{word}</div>",
            v = verdict.as_str(),
        );
    }
    let _ = write!(
        out,
        "<div class=\"count\" id=\"count-cases\"><b>{}</b>cases</div>\n</div>\n</section>\n",
        report.cases.len()
    );
}

fn controls(out: &mut String, report: &Redacted) {
    out.push_str(
        "<section id=\"controls\">\n<h2>Controls</h2>\n<table>\n\
         <thead><tr><th>Verdict</th><th>Control / case</th><th>Severity / role</th><th class=\"num\">Duration</th></tr></thead>\n",
    );
    for control in &report.controls {
        let cases: Vec<(usize, &CaseResult)> = report
            .cases
            .iter()
            .enumerate()
            .filter(|(_, c)| c.control_id == control.id)
            .collect();
        let total: Duration = cases.iter().map(|(_, c)| c.duration).sum();
        let _ = write!(
            out,
            "<tbody>\n<tr class=\"control\"><td>{}</td><td>{} &mdash; {}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
            badge(control.verdict),
            html_escape(&control.id),
            html_escape(&control.title),
            severity_name(control.severity),
            secs(total),
        );
        for (index, case) in cases {
            let id = match case.verdict {
                Verdict::Fail | Verdict::Error => format!(
                    "<a href=\"#case-{index}\"><code>{}</code></a>",
                    html_escape(&case.case_id)
                ),
                _ => format!("<code>{}</code>", html_escape(&case.case_id)),
            };
            let _ = writeln!(
                out,
                "<tr class=\"case\"><td>{}</td><td>{id} {}<div class=\"reason\">{}</div></td><td>{}</td><td class=\"num\">{}</td></tr>",
                badge(case.verdict),
                html_escape(&case.name),
                html_escape(&case.reason),
                role_name(case),
                secs(case.duration),
            );
        }
        out.push_str("</tbody>\n");
    }
    out.push_str("</table>\n</section>\n");
}

fn role_name(case: &CaseResult) -> &'static str {
    match case.role {
        super::model::Role::Attack => "attack",
        super::model::Role::Positive => "positive control",
        super::model::Role::Baseline => "baseline",
        super::model::Role::Attestation => "attestation",
    }
}

fn evidence(out: &mut String, report: &Redacted) {
    let troubled: Vec<(usize, &CaseResult)> = report
        .cases
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.verdict, Verdict::Fail | Verdict::Error))
        .collect();
    out.push_str("<section id=\"evidence\">\n<h2>Failures and errors</h2>\n");
    if troubled.is_empty() {
        out.push_str("<p>None.</p>\n");
    }
    for (index, case) in troubled {
        let _ = write!(
            out,
            "<details open id=\"case-{index}\" class=\"v-{}\">\n<summary>{} {} <code>{}</code></summary>\n<p>{}</p>\n<pre>",
            case.verdict.as_str(),
            badge(case.verdict),
            html_escape(&case.control_id),
            html_escape(&case.case_id),
            html_escape(&case.reason),
        );
        if case.evidence.transcript.is_empty() {
            out.push_str("(no evidence recorded)");
        }
        for line in &case.evidence.transcript {
            let _ = writeln!(out, "{}", html_escape(line));
        }
        out.push_str("</pre>\n</details>\n");
    }
    out.push_str("</section>\n");
}

fn timeline(out: &mut String, report: &Redacted) {
    let end = report
        .cases
        .iter()
        .map(|c| c.started + c.duration)
        .max()
        .unwrap_or_default()
        .max(report.wall_time);
    // An empty or instant run still gets a drawable axis.
    let span = end.as_secs_f64().max(0.001);
    let rows = report.cases.len();
    let height = ROW_HEIGHT * (rows as f64 + 1.5);
    let width = LABEL_WIDTH + AXIS_WIDTH + 20.0;
    let _ = write!(
        out,
        "<section id=\"timeline\">\n<h2>Timeline</h2>\n\
         <svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"When each case ran\">\n"
    );
    for tick in 0..=4 {
        let x = LABEL_WIDTH + AXIS_WIDTH * f64::from(tick) / 4.0;
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"0\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.2}s</text>",
            height - ROW_HEIGHT,
            height - 4.0,
            span * f64::from(tick) / 4.0,
        );
    }
    for (row, case) in report.cases.iter().enumerate() {
        let y = ROW_HEIGHT * row as f64;
        let x = LABEL_WIDTH + AXIS_WIDTH * case.started.as_secs_f64() / span;
        let w = (AXIS_WIDTH * case.duration.as_secs_f64() / span).max(2.0);
        let label: String = if case.case_id.chars().count() > LABEL_CHARS {
            let cut: String = case.case_id.chars().take(LABEL_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            case.case_id.clone()
        };
        let _ = writeln!(
            out,
            "<g class=\"v-{v}\"><title>{id}: {verdict}, started {start}, took {dur}</title>\
             <text x=\"4\" y=\"{ty:.1}\">{label}</text>\
             <rect class=\"bar\" x=\"{x:.1}\" y=\"{by:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\" rx=\"2\"/></g>",
            v = case.verdict.as_str(),
            id = html_escape(&case.case_id),
            verdict = case.verdict.as_str(),
            start = secs(case.started),
            dur = secs(case.duration),
            ty = y + ROW_HEIGHT - 5.0,
            label = html_escape(&label),
            by = y + 3.0,
            bh = ROW_HEIGHT - 6.0,
        );
    }
    out.push_str("</svg>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::hostile_report;

    /// The markup of every tag: all text is escaped, so each `<` opens a tag we wrote.
    fn tags(html: &str) -> Vec<&str> {
        html.split('<')
            .skip(1)
            .map(|rest| rest.split('>').next().unwrap_or(rest))
            .collect()
    }

    #[test]
    fn hostile_text_is_escaped_and_nothing_is_loaded() {
        let html = render(&hostile_report().redact(str::to_string));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains('\u{0}') && !html.contains('\u{1b}'));
        const ALLOWED: &[&str] = &[
            "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "header", "h1", "h2",
            "p", "b", "code", "span", "section", "div", "table", "thead", "tbody", "tr", "th",
            "td", "a", "details", "summary", "pre", "svg", "line", "text", "g", "rect", "ul", "li",
        ];
        for tag in tags(&html) {
            let name = tag
                .trim_start_matches('/')
                .split([' ', '/'])
                .next()
                .unwrap_or_default();
            assert!(ALLOWED.contains(&name), "unexpected element <{tag}>");
            for banned in [" src=", "url(", "@import", "http:", "https:", " on"] {
                assert!(!tag.contains(banned), "{banned} in <{tag}>");
            }
            if let Some(i) = tag.find("href=\"") {
                assert!(tag[i + 6..].starts_with('#'), "external link <{tag}>");
            }
        }
        let style = html
            .split("<style>")
            .nth(1)
            .and_then(|s| s.split("</style>").next())
            .expect("inline style");
        assert!(!style.contains("url(") && !style.contains("@import"));
    }
}
