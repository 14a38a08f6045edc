//! Positive-control gating: a server that refuses everything must not look secure.
//!
//! A control's gates are its positive controls (the legitimate path works) and its baselines
//! (the server refuses even without the attack's ingredient). A case is judged only against
//! gates that ran to the end and held; the runner runs the gates of every selected case, even
//! unselected ones (`--only`, `--partition`), so selecting an attack alone cannot skip them.

use crate::report::{CaseResult, Role, Verdict};

/// One gate case of a run, as gating sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// Control it gates.
    pub control_id: String,
    /// Its case ID.
    pub case_id: String,
    /// [`Role::Positive`] or [`Role::Baseline`].
    pub role: Role,
    /// Its verdict and reason, or `None` when it never finished (an interrupted run).
    pub ended: Option<(Verdict, String)>,
    /// Whether it is among the reported cases; an unselected gate runs only because selected
    /// cases depend on it, so the evidence of those cases must say how it ended.
    pub reported: bool,
}

impl Gate {
    /// The gate of a reported result, when the result is a gate.
    pub fn of(case: &CaseResult) -> Option<Self> {
        case.role.is_gate().then(|| Self {
            control_id: case.control_id.clone(),
            case_id: case.case_id.clone(),
            role: case.role,
            ended: Some((case.verdict, case.reason.clone())),
            reported: true,
        })
    }

    /// Whether the gate failed to hold: it failed, was inconclusive, or never finished.
    fn broken(&self) -> bool {
        self.ended
            .as_ref()
            .is_none_or(|(v, _)| matches!(v, Verdict::Fail | Verdict::Error))
    }

    fn kind(&self) -> &'static str {
        if self.role == Role::Baseline {
            "baseline"
        } else {
            "positive control"
        }
    }

    /// How it ended, for the evidence of the cases it gates.
    fn how(&self) -> String {
        let scope = if self.reported {
            ""
        } else {
            " (not selected; run because the selected cases depend on it, and not reported)"
        };
        match &self.ended {
            Some((verdict, reason)) => format!(
                "gate: the {} {}{scope} ended {}: {reason}",
                self.kind(),
                self.case_id,
                verdict.as_str()
            ),
            None => format!(
                "gate: the {} {}{scope} did not finish (the run was interrupted)",
                self.kind(),
                self.case_id
            ),
        }
    }
}

/// Gates the reported `cases` on their own gates alone (see [`gate`]).
pub fn gate_on_positive_controls(cases: &mut [CaseResult]) {
    gate(cases, &[], &[]);
}

/// Turns the passing attacks of every control whose positive control did not pass into `error`,
/// and every case of a control whose baseline did not hold into `error`. The gates are those
/// among `cases` plus `unreported` (gates run only as dependencies, and gates that never
/// finished); a gate that never finished does not hold either.
///
/// A failed attack stays a failure when only a positive control failed: the attack worked
/// whatever the legitimate path does. A failed baseline is different: the server refuses
/// nothing even without the attack's ingredient, so neither verdict of the attacks means
/// anything; the baseline itself stays failed, the finding that fails the control.
///
/// `on_file` lists cases judged on the target file alone (no step talks to the target): a
/// baseline bears on what the server does, not on the file, so it leaves them as they are; a
/// failed positive control still makes their passes inconclusive (nothing is passed about a
/// target whose legitimate path does not work).
pub fn gate(cases: &mut [CaseResult], unreported: &[Gate], on_file: &[String]) {
    let gates: Vec<Gate> = cases
        .iter()
        .filter_map(Gate::of)
        .chain(unreported.iter().cloned())
        .filter(Gate::broken)
        .collect();
    let broken = |control: &str, role: Role| {
        gates
            .iter()
            .find(|g| g.role == role && g.control_id == control)
    };
    for c in cases.iter_mut() {
        if on_file.contains(&c.case_id) {
            continue;
        }
        let Some(baseline) = broken(&c.control_id, Role::Baseline) else {
            continue;
        };
        if !c.role.gated_by(Role::Baseline) || !matches!(c.verdict, Verdict::Pass | Verdict::Fail) {
            continue;
        }
        let id = &baseline.case_id;
        let why = match &baseline.ended {
            Some((Verdict::Fail, _)) => {
                "does not hold (the server refuses nothing even without this attack)"
            }
            Some(_) => "could not be checked",
            None => "did not finish (the run was interrupted)",
        };
        if c.case_id == *id && c.verdict == Verdict::Fail {
            // The baseline's own failure is a finding, not an inconclusive case: the server
            // serves business data to a client with no credential at all, so no credential
            // (a URL one included) is what stands between a client and the data.
            c.reason = format!(
                "without any credential the server serves business data, so a credential (a URL \
                 one included) decides nothing here: {}",
                c.reason
            );
            continue;
        }
        let reason = if c.case_id == *id {
            format!(
                "baseline not met, so this control cannot be judged: {}",
                c.reason
            )
        } else {
            format!("inconclusive: the baseline {id} {why}, so this case proves nothing")
        };
        demote(c, baseline, reason);
    }
    for c in cases.iter_mut() {
        if !c.role.gated_by(Role::Positive) || c.verdict != Verdict::Pass {
            continue;
        }
        let Some(positive) = broken(&c.control_id, Role::Positive) else {
            continue;
        };
        let id = &positive.case_id;
        let reason = match positive.ended {
            Some(_) => format!(
                "inconclusive: the positive control {id} did not pass, so a refusal here proves nothing"
            ),
            None => format!(
                "not judged: the positive control {id} did not finish (the run was interrupted), so a refusal here proves nothing yet"
            ),
        };
        demote(c, positive, reason);
    }
}

