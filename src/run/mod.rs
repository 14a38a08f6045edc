//! Running a compiled plan against a target: case selection, scheduling with deadlines,
//! positive-control gating and assembly of the one result model.

pub mod gate;
pub mod progress;
pub mod scheduler;

use std::sync::Arc;

pub use scheduler::{CaseFuture, Finished, Job, run_jobs};

use crate::attacks::{TargetRuntime, run_case};
use crate::config::LoadedPolicy;
use crate::plan::{Case, Plan};
use crate::report::{CaseLog, CaseResult, ControlResult, RunReport, Verdict};

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

/// The cases a run reports: selected by `only`, then this job's share of them.
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

/// Whether the verdict of `case` depends on `gate` (see [`gate::gate`]).
fn depends_on(case: &Case, gate: &Case) -> bool {
    case.control_id == gate.control_id
        && case.case_id != gate.case_id
        && case.role.gated_by(gate.role)
}

/// The gates (positive controls, baselines) the `selected` cases depend on but that are not
/// selected themselves, in plan order: a run executes them without reporting them, so neither
/// `--only` on an attack nor a `--partition` share can judge an attack without its gates.
pub fn dependencies(plan: &Plan, selected: &[Case]) -> Vec<Case> {
    plan.cases
        .iter()
        .filter(|g| {
            !selected.iter().any(|s| s.case_id == g.case_id)
                && selected.iter().any(|s| depends_on(s, g))
        })
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
    // The gates of those cases run too, but only the selected cases are reported: each
    // share's reports hold each case once.
    let gates = dependencies(plan, &cases);
    let runs: Vec<(&Case, bool)> = gates
        .iter()
        .map(|g| (g, false))
        .chain(cases.iter().map(|c| (c, true)))
        .collect();
    // Gates start first: every other case is judged against them, so an interrupted run most
    // likely has them (and long positive controls start early).
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| !runs[i].0.role.is_gate());
    let parallel = opts
        .max_parallel
        .unwrap_or(rt.target.limits.max_parallel as usize)
        .max(1);
    let jobs = order
        .iter()
        .map(|&i| {
            let case = runs[i].0.clone();
            let rt = rt.clone();
            Job {
                deadline: case.deadline,
                start: Box::new(move |t: CaseLog| {
                    let t = t.redacting(rt.secrets.clone());
                    Box::pin(run_case(case, rt, t)) as CaseFuture
                }),
            }
        })
        .collect();
    let secrets = rt.secrets.clone();
    let labels: Vec<String> = order
        .iter()
        .map(|&i| {
            let (case, reported) = runs[i];
            if reported {
                case.case_id.clone()
            } else {
                format!("{} (gate of selected cases, not reported)", case.case_id)
            }
        })
        .collect();
    let progress = &mut opts.progress;
    let scheduled = run_jobs(jobs, parallel, opts.cancel.clone(), |f| {
        let redacted = secrets
            .lock()
            .map(|s| s.redact(&labels[f.index]))
            .unwrap_or_else(|_| "***".into());
        progress.finished(f.outcome.verdict.label(), &redacted);
    })
    .await;
    opts.progress.finish();
    let mut finished = vec![None; runs.len()];
    for (&i, f) in order.iter().zip(scheduled) {
        finished[i] = f;
    }

    let (results, not_run) = assemble(&runs, finished);

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

