//! Business messages (messages and rate-limit families): `send` of any payload, `flood`, and
//! the `accepted` / `rejected` judgements. A rejection needs positive evidence: a reply matching
//! `rejected_when`, a fitting close code, a refused handshake, or a drop; silence only counts
//! where the suite says the policy makes it the secure behaviour.

use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};
use tokio::time::Instant;

use super::session::{HandshakeSeen, Judgement, LastSent, Session, StepError, StepResult};
use crate::client::{Connection, Event, FrameSpec, Mask};
use crate::plan::expect::{Accepted, Rejected};
use crate::plan::step::{Flood, Send};

/// The compression extension a deflate bomb needs (RFC 7692).
const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// Frames per write when flooding as fast as possible: large writes, few syscalls.
const FLOOD_BATCH: usize = 64;

impl Session {
    /// `send`: one payload, `repeat` times.
    pub(super) async fn send(&mut self, s: &Send) -> StepResult {
        let Some(conn) = &self.conn else {
            self.ev
                .note("no connection (the handshake was refused): nothing sent");
            return Ok(());
        };
        let repeat = s.repeat.unwrap_or(1).max(1);
        let frame = if let Some(t) = &s.text {
            FrameSpec::text(&pad(self.fill(t)?, s.pad_to.map(|b| b.as_usize())))
        } else if let Some(j) = &s.json {
            FrameSpec::text(&pad(j.to_string(), s.pad_to.map(|b| b.as_usize())))
        } else if let Some(b) = &s.binary {
            FrameSpec::binary(b.0.clone())
        } else if let Some(depth) = s.deep_json {
            let d = depth as usize;
            FrameSpec::text(&format!("{}{}", "[".repeat(d), "]".repeat(d)))
        } else if let Some(n) = s.wide_json {
            let mut text = String::with_capacity(n as usize * 2 + 2);
            text.push('[');
            for i in 0..n {
                text.push_str(if i == 0 { "0" } else { ",0" });
            }
            text.push(']');
            FrameSpec::text(&text)
        } else if let Some(size) = s.inflates_to {
            // SPEC: a deflate bomb applies "when deflate is negotiated". Without it an RSV1
            // frame is a protocol error, and a server closing it with 1002 is right, not wrong.
            if !self
                .handshake
                .as_ref()
                .is_some_and(|h| h.negotiated(PERMESSAGE_DEFLATE))
            {
                return Err(StepError::NotApplicable(format!(
                    "the server did not negotiate {PERMESSAGE_DEFLATE} (the 101 has no such \
                     Sec-WebSocket-Extensions), so a compressed message cannot be sent"
                )));
            }
            let valid = self.rt.target.valid_message().unwrap_or("{}").to_string();
            let plain = pad(valid, Some(size.as_usize()));
            let compressed = deflate(plain.as_bytes());
            self.ev.note(format!(
                "{} B compressed to {} B",
                plain.len(),
                compressed.len()
            ));
            FrameSpec::new(crate::client::conn::opcode::TEXT, compressed).rsv(true, false, false)
        } else {
            return Err("send has no payload".into());
        };
        for _ in 0..repeat {
            conn.send_frame(&frame)
                .await
                .map_err(|e| format!("cannot send: {e}"))?;
        }
        self.last_sent = LastSent::Data(repeat);
        Ok(())
    }

