//! Cases with several connections: `on` selects a named connection, `parallel` runs branches of
//! steps at once (two connections racing to redeem one ticket), each branch on its own
//! connections.

use super::session::Session;
use super::{Perform, StepError, StepFailure, StepResult, run_steps};
use crate::plan::step::{On, Parallel};

impl Perform for On {
    /// `on`: the named connection becomes the current one.
    async fn perform(&self, s: &mut Session) -> StepResult {
        if s.select(&self.0) {
            Ok(())
        } else {
            Err(format!(
                "no connection named `{}` was opened before this step",
                self.0
            )
            .into())
        }
    }
}

impl Perform for Parallel {
    /// `parallel`: every branch at once, each in a session of its own that takes over the
    /// connections it names with `on`; their connections join the case's afterwards. A branch
    /// that cannot be carried out makes the step fail like a step of its own.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let mut children: Vec<Session> = self
            .0
            .iter()
            .map(|branch| s.fork(&Parallel::connections_used(branch)))
            .collect();
        let runs = children
            .iter_mut()
            .zip(&self.0)
            .enumerate()
            .map(|(b, (child, branch))| {
                Box::pin(async move { run_steps(child, branch).await.map_err(|e| (b, e)) })
            });
        let results = futures_util::future::join_all(runs).await;
        for child in children {
            s.join(child);
        }
        for r in results {
            if let Err((b, (i, failure))) = r {
                let at = format!("branch {} step {}", b + 1, i + 1);
                return Err(match failure {
                    // Reported again by the case: `join` kept the fault.
                    StepFailure::Harness(fault) => {
                        s.note_fault(fault.clone());
                        StepError::Inconclusive(format!("{at}: harness fault: {fault}"))
                    }
                    // Reported again by the case: `join` kept the violation.
                    StepFailure::Violation(v) => StepError::Inconclusive(format!(
                        "{at}: {}",
                        v.violation.failed_connection()
                    )),
                    StepFailure::Step(StepError::NotApplicable(e)) => {
                        StepError::NotApplicable(format!("{at}: {e}"))
                    }
                    StepFailure::Step(StepError::Inconclusive(e)) => {
                        StepError::Inconclusive(format!("{at}: {e}"))
                    }
                });
            }
        }
        Ok(())
    }
}
