//! Connection lifecycle (heartbeat, unauthenticated, rate-limit and size families): the
//! `closed` judgement, timed against the policy's bound plus a stated slack, and `ping_seen`.

use tokio::time::Instant;

use super::session::{Judgement, Session};
use crate::client::Event;
use crate::plan::expect::{Closed, PingSeen};

impl Session {
    /// `closed`: the server ends the connection within the bound (+ slack).
    ///
    /// The clock starts when the steps finished, or, once pings are no longer answered, at the
    /// first unanswered ping: a server may only notice a stale client from that ping on.
    pub(super) async fn judge_closed(&mut self, c: &Closed) -> Judgement {
        if self.conn.is_none() {
            return Judgement::Inconclusive("no connection was open".into());
        }
        let total = c.within.total();
        let mut start = self.steps_done;
        let mut deadline = start + total;
        let acks = self
            .rt
            .target
            .messages
            .as_ref()
            .and_then(|m| m.accepted_when.clone());
        let mut warned = false;
        let mut data = 0u32;
        loop {
            if let (Some(off), Some(conn)) = (self.pings_off_at, self.conn.as_ref())
                && start == self.steps_done
                && let Some(p) = conn
                    .pings()
                    .into_iter()
                    .find(|p| !p.answered && p.at >= off.into_std())
            {
                start = Instant::from_std(p.at);
                deadline = start + total;
                self.ev.note("clock starts at the first unanswered ping");
            }
            let event = self.next_event(deadline).await;
            let after = Instant::now()
                .saturating_duration_since(start)
                .as_secs_f64();
            let shown = event.describe(&self.rt.secrets());
            match event {
                Event::Text(t) => {
                    data += 1;
                    if acks.as_ref().is_none_or(|m| !m.matches(&t)) {
                        warned = true;
                    }
                    if c.no_data {
                        return Judgement::Broken(format!("data flowed before any close: {shown}"));
                    }
                }
                Event::Binary(_) => {
                    data += 1;
                    if c.no_data {
                        return Judgement::Broken(format!("data flowed before any close: {shown}"));
                    }
                }
                Event::Close { code, .. } => {
                    if c.after_warning && !warned {
                        return Judgement::Broken(format!(
                            "{shown} after {after:.2}s, but without a warning first"
                        ));
                    }
                    return match code {
                        _ if c.codes.is_empty() => {
                            Judgement::Holds(format!("{shown} after {after:.2}s"))
                        }
                        Some(code) if c.codes.contains(&code) => {
                            Judgement::Holds(format!("{shown} after {after:.2}s"))
                        }
                        _ => Judgement::Broken(format!("{shown}: expected one of {:?}", c.codes)),
                    };
                }
                Event::ReaderFailed { error } => {
                    return Judgement::Inconclusive(format!("harness fault: {error}"));
                }
                Event::Dropped { .. } => {
                    if c.after_warning && !warned {
                        return Judgement::Broken(format!(
                            "{shown} after {after:.2}s, but without a warning first"
                        ));
                    }
                    return if c.drop_counts || c.codes.is_empty() {
                        Judgement::Holds(format!("{shown} after {after:.2}s"))
                    } else {
                        Judgement::Broken(format!(
                            "{shown} without a close frame (expected one of {:?})",
                            c.codes
                        ))
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

    /// `ping_seen`: a ping arrived within the bound of the connection opening.
    pub(super) async fn judge_ping(&mut self, p: &PingSeen) -> Judgement {
        let Some(opened) = self.opened_at else {
            return Judgement::Inconclusive("no connection was open".into());
        };
        let total = p.within.total();
        let deadline = opened + total;
        loop {
            if let Some(first) = self
                .conn
                .as_ref()
                .and_then(|c| c.pings().into_iter().next())
            {
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
            match self.next_event(deadline).await {
                Event::Timeout => {
                    return Judgement::Broken(format!(
                        "no ping within {:.2}s (bound {:?} + slack {:?})",
                        total.as_secs_f64(),
                        p.within.bound,
                        p.within.slack
                    ));
                }
                e if e.is_end() => {
                    let shown = e.describe(&self.rt.secrets());
                    return Judgement::Inconclusive(format!(
                        "the connection ended before any ping: {shown}"
                    ));
                }
                _ => {}
            }
        }
    }
}