    /// `flood`: pre-encoded frames, paced or as fast as the socket takes them.
    pub(super) async fn flood(&mut self, f: &Flood) -> StepResult {
        let Some(conn) = &self.conn else {
            self.ev
                .note("no connection (the handshake was refused): nothing sent");
            return Ok(());
        };
        let frame = FrameSpec::text(&self.fill(&f.text)?)
            .mask(Mask::Random)
            .encode();
        let started = Instant::now();
        let until = f.duration.map(|d| started + d);
        let mut sent: u32 = 0;
        let done = |sent: u32| match (f.count, until) {
            (Some(n), _) => sent >= n,
            (None, Some(u)) => Instant::now() >= u,
            (None, None) => true,
        };
        match f.per_second {
            Some(rate) => {
                let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
                while !done(sent) {
                    let conn = self.conn.as_ref().ok_or("the connection went away")?;
                    if conn.has_ended() {
                        break;
                    }
                    conn.send_raw(&frame)
                        .await
                        .map_err(|e| format!("flood interrupted: {e}"))?;
                    sent += 1;
                    self.idle_until(started + gap * sent).await;
                }
            }
            None => sent = flood_unpaced(conn, &frame, f.count, until).await,
        }
        let secs = started.elapsed().as_secs_f64();
        self.ev.note(format!(
            "flooded {sent} messages in {secs:.2}s ({:.0}/s)",
            f64::from(sent) / secs.max(1e-6)
        ));
        self.last_sent = LastSent::Data(sent);
        Ok(())
    }

    /// `accepted`: the acknowledgements the last action deserves, and nothing refusing it.
    pub(super) async fn judge_accepted(&mut self, a: &Accepted) -> Judgement {
        if self.conn.is_none() {
            return match &self.handshake {
                Some(HandshakeSeen::Refused { status }) => {
                    Judgement::Broken(format!("the handshake was refused with HTTP {status}"))
                }
                _ => Judgement::Broken("no connection is open".into()),
            };
        }
        let target = &self.rt.target;
        let (matcher, needed) = match self.last_sent {
            LastSent::Auth => (
                target.auth.as_ref().and_then(|x| x.accepted_when.clone()),
                1,
            ),
            LastSent::Data(n) => (
                target
                    .messages
                    .as_ref()
                    .and_then(|m| m.accepted_when.clone()),
                a.count.unwrap_or(n),
            ),
            LastSent::Nothing => (
                target.auth.as_ref().and_then(|x| x.accepted_when.clone()),
                0,
            ),
        };
        let Some(matcher) = matcher else {
            return Judgement::Inconclusive(
                "the target does not say how the server acknowledges (accepted_when)".into(),
            );
        };
        let rejected = target
            .messages
            .as_ref()
            .and_then(|m| m.rejected_when.clone());
        let deadline = Instant::now() + self.rt.reply_wait + Duration::from_millis(20) * needed;
        let mut got = 0;
        while got < needed {
            match self.next_event(deadline).await {
                Event::Text(t) if matcher.matches(&t) => got += 1,
                Event::Text(t) if rejected.as_ref().is_some_and(|r| r.matches(&t)) => {
                    let shown = self.rt.secrets().preview(t.as_bytes(), 120);
                    return Judgement::Broken(format!(
                        "rejected after {got} of {needed} acknowledgements: {shown}"
                    ));
                }
                Event::Timeout => {
                    return Judgement::Broken(format!(
                        "{got} of {needed} acknowledgements within {:.1}s",
                        self.rt.reply_wait.as_secs_f64()
                    ));
                }
                e if e.is_end() => {
                    let shown = e.describe(&self.rt.secrets());
                    return Judgement::Broken(format!(
                        "{got} of {needed} acknowledgements, then {shown}"
                    ));
                }
                _ => {}
            }
        }
        if a.still_open {
            self.drain().await;
            let ended = self.conn.as_ref().is_none_or(|c| c.has_ended());
            if ended || self.inbox.iter().any(Event::is_end) {
                return Judgement::Broken(format!(
                    "{got} acknowledgements, but the connection then closed"
                ));
            }
        }
        Judgement::Holds(format!("{got} acknowledgement(s) received"))
    }

