//! Business messages (messages and rate-limit families): `send` of any payload, `flood`, and
//! the `accepted` / `rejected` judgements. A rejection needs positive evidence: a reply matching
//! `rejected_when`, a fitting close code, a refused handshake, or a drop; silence only counts
//! where the suite says the policy makes it the secure behaviour.

use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};
use tokio::time::Instant;

use super::channel::{Channel, Kind};
use super::session::{LastSent, Session};
use super::values;
use super::{Judge, Judgement, Perform, StepError, StepResult};
use crate::client::FrameSpec;
use crate::plan::expect::{Accepted, Rejected};
use crate::plan::step::{Flood, Send};

/// The compression extension a deflate bomb needs (RFC 7692).
const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// Frames per write when flooding as fast as possible: large writes, few syscalls.
const FLOOD_BATCH: usize = 64;

impl Perform for Send {
    /// `send`: one payload, `repeat` times; text is rendered from its template at every send.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let repeat = self.repeat.unwrap_or(1).max(1);
        let log = s.log().clone();
        if s.channel().is_none() {
            log.note("no connection (the handshake was refused): nothing sent");
            return Ok(());
        }
        let pad_to = self.pad_to.map(|b| b.as_usize());
        // Text is a business message: through the dialect, rendered at every send.
        if self.text.is_some() || self.json.is_some() {
            let template = match (&self.text, &self.json) {
                (Some(t), _) => t.clone(),
                (None, Some(j)) => j.to_string(),
                (None, None) => String::new(),
            };
            for _ in 0..repeat {
                let message = pad(s.render(&template)?, pad_to);
                let Some(channel) = s.channel() else { break };
                channel
                    .send_message(&message)
                    .await
                    .map_err(|e| format!("cannot send: {e}"))?;
            }
            set_sent(s, repeat);
            return Ok(());
        }
        let frame = if let Some(b) = &self.binary {
            FrameSpec::binary(b.0.clone())
        } else if let Some(depth) = self.deep_json {
            let d = depth as usize;
            FrameSpec::text(&format!("{}{}", "[".repeat(d), "]".repeat(d)))
        } else if let Some(n) = self.wide_json {
            let mut text = String::with_capacity(n as usize * 2 + 2);
            text.push('[');
            for i in 0..n {
                text.push_str(if i == 0 { "0" } else { ",0" });
            }
            text.push(']');
            FrameSpec::text(&text)
        } else if let Some(size) = self.inflates_to {
            // SPEC: a deflate bomb applies "when deflate is negotiated". Without it an RSV1
            // frame is a protocol error, and a server closing it with 1002 is right, not wrong.
            if !s
                .channel()
                .is_some_and(|c| c.negotiated(PERMESSAGE_DEFLATE))
            {
                return Err(StepError::NotApplicable(format!(
                    "the server did not negotiate {PERMESSAGE_DEFLATE} (the 101 has no such \
                     Sec-WebSocket-Extensions), so a compressed message cannot be sent"
                )));
            }
            let valid = s.rt().target.valid_message().unwrap_or("{}").to_string();
            let plain = pad(s.render(&valid)?, Some(size.as_usize()));
            let compressed = deflate(plain.as_bytes());
            log.note(format!(
                "{} B compressed to {} B",
                plain.len(),
                compressed.len()
            ));
            FrameSpec::new(crate::client::conn::opcode::TEXT, compressed).rsv(true, false, false)
        } else {
            return Err("send has no payload".into());
        };
        let Some(channel) = s.channel() else {
            return Ok(());
        };
        for _ in 0..repeat {
            channel
                .send_frame(&frame)
                .await
                .map_err(|e| format!("cannot send: {e}"))?;
        }
        set_sent(s, repeat);
        Ok(())
    }
}

/// Records that `n` data messages went out on the current connection.
fn set_sent(s: &mut Session, n: u32) {
    if let Some(link) = s.current() {
        link.last_sent = LastSent::Data(n);
    }
}

impl Perform for Flood {
    /// `flood`: many business messages, paced or as fast as the socket takes them. The
    /// message is encoded once, unless it holds a value that changes at every send.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let log = s.log().clone();
        if s.channel().is_none() {
            log.note("no connection (the handshake was refused): nothing sent");
            return Ok(());
        }
        let per_message = values::per_message(&self.text);
        let started = Instant::now();
        let until = self.duration.map(|d| started + d);
        let mut sent: u32 = 0;
        let done = |sent: u32| match (self.count, until) {
            (Some(n), _) => sent >= n,
            (None, Some(u)) => Instant::now() >= u,
            (None, None) => true,
        };
        match self.per_second {
            Some(rate) => {
                let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
                while !done(sent) {
                    let message = s.render(&self.text)?;
                    let channel = s.channel().ok_or("the connection went away")?;
                    if channel.has_ended() {
                        break;
                    }
                    channel
                        .send_message(&message)
                        .await
                        .map_err(|e| format!("flood interrupted: {e}"))?;
                    sent += 1;
                    s.idle_until(started + gap * sent).await;
                }
            }
            None if per_message => {
                while !done(sent) {
                    let n = self
                        .count
                        .map_or(FLOOD_BATCH as u32, |c| (c - sent).min(FLOOD_BATCH as u32));
                    let mut batch = Vec::new();
                    for _ in 0..n {
                        let message = s.render(&self.text)?;
                        let channel = s.channel().ok_or("the connection went away")?;
                        batch.extend(channel.encode_message(&message));
                    }
                    let channel = s.channel().ok_or("the connection went away")?;
                    if channel.has_ended() || channel.send_raw(&batch).await.is_err() {
                        break;
                    }
                    channel.sent_business_raw();
                    sent += n;
                }
            }
            None => {
                let message = s.render(&self.text)?;
                let channel = s.channel().ok_or("the connection went away")?;
                let frame = channel.encode_message(&message);
                sent = flood_unpaced(channel, &frame, self.count, until).await;
                channel.sent_business_raw();
            }
        }
        let secs = started.elapsed().as_secs_f64();
        log.note(format!(
            "flooded {sent} messages in {secs:.2}s ({:.0}/s)",
            f64::from(sent) / secs.max(1e-6)
        ));
        set_sent(s, sent);
        Ok(())
    }
}

