//! Live fuzzing results in the report model of `wsaudit run`: one failing case per finding
//! (seed, batch, case, exact bytes in hex), one passing case per healthy batch, and a summary
//! case for the acknowledgement control, so every reporter (terminal, JUnit, JSON, SARIF)
//! renders them unchanged.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::mutate::{FuzzCase, hex};
use super::options::FuzzOptions;
use super::oracle::Validity;
use crate::attacks::TargetRuntime;
use crate::config::policy::CheckParams;
use crate::config::{LoadedPolicy, Severity};
use crate::report::{CaseResult, ControlResult, Evidence, Role, RunReport, Verdict};

/// Control of crash and hang findings (no policy control states them).
pub const HEALTH_CONTROL: &str = "FUZZ-HEALTH";
/// Control of acknowledged invalid messages when the policy has no `messages.schema` control.
pub const ACK_CONTROL: &str = "FUZZ-MESSAGES";
/// Payload bytes shown in hex per evidence line.
const HEX_BYTES_PER_LINE: usize = 120;
/// Hex lines shown per frame; the rest is summarised by length and SHA-256.
const HEX_LINES_PER_FRAME: usize = 16;

/// What a finding is.
#[derive(Debug, Clone)]
pub enum FindingKind {
    /// An invalid message was acknowledged.
    Ack {
        /// Why the oracle knows it is invalid.
        reason: String,
        /// The acknowledgement received.
        reply: String,
    },
    /// Neither a reply nor a close within the bound.
    Hang,
    /// The health check failed after a batch.
    Crash,
}

/// One finding with what reproduces it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// The batch it happened in.
    pub batch: u64,
    /// The case within the batch; for a crash, which follows a whole batch, the last case sent
    /// before the target went away (none when no case was sent).
    pub index: Option<u64>,
    /// The case's frames and message.
    pub case: Option<FuzzCase>,
    /// For a crash: the batch's cases, by index and name.
    pub sent: Vec<(u64, String)>,
    /// One sentence of detail (the failed health check, the hang bound).
    pub detail: String,
}

/// Identity of a control in the report.
struct ControlMeta {
    id: String,
    title: String,
    check: String,
    severity: Severity,
    refs: Vec<String>,
    line: Option<usize>,
}

impl ControlMeta {
    fn result(&self) -> ControlResult {
        ControlResult {
            id: self.id.clone(),
            title: self.title.clone(),
            check: self.check.clone(),
            severity: self.severity,
            refs: self.refs.clone(),
            line: self.line,
            verdict: Verdict::Skipped,
        }
    }
}

/// A case about to be recorded.
struct NewCase {
    /// Whether it belongs to the acknowledgement control (else the health control).
    ack: bool,
    /// Case ID within its control.
    id: String,
    name: String,
    verdict: Verdict,
    reason: String,
}

impl NewCase {
    fn fail(ack: bool, id: String, name: String, reason: String) -> Self {
        Self {
            ack,
            id,
            name,
            verdict: Verdict::Fail,
            reason,
        }
    }
}

/// Collects the cases of a run as it goes.
pub struct Recorder {
    rt: Arc<TargetRuntime>,
    t0: Instant,
    started_at: String,
    policy_name: String,
    policy_file: String,
    seed: u64,
    command: String,
    ack: ControlMeta,
    health: ControlMeta,
    has_schema: bool,
    has_matcher: bool,
    cases: Vec<CaseResult>,
    findings: usize,
    sent: u64,
    invalid_sent: u64,
    unjudged_acks: u64,
    closed: u64,
}

impl Recorder {
    /// A recorder for a run against `rt`'s target under `policy` (if any).
    pub fn new(
        rt: &Arc<TargetRuntime>,
        policy: Option<&LoadedPolicy>,
        opts: &FuzzOptions,
        has_schema: bool,
        has_matcher: bool,
    ) -> Self {
        let schema_control = policy.and_then(|p| {
            p.params
                .iter()
                .position(|c| matches!(c, CheckParams::Schema(_)))
                .and_then(|i| Some((i, p.policy.controls.get(i)?)))
                .map(|(i, c)| ControlMeta {
                    id: c.id.clone(),
                    title: c.title.clone().unwrap_or_else(|| c.check.clone()),
                    check: c.check.clone(),
                    severity: c.severity,
                    refs: c.refs.clone(),
                    line: p.control_location(i).map(|l| l.line),
                })
        });
        let ack = schema_control.unwrap_or_else(|| ControlMeta {
            id: ACK_CONTROL.into(),
            title: "Invalid messages are never acknowledged".into(),
            check: "fuzz.messages".into(),
            severity: Severity::High,
            refs: vec!["cwe:20".into()],
            line: None,
        });
        let health = ControlMeta {
            id: HEALTH_CONTROL.into(),
            title: "The target survives fuzzed messages and frames and always answers or closes"
                .into(),
            check: "fuzz.health".into(),
            severity: Severity::High,
            refs: vec!["cwe:400".into(), "cwe:20".into()],
            line: None,
        };
        Self {
            rt: rt.clone(),
            t0: Instant::now(),
            started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            policy_name: policy.map_or_else(|| "(no policy)".into(), |p| p.policy.policy.clone()),
            policy_file: policy.map_or_else(String::new, |p| p.source.path.display().to_string()),
            seed: opts.seed,
            command: opts.command.clone(),
            ack,
            health,
            has_schema,
            has_matcher,
            cases: Vec::new(),
            findings: 0,
            sent: 0,
            invalid_sent: 0,
            unjudged_acks: 0,
            closed: 0,
        }
    }

