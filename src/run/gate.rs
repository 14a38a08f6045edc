//! Positive-control gating: a server that refuses everything must not look secure.

use crate::report::{CaseResult, Role, Verdict};

/// Turns the passing attacks of every control whose positive control did not pass into `error`,
/// and every case of a control whose baseline did not hold into `error`.
///
/// A failed attack stays a failure when only a positive control failed: the attack worked
/// whatever the legitimate path does. A failed baseline is different: the server refuses
/// nothing even without the attack's ingredient, so neither verdict of the attacks means
/// anything (another control reports the missing defence).
pub fn gate_on_positive_controls(cases: &mut [CaseResult]) {
    let baselines: Vec<(String, String)> = cases
        .iter()
        .filter(|c| c.role == Role::Baseline && matches!(c.verdict, Verdict::Fail | Verdict::Error))
        .map(|c| (c.control_id.clone(), c.case_id.clone()))
        .collect();
    for c in cases.iter_mut() {
        let Some((_, baseline)) = baselines
            .iter()
            .find(|(control, _)| *control == c.control_id)
        else {
            continue;
        };
        if matches!(c.verdict, Verdict::Pass | Verdict::Fail) {
            c.evidence.note(format!(
                "original verdict: {} ({})",
                c.verdict.label().to_lowercase(),
                c.reason
            ));
            c.reason = if c.case_id == *baseline {
                format!(
                    "baseline not met, so this control cannot be judged: {}",
                    c.reason
                )
            } else {
                format!(
                    "inconclusive: the baseline {baseline} does not hold (the server refuses nothing even without this attack), so this case proves nothing"
                )
            };
            c.verdict = Verdict::Error;
        }
    }
    let broken: Vec<(String, String)> = cases
        .iter()
        .filter(|c| c.role == Role::Positive && matches!(c.verdict, Verdict::Fail | Verdict::Error))
        .map(|c| (c.control_id.clone(), c.case_id.clone()))
        .collect();
    for c in cases.iter_mut() {
        if c.role != Role::Attack || c.verdict != Verdict::Pass {
            continue;
        }
        if let Some((_, positive)) = broken.iter().find(|(control, _)| *control == c.control_id) {
            c.evidence
                .note(format!("original verdict: pass ({})", c.reason));
            c.verdict = Verdict::Error;
            c.reason = format!(
                "inconclusive: the positive control {positive} did not pass, so a refusal here proves nothing"
            );
        }
    }
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
    fn a_failed_baseline_makes_every_case_of_the_control_inconclusive() {
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
            [
                Verdict::Error,
                Verdict::Error,
                Verdict::Error,
                Verdict::Fail
            ]
        );
        assert!(cases[2].reason.contains("a/no-credential"));
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
}
