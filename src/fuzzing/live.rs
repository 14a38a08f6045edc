//! `wsaudit fuzz`: live fuzzing of a target's message and frame handling after authentication.
//!
//! Batches of [`FuzzCase`]s go over one logged-in connection (replaced whenever the target
//! closes it), paced under the target's rate limit. Each fenced case is followed by a ping with
//! a unique payload: every reply before its pong answers the case, so an acknowledgement is
//! attributed without waiting for silence. After each batch a fresh client must still log in
//! and get a valid message acknowledged (the engine's `healthy` judgement).
//!
//! Findings: an acknowledgement (`messages.accepted_when`) of a message the [`Oracle`] knows is
//! invalid; a hang (neither the fence's pong nor a close within `hang_after`); a crash (the
//! health check fails after a batch that started healthy). Each names the seed, batch and case
//! (for a crash, the last case sent before the target went away) and shows its exact bytes,
//! and `--seed N --replay-batch B` regenerates them.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::mutate::{FuzzCase, Mutator};
use super::options::FuzzOptions;
use super::oracle::{Oracle, Validity};
use super::report::{Finding, FindingKind, Recorder};
use super::rng::Rng;
use crate::attacks::{Channel, Judgement, Kind, TargetRuntime, healthy, logged_in_channel};
use crate::client::conn::opcode;
use crate::client::{Event, FrameSpec, Mask};
use crate::config::LoadedPolicy;
use crate::config::policy::CheckParams;
use crate::report::{CaseLog, RunReport};

/// How long an unfenced case (a lying length, a close frame) is watched before the connection
/// is dropped: such a target may rightly wait for bytes that never come.
const UNFENCED_WATCH: Duration = Duration::from_millis(300);
/// Most bytes one drain between two cases reads (the bound of `Channel::drain`).
const DRAIN_BYTES: usize = crate::attacks::channel::INBOX_BYTES;
/// Longest one drain between two cases reads.
const DRAIN_TIME: Duration = Duration::from_millis(200);

/// Why a run could not start at all (exit 2: invalid input).
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    /// The policy's `messages.schema` does not compile.
    #[error("the policy's messages.schema is not a valid JSON Schema: {0}")]
    Schema(String),
}

/// What one case did on the wire.
#[derive(Debug, Default)]
struct Exchange {
    /// Acknowledgements seen before the fence (or, unfenced, at all).
    acks: Vec<String>,
    /// How the connection ended, if it did.
    ended: Option<String>,
    /// No pong and no close within the bound.
    hang: bool,
}

/// Spaces business messages `1 / rate` apart.
struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            super::options::DEFAULT_RATE
        };
        Self {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Instant::now(),
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep_until(self.next).await;
        self.next = self.next.max(Instant::now()) + self.interval;
    }
}

/// The fuzzing connection of a batch, reopened (with a fresh login) when the target closes it.
struct Fuzzer {
    rt: Arc<TargetRuntime>,
    ev: CaseLog,
    conn: Option<Channel>,
    hang_after: Duration,
    reconnects: u32,
}

impl Fuzzer {
    /// A logged-in connection of the legitimate client, opening one if needed.
    async fn connection(&mut self) -> Result<&Channel, Judgement> {
        if self.conn.is_none() {
            self.conn = Some(logged_in_channel(&self.rt, &self.ev).await?.0);
            self.reconnects += 1;
        }
        self.conn
            .as_ref()
            .ok_or_else(|| Judgement::Broken("the fresh connection went away".into()))
    }

    /// Reads what is queued without waiting, up to [`DRAIN_BYTES`] or [`DRAIN_TIME`]: a target
    /// streaming as fast as it can must not keep the fuzzer reading instead of fuzzing (the
    /// rest stays queued, and the reader's bounded queue holds the target back). Returns the
    /// acknowledgements seen, which answer nothing we can name.
    async fn drain(&mut self) -> u32 {
        let Some(c) = self.conn.as_mut() else {
            return 0;
        };
        let replies = c.drain_replies(DRAIN_BYTES, DRAIN_TIME).await;
        if replies.iter().any(|r| r.is_end()) {
            self.conn = None;
        }
        replies.iter().filter(|r| r.kind == Kind::Ack).count() as u32
    }

    /// Sends one case (and its fence) and watches what comes back.
    async fn exchange(&mut self, case: &FuzzCase, fence: &[u8]) -> Exchange {
        let mut x = Exchange::default();
        let Some(conn) = self.conn.as_mut() else {
            x.ended = Some("no connection".into());
            return x;
        };
        for f in &case.frames {
            if let Err(e) = conn.send_frame(f).await {
                x.ended = Some(format!("sending failed: {e}"));
                break;
            }
        }
        let fenced = case.fenced && x.ended.is_none();
        if fenced {
            let ping = FrameSpec::new(opcode::PING, fence.to_vec()).mask(Mask::Fixed([0; 4]));
            if let Err(e) = conn.send_frame(&ping).await {
                x.ended = Some(format!("sending the fence failed: {e}"));
            }
        }
        let watch = if fenced {
            self.hang_after
        } else {
            UNFENCED_WATCH
        };
        let deadline = Instant::now() + watch;
        let redactor = self.rt.secrets();
        while x.ended.is_none() {
            let r = conn.next(deadline).await;
            match (r.kind, r.event) {
                (Kind::Ack, Event::Text(t)) => x.acks.push(t),
                (_, Event::Pong(p)) if fenced && p == fence => break,
                (Kind::Timeout, _) => {
                    x.hang = fenced;
                    break;
                }
                (Kind::Closed | Kind::Dropped | Kind::Fault, e) => {
                    x.ended = Some(e.describe(&redactor))
                }
                _ => {}
            }
        }
        if !fenced || x.hang || x.ended.is_some() {
            // Unfenced: the target may still wait for bytes we never send; start afresh.
            self.conn = None;
        }
        x
    }
}

