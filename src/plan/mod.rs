//! The plan: policy x target x suites compiled into concrete cases. Compiling is separate from
//! running: the attack engine executes a [`Plan`]'s cases, one [`Step`] at a time, and judges
//! each case by its [`Expectation`]s.

pub mod compile;
pub mod derive;
pub mod expect;
pub mod inputs;
pub mod step;
pub mod template;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::config::CompileError;
use crate::config::Secrets;
use crate::config::policy::Severity;
use crate::config::target::Target;

pub use crate::config::suite::Role;
pub use compile::{compile, sample_target};
pub use expect::{Expectation, Within};
pub use step::Step;

/// Version of the plan format printed by `wsaudit compile`.
pub const PLAN_FORMAT: u32 = 1;

/// Every concrete case of one policy against one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Plan format version.
    pub plan: u32,
    /// The policy compiled.
    pub policy: PlanPolicy,
    /// The target compiled against (secrets redacted when printed).
    pub target: Target,
    /// The cases, in policy control order, then suite order.
    pub cases: Vec<Case>,
    /// Secret values of the target; never serialised, used to redact every output.
    #[serde(skip)]
    pub secrets: Secrets,
}

/// Which policy a plan comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanPolicy {
    /// The policy's name.
    pub name: String,
    /// The policy file as given.
    pub file: String,
}

/// One attack or positive control, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique, stable id: `CONTROL/SUITE-CASE` plus `[item]` for per-item cases.
    pub case_id: String,
    /// The policy control the case tests.
    pub control_id: String,
    /// The family (suite name), e.g. `origin`.
    pub family: String,
    /// The check, e.g. `origin.allowlist`.
    pub check: String,
    /// Attack, positive control or attestation.
    pub role: Role,
    /// How bad a failure is (the control's severity).
    pub severity: Severity,
    /// What the case does, for humans.
    pub name: String,
    /// The steps, in order.
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    pub steps: Vec<Step>,
    /// Every expectation must hold for the case to pass.
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    pub expect: Vec<Expectation>,
    /// The whole case is abandoned (verdict `error`) after this long.
    #[serde(with = "crate::config::values::duration")]
    pub deadline: Duration,
    /// Whether the case may exhaust or crash a careless target: it runs after the others,
    /// alone, with a health probe before and after.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destructive: bool,
    /// What this attack changes from its positive control, for its evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differs: Option<String>,
}

/// The time the steps and expectations may deliberately take at most (waits, floods, ramps,
/// timed clocks with their slack), handshakes and replies aside: the floor of a case's deadline.
pub fn planned_time(steps: &[Step], expect: &[Expectation]) -> Duration {
    steps
        .iter()
        .map(Step::planned_time)
        .chain(expect.iter().map(Expectation::planned_time))
        .fold(Duration::ZERO, Duration::saturating_add)
}

/// The time before a `closed` clock starts when pings go unanswered: the engine starts it at
/// the first ping left unanswered, which comes at most one ping interval (no more than the
/// bound) after the steps.
pub fn ping_clock(steps: &[Step], expect: &[Expectation]) -> Duration {
    let pings_off = steps.iter().any(|s| matches!(s, Step::AnswerPings(false)));
    expect
        .iter()
        .filter_map(|e| match e {
            Expectation::Closed(c) if pings_off => Some(c.within.bound),
            _ => None,
        })
        .max()
        .unwrap_or_default()
}

impl Case {
    /// How long this case likely takes against a secure target (its deliberate waits, timed
    /// expectations met at their bound): the runner starts the longest cases first, so an
    /// audit lasts about as long as its longest case.
    pub fn likely_time(&self) -> Duration {
        self.steps
            .iter()
            .map(Step::likely_time)
            .chain(self.expect.iter().map(Expectation::likely_time))
            .chain([ping_clock(&self.steps, &self.expect)])
            .fold(Duration::ZERO, Duration::saturating_add)
    }
}

impl Plan {
    /// The plan as YAML, with every secret replaced by `***`; byte-identical for the same inputs.
    pub fn to_yaml(&self) -> String {
        let mut value = match serde_yaml::to_value(self) {
            Ok(v) => v,
            Err(e) => return format!("# cannot render the plan: {e}\n"),
        };
        self.secrets.redact_yaml(&mut value);
        let text = serde_yaml::to_string(&value)
            .unwrap_or_else(|e| format!("# cannot render the plan: {e}\n"));
        self.secrets.redact(&text)
    }

    /// The cases of one control.
    pub fn cases_of<'p>(&'p self, control_id: &'p str) -> impl Iterator<Item = &'p Case> + 'p {
        self.cases
            .iter()
            .filter(move |c| c.control_id == control_id)
    }
}