/// Makes `c` inconclusive for `reason` because of `gate`, keeping its original verdict in the
/// evidence and saying how the gate ended.
fn demote(c: &mut CaseResult, gate: &Gate, reason: String) {
    if gate.case_id != c.case_id {
        c.evidence.note(gate.how());
    }
    c.evidence.note(format!(
        "original verdict: {} ({})",
        c.verdict.as_str(),
        c.reason
    ));
    c.reason = reason;
    c.verdict = Verdict::Error;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Evidence;
    use std::time::Duration;

    fn case(control: &str, id: &str, role: Role, verdict: Verdict) -> CaseResult {
        CaseResult {
            control_id: control.into(),
            case_id: id.into(),
            family: "origin".into(),
            name: id.into(),
            role,
            verdict,
            reason: "r".into(),
            evidence: Evidence::default(),
            started: Duration::ZERO,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn a_failed_baseline_fails_itself_and_makes_every_other_case_of_the_control_inconclusive() {
        let mut cases = vec![
            case("A", "a/no-credential", Role::Baseline, Verdict::Fail),
            case("A", "a/legit", Role::Positive, Verdict::Pass),
            case("A", "a/url-token", Role::Attack, Verdict::Fail),
            case("B", "b/url-token", Role::Attack, Verdict::Fail),
        ];
        gate_on_positive_controls(&mut cases);
        let v: Vec<_> = cases.iter().map(|c| c.verdict).collect();
        assert_eq!(
            v,
            [Verdict::Fail, Verdict::Error, Verdict::Error, Verdict::Fail]
        );
        assert!(
            cases[0].reason.contains("without any credential"),
            "{}",
            cases[0].reason
        );
        assert!(cases[2].reason.contains("a/no-credential"));
    }

    #[test]
    fn a_case_judged_on_the_target_file_keeps_its_verdict() {
        let mut cases = vec![
            case("A", "a/no-credential", Role::Baseline, Verdict::Fail),
            case("A", "a/own-url", Role::Attack, Verdict::Pass),
            case("A", "a/url-token", Role::Attack, Verdict::Fail),
        ];
        gate(&mut cases, &[], &["a/own-url".to_string()]);
        let v: Vec<_> = cases.iter().map(|c| c.verdict).collect();
        assert_eq!(v, [Verdict::Fail, Verdict::Pass, Verdict::Error]);
    }

    #[test]
    fn a_failed_positive_control_makes_passes_inconclusive() {
        let mut cases = vec![
            case("A", "a/allowed", Role::Positive, Verdict::Fail),
            case("A", "a/foreign", Role::Attack, Verdict::Pass),
            case("A", "a/null", Role::Attack, Verdict::Fail),
            case("B", "b/allowed", Role::Positive, Verdict::Pass),
            case("B", "b/foreign", Role::Attack, Verdict::Pass),
        ];
        gate_on_positive_controls(&mut cases);
        let v: Vec<_> = cases.iter().map(|c| c.verdict).collect();
        assert_eq!(
            v,
            [
                Verdict::Fail,
                Verdict::Error,
                Verdict::Fail,
                Verdict::Pass,
                Verdict::Pass
            ]
        );
        assert!(cases[1].reason.contains("a/allowed"));
    }

    fn unreported(id: &str, role: Role, ended: Option<(Verdict, &str)>) -> Gate {
        Gate {
            control_id: "A".into(),
            case_id: id.into(),
            role,
            ended: ended.map(|(v, r)| (v, r.to_string())),
            reported: false,
        }
    }

    #[test]
    fn an_unreported_failed_gate_makes_passes_inconclusive_and_says_why() {
        let mut cases = vec![case("A", "a/foreign", Role::Attack, Verdict::Pass)];
        let gates = [unreported(
            "a/allowed",
            Role::Positive,
            Some((Verdict::Fail, "refused with 403")),
        )];
        gate(&mut cases, &gates, &[]);
        assert_eq!(cases[0].verdict, Verdict::Error);
        assert!(cases[0].reason.contains("a/allowed"), "{}", cases[0].reason);
        let evidence = cases[0].evidence.transcript.join("\n");
        assert!(
            evidence.contains("a/allowed (not selected")
                && evidence.contains("ended fail: refused with 403"),
            "{evidence}"
        );
        // A gate that held changes nothing.
        let mut cases = vec![case("A", "a/foreign", Role::Attack, Verdict::Pass)];
        let held = [unreported(
            "a/allowed",
            Role::Positive,
            Some((Verdict::Pass, "upgraded")),
        )];
        gate(&mut cases, &held, &[]);
        assert_eq!(cases[0].verdict, Verdict::Pass);
    }

    #[test]
    fn a_gate_that_never_finished_leaves_nothing_judged_on_it() {
        let mut cases = vec![
            case("A", "a/foreign", Role::Attack, Verdict::Pass),
            case("A", "a/null", Role::Attack, Verdict::Fail),
        ];
        gate(
            &mut cases,
            &[unreported("a/allowed", Role::Positive, None)],
            &[],
        );
        let v: Vec<_> = cases.iter().map(|c| c.verdict).collect();
        // A failure stands without the positive control; a refusal does not.
        assert_eq!(v, [Verdict::Error, Verdict::Fail]);
        assert!(
            cases[0].reason.contains("did not finish") && cases[0].reason.contains("a/allowed"),
            "{}",
            cases[0].reason
        );
        gate(
            &mut cases,
            &[unreported("a/baseline", Role::Baseline, None)],
            &[],
        );
        assert_eq!(cases[1].verdict, Verdict::Error);
        assert!(
            cases[1].reason.contains("a/baseline did not finish"),
            "{}",
            cases[1].reason
        );
    }
}
