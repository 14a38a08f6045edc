//! Runs cases concurrently under a bound, each with its own deadline, and keeps whatever
//! evidence a case recorded even when its deadline cuts it short.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::report::{CaseLog, Evidence, Outcome};

/// The future of one case.
pub type CaseFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// One schedulable case: a deadline and a way to start it.
pub struct Job {
    /// Hard limit on the case's wall time.
    pub deadline: Duration,
    /// Starts the case, recording evidence into the transcript.
    pub start: Box<dyn FnOnce(CaseLog) -> CaseFuture + Send>,
}

/// What happened to one job.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The job's index in the input.
    pub index: usize,
    /// Verdict and reason.
    pub outcome: Outcome,
    /// Everything recorded.
    pub evidence: Evidence,
    /// When it started, from the start of the run.
    pub started: Duration,
    /// How long it ran.
    pub duration: Duration,
}

/// Runs `jobs` with at most `max_parallel` at once, starting them in the order given (the
/// caller puts the longest first); `None` results were not run (cancelled). A job that panics
/// finishes as `error`, with its evidence.
///
/// `cancel` switching to `true` stops launching jobs and abandons running ones; `on_done`
/// sees each result as it arrives (progress display).
pub async fn run_jobs(
    jobs: Vec<Job>,
    max_parallel: usize,
    mut cancel: watch::Receiver<bool>,
    mut on_done: impl FnMut(&Finished),
) -> Vec<Option<Finished>> {
    let run_start = Instant::now();
    let mut results: Vec<Option<Finished>> = vec![None; jobs.len()];
    // Jobs are launched here, one as another ends, rather than spawned at once to queue on a
    // semaphore: spawned tasks reach a semaphore in whatever order the runtime polls them.
    let mut waiting = jobs.into_iter().enumerate();
    let mut set = JoinSet::new();
    for (index, job) in waiting.by_ref().take(max_parallel.max(1)) {
        set.spawn(run_job(index, job, run_start.elapsed()));
    }
    let mut cancellable = true;
    loop {
        if *cancel.borrow() {
            set.abort_all();
            // Cases that finished before the abort keep their results: only the ones still
            // running are cancelled and come back as `JoinError`s; waiting ones never start.
            while let Some(joined) = set.join_next().await {
                if let Ok(f) = joined {
                    on_done(&f);
                    let i = f.index;
                    results[i] = Some(f);
                }
            }
            break;
        }
        tokio::select! {
            joined = set.join_next() => match joined {
                None => break,
                Some(joined) => {
                    if let Ok(f) = joined {
                        on_done(&f);
                        let i = f.index;
                        results[i] = Some(f);
                    }
                    if !*cancel.borrow()
                        && let Some((index, job)) = waiting.next()
                    {
                        set.spawn(run_job(index, job, run_start.elapsed()));
                    }
                }
            },
            changed = cancel.changed(), if cancellable => {
                // The sender is gone: nobody can cancel any more; keep running.
                cancellable = changed.is_ok();
            }
        }
    }
    results
}

