//! The attack engine: executes compiled cases against a target.
//!
//! Suites (data) own the cases; this module owns their execution. The layers, bottom up:
//! - [`profile`]: the one legitimate client's handshake (URL, Origin, headers, cookies,
//!   subprotocols, extensions), of which every handshake is a declared [`profile::Variation`].
//!   **A credential kind on the handshake goes here.**
//! - [`legitimate`]: the legitimate client's ticket, login and logged-in connection, used by
//!   the `login` step, the health check, the live fuzzer and the ticket-flow judgement.
//! - [`channel`]: the one message channel: business and authentication messages out, replies
//!   in, each classified once against the target. **A protocol dialect plugs in here**
//!   ([`dialect`]); frame-level attacks pass through it unchanged.
//! - [`session`]: one case's state: its named connections, tickets and last observations.
//! - One file per concern executes steps (`impl Perform`) and judges expectations
//!   (`impl Judge`): [`handshake`] (transport, origin, URL tokens), [`auth`] (ticket,
//!   unauthenticated, races), [`messages`] (messages, rate limit), [`frames`] (size, protocol),
//!   [`lifecycle`] (heartbeat, timeouts, waits), [`transport`] (TLS, cookies), [`health`] and
//!   [`connections`] (`on`, `parallel`). **A new step or expectation** is its variant in
//!   `plan::step`/`plan::expect`, its `impl` in the file of its concern, and its row in
//!   `suites/README.md`.
//!
//! Every network step goes through the one client layer ([`crate::client`]).

mod auth;
pub mod channel;
mod connections;
mod frames;
mod handshake;
mod health;
pub mod legitimate;
mod lifecycle;
pub mod messages;
pub mod profile;
pub mod runtime;
pub mod session;
pub mod setup;
pub mod setup_state;
mod transport;
pub mod values;

use std::sync::Arc;

pub use channel::{Channel, Kind, Reply};
pub use health::healthy;
pub use legitimate::logged_in_channel;
pub use runtime::TargetRuntime;
pub use session::Session;

use crate::plan::expect::with_expectation;
use crate::plan::step::with_step;
use crate::plan::{Case, Expectation, Step};
use crate::report::{CaseLog, Outcome, Role};

/// How an expectation turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// It holds, with the evidence in a sentence.
    Holds(String),
    /// It does not: the attack worked, or the legitimate path failed.
    Broken(String),
    /// Nothing can be concluded (unreachable target, failed precondition).
    Inconclusive(String),
    /// The expectation does not apply to this target (a cookie check on a service that sets
    /// no cookie): the case is `skipped`, with the reason.
    NotApplicable(String),
}

/// Why a step could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// Something failed (unreachable target, failed login): the case is `error`.
    Inconclusive(String),
    /// The step cannot apply to this target or client (e.g. a TLS version the client cannot
    /// speak): the case is `skipped`, with the reason.
    NotApplicable(String),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Inconclusive(r) | StepError::NotApplicable(r) => f.write_str(r),
        }
    }
}

impl From<String> for StepError {
    fn from(reason: String) -> Self {
        StepError::Inconclusive(reason)
    }
}

impl From<&str> for StepError {
    fn from(reason: &str) -> Self {
        StepError::Inconclusive(reason.to_string())
    }
}

/// The result of one step.
pub type StepResult = Result<(), StepError>;

/// A step's execution.
pub(crate) trait Perform {
    /// Carries the step out on the session.
    async fn perform(&self, s: &mut Session) -> StepResult;
}

/// An expectation's judgement.
pub(crate) trait Judge {
    /// Judges the session once its steps ran.
    async fn judge(&self, s: &mut Session) -> Judgement;
}

/// Carries out one step.
pub(crate) async fn perform(step: &Step, s: &mut Session) -> StepResult {
    with_step!(step, x => x.perform(s).await)
}

/// Judges one expectation.
async fn judge(expectation: &Expectation, s: &mut Session) -> Judgement {
    with_expectation!(expectation, x => x.judge(s).await)
}

/// Runs steps in order until one cannot be carried out (or the harness itself failed); the
/// index and error of that one.
pub(crate) async fn run_steps(s: &mut Session, steps: &[Step]) -> Result<(), (usize, StepFailure)> {
    for (i, step) in steps.iter().enumerate() {
        s.log().note(format!("step {}: {}", i + 1, step.name()));
        let result = perform(step, s).await;
        if let Some(fault) = s.take_fault() {
            return Err((i, StepFailure::Harness(fault)));
        }
        if let Some(b) = s.fatal_violation() {
            return Err((i, StepFailure::Violation(b)));
        }
        result.map_err(|e| (i, StepFailure::Step(e)))?;
    }
    Ok(())
}

/// Why a sequence of steps stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepFailure {
    /// The step could not be carried out.
    Step(StepError),
    /// The harness itself failed during the step.
    Harness(String),
    /// The server broke a rule of RFC 6455 a browser fails the connection for.
    Violation(session::BrokenRule),
}