    /// Findings so far.
    pub fn findings(&self) -> usize {
        self.findings
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.t0.elapsed()
    }

    fn push(&mut self, case: NewCase, evidence: Evidence, started: Duration) {
        let meta = if case.ack { &self.ack } else { &self.health };
        self.cases.push(CaseResult {
            control_id: meta.id.clone(),
            case_id: format!("{}/{}", meta.id, case.id),
            family: "fuzz".into(),
            name: case.name,
            role: Role::Attack,
            verdict: case.verdict,
            reason: case.reason,
            evidence,
            started,
            duration: self.t0.elapsed().saturating_sub(started),
        });
    }

    /// Counts one case's outcome for the summary.
    pub fn count(&mut self, judged: Option<&Validity>, acked: bool, closed: bool) {
        self.sent += 1;
        if matches!(judged, Some(Validity::Invalid(_))) {
            self.invalid_sent += 1;
        }
        if acked && !matches!(judged, Some(Validity::Invalid(_) | Validity::Valid)) {
            self.unjudged_acks += 1;
        }
        if closed {
            self.closed += 1;
        }
    }

    fn reproduce(&self, batch: u64) -> String {
        format!(
            "reproduce: {} --seed {} --replay-batch {batch}",
            self.command, self.seed
        )
    }

    /// Records a finding as a failing case.
    pub fn finding(&mut self, f: Finding) {
        self.findings += 1;
        let started = self.elapsed();
        let mut ev = Evidence::default();
        let crash = matches!(f.kind, FindingKind::Crash);
        let at = match f.index {
            Some(i) if !crash => format!("batch {} case {i}", f.batch),
            _ => format!("batch {}", f.batch),
        };
        ev.note(format!("seed {}, {at}", self.seed));
        ev.note(self.reproduce(f.batch));
        if let Some(case) = &f.case {
            match f.index.filter(|_| crash) {
                Some(i) => ev.note(format!(
                    "last case sent before the target went away: case {i}: {}",
                    case.name
                )),
                None => ev.note(format!("case: {}", case.name)),
            }
            self.frames_evidence(case, &mut ev);
        }
        let case = match &f.kind {
            FindingKind::Ack { reason, reply } => {
                ev.note(format!("invalid: {reason}"));
                ev.saw(format!("acknowledged: {reply}"));
                NewCase::fail(
                    true,
                    format!("fuzz-ack[b{}.{}]", f.batch, f.index.unwrap_or(0)),
                    format!("invalid message acknowledged ({at})"),
                    format!("the target acknowledged an invalid message: {reason}"),
                )
            }
            FindingKind::Hang => {
                ev.saw(f.detail.clone());
                NewCase::fail(
                    false,
                    format!("fuzz-hang[b{}.{}]", f.batch, f.index.unwrap_or(0)),
                    format!("no answer and no close ({at})"),
                    format!("the target hung: {}", f.detail),
                )
            }
            FindingKind::Crash => {
                ev.saw(format!("health check after the batch: {}", f.detail));
                for (i, name) in &f.sent {
                    ev.sent(format!("case {i}: {name}"));
                }
                NewCase::fail(
                    false,
                    format!("fuzz-crash[b{}]", f.batch),
                    format!("target unhealthy after {at}"),
                    format!("after a fuzzing batch, {}", f.detail),
                )
            }
        };
        self.push(case, ev, started);
    }