/// The policy's `messages.schema`, if any.
fn policy_schema(policy: Option<&LoadedPolicy>) -> Option<&serde_json::Value> {
    policy?.params.iter().find_map(|p| match p {
        CheckParams::Schema(s) => Some(&s.schema),
        _ => None,
    })
}

/// Fuzzes the target and reports findings in the model `wsaudit run` reports in (not redacted:
/// pass it through [`RunReport::redact`] with the runtime's secrets before printing).
pub async fn run(
    rt: Arc<TargetRuntime>,
    policy: Option<&LoadedPolicy>,
    opts: &FuzzOptions,
) -> Result<RunReport, FuzzError> {
    let valid: Vec<String> = rt
        .target
        .messages
        .as_ref()
        .map(|m| m.valid.clone())
        .unwrap_or_default();
    let oracle =
        Oracle::new(policy_schema(policy), &valid).map_err(|e| FuzzError::Schema(e.to_string()))?;
    let mutator = Mutator::new(&valid, opts.max_len);
    let mut rec = Recorder::new(
        &rt,
        policy,
        opts,
        oracle.has_schema(),
        rt.classifier.ack.is_some(),
    );
    let end = Instant::now() + opts.duration;
    let mut pacer = Pacer::new(opts.rate);

    // The positive control: before any fuzzing, a legitimate client gets a valid message
    // acknowledged. Otherwise nothing later can be blamed on the fuzzing.
    let ev = CaseLog::default();
    match healthy(&rt, &ev).await {
        Judgement::Holds(_) => {}
        Judgement::Broken(why) | Judgement::Inconclusive(why) | Judgement::NotApplicable(why) => {
            rec.inconclusive(
                "before fuzzing, the legitimate path does not work",
                &why,
                ev.snapshot(),
            );
            return Ok(rec.finish());
        }
    }

    let first = opts.replay_batch.unwrap_or(0);
    let last = opts.replay_batch.unwrap_or(u64::MAX);
    for batch in first..=last {
        let replaying = opts.replay_batch.is_some();
        if (!replaying && Instant::now() >= end) || rec.findings() >= opts.max_findings {
            break;
        }
        let ev = CaseLog::default();
        let batch_start = rec.elapsed();
        let mut fz = Fuzzer {
            rt: rt.clone(),
            ev: ev.clone(),
            conn: None,
            hang_after: opts.hang_after,
            reconnects: 0,
        };
        let mut sent: Vec<(u64, String)> = Vec::new();
        // The last case sent: when the target dies, the likeliest culprit, shown byte for byte.
        let mut last: Option<(u64, FuzzCase)> = None;
        let mut stray = 0;
        let mut lost = None;
        for index in 0..opts.batch_size {
            if (!replaying && Instant::now() >= end) || rec.findings() >= opts.max_findings {
                break;
            }
            let case = mutator.case(&mut Rng::for_case(opts.seed, batch, index));
            if let Err(j) = fz.connection().await {
                lost = Some(j);
                break;
            }
            stray += fz.drain().await;
            pacer.wait().await;
            if fz.conn.is_none() {
                // The drain saw the connection end; open another before sending.
                if let Err(j) = fz.connection().await {
                    lost = Some(j);
                    break;
                }
            }
            let fence = [
                b"wsfz".as_slice(),
                &batch.to_be_bytes(),
                &index.to_be_bytes(),
            ]
            .concat();
            let x = fz.exchange(&case, &fence).await;
            sent.push((index, case.name.clone()));
            last = Some((index, case.clone()));
            let judged = case.delivered.as_ref().map(|d| oracle.judge(d));
            if let (Some(ack), Some(Validity::Invalid(reason))) = (x.acks.first(), &judged) {
                rec.finding(Finding {
                    kind: FindingKind::Ack {
                        reason: reason.clone(),
                        reply: ack.clone(),
                    },
                    batch,
                    index: Some(index),
                    case: Some(case.clone()),
                    sent: Vec::new(),
                    detail: String::new(),
                });
            } else if x.hang {
                rec.finding(Finding {
                    kind: FindingKind::Hang,
                    batch,
                    index: Some(index),
                    case: Some(case.clone()),
                    sent: Vec::new(),
                    detail: format!(
                        "neither a reply nor a close within {:?} after the ping fence",
                        opts.hang_after
                    ),
                });
            }
            rec.count(judged.as_ref(), !x.acks.is_empty(), x.ended.is_some());
        }
        drop(fz.conn.take());
        // After the batch, a fresh client must still get in and be served.
        let health = healthy(&rt, &ev).await;
        let mut summary = format!(
            "{} cases sent, {} connections opened, {stray} acknowledgements outside any fence",
            sent.len(),
            fz.reconnects
        );
        if let Some(Judgement::Broken(why) | Judgement::Inconclusive(why)) = lost {
            summary += &format!("; the batch stopped early: {why}");
        }
        match health {
            Judgement::Holds(_) => rec.batch_passed(batch, &summary, ev.snapshot(), batch_start),
            Judgement::Broken(why) => {
                let (index, case) = last.map_or((None, None), |(i, c)| (Some(i), Some(c)));
                rec.finding(Finding {
                    kind: FindingKind::Crash,
                    batch,
                    index,
                    case,
                    sent,
                    detail: why,
                });
                break;
            }
            Judgement::Inconclusive(why) | Judgement::NotApplicable(why) => {
                rec.inconclusive("the health check after a batch", &why, ev.snapshot());
                break;
            }
        }
    }
    Ok(rec.finish())
}
