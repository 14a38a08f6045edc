//! Connection lifecycle (heartbeat, unauthenticated, rate-limit and size families): `wait`,
//! `answer_pings`, the `closed` judgement, timed against the policy's bound plus a stated
//! slack, and `ping_seen`.

use tokio::time::Instant;

use super::channel::Kind;
use super::session::Session;
use super::{Judge, Judgement, Perform, StepResult};
use crate::client::Event;
use crate::client::FrameSpec;
use crate::plan::expect::{Attested, ClockStart, Closed, PingSeen};
use crate::plan::step::{AnswerPings, BusyFrame, KeepBusy, Wait};

impl Perform for Wait {
    /// `wait`: idles `bound + slack`, draining the connection so pings keep being answered.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let w = self.0;
        s.log().note(format!(
            "waiting {:.1}s (bound {:?} + slack {:?})",
            w.total().as_secs_f64(),
            w.bound,
            w.slack
        ));
        s.idle_until(Instant::now() + w.total()).await;
        Ok(())
    }
}

impl Perform for AnswerPings {
    /// `answer_pings`: whether the current connection answers pings from now on.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let on = self.0;
        if let Some(c) = s.channel() {
            c.answer_pings(on);
        }
        if let Some(link) = s.current() {
            link.pings_off_at = (!on).then(Instant::now);
        }
        s.log().note(if on {
            "answering pings"
        } else {
            "no longer answering pings"
        });
        Ok(())
    }
}

impl Perform for KeepBusy {
    /// `keep_busy`: a ping (or pong) every `every` for `duration`, stopping when the server
    /// ends the connection.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let started = Instant::now();
        let until = started + self.duration;
        let opcode = match self.send {
            BusyFrame::Ping => crate::client::conn::opcode::PING,
            BusyFrame::Pong => crate::client::conn::opcode::PONG,
        };
        let mut sent = 0u32;
        while Instant::now() < until {
            let Some(channel) = s.channel() else { break };
            if channel.has_ended() {
                break;
            }
            if channel
                .send_frame(&FrameSpec::new(opcode, b"busy".to_vec()))
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
            s.idle_until((Instant::now() + self.every).min(until)).await;
        }
        s.log().note(
            format!(
                "kept busy: {sent} {:?} frame(s) over {:.2}s",
                self.send,
                started.elapsed().as_secs_f64()
            )
            .to_lowercase(),
        );
        Ok(())
    }
}

