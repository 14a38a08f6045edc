//! The result model: what a run found, case by case, with evidence. Every reporter (terminal,
//! JUnit, JSON, SARIF) reads a [`Redacted`] report, which only [`RunReport::redact`] can make,
//! so no reporter can see a secret.

use std::time::Duration;

use serde::Serialize;

use super::exit::Exit;
use crate::config::Severity;

/// The outcome of one case or control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The server behaved securely.
    Pass,
    /// The attack worked, or the server broke the policy.
    Fail,
    /// Inconclusive: unreachable target, failed positive control, harness deadline.
    Error,
    /// Not applicable, with the reason.
    Skipped,
    /// A failure covered by a waiver (justification in the reason).
    Waived,
}

impl Verdict {
    /// Upper-case label for terminal output.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Error => "ERROR",
            Verdict::Skipped => "SKIP",
            Verdict::Waived => "WAIVED",
        }
    }

    /// Lower-case name, the same word the JSON report uses (`pass`, `fail`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
            Verdict::Waived => "waived",
        }
    }
}

/// Lower-case name of a severity, the same word the policy file and the JSON report use.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// A case's role, as the plan gives it (the same names in every report).
pub use crate::plan::Role;

/// What was sent and what came back, in order. Lines are plain text, already bounded in size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// One line per step: `> ` for what the harness sent, `< ` for what it saw, `# ` for notes.
    pub transcript: Vec<String>,
    /// Lines dropped from the middle (the beginning and the end are what explain a verdict).
    #[serde(skip)]
    omitted: usize,
}

impl Evidence {
    /// Evidence made of lines as they are, unfiltered (tests of reporters use hostile text).
    pub fn from_lines(transcript: Vec<String>) -> Self {
        Self {
            transcript,
            omitted: 0,
        }
    }

    /// Most lines kept per case: the first [`Evidence::HEAD`], a marker, and the most recent.
    pub const MAX_LINES: usize = 64;
    /// Lines always kept from the beginning of a case.
    pub const HEAD: usize = 40;
    /// Longest line kept; longer lines are cut with a marker.
    pub const MAX_LINE: usize = 300;

    fn push(&mut self, prefix: &str, line: &str) {
        if self.transcript.len() >= Self::MAX_LINES {
            // Keep the head and the newest lines: drop the oldest line after the marker.
            if self.omitted == 0 {
                self.transcript.remove(Self::HEAD);
                self.transcript.insert(Self::HEAD, String::new());
                self.omitted = 1;
            }
            self.transcript.remove(Self::HEAD + 1);
            self.omitted += 1;
            self.transcript[Self::HEAD] = format!("# ({} lines omitted)", self.omitted);
        }
        let mut text: String = line
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect();
        if text.len() > Self::MAX_LINE {
            let mut end = Self::MAX_LINE;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("...");
        }
        self.transcript.push(format!("{prefix}{text}"));
    }

    /// Records something the harness sent.
    pub fn sent(&mut self, what: impl AsRef<str>) {
        self.push("> ", what.as_ref());
    }

    /// Records something the target did.
    pub fn saw(&mut self, what: impl AsRef<str>) {
        self.push("< ", what.as_ref());
    }

    /// Records a note (timings, decisions).
    pub fn note(&mut self, what: impl AsRef<str>) {
        self.push("# ", what.as_ref());
    }
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// Control the case belongs to.
    pub control_id: String,
    /// Unique, stable case identifier.
    pub case_id: String,
    /// Check family, e.g. `origin`.
    pub family: String,
    /// Human-readable case name.
    pub name: String,
    /// Attack, positive control or attestation.
    pub role: Role,
    /// The outcome.
    pub verdict: Verdict,
    /// One sentence: why this verdict.
    pub reason: String,
    /// What was sent and seen.
    pub evidence: Evidence,
    /// When the case started, from the start of the run.
    #[serde(with = "secs")]
    pub started: Duration,
    /// How long it took.
    #[serde(with = "secs")]
    pub duration: Duration,
}

/// One control with the verdict of its cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlResult {
    /// Stable control ID.
    pub id: String,
    /// One-line title.
    pub title: String,
    /// Check family name.
    pub check: String,
    /// Severity from the policy.
    pub severity: Severity,
    /// References from the policy.
    pub refs: Vec<String>,
    /// Line of the control in the policy file (for SARIF), when known.
    pub line: Option<usize>,
    /// Aggregate: fail if any case failed, else error, else pass (waived/skipped when all are).
    pub verdict: Verdict,
}

/// Counts of case verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Cases passed.
    pub passed: usize,
    /// Cases failed.
    pub failed: usize,
    /// Cases inconclusive.
    pub errors: usize,
    /// Cases skipped.
    pub skipped: usize,
    /// Cases waived.
    pub waived: usize,
}

/// Everything a run found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// wsaudit version that produced it.
    pub wsaudit_version: String,
    /// Policy name.
    pub policy: String,
    /// Policy file path as given.
    pub policy_file: String,
    /// Target name.
    pub target: String,
    /// Target WebSocket URL.
    pub target_url: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Wall time of the run.
    #[serde(with = "secs")]
    pub wall_time: Duration,
    /// Per-control verdicts, policy order.
    pub controls: Vec<ControlResult>,
    /// Per-case results, plan order.
    pub cases: Vec<CaseResult>,
    /// Counts of case verdicts.
    pub summary: Summary,
    /// Cases the run did not reach (interrupted), by ID.
    pub not_run: Vec<String>,
    /// The case after which the target stopped accepting connections and did not come back
    /// (the destructive cases after it are skipped, `not run: target down after` it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_down_after: Option<String>,
}

