//! `wsaudit demo`: the one-command tour. Starts the reference server in-process with the
//! embedded `reference-fast` policy, audits it (everything passes), audits a copy weakened on
//! origin and max-size (those controls fail, with evidence), and says what to run next. It
//! checks its own audits too: a demo that shows a wrong result says so and fails.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::attacks::TargetRuntime;
use crate::config::Secrets;
use crate::config::check::load_suites;
use crate::config::target::LoadedTarget;
use crate::config::{LoadedPolicy, SourceFile};
use crate::report::{Redacted, RunReport, Verdict};
use crate::run::{RunOptions, run};
use crate::server::{self, ServerOptions, Weakened};

/// The policy the demo audits against, embedded so the demo runs from any directory.
pub const POLICY: &str = include_str!("../policies/reference-fast.yaml");

/// The defences the demo switches off in its second audit.
pub const WEAKENED: &str = "origin,max-size";

/// The checks of the controls the second audit must catch: exactly those [`WEAKENED`] switches
/// off, and no other.
pub const CAUGHT_CHECKS: [&str; 2] = ["origin.allowlist", "messages.max_size"];

/// What the tour shows, and where its audits did not show what the tour claims.
pub struct Tour {
    /// The text to print.
    pub text: String,
    /// Each way the audits contradict the tour (empty when the demo told the truth); a demo
    /// that shows a wrong result must not exit as if it had shown the right one.
    pub problems: Vec<String>,
}

/// Runs the tour and returns what to print and what went wrong, or why it could not run.
pub async fn tour() -> Result<Tour, String> {
    let mut out = String::new();
    let policy = LoadedPolicy::parse(SourceFile::from_text(
        "policies/reference-fast.yaml",
        POLICY,
    ))
    .map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "wsaudit demo: auditing the embedded reference server with the `{}` policy ({} controls)\n",
        policy.policy.policy,
        policy.policy.controls.len()
    );
    let full = audit(&policy, Weakened::none()).await?;
    let _ = writeln!(
        out,
        "1. The hardened reference server, {}:",
        full.target_url
    );
    controls(&mut out, &full);
    let weakened: Weakened = WEAKENED.parse().map_err(|e: String| e)?;
    let weak = audit(&policy, weakened).await?;
    let _ = writeln!(
        out,
        "\n2. The same server with two defences switched off (--weaken {WEAKENED}):"
    );
    controls(&mut out, &weak);
    let _ = writeln!(out, "\n   What the failing controls caught:");
    for control in weak.controls.iter().filter(|c| c.verdict == Verdict::Fail) {
        let failed: Vec<_> = weak
            .cases
            .iter()
            .filter(|c| c.control_id == control.id && c.verdict == Verdict::Fail)
            .collect();
        for c in failed.iter().take(2) {
            let _ = writeln!(out, "   - {}: {}", c.case_id, c.reason);
        }
    }
    let _ = writeln!(
        out,
        "\nWhat to run next:\n\
         \x20 wsaudit serve --policy policies/fintech.yaml --plain-listen 127.0.0.1:8080 --emit-target ref.yaml\n\
         \x20 wsaudit compile --policy policies/fintech.yaml --target ref.yaml   # the plan, for review\n\
         \x20 wsaudit run --policy policies/fintech.yaml --target ref.yaml --junit wsaudit.xml\n\
         \x20 wsaudit serve --policy policies/fintech.yaml --weaken schema ...   # watch a control fail\n\
         Write a target file for your own staging server (see README) and run the same policy against it."
    );
    let mut problems = hardened_problems(&full);
    problems.extend(weakened_problems(&weak));
    Ok(Tour {
        text: out,
        problems,
    })
}

/// Where the audit of the hardened server is not all pass (an attestation is skipped).
pub fn hardened_problems(report: &RunReport) -> Vec<String> {
    report
        .cases
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::Skipped))
        .map(|c| {
            format!(
                "the hardened server's audit shows {} {}: {}",
                c.case_id,
                c.verdict.as_str(),
                c.reason
            )
        })
        .chain(
            report
                .not_run
                .iter()
                .map(|id| format!("the hardened server's audit did not run {id}")),
        )
        .collect()
}

/// Where the audit of the weakened server does not show exactly the controls of
/// [`CAUGHT_CHECKS`] failing, with no inconclusive case anywhere.
pub fn weakened_problems(report: &RunReport) -> Vec<String> {
    let mut problems: Vec<String> = report
        .controls
        .iter()
        .filter_map(|c| {
            let caught = CAUGHT_CHECKS.contains(&c.check.as_str());
            let fine = if caught {
                c.verdict == Verdict::Fail
            } else {
                matches!(c.verdict, Verdict::Pass | Verdict::Skipped)
            };
            (!fine).then(|| {
                format!(
                    "the weakened server's audit shows {} ({}) {}, expected {}",
                    c.id,
                    c.check,
                    c.verdict.as_str(),
                    if caught { "fail" } else { "pass" }
                )
            })
        })
        .collect();
    for check in CAUGHT_CHECKS {
        if !report.controls.iter().any(|c| c.check == check) {
            problems.push(format!(
                "the weakened server's audit has no {check} control to catch"
            ));
        }
    }
    problems.extend(
        report
            .cases
            .iter()
            .filter(|c| c.verdict == Verdict::Error)
            .map(|c| {
                format!(
                    "the weakened server's audit shows {} inconclusive: {}",
                    c.case_id, c.reason
                )
            }),
    );
    problems
}