impl Judge for Closed {
    /// `closed`: the server ends the connection within the bound (+ slack).
    ///
    /// The clock starts when the steps finished, or, once pings are no longer answered, at the
    /// first unanswered ping: a server may only notice a stale client from that ping on.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let c = self;
        if let Some(refused) = s.no_channel() {
            return match refused {
                // No connection to close: the server refused it before the upgrade (an
                // unauthenticated client turned away at the handshake).
                Some(status) => Judgement::Holds(format!(
                    "the handshake was refused with HTTP {status}: no connection was left open"
                )),
                None => Judgement::Inconclusive("no connection was open".into()),
            };
        }
        let total = c.within.total();
        let steps_done = match c.from {
            ClockStart::Steps => s.steps_done(),
            ClockStart::Connect => {
                let done = s.steps_done();
                s.channel().map_or(done, |ch| ch.opened_at())
            }
        };
        let mut start = steps_done;
        let mut deadline = start + total;
        let pings_off_at = s.current().and_then(|l| l.pings_off_at);
        let classifier = s.rt().classifier.clone();
        let has_warning_matcher = classifier.warning.is_some();
        let mut warned = false;
        let mut data = 0u32;
        loop {
            if let (Some(off), Some(conn)) = (pings_off_at, s.channel())
                && start == steps_done
                && let Some(p) = conn
                    .pings()
                    .into_iter()
                    .find(|p| !p.answered && p.at >= off.into_std())
            {
                start = Instant::from_std(p.at);
                deadline = start + total;
                s.log().note("clock starts at the first unanswered ping");
            }
            let reply = s.next_reply(deadline).await;
            let after = Instant::now()
                .saturating_duration_since(start)
                .as_secs_f64();
            let shown = reply.describe(&s.rt().secrets());
            if reply.is_data() {
                data += 1;
                // With `warning_when`, only the target's warning counts; without, any message
                // that acknowledges nothing.
                if match has_warning_matcher {
                    true => reply.kind == Kind::Warning,
                    false => reply.kind != Kind::Ack,
                } {
                    warned = true;
                }
                // A refusal on its way out (an error before the close, a Socket.IO
                // CONNECT_ERROR) says no; it serves nothing.
                if c.no_data && reply.kind != Kind::Rejection {
                    return Judgement::Broken(format!("data flowed before any close: {shown}"));
                }
                continue;
            }
            match reply.event {
                Event::Text(_) | Event::Binary(_) => {}
                Event::Close { code, .. } => {
                    if c.after_warning && !warned {
                        return Judgement::Broken(format!(
                            "{shown} after {after:.2}s, but without a warning first"
                        ));
                    }
                    return match code {
                        Some(k) if classifier.is_crash(k) => Judgement::Broken(format!(
                            "the server crashed: {shown} after {after:.2}s (internal error, not a refusal)"
                        )),
                        _ if c.codes.is_empty() => {
                            Judgement::Holds(format!("{shown} after {after:.2}s"))
                        }
                        Some(code) if classifier.counts_as(code, &c.codes) => {
                            Judgement::Holds(format!("{shown} after {after:.2}s"))
                        }
                        // A close without a status code says no more than a drop: the drop rule.
                        None => match super::messages::judge_drop(
                            s,
                            c.drop_counts,
                            true,
                            &c.codes,
                            super::messages::Ending::CodelessClose,
                        )
                        .await
                        {
                            Judgement::Holds(why) => {
                                Judgement::Holds(format!("{shown} after {after:.2}s: {why}"))
                            }
                            other => other,
                        },
                        _ => Judgement::Broken(format!("{shown}: expected one of {:?}", c.codes)),
                    };
                }
                Event::ReaderFailed { error } => {
                    return Judgement::Inconclusive(format!("harness fault: {error}"));
                }
                Event::Violation(v) => {
                    return Judgement::Inconclusive(v.failed_connection());
                }
                Event::Dropped { .. } => {
                    if c.after_warning && !warned {
                        return Judgement::Broken(format!(
                            "{shown} after {after:.2}s, but without a warning first"
                        ));
                    }
                    // A drop ends the connection either way; whether it counts as the close the
                    // check asks for, and whether it was a crash, is the drop rule's call.
                    // Any end counts where no code is asked (a timeout); otherwise the drop must
                    // be allowed and shown to refuse this input.
                    let any_end = c.codes.is_empty();
                    let allowed = c.drop_counts || any_end;
                    return match super::messages::judge_drop(
                        s,
                        allowed,
                        !any_end,
                        &c.codes,
                        super::messages::Ending::Dropped,
                    )
                    .await
                    {
                        Judgement::Holds(why) if any_end => {
                            Judgement::Holds(format!("{shown} after {after:.2}s ({why})"))
                        }
                        Judgement::Holds(why) => {
                            Judgement::Holds(format!("{shown} after {after:.2}s: {why}"))
                        }
                        other => other,
                    };
                }
                Event::Timeout => {
                    return Judgement::Broken(format!(
                        "still open {:.2}s later (bound {:?} + slack {:?}); {data} data message(s) meanwhile",
                        total.as_secs_f64(),
                        c.within.bound,
                        c.within.slack
                    ));
                }
                Event::Ping(_) | Event::Pong(_) | Event::Skipped { .. } => {}
            }
        }
    }
}

impl Judge for PingSeen {
    /// `ping_seen`: a ping arrived within the bound of the connection opening.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let p = self;
        let Some(opened) = s.channel().map(|c| c.opened_at()) else {
            return Judgement::Inconclusive("no connection was open".into());
        };
        let total = p.within.total();
        let deadline = opened + total;
        loop {
            if let Some(first) = s.channel().and_then(|c| c.pings().into_iter().next()) {
                return if first.since_open <= total {
                    Judgement::Holds(format!(
                        "first ping {:.2}s after the connection opened",
                        first.since_open.as_secs_f64()
                    ))
                } else {
                    Judgement::Broken(format!(
                        "first ping only {:.2}s after the connection opened (bound {:?} + slack {:?})",
                        first.since_open.as_secs_f64(),
                        p.within.bound,
                        p.within.slack
                    ))
                };
            }
            let reply = s.next_reply(deadline).await;
            match reply.event {
                Event::Timeout => {
                    return Judgement::Broken(format!(
                        "no ping within {:.2}s (bound {:?} + slack {:?})",
                        total.as_secs_f64(),
                        p.within.bound,
                        p.within.slack
                    ));
                }
                _ if reply.is_end() => {
                    let shown = reply.describe(&s.rt().secrets());
                    return Judgement::Inconclusive(format!(
                        "the connection ended before any ping: {shown}"
                    ));
                }
                _ => {}
            }
        }
    }
}

impl Judge for Attested {
    /// `attested`: never tested; `run_case` reports the case skipped before any step.
    async fn judge(&self, _: &mut Session) -> Judgement {
        Judgement::Holds(format!("attested: {}", self.evidence))
    }
}