impl Judge for Accepted {
    /// `accepted`: the acknowledgements the last action deserves, and nothing refusing it.
    async fn judge(&self, s: &mut Session) -> Judgement {
        if let Some(refused) = s.no_channel() {
            return Judgement::Broken(match refused {
                Some(status) => format!("the handshake was refused with HTTP {status}"),
                None => "no connection is open".into(),
            });
        }
        let classifier = s.rt().classifier.clone();
        let last_sent = s.current().map_or(LastSent::Nothing, |l| l.last_sent);
        let (wanted, has_matcher, needed) = match last_sent {
            LastSent::Auth => (Kind::AuthAccepted, classifier.auth_ok.is_some(), 1),
            LastSent::Data(n) => (Kind::Ack, classifier.ack.is_some(), self.count.unwrap_or(n)),
            LastSent::Nothing => (Kind::AuthAccepted, classifier.auth_ok.is_some(), 0),
        };
        if !has_matcher {
            return Judgement::Inconclusive(
                "the target does not say how the server acknowledges (accepted_when)".into(),
            );
        }
        let reply_wait = s.rt().reply_wait;
        let deadline = Instant::now() + reply_wait + Duration::from_millis(20) * needed;
        let mut got = 0;
        while got < needed {
            let r = s.next_reply(deadline).await;
            match r.kind {
                k if k == wanted => got += 1,
                Kind::Rejection => {
                    let text = r.text().unwrap_or_default();
                    let shown = s.rt().secrets().preview(text.as_bytes(), 120);
                    return Judgement::Broken(format!(
                        "rejected after {got} of {needed} acknowledgements: {shown}"
                    ));
                }
                Kind::Timeout => {
                    return Judgement::Broken(format!(
                        "{got} of {needed} acknowledgements within {:.1}s",
                        reply_wait.as_secs_f64()
                    ));
                }
                _ if r.is_end() => {
                    let shown = r.describe(&s.rt().secrets());
                    return Judgement::Broken(format!(
                        "{got} of {needed} acknowledgements, then {shown}"
                    ));
                }
                _ => {}
            }
        }
        if self.still_open {
            s.drain().await;
            if s.channel().is_none_or(|c| c.has_ended()) {
                return Judgement::Broken(format!(
                    "{got} acknowledgements, but the connection then closed"
                ));
            }
        }
        Judgement::Holds(format!("{got} acknowledgement(s) received"))
    }
}

impl Judge for Rejected {
    /// `rejected`: positive evidence that what was sent was refused.
    async fn judge(&self, s: &mut Session) -> Judgement {
        if let Some(refused) = s.no_channel() {
            return match refused {
                Some(status) => {
                    Judgement::Holds(format!("the handshake was refused with HTTP {status}"))
                }
                None => Judgement::Inconclusive("no connection was open to judge".into()),
            };
        }
        let wait = self.within.map_or(s.rt().reply_wait, |w| w.total());
        let deadline = Instant::now() + wait;
        loop {
            let r = s.next_reply(deadline).await;
            let shown = r.describe(&s.rt().secrets());
            match r.kind {
                Kind::Rejection => return Judgement::Holds(format!("rejected: {shown}")),
                Kind::Ack | Kind::AuthAccepted => {
                    return Judgement::Broken(format!("accepted: {shown}"));
                }
                Kind::Closed => {
                    return match r.close_code() {
                        Some(c) if self.codes.contains(&c) => {
                            Judgement::Holds(format!("closed with {c}"))
                        }
                        _ => Judgement::Broken(format!(
                            "{shown}: not a rejection code (expected one of {:?})",
                            self.codes
                        )),
                    };
                }
                Kind::Fault => {
                    return Judgement::Inconclusive(format!("harness fault: {shown}"));
                }
                Kind::Dropped if self.drop_counts => {
                    return Judgement::Holds(format!("dropped: {shown}"));
                }
                Kind::Dropped => {
                    return Judgement::Broken(format!("{shown} without a close frame"));
                }
                Kind::Timeout if self.silence_counts => {
                    return Judgement::Holds(format!(
                        "no data for {:.1}s, which the policy treats as a refusal",
                        wait.as_secs_f64()
                    ));
                }
                Kind::Timeout => {
                    return Judgement::Broken(format!(
                        "no rejection within {:.1}s: no error reply, no close (silence is not a rejection)",
                        wait.as_secs_f64()
                    ));
                }
                Kind::Other | Kind::Control => {}
            }
        }
    }
}

/// Sends one pre-encoded frame `count` times (or until `until`) as fast as the socket takes
/// it, [`FLOOD_BATCH`] frames per write; stops early when the server ends the connection.
/// Returns how many frames went out.
pub async fn flood_unpaced(
    conn: &Channel,
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