/// Runs one case: its steps in order, then its expectations; the first broken expectation
/// decides a failure, an inconclusive one an error.
pub async fn run_case(case: Case, rt: Arc<TargetRuntime>, log: CaseLog) -> Outcome {
    if let Some(Expectation::Attested(a)) = case.expect.first() {
        log.note(format!("evidence: {}", a.evidence));
        return Outcome::skipped(format!(
            "not testable from outside; attested by: {}",
            a.evidence
        ));
    }
    if let Some(d) = &case.differs {
        log.note(format!("differs from its positive control: {d}"));
    }
    let mut s = Session::new(rt, log);
    if case
        .expect
        .iter()
        .any(|e| matches!(e, Expectation::Conforms))
    {
        s.set_judges_conformance();
    }
    if let Err((i, failure)) = run_steps(&mut s, &case.steps).await {
        let step = format!("step {} ({})", i + 1, case.steps[i].name());
        match failure {
            // The violation is what this case judges: the steps stop there, the judging not.
            StepFailure::Violation(_) if s.judges_conformance() => {}
            failure => {
                s.close_all();
                return step_failure(&step, failure, case.role);
            }
        }
    }
    s.finish_steps();
    let mut reasons = Vec::new();
    for e in &case.expect {
        let j = judge(e, &mut s).await;
        s.log().note(format!("{}: {j:?}", e.name()));
        if let Some(fault) = s.take_fault() {
            s.close_all();
            return harness_error(e.name(), &fault);
        }
        if !s.judges_conformance()
            && let Some(b) = s.fatal_violation()
        {
            s.close_all();
            return violation_outcome(e.name(), &b, case.role);
        }
        match j {
            Judgement::Holds(why) => reasons.push(why),
            Judgement::Broken(why) => {
                s.close_all();
                return Outcome::fail(format!("{}: {why}", e.name()));
            }
            Judgement::Inconclusive(why) => {
                s.close_all();
                return Outcome::error(format!("{}: inconclusive: {why}", e.name()));
            }
            Judgement::NotApplicable(why) => {
                s.close_all();
                return Outcome::skipped(format!("not applicable: {why}"));
            }
        }
    }
    s.close_all();
    Outcome::pass(reasons.join("; "))
}

/// The outcome of a case (of `role`) whose steps stopped at `step`.
fn step_failure(step: &str, failure: StepFailure, role: Role) -> Outcome {
    match failure {
        StepFailure::Harness(fault) => harness_error(step, &fault),
        StepFailure::Violation(b) => violation_outcome(step, &b, role),
        StepFailure::Step(StepError::NotApplicable(reason)) => {
            Outcome::skipped(format!("not applicable: {reason}"))
        }
        StepFailure::Step(StepError::Inconclusive(reason)) => {
            Outcome::error(format!("{step} could not be carried out: {reason}"))
        }
    }
}

/// The outcome of a case (of `role`) on a connection a browser would have failed. Not judged
/// either way (the protocol control's conformance cases report the break itself), unless the
/// break answered the attack's own malformed frame on a connection whose legitimate path
/// worked: then the server took that input and answered it wrongly, which is no refusal.
fn violation_outcome(during: &str, b: &session::BrokenRule, role: Role) -> Outcome {
    let v = &b.violation;
    if b.answering_attack && role == Role::Attack {
        return Outcome::fail(format!(
            "{during}: the server answered the malformed frame by breaking {v} itself, instead of refusing it (close 1002)"
        ));
    }
    Outcome::error(format!(
        "{during}: not judged: {}, so no verdict rests on it",
        v.failed_connection()
    ))
}

/// The outcome of a case the harness itself failed: inconclusive, never evidence either way.
fn harness_error(during: &str, fault: &str) -> Outcome {
    Outcome::error(format!(
        "{during}: inconclusive: harness fault, not the target's doing ({fault})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Connection;
    use crate::client::conn::test_support::PanicOnRead;
    use crate::plan::expect::{REJECTION_CODES, Rejected};

    #[tokio::test]
    async fn a_reader_fault_is_inconclusive_never_a_rejection() {
        crate::crypto::install_crypto_provider();
        let target = crate::plan::sample_target().expect("sample target");
        let rt = Arc::new(TargetRuntime::new(&target).expect("runtime"));
        let mut s = Session::new(rt.clone(), CaseLog::default());
        s.add_link(session::Link {
            name: session::DEFAULT_CONNECTION.into(),
            handshake: session::HandshakeSeen::Upgraded { extensions: None },
            channel: Some(Channel::new(
                Connection::new(PanicOnRead, &[]),
                crate::dialect::ClientCodec::new(crate::dialect::Dialect::Raw, "localhost"),
                rt.classifier.clone(),
                None,
            )),
            last_sent: session::LastSent::Nothing,
            fresh_auth_pending: false,
            pings_off_at: None,
            valid_confirmed: false,
            mutated: false,
        });
        // A drop counts as a rejection; the reader's panic must not pass for one.
        let rejected = Expectation::Rejected(Rejected {
            codes: REJECTION_CODES.to_vec(),
            drop_counts: true,
            silence_counts: true,
            within: None,
        });
        match judge(&rejected, &mut s).await {
            Judgement::Inconclusive(why) => assert!(why.contains("harness fault"), "{why}"),
            other => panic!("a harness fault was judged {other:?}"),
        }
        let fault = s.take_fault().expect("the fault is remembered");
        assert!(fault.contains("injected reader fault"), "{fault}");
        let outcome = harness_error("rejected", &fault);
        assert_eq!(outcome.verdict, crate::report::Verdict::Error);
        assert!(
            outcome
                .reason
                .contains("harness fault, not the target's doing"),
            "{}",
            outcome.reason
        );
    }
}