/// Starts a reference server enforcing `policy` (weakened or not) on 127.0.0.1, writes the
/// target file it describes itself with, loads and compiles it with the shipped suites, and
/// runs the whole plan: the pipeline a user runs, end to end, in-process.
pub async fn audit_reference(
    policy: &LoadedPolicy,
    weakened: Weakened,
) -> Result<(RunReport, Secrets), String> {
    let mut opts = ServerOptions::local(policy.clone());
    opts.weakened = weakened;
    audit_server(opts).await
}

/// [`audit_reference`] of a server started with `opts` (variants, flaws, weakenings), audited
/// with the plan of the policy it enforces.
pub async fn audit_server(opts: ServerOptions) -> Result<(RunReport, Secrets), String> {
    audit_server_only(opts, &[]).await
}

/// [`audit_server`] running only the controls or cases `only` names (all when empty), with
/// the positive controls they are judged against.
pub async fn audit_server_only(
    opts: ServerOptions,
    only: &[&str],
) -> Result<(RunReport, Secrets), String> {
    let policy = &opts.policy.clone();
    let handle = server::start(opts)
        .await
        .map_err(|e| format!("cannot start the reference server: {e}"))?;
    let dir =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let path = dir.path().join("reference.yaml");
    handle.write_target(&path).map_err(|e| e.to_string())?;
    let source = SourceFile::read(&path).map_err(|e| e.to_string())?;
    let target = LoadedTarget::parse(source, &|_| None).map_err(|e| e.to_string())?;
    let suites = load_suites(&[]).map_err(|e| e.to_string())?;
    let plan = crate::plan::compile(policy, &target, &suites).map_err(|e| e.to_string())?;
    let rt = Arc::new(TargetRuntime::new(&target).map_err(|e| e.to_string())?);
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let mut opts = RunOptions::all(cancel);
    opts.only = only.iter().map(|s| s.to_string()).collect();
    let report = run(&plan, policy, rt.clone(), opts).await;
    Ok((report, rt.secrets()))
}

/// Audits and redacts, for printing.
async fn audit(policy: &LoadedPolicy, weakened: Weakened) -> Result<Redacted, String> {
    let (report, secrets) = audit_reference(policy, weakened).await?;
    Ok(report.redact(|s| secrets.redact(s)))
}

/// One line per control, then the case counts.
fn controls(out: &mut String, r: &Redacted) {
    for c in &r.controls {
        let cases: Vec<_> = r.cases.iter().filter(|k| k.control_id == c.id).collect();
        let failed = cases.iter().filter(|k| k.verdict == Verdict::Fail).count();
        let plural = if cases.len() == 1 { "case" } else { "cases" };
        let detail = if failed > 0 {
            format!("{failed} of {} {plural} failed", cases.len())
        } else {
            format!("{} {plural}", cases.len())
        };
        let _ = writeln!(
            out,
            "   {:<6} {:<13} {} ({detail})",
            c.verdict.label(),
            c.id,
            c.title
        );
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "   {} cases: {} passed, {} failed, {} errors, {} skipped in {:.1}s",
        r.cases.len(),
        s.passed,
        s.failed,
        s.errors,
        s.skipped,
        r.wall_time.as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::hostile_report;

    /// The sample report with every case set by `verdict_of(control_id)` (attestations stay
    /// skipped) and nothing left unrun.
    fn report(verdict_of: impl Fn(&str) -> Verdict) -> RunReport {
        let mut r = hostile_report();
        r.not_run.clear();
        r.target_down_after = None;
        r.cases.retain(|c| {
            !c.reason
                .starts_with(crate::report::model::NOT_RUN_TARGET_DOWN)
        });
        for c in &mut r.cases {
            if c.control_id != "WS-LOG-01" {
                c.verdict = verdict_of(&c.control_id);
            }
        }
        r.finish();
        r
    }

    #[test]
    fn a_hardened_audit_must_be_all_pass() {
        assert!(hardened_problems(&report(|_| Verdict::Pass)).is_empty());
        let problems = hardened_problems(&report(|c| {
            if c == "WS-HB-01" {
                Verdict::Error
            } else {
                Verdict::Pass
            }
        }));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("heartbeat.stale-connection error"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_weakened_audit_must_fail_exactly_the_weakened_controls() {
        let caught = |c: &str| matches!(c, "WS-ORIGIN-01" | "WS-MSG-03");
        let expected = |c: &str| {
            if caught(c) {
                Verdict::Fail
            } else {
                Verdict::Pass
            }
        };
        assert!(weakened_problems(&report(expected)).is_empty());
        // Another control failing too.
        let problems = weakened_problems(&report(|c| {
            if c == "WS-TLS-01" {
                Verdict::Fail
            } else {
                expected(c)
            }
        }));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("WS-TLS-01"), "{problems:?}");
        // A weakened control not caught.
        let problems = weakened_problems(&report(|c| {
            if c == "WS-MSG-03" {
                Verdict::Pass
            } else {
                expected(c)
            }
        }));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("WS-MSG-03 (messages.max_size) pass, expected fail"),
            "{problems:?}"
        );
        // An inconclusive case anywhere.
        let problems = weakened_problems(&report(|c| {
            if c == "WS-HB-01" {
                Verdict::Error
            } else {
                expected(c)
            }
        }));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("heartbeat.stale-connection inconclusive")),
            "{problems:?}"
        );
    }
}