    /// `rejected`: positive evidence that what was sent was refused.
    pub(super) async fn judge_rejected(&mut self, r: &Rejected) -> Judgement {
        if self.conn.is_none() {
            return match &self.handshake {
                Some(HandshakeSeen::Refused { status }) => {
                    Judgement::Holds(format!("the handshake was refused with HTTP {status}"))
                }
                _ => Judgement::Inconclusive("no connection was open to judge".into()),
            };
        }
        let target = &self.rt.target;
        let rejected = target
            .messages
            .as_ref()
            .and_then(|m| m.rejected_when.clone());
        let acks = [
            target
                .messages
                .as_ref()
                .and_then(|m| m.accepted_when.clone()),
            target.auth.as_ref().and_then(|m| m.accepted_when.clone()),
        ];
        let wait = r.within.map_or(self.rt.reply_wait, |w| w.total());
        let deadline = Instant::now() + wait;
        loop {
            let event = self.next_event(deadline).await;
            let shown = event.describe(&self.rt.secrets());
            match event {
                Event::Text(t) if rejected.as_ref().is_some_and(|m| m.matches(&t)) => {
                    return Judgement::Holds(format!("rejected: {shown}"));
                }
                Event::Text(t) if acks.iter().flatten().any(|m| m.matches(&t)) => {
                    return Judgement::Broken(format!("accepted: {shown}"));
                }
                Event::Close { code: Some(c), .. } if r.codes.contains(&c) => {
                    return Judgement::Holds(format!("closed with {c}"));
                }
                Event::Close { .. } => {
                    return Judgement::Broken(format!(
                        "{shown}: not a rejection code (expected one of {:?})",
                        r.codes
                    ));
                }
                Event::ReaderFailed { error } => {
                    return Judgement::Inconclusive(format!("harness fault: {error}"));
                }
                Event::Dropped { .. } if r.drop_counts => {
                    return Judgement::Holds(format!("dropped: {shown}"));
                }
                Event::Dropped { .. } => {
                    return Judgement::Broken(format!("{shown} without a close frame"));
                }
                Event::Timeout if r.silence_counts => {
                    return Judgement::Holds(format!(
                        "no data for {:.1}s, which the policy treats as a refusal",
                        wait.as_secs_f64()
                    ));
                }
                Event::Timeout => {
                    return Judgement::Broken(format!(
                        "no rejection within {:.1}s: no error reply, no close (silence is not a rejection)",
                        wait.as_secs_f64()
                    ));
                }
                _ => {}
            }
        }
    }
}

/// Sends one pre-encoded frame `count` times (or until `until`) as fast as the socket takes
/// it, [`FLOOD_BATCH`] frames per write; stops early when the server ends the connection.
/// Returns how many frames went out.
pub async fn flood_unpaced(
    conn: &Connection,
    frame: &[u8],
    count: Option<u32>,
    until: Option<Instant>,
) -> u32 {
    let batch: Vec<u8> = frame.repeat(FLOOD_BATCH);
    let mut sent: u32 = 0;
    loop {
        let done = match (count, until) {
            (Some(n), _) => sent >= n,
            (None, Some(u)) => Instant::now() >= u,
            (None, None) => true,
        };
        if done || conn.has_ended() {
            return sent;
        }
        let n = count.map_or(FLOOD_BATCH as u32, |c| (c - sent).min(FLOOD_BATCH as u32));
        if conn
            .send_raw(&batch[..frame.len() * n as usize])
            .await
            .is_err()
        {
            // The server cutting a flood short is what the judgement looks at.
            return sent;
        }
        sent += n;
    }
}

/// Pads a text message with trailing spaces (valid JSON whitespace) up to `size` bytes.
fn pad(mut text: String, size: Option<usize>) -> String {
    if let Some(size) = size
        && size > text.len()
    {
        text.push_str(&" ".repeat(size - text.len()));
    }
    text
}

/// Raw DEFLATE as permessage-deflate sends it (sync flush, trailing 00 00 ff ff removed).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 64 + 1024);
    loop {
        let before = c.total_in() as usize;
        if c.compress_vec(
            &data[before.min(data.len())..],
            &mut out,
            FlushCompress::Sync,
        )
        .is_err()
        {
            break;
        }
        if c.total_in() as usize >= data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(64 * 1024);
    }
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}