/// Exit code of a run stopped (SIGINT) before every case finished ([`Exit::Interrupted`]).
pub const EXIT_INTERRUPTED: u8 = Exit::Interrupted.code();

/// The reason prefix of a destructive case skipped because the target went down earlier.
pub const NOT_RUN_TARGET_DOWN: &str = "not run: target down after ";

/// Aggregates case verdicts into a control verdict.
pub fn control_verdict(cases: impl IntoIterator<Item = Verdict>) -> Verdict {
    let all: Vec<Verdict> = cases.into_iter().collect();
    if all.contains(&Verdict::Fail) {
        Verdict::Fail
    } else if all.contains(&Verdict::Error) {
        Verdict::Error
    } else if all.contains(&Verdict::Pass) {
        Verdict::Pass
    } else if all.contains(&Verdict::Waived) {
        Verdict::Waived
    } else {
        Verdict::Skipped
    }
}

impl RunReport {
    /// Recomputes the summary and control verdicts from the cases.
    pub fn finish(&mut self) {
        let mut s = Summary::default();
        for c in &self.cases {
            match c.verdict {
                Verdict::Pass => s.passed += 1,
                Verdict::Fail => s.failed += 1,
                Verdict::Error => s.errors += 1,
                Verdict::Skipped => s.skipped += 1,
                Verdict::Waived => s.waived += 1,
            }
        }
        self.summary = s;
        for control in &mut self.controls {
            let cases = || self.cases.iter().filter(|c| c.control_id == control.id);
            control.verdict = control_verdict(cases().map(|c| c.verdict));
            // A control whose attacks were not run (the target went down before them) was not
            // shown to hold: inconclusive, unless something already failed it.
            let untested = cases().any(|c| c.reason.starts_with(NOT_RUN_TARGET_DOWN));
            if untested && matches!(control.verdict, Verdict::Pass | Verdict::Skipped) {
                control.verdict = Verdict::Error;
            }
        }
    }

    /// How many controls failed (a waived or inconclusive control is not failing).
    pub fn failing_controls(&self) -> usize {
        self.controls
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .count()
    }

    /// How the run ends: interrupted when cases were not run, else failed on any failure,
    /// else inconclusive on any inconclusive case, else passed.
    pub fn exit(&self) -> Exit {
        if !self.not_run.is_empty() {
            Exit::Interrupted
        } else if self.summary.failed > 0 {
            Exit::Failed
        } else if self.summary.errors > 0 {
            Exit::Inconclusive
        } else {
            Exit::Passed
        }
    }

    /// The process exit code of [`RunReport::exit`]; the JSON report writes the same code.
    pub fn exit_code(&self) -> u8 {
        self.exit().code()
    }

    /// Passes every text field through `redact` (the one redaction point) and marks the result.
    pub fn redact(&self, redact: impl Fn(&str) -> String) -> Redacted {
        let mut r = self.clone();
        for s in [
            &mut r.target,
            &mut r.target_url,
            &mut r.policy_file,
            &mut r.policy,
        ] {
            *s = redact(s);
        }
        for c in &mut r.cases {
            for s in [&mut c.case_id, &mut c.name, &mut c.reason] {
                *s = redact(s);
            }
            for line in &mut c.evidence.transcript {
                *line = redact(line);
            }
        }
        for id in &mut r.not_run {
            *id = redact(id);
        }
        if let Some(after) = &mut r.target_down_after {
            *after = redact(after);
        }
        Redacted(r)
    }
}

/// A report whose every text passed the redaction point; the only input reporters accept.
#[derive(Debug, Clone)]
pub struct Redacted(RunReport);

impl std::ops::Deref for Redacted {
    type Target = RunReport;
    fn deref(&self) -> &RunReport {
        &self.0
    }
}

/// Serialises durations as fractional seconds.
mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_verdicts_and_exit_codes() {
        assert_eq!(
            control_verdict([Verdict::Pass, Verdict::Fail, Verdict::Error]),
            Verdict::Fail
        );
        assert_eq!(
            control_verdict([Verdict::Pass, Verdict::Error]),
            Verdict::Error
        );
        assert_eq!(
            control_verdict([Verdict::Pass, Verdict::Skipped]),
            Verdict::Pass
        );
        assert_eq!(control_verdict([Verdict::Skipped]), Verdict::Skipped);
    }

    #[test]
    fn verdict_names_match_the_json_words() {
        for v in [
            Verdict::Pass,
            Verdict::Fail,
            Verdict::Error,
            Verdict::Skipped,
            Verdict::Waived,
        ] {
            assert_eq!(serde_json::to_value(v).ok(), Some(v.as_str().into()));
        }
        for s in [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            assert_eq!(serde_json::to_value(s).ok(), Some(severity_name(s).into()));
        }
    }

    #[test]
    fn evidence_is_bounded_and_printable() {
        let mut e = Evidence::default();
        e.saw("a\u{0}b\u{1b}[31m");
        assert_eq!(e.transcript[0], "< ab[31m");
        e.sent("x".repeat(1000));
        assert!(e.transcript[1].len() <= Evidence::MAX_LINE + 5);
        for i in 0..100 {
            e.note(format!("n{i}"));
        }
        assert_eq!(e.transcript.len(), Evidence::MAX_LINES);
        // The beginning and the end survive; the middle is counted.
        assert_eq!(e.transcript[2], "# n0");
        assert_eq!(e.transcript.last().map(String::as_str), Some("# n99"));
        assert_eq!(e.transcript[Evidence::HEAD], "# (39 lines omitted)");
    }
}