/// The reported results of a run, gated, and the IDs of the reported cases that never finished.
/// `runs` pairs each executed case with whether it is reported (unselected gates are not);
/// `finished` holds their results in the same order, `None` for the unfinished.
fn assemble(
    runs: &[(&Case, bool)],
    finished: Vec<Option<Finished>>,
) -> (Vec<CaseResult>, Vec<String>) {
    let mut results = Vec::new();
    let mut not_run = Vec::new();
    // Gates the results do not show: unreported ones, and reported ones that never finished.
    let mut hidden_gates = Vec::new();
    for ((case, reported), f) in runs.iter().zip(finished) {
        let gate = || gate::Gate {
            control_id: case.control_id.clone(),
            case_id: case.case_id.clone(),
            role: case.role,
            ended: None,
            reported: *reported,
        };
        match f {
            Some(f) if *reported => results.push(CaseResult {
                control_id: case.control_id.clone(),
                case_id: case.case_id.clone(),
                family: case.family.clone(),
                name: case.name.clone(),
                role: case.role,
                verdict: f.outcome.verdict,
                reason: f.outcome.reason,
                evidence: f.evidence,
                started: f.started,
                duration: f.duration,
            }),
            Some(f) => hidden_gates.push(gate::Gate {
                ended: Some((f.outcome.verdict, f.outcome.reason)),
                ..gate()
            }),
            None => {
                if *reported {
                    not_run.push(case.case_id.clone());
                }
                if case.role.is_gate() {
                    hidden_gates.push(gate());
                }
            }
        }
    }
    gate::gate(&mut results, &hidden_gates);
    (results, not_run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;
    use crate::config::target::LoadedTarget;
    use crate::report::Outcome;

    /// The embedded policy's plan against a port bound but never listening (kept in the
    /// returned socket for the whole test, so no other test's server can take it): every case
    /// ends at once with a refused connection.
    fn refused_plan() -> (
        LoadedPolicy,
        Plan,
        Arc<TargetRuntime>,
        tokio::net::TcpSocket,
    ) {
        crate::crypto::install_crypto_provider();
        let policy = LoadedPolicy::parse(SourceFile::from_text(
            "p.yaml",
            include_str!("../../policies/reference-fast.yaml"),
        ))
        .expect("embedded policy");
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
        (policy, plan, rt, closed)
    }

    /// An attack selected alone brings the gates of its control; a positive control only the
    /// baselines; an attestation nothing; a selected gate is not a dependency again.
    #[tokio::test]
    async fn selected_cases_bring_the_gates_they_depend_on() {
        let (_, plan, _, _closed) = refused_plan();
        let deps = |only: &str| {
            let cases = select(&plan, &[only.to_string()], None);
            dependencies(&plan, &cases)
                .into_iter()
                .map(|c| c.case_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            deps("WS-ORIGIN-01/ORIGIN-FOREIGN"),
            ["WS-ORIGIN-01/ORIGIN-ALLOWED[https://app.example.com]"]
        );
        assert_eq!(
            deps("WS-MSG-03/SIZE-FRAGMENTED"),
            ["WS-MSG-03/SIZE-UNDER-LIMIT"]
        );
        assert_eq!(
            deps("WS-AUTH-02/URLTOKEN-QUERY[token]"),
            [
                "WS-AUTH-02/URLTOKEN-LEGITIMATE",
                "WS-AUTH-02/URLTOKEN-NO-CREDENTIAL"
            ]
        );
        assert_eq!(
            deps("WS-AUTH-02/URLTOKEN-LEGITIMATE"),
            ["WS-AUTH-02/URLTOKEN-NO-CREDENTIAL"]
        );
        assert!(deps("WS-ORIGIN-01").is_empty());
        assert!(deps("WS-LOG-01").is_empty());
    }

    /// A job given `--partition` runs exactly its share of the selected cases.
    #[tokio::test]
    async fn a_run_executes_only_its_partition() {
        let (policy, plan, rt, _closed) = refused_plan();
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

    fn finished(index: usize, outcome: Outcome) -> Option<Finished> {
        Some(Finished {
            index,
            outcome,
            evidence: Default::default(),
            started: std::time::Duration::ZERO,
            duration: std::time::Duration::ZERO,
        })
    }

    /// In an interrupted run, an attack whose gate did not finish is not a pass, whether the
    /// gate was selected (then it is listed as not run) or only run as a dependency (then it
    /// is not reported at all).
    #[tokio::test]
    async fn an_attack_whose_gate_did_not_finish_is_not_a_pass() {
        let (_, plan, _, _closed) = refused_plan();
        let find = |id: &str| {
            plan.cases
                .iter()
                .find(|c| c.case_id.starts_with(id))
                .expect("case in the plan")
        };
        let allowed = find("WS-ORIGIN-01/ORIGIN-ALLOWED");
        let foreign = find("WS-ORIGIN-01/ORIGIN-FOREIGN");
        let null = find("WS-ORIGIN-01/ORIGIN-NULL");
        let refused = || Outcome::pass("refused with 403");
        for reported_gate in [false, true] {
            let runs = [(allowed, reported_gate), (foreign, true), (null, true)];
            let (results, not_run) = assemble(&runs, vec![None, finished(1, refused()), None]);
            let verdicts: Vec<(&str, Verdict)> = results
                .iter()
                .map(|c| (c.case_id.as_str(), c.verdict))
                .collect();
            assert_eq!(verdicts, [(foreign.case_id.as_str(), Verdict::Error)]);
            assert!(
                results[0].reason.contains("did not finish")
                    && results[0].reason.contains(&allowed.case_id),
                "{}",
                results[0].reason
            );
            let mut expected = vec![null.case_id.clone()];
            if reported_gate {
                expected.insert(0, allowed.case_id.clone());
            }
            assert_eq!(not_run, expected);
        }
        // The same attack with its gate finished and held is a pass, and the gate stays
        // unreported when it was not selected.
        let runs = [(allowed, false), (foreign, true)];
        let (results, not_run) = assemble(
            &runs,
            vec![
                finished(0, Outcome::pass("upgraded")),
                finished(1, refused()),
            ],
        );
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].verdict, Verdict::Pass);
        assert!(not_run.is_empty());
    }
}