    /// The frames of a case: header bytes in hex, payload in hex before masking.
    fn frames_evidence(&self, case: &FuzzCase, ev: &mut Evidence) {
        let secrets = self.rt.secrets();
        for (n, f) in case.frames.iter().enumerate() {
            let n = n + 1;
            ev.sent(format!("frame {n}: {}", f.describe(&secrets)));
            let wire = f.encode();
            let header_len = crate::wire::parse_header(&wire).map_or(0, |h| h.header_len);
            ev.sent(format!(
                "frame {n} header (mask key last when masked): {}",
                hex(&wire[..header_len.min(wire.len())])
            ));
            if secrets.leaks(&String::from_utf8_lossy(&f.payload)) {
                ev.note(format!(
                    "frame {n} payload withheld: it contains a secret of the target (the seed reproduces it)"
                ));
                continue;
            }
            let chunks: Vec<&[u8]> = f.payload.chunks(HEX_BYTES_PER_LINE).collect();
            if chunks.is_empty() {
                ev.sent(format!("frame {n} payload: empty"));
            }
            for (i, c) in chunks.iter().take(HEX_LINES_PER_FRAME).enumerate() {
                ev.sent(format!(
                    "frame {n} payload bytes {}..: {}",
                    i * HEX_BYTES_PER_LINE,
                    hex(c)
                ));
            }
            if chunks.len() > HEX_LINES_PER_FRAME {
                let digest = ring::digest::digest(&ring::digest::SHA256, &f.payload);
                ev.sent(format!(
                    "frame {n} payload: {} B in all, SHA-256 {}",
                    f.payload.len(),
                    hex(digest.as_ref())
                ));
            }
        }
    }

    /// Records a healthy batch as a passing case.
    pub fn batch_passed(&mut self, batch: u64, summary: &str, ev: Evidence, started: Duration) {
        let case = NewCase {
            ack: false,
            id: format!("fuzz-batch[b{batch}]"),
            name: format!("batch {batch} leaves the target healthy"),
            verdict: Verdict::Pass,
            reason: format!("{summary}; a fresh client still logs in and is served"),
        };
        self.push(case, ev, started);
    }

    /// Records an inconclusive step; the run stops after it.
    pub fn inconclusive(&mut self, what: &str, why: &str, ev: Evidence) {
        let started = self.elapsed();
        let case = NewCase {
            ack: false,
            id: "fuzz-setup".into(),
            name: what.to_string(),
            verdict: Verdict::Error,
            reason: format!("{what}: {why}"),
        };
        self.push(case, ev, started);
    }

    /// The report of the run.
    pub fn finish(mut self) -> RunReport {
        let acks_found = self
            .cases
            .iter()
            .any(|c| c.control_id == self.ack.id && c.verdict == Verdict::Fail);
        let inconclusive = self.cases.iter().any(|c| c.verdict == Verdict::Error);
        if !acks_found && !inconclusive {
            let mut ev = Evidence::default();
            ev.note(format!("seed {}", self.seed));
            ev.note(format!(
                "{} cases sent, {} judged invalid, {} closed the connection, {} acknowledged but not judgeable",
                self.sent, self.invalid_sent, self.closed, self.unjudged_acks
            ));
            if !self.has_schema {
                ev.note("no messages.schema: only binary, non-UTF-8 and malformed JSON messages are known to be invalid");
            }
            let (verdict, reason) = if !self.has_matcher {
                (
                    Verdict::Skipped,
                    "the target has no messages.accepted_when, so acknowledgements cannot be recognised".to_string(),
                )
            } else if self.invalid_sent == 0 {
                (
                    Verdict::Skipped,
                    "no message known to be invalid was sent".to_string(),
                )
            } else {
                (
                    Verdict::Pass,
                    format!(
                        "{} invalid messages sent, none acknowledged",
                        self.invalid_sent
                    ),
                )
            };
            let started = self.elapsed();
            let case = NewCase {
                ack: true,
                id: "fuzz-ack".into(),
                name: "invalid fuzzed messages are never acknowledged".into(),
                verdict,
                reason,
            };
            self.push(case, ev, started);
        }
        let mut controls = vec![self.ack.result(), self.health.result()];
        controls.retain(|c| self.cases.iter().any(|k| k.control_id == c.id));
        let mut report = RunReport {
            wsaudit_version: env!("CARGO_PKG_VERSION").to_string(),
            policy: self.policy_name,
            policy_file: self.policy_file,
            target: self.rt.target.target.clone(),
            target_url: crate::client::display_url(&self.rt.target.url.0),
            started_at: self.started_at,
            wall_time: self.t0.elapsed(),
            controls,
            cases: self.cases,
            summary: Default::default(),
            not_run: Vec::new(),
            target_down_after: None,
        };
        report.finish();
        report
    }
}
