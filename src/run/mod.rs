//! Running a compiled plan against a target: case selection, scheduling with deadlines,
//! positive-control gating and assembly of the one result model.

pub mod gate;
pub mod progress;
pub mod scheduler;

use std::sync::Arc;

pub use scheduler::{CaseFuture, Finished, Job, run_jobs};

use crate::attacks::{Judgement, TargetRuntime, healthy, run_case};
use crate::config::LoadedPolicy;
use crate::plan::{Case, Plan};
use crate::report::{CaseLog, CaseResult, ControlResult, Outcome, RunReport, Verdict};

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
    /// End the run at the first crash instead of waiting for the target to come back.
    pub stop_on_crash: bool,
}

impl RunOptions {
    /// Every case, the target's parallelism, no progress display, waiting for a crashed
    /// target to recover: what an in-process audit wants; `cancel` stops it.
    pub fn all(cancel: tokio::sync::watch::Receiver<bool>) -> Self {
        Self {
            only: Vec::new(),
            partition: None,
            max_parallel: None,
            cancel,
            progress: progress::Progress::Silent,
            stop_on_crash: false,
        }
    }
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
    // Destructive cases (they may crash a careless target) run after every other case, one at
    // a time, between health probes, so a crash is blamed on the case that caused it and on no
    // other. The rest run concurrently, gates first: every other case is judged against them,
    // so an interrupted run most likely has them. Within each, the longest start first, so
    // no long wait is queued behind short cases and the audit lasts about its longest case.
    let mut order: Vec<usize> = (0..runs.len())
        .filter(|&i| !runs[i].0.destructive)
        .collect();
    order.sort_by_key(|&i| {
        (
            !runs[i].0.role.is_gate(),
            std::cmp::Reverse(runs[i].0.likely_time()),
        )
    });
    let destructive: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].0.destructive).collect();
    let parallel = opts
        .max_parallel
        .unwrap_or(rt.target.limits.max_parallel as usize)
        .max(1);
    let secrets = rt.secrets.clone();
    let labels: Vec<String> = runs
        .iter()
        .map(|(case, reported)| {
            if *reported {
                case.case_id.clone()
            } else {
                format!("{} (gate of selected cases, not reported)", case.case_id)
            }
        })
        .collect();
    let progress = &mut opts.progress;
    let mut show = |f: &Finished, i: usize| {
        let redacted = secrets
            .lock()
            .map(|s| s.redact(&labels[i]))
            .unwrap_or_else(|_| "***".into());
        progress.finished(f.outcome.verdict.label(), &redacted);
    };
    let jobs = order
        .iter()
        .map(|&i| case_job(runs[i].0.clone(), rt.clone(), None))
        .collect();
    let scheduled = run_jobs(jobs, parallel, opts.cancel.clone(), |f| {
        show(f, order[f.index])
    })
    .await;
    let mut finished = vec![None; runs.len()];
    for (&i, f) in order.iter().zip(scheduled) {
        finished[i] = f;
    }

    // One destructive case at a time. The probe after one is the probe before the next.
    let mut known_healthy = false;
    let mut down_after: Option<String> = None;
    for &i in &destructive {
        if *opts.cancel.borrow() {
            break;
        }
        let case = runs[i].0;
        if let Some(after) = &down_after {
            finished[i] = Some(not_run_after(after));
            if let Some(f) = &finished[i] {
                show(f, i);
            }
            continue;
        }
        let crash = Arc::new(std::sync::Mutex::new(CrashProbe {
            probe_before: !known_healthy,
            ..CrashProbe::default()
        }));
        let job = case_job(case.clone(), rt.clone(), Some(crash.clone()));
        let offset = t0.elapsed();
        let mut one = run_jobs(vec![job], 1, opts.cancel.clone(), |f| show(f, i)).await;
        let mut f = one.pop().flatten();
        if let Some(f) = f.as_mut() {
            // Times are from the start of the run, not of this one-case batch.
            f.started += offset;
        }
        let probe = std::mem::take(&mut *crash.lock().unwrap_or_else(|e| e.into_inner()));
        known_healthy = probe.healthy_after;
        if probe.down_before {
            // Not this case's doing: something earlier left the target down.
            down_after = Some(probe.down_before_reason.clone());
        } else if f.is_some()
            && !probe.healthy_after
            && !probe.inconclusive_after
            && !*opts.cancel.borrow()
        {
            // This case took the target down: wait a bounded time for it to come back.
            let recovered = if opts.stop_on_crash {
                None
            } else {
                wait_for_recovery(&rt, rt.target.limits.recovery).await
            };
            if let Some(f) = f.as_mut() {
                f.evidence.note(match recovered {
                    Some(after) => format!(
                        "the target accepted connections again {:.1}s after this case",
                        after.as_secs_f64()
                    ),
                    None if opts.stop_on_crash => {
                        "--stop-on-crash: the run ends here".to_string()
                    }
                    None => format!(
                        "the target did not come back within limits.recovery ({:?}): the remaining destructive cases are not run",
                        rt.target.limits.recovery
                    ),
                });
            }
            match recovered {
                Some(_) => known_healthy = true,
                None => down_after = Some(case.case_id.clone()),
            }
        }
        finished[i] = f;
    }
    opts.progress.finish();

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
    let target_down_after = down_after;
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
        target_down_after,
    };
    report.finish();
    report
}