/// Runs one job under its deadline, keeping its evidence whatever happens.
/// `started` is when it was launched, from the start of the run.
async fn run_job(index: usize, job: Job, started: Duration) -> Finished {
    let transcript = CaseLog::default();
    let t0 = Instant::now();
    // A panic is a wsaudit bug; it must not pass for an interrupted run or take the case's
    // evidence with it, so it ends the case as inconclusive, saying so.
    let case = std::panic::AssertUnwindSafe((job.start)(transcript.clone())).catch_unwind();
    let outcome = match tokio::time::timeout(job.deadline, case).await {
        Ok(Ok(o)) => o,
        Ok(Err(panic)) => Outcome::error(format!(
            "wsaudit failed in this case (a bug, please report it): {}",
            panic_message(panic.as_ref())
        )),
        Err(_) => Outcome::error(format!(
            "the harness deadline of {:.1}s passed before the case finished",
            job.deadline.as_secs_f64()
        )),
    };
    Finished {
        index,
        outcome,
        evidence: transcript.snapshot(),
        started,
        duration: t0.elapsed(),
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::report::Verdict;

    fn job(ms: u64, deadline_ms: u64, verdict: Verdict) -> Job {
        Job {
            deadline: Duration::from_millis(deadline_ms),
            start: Box::new(move |t: CaseLog| {
                Box::pin(async move {
                    t.sent("start");
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    t.saw("end");
                    Outcome {
                        verdict,
                        reason: "done".into(),
                    }
                })
            }),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn runs_concurrently_and_deadlines_keep_evidence() {
        let (_tx, rx) = watch::channel(false);
        let jobs = vec![
            job(100, 1000, Verdict::Pass),
            job(5000, 200, Verdict::Pass),
            job(100, 1000, Verdict::Fail),
        ];
        let mut seen = 0;
        let out = run_jobs(jobs, 8, rx, |_| seen += 1).await;
        assert_eq!(seen, 3);
        let r: Vec<_> = out.into_iter().map(|f| f.expect("ran")).collect();
        assert_eq!(r[0].outcome.verdict, Verdict::Pass);
        assert_eq!(r[1].outcome.verdict, Verdict::Error);
        assert_eq!(r[1].evidence.transcript, vec!["> start".to_string()]);
        assert_eq!(r[2].outcome.verdict, Verdict::Fail);
        // All three started at once.
        assert!(r.iter().all(|f| f.started < Duration::from_millis(10)));
    }

    /// Jobs start in the order given, each as soon as a slot frees: the runner relies on it to
    /// start the longest cases first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_start_in_the_order_given() {
        let (_tx, rx) = watch::channel(false);
        let jobs: Vec<Job> = (0..12).map(|_| job(20, 1000, Verdict::Pass)).collect();
        let out = run_jobs(jobs, 3, rx, |_| {}).await;
        let started: Vec<Duration> = out
            .iter()
            .map(|f| f.as_ref().expect("ran").started)
            .collect();
        for (i, pair) in started.windows(2).enumerate() {
            assert!(
                pair[0] <= pair[1],
                "job {} started after job {}: {started:?}",
                i,
                i + 1
            );
        }
        // Three at a time: the fourth waits for a slot.
        assert!(started[3] >= Duration::from_millis(15), "{started:?}");
    }

    /// Cases that finished before the scheduler saw the cancel keep their results; only the
    /// unfinished ones are not run.
    #[tokio::test(start_paused = true)]
    async fn cancel_keeps_every_case_that_already_finished() {
        let (tx, rx) = watch::channel(false);
        let tx = Arc::new(tx);
        let cancelling = Job {
            deadline: Duration::from_secs(1),
            start: Box::new(move |_t: CaseLog| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let _ = tx.send(true);
                    Outcome::pass("cancelled the run")
                })
            }),
        };
        // The next two finish in the same instant as the cancelling one, before the scheduler
        // runs again; the last is still running when the cancel is seen.
        let jobs = vec![
            cancelling,
            job(10, 1000, Verdict::Pass),
            job(10, 1000, Verdict::Fail),
            job(5000, 10_000, Verdict::Pass),
        ];
        let mut seen = 0;
        let out = run_jobs(jobs, 8, rx, |_| seen += 1).await;
        let verdicts: Vec<Option<Verdict>> = out
            .iter()
            .map(|f| f.as_ref().map(|f| f.outcome.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                Some(Verdict::Pass),
                Some(Verdict::Pass),
                Some(Verdict::Fail),
                None
            ]
        );
        assert_eq!(seen, 3, "every kept result is shown as finished");
    }

    #[tokio::test]
    async fn a_panicking_case_is_an_error_with_its_evidence_not_a_lost_one() {
        let (_tx, rx) = watch::channel(false);
        let jobs = vec![Job {
            deadline: Duration::from_secs(5),
            start: Box::new(|t: CaseLog| {
                Box::pin(async move {
                    t.sent("before the bug");
                    panic!("index out of bounds");
                })
            }),
        }];
        let out = run_jobs(jobs, 1, rx, |_| {}).await;
        let f = out[0].as_ref().expect("reported, not lost");
        assert_eq!(f.outcome.verdict, Verdict::Error);
        assert!(
            f.outcome.reason.contains("index out of bounds"),
            "{}",
            f.outcome.reason
        );
        assert_eq!(f.evidence.transcript, vec!["> before the bug".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn bound_is_respected_and_cancel_stops_the_rest() {
        let (tx, rx) = watch::channel(false);
        let jobs = (0..4).map(|_| job(100, 1000, Verdict::Pass)).collect();
        let out = run_jobs(jobs, 2, rx, |_| {}).await;
        let starts: Vec<_> = out
            .iter()
            .map(|f| f.as_ref().expect("ran").started)
            .collect();
        assert_eq!(
            starts
                .iter()
                .filter(|s| **s >= Duration::from_millis(100))
                .count(),
            2
        );

        let jobs = (0..4).map(|_| job(100, 1000, Verdict::Pass)).collect();
        let rx = tx.subscribe();
        let cancel = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let _ = tx.send(true);
        });
        let out = run_jobs(jobs, 1, rx, |_| {}).await;
        let _ = cancel.await;
        assert_eq!(out.iter().filter(|f| f.is_some()).count(), 1);
    }
}
