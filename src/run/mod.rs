//! Running a compiled plan against a target: case selection, scheduling with deadlines,
//! positive-control gating and assembly of the one result model.

pub mod gate;
pub mod progress;
pub mod scheduler;

use std::sync::Arc;

pub use scheduler::{CaseFuture, Finished, Job, Outcome, Transcript, run_jobs};

use crate::attacks::{TargetRuntime, run_case};
use crate::config::LoadedPolicy;
use crate::plan::{Case, Plan};
use crate::report::{CaseResult, ControlResult, Role, RunReport, Verdict};

/// How a run is carried out.
pub struct RunOptions {
    /// Control IDs or case IDs to run (a case ID may leave out its `[item]`); empty runs all.
    pub only: Vec<String>,
    /// This job's share of the cases when a plan is spread over parallel CI jobs.
    pub partition: Option<crate::report::partition::Partition>,
    /// Cases at once; the target's `limits.max_parallel` when `None`.
    pub max_parallel: Option<usize>,
    /// Switches to `true` to stop (SIGINT): running cases are abandoned and reported as not run.
    pub cancel: tokio::sync::watch::Receiver<bool>,
    /// Progress display.
    pub progress: progress::Progress,
}

/// Whether `case` is selected by `only` (a control ID, a case ID, or a case ID without `[item]`).
pub fn selected(case: &Case, only: &[String]) -> bool {
    only.is_empty()
        || only.iter().any(|o| {
            o == &case.control_id
                || o == &case.case_id
                || case.case_id.split('[').next() == Some(o.as_str())
        })
}

/// The cases a run executes: selected by `only`, then this job's share of them.
pub fn select(
    plan: &Plan,
    only: &[String],
    partition: Option<&crate::report::partition::Partition>,
) -> Vec<Case> {
    plan.cases
        .iter()
        .filter(|c| selected(c, only) && partition.is_none_or(|p| p.contains(&c.case_id)))
        .cloned()
        .collect()
}

/// The IDs in `only` that select nothing in `plan` (a typo must not silently run nothing).
pub fn unknown_selections<'a>(plan: &Plan, only: &'a [String]) -> Vec<&'a str> {
    only.iter()
        .filter(|o| {
            !plan
                .cases
                .iter()
                .any(|c| selected(c, std::slice::from_ref(*o)))
        })
        .map(String::as_str)
        .collect()
}

fn role(r: crate::plan::Role) -> Role {
    match r {
        crate::plan::Role::Attack => Role::Attack,
        crate::plan::Role::Positive => Role::Positive,
        crate::plan::Role::Baseline => Role::Baseline,
        crate::plan::Role::Attestation => Role::Attestation,
    }
}