/// The job running one case; a destructive one (`crash` given) is framed by health probes.
fn case_job(
    case: Case,
    rt: Arc<TargetRuntime>,
    crash: Option<Arc<std::sync::Mutex<CrashProbe>>>,
) -> Job {
    Job {
        deadline: case.deadline.saturating_add(match crash {
            // Room for the probes around the case.
            Some(_) => rt.target.limits.connect_timeout.saturating_mul(4) + rt.reply_wait * 2,
            None => std::time::Duration::ZERO,
        }),
        start: Box::new(move |t: CaseLog| {
            let t = t.redacting(rt.secrets.clone());
            let Some(crash) = crash else {
                return Box::pin(run_case(case, rt, t)) as CaseFuture;
            };
            Box::pin(async move { run_destructive(case, rt, t, crash).await }) as CaseFuture
        }),
    }
}

/// What the health probes around one destructive case found.
#[derive(Debug, Default)]
struct CrashProbe {
    /// Whether to probe before the case (the last probe did not show the target healthy).
    probe_before: bool,
    /// The target was already down before the case: it was not run.
    down_before: bool,
    /// Why, for the cases not run after it.
    down_before_reason: String,
    /// A fresh legitimate client still got in and was served after the case.
    healthy_after: bool,
    /// The probe after the case could not tell (a harness fault, a server whose handshake a
    /// browser fails): neither healthy nor down, and no crash is claimed.
    inconclusive_after: bool,
}

/// A destructive case between two health probes (a fresh login and a valid message): when the
/// probe after it fails, the case fails with that finding, whatever its own verdict.
async fn run_destructive(
    case: Case,
    rt: Arc<TargetRuntime>,
    log: CaseLog,
    crash: Arc<std::sync::Mutex<CrashProbe>>,
) -> Outcome {
    let lock = || crash.lock().unwrap_or_else(|e| e.into_inner());
    if lock().probe_before {
        log.note("health probe before this case (a fresh login and a valid message):");
        match healthy(&rt, &log).await {
            Judgement::Broken(why) => {
                let mut c = lock();
                c.down_before = true;
                c.down_before_reason = format!("{} (the probe before it)", case.case_id);
                return Outcome::skipped(format!(
                    "not run: the target was not healthy before this case: {why}"
                ));
            }
            // Not evidence that the target is down: the case runs and speaks for itself.
            Judgement::Inconclusive(why) => {
                log.note(format!("the health probe was inconclusive: {why}"));
            }
            Judgement::Holds(_) | Judgement::NotApplicable(_) => {}
        }
    }
    let id = case.case_id.clone();
    let outcome = run_case(case, rt.clone(), log.clone()).await;
    log.note("health probe after this case (a fresh login and a valid message):");
    match healthy(&rt, &log).await {
        Judgement::Holds(_) => {
            lock().healthy_after = true;
            outcome
        }
        // An inconclusive probe is no evidence of a crash: the case keeps its own verdict.
        Judgement::Inconclusive(why) => {
            log.note(format!(
                "the health probe after this case was inconclusive, so no crash is claimed: {why}"
            ));
            lock().inconclusive_after = true;
            outcome
        }
        Judgement::Broken(why) | Judgement::NotApplicable(why) => {
            log.note(format!(
                "the case's own verdict was {}: {}",
                outcome.verdict.as_str(),
                outcome.reason
            ));
            Outcome::fail(format!(
                "the target stopped accepting connections after this input ({id}; what it sent \
                 is in the evidence): {why}"
            ))
        }
    }
}

/// Polls the target with the legitimate client until it serves again, for at most `limit`;
/// how long that took, or `None` if it did not come back.
async fn wait_for_recovery(
    rt: &Arc<TargetRuntime>,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    let started = tokio::time::Instant::now();
    loop {
        let probe_log = CaseLog::default();
        if matches!(healthy(rt, &probe_log).await, Judgement::Holds(_)) {
            return Some(started.elapsed());
        }
        if started.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The result of a destructive case not run because the target went down after `after`.
fn not_run_after(after: &str) -> Finished {
    Finished {
        index: 0,
        outcome: Outcome::skipped(format!(
            "{}{after}",
            crate::report::model::NOT_RUN_TARGET_DOWN
        )),
        evidence: Default::default(),
        started: std::time::Duration::ZERO,
        duration: std::time::Duration::ZERO,
    }
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
    // Cases with no step are judged on the target file alone: no gate bears on them.
    let on_file: Vec<String> = runs
        .iter()
        .filter(|(case, _)| case.steps.is_empty())
        .map(|(case, _)| case.case_id.clone())
        .collect();
    gate::gate(&mut results, &hidden_gates, &on_file);
    (results, not_run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;
    use crate::config::target::LoadedTarget;

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
            stop_on_crash: false,
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