/// Runs the selected cases of `plan` and returns the report (not yet redacted).
pub async fn run(
    plan: &Plan,
    policy: &LoadedPolicy,
    rt: Arc<TargetRuntime>,
    mut opts: RunOptions,
) -> RunReport {
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let t0 = tokio::time::Instant::now();
    // `--only`, then this job's share: a partitioned CI job must run its share, not the plan.
    let cases = select(plan, &opts.only, opts.partition.as_ref());
    let parallel = opts
        .max_parallel
        .unwrap_or(rt.target.limits.max_parallel as usize)
        .max(1);
    let jobs = cases
        .iter()
        .map(|case| {
            let case = case.clone();
            let rt = rt.clone();
            Job {
                deadline: case.deadline,
                start: Box::new(move |t: Transcript| {
                    let t = t.redacting(rt.secrets.clone());
                    Box::pin(run_case(case, rt, t)) as CaseFuture
                }),
            }
        })
        .collect();
    let secrets = rt.secrets.clone();
    let labels: Vec<String> = cases.iter().map(|c| c.case_id.clone()).collect();
    let progress = &mut opts.progress;
    let finished = run_jobs(jobs, parallel, opts.cancel.clone(), |f| {
        let redacted = secrets
            .lock()
            .map(|s| s.redact(&labels[f.index]))
            .unwrap_or_else(|_| "***".into());
        progress.finished(f.outcome.verdict.label(), &redacted);
    })
    .await;
    opts.progress.finish();

    let mut results = Vec::new();
    let mut not_run = Vec::new();
    for (case, f) in cases.iter().zip(finished) {
        match f {
            Some(f) => results.push(CaseResult {
                control_id: case.control_id.clone(),
                case_id: case.case_id.clone(),
                family: case.family.clone(),
                name: case.name.clone(),
                role: role(case.role),
                verdict: f.outcome.verdict,
                reason: f.outcome.reason,
                evidence: f.evidence,
                started: f.started,
                duration: f.duration,
            }),
            None => not_run.push(case.case_id.clone()),
        }
    }
    gate::gate_on_positive_controls(&mut results);

    let controls = policy
        .policy
        .controls
        .iter()
        .enumerate()
        .filter(|(_, c)| cases.iter().any(|k| k.control_id == c.id))
        .map(|(i, c)| ControlResult {
            id: c.id.clone(),
            title: c.title.clone().unwrap_or_else(|| c.check.clone()),
            check: c.check.clone(),
            severity: c.severity,
            refs: c.refs.clone(),
            line: policy.control_location(i).map(|l| l.line),
            verdict: Verdict::Skipped,
        })
        .collect();
    let mut report = RunReport {
        wsaudit_version: env!("CARGO_PKG_VERSION").to_string(),
        policy: plan.policy.name.clone(),
        policy_file: plan.policy.file.clone(),
        target: rt.target.target.clone(),
        target_url: crate::client::display_url(&rt.target.url.0),
        started_at,
        wall_time: t0.elapsed(),
        controls,
        cases: results,
        summary: Default::default(),
        not_run,
    };
    report.finish();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;
    use crate::config::target::LoadedTarget;

    /// A job given `--partition` runs exactly its share of the selected cases.
    #[tokio::test]
    async fn a_run_executes_only_its_partition() {
        crate::tls::install_crypto_provider();
        let policy = LoadedPolicy::parse(SourceFile::from_text("p.yaml", crate::demo::POLICY))
            .expect("embedded policy");
        // A port bound but never listening (kept for the whole test, so no other test's server
        // can take it): every case ends at once with a refused connection.
        let closed = tokio::net::TcpSocket::new_v4().expect("socket");
        closed
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let addr = closed.local_addr().expect("free port");
        let text = format!(
            "target: t\nurl: wss://{addr}/ws\norigin: https://app.example.com\n\
             auth:\n  ticket:\n    request: {{ method: POST, url: 'https://{addr}/t' }}\n    \
             extract: /ticket\n  first_message: '{{{{ticket}}}}'\n\
             messages:\n  valid: ['{{}}']\n"
        );
        let target =
            LoadedTarget::parse(SourceFile::from_text("t.yaml", text), &|_| None).expect("target");
        let suites = crate::config::check::load_suites(&[]).expect("suites");
        let plan = crate::plan::compile(&policy, &target, &suites).expect("plan");
        let rt = Arc::new(TargetRuntime::new(&target).expect("runtime"));
        let partition: crate::report::partition::Partition = "1/3".parse().expect("partition");
        let only = vec!["WS-ORIGIN-01".to_string()];
        let share: Vec<String> = select(&plan, &only, Some(&partition))
            .into_iter()
            .map(|c| c.case_id)
            .collect();
        assert!(share.len() < select(&plan, &only, None).len());
        let (_tx, cancel) = tokio::sync::watch::channel(false);
        let opts = RunOptions {
            only,
            partition: Some(partition),
            max_parallel: None,
            cancel,
            progress: progress::Progress::Silent,
        };
        let report = run(&plan, &policy, rt, opts).await;
        let ran: Vec<String> = report.cases.iter().map(|c| c.case_id.clone()).collect();
        assert_eq!(ran, share);
    }
}
