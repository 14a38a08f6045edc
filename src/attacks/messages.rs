//! Business messages (messages and rate-limit families): `send` of any payload, `flood`, and
//! the `accepted` / `rejected` judgements. A rejection needs positive evidence: a reply matching
//! `rejected_when`, a fitting close code, a refused handshake, or a drop; silence only counts
//! where the suite says the policy makes it the secure behaviour.

use std::time::Duration;

use tokio::time::Instant;

use super::channel::{Channel, Kind};
use super::session::{LastSent, RampRecord, Session};
use super::values;
use super::{Judge, Judgement, Perform, StepError, StepResult};
use crate::client::FrameSpec;
use crate::client::conn::opcode;
use crate::plan::expect::{Accepted, MeasuredRate, Rejected};
use crate::plan::step::{Flood, Ramp, Send, SendValid};

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
        // Text is a business message: through the dialect, rendered at every send, changed
        // only in what the case mutates.
        if self.text.is_some() || self.json.is_some() {
            let template = match (&self.text, &self.json) {
                (Some(t), _) => t.clone(),
                (None, Some(j)) => j.to_string(),
                (None, None) => String::new(),
            };
            for _ in 0..repeat {
                let mut message = s.render(&template)?;
                if let Some(n) = self.truncate {
                    cut_last_bytes(&mut message, n);
                }
                let Some(channel) = s.channel() else { break };
                let sent = if pad_to.is_some() {
                    // Padded inside the envelope, so the whole message has the size asked.
                    channel.send_message_padded(&message, pad_to).await
                } else if self.as_binary {
                    channel
                        .send_message_mutated(&message, opcode::BINARY, |_| {})
                        .await
                } else if self.invalid_utf8 {
                    channel
                        .send_message_mutated(&message, opcode::TEXT, corrupt_utf8)
                        .await
                } else {
                    channel.send_message(&message).await
                };
                sent.map_err(|e| format!("cannot send: {e}"))?;
            }
            set_sent(s, repeat);
            return Ok(());
        }
        let frame = if let Some(b) = &self.binary {
            FrameSpec::binary(b.0.clone())
        } else if self.deep_json.is_some() || self.wide_json.is_some() {
            let array = match (self.deep_json, self.wide_json) {
                (Some(depth), _) => {
                    let d = depth as usize;
                    format!("{}{}", "[".repeat(d), "]".repeat(d))
                }
                (None, Some(n)) => {
                    let mut text = String::with_capacity(n as usize * 2 + 2);
                    text.push('[');
                    for i in 0..n {
                        text.push_str(if i == 0 { "0" } else { ",0" });
                    }
                    text.push(']');
                    text
                }
                (None, None) => String::new(),
            };
            let text = match &self.embed_in {
                Some(into) => embed(&s.render(into)?, &array),
                None => array,
            };
            let Some(channel) = s.channel() else {
                return Ok(());
            };
            channel
                .send_message(&text)
                .await
                .map_err(|e| format!("cannot send: {e}"))?;
            set_sent(s, 1);
            return Ok(());
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
            let valid = s.render(&valid)?;
            let plain = match s.channel() {
                Some(c) => String::from_utf8_lossy(
                    &c.frame_payload(&valid, Some(size.as_usize()))
                        .await
                        .map_err(|e| format!("cannot build the message: {e}"))?,
                )
                .into_owned(),
                None => return Ok(()),
            };
            let compressed = crate::client::deflate::compress_message(plain.as_bytes());
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

/// `text` with the invalid UTF-8 sequence C3 28 (a lead byte, then no continuation) inserted
/// after its first `"` (at its end when it has none).
fn corrupt_utf8(bytes: &mut Vec<u8>) {
    let at = bytes
        .iter()
        .position(|b| *b == b'"')
        .map_or(bytes.len(), |i| i + 1);
    bytes.splice(at..at, [0xC3, 0x28]);
}

/// `object` (a JSON object's text) with the value of its first member replaced by `value`
/// (JSON text): only that value differs. Text that is no JSON object gets `value` alone.
fn embed(object: &str, value: &str) -> String {
    let parsed: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(object).ok();
    let Some(first) = parsed.as_ref().and_then(|m| m.keys().next().cloned()) else {
        return value.to_string();
    };
    // Rebuild by hand: the value may be too deep for serde_json to hold.
    let mut out = String::from("{");
    for (i, (k, v)) in parsed.iter().flatten().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::String(k.clone()).to_string());
        out.push(':');
        if *k == first {
            out.push_str(value);
        } else {
            out.push_str(&v.to_string());
        }
    }
    out.push('}');
    out
}

impl Perform for SendValid {
    /// `send_valid`: the target's valid message on the current connection, acknowledged: the
    /// differential control that tells a drop caused by what follows from a connection that
    /// drops everything.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let Some(valid) = s.rt().target.valid_message().map(str::to_string) else {
            return Err("the target lists no valid message (messages.valid)".into());
        };
        if s.rt().classifier.ack.is_none() {
            s.log().note(
                "the target does not say how the server acknowledges (messages.accepted_when): \
                 the differential control cannot be confirmed, so a drop will not count as a refusal",
            );
            return Ok(());
        }
        let message = s.render(&valid)?;
        let Some(channel) = s.channel() else {
            return Err("no connection is open for the differential control".into());
        };
        channel
            .send_message(&message)
            .await
            .map_err(|e| format!("cannot send the valid message: {e}"))?;
        let deadline = Instant::now() + s.rt().reply_wait;
        loop {
            let r = s.next_reply(deadline).await;
            match r.kind {
                Kind::Ack => {
                    if let Some(link) = s.current() {
                        link.valid_confirmed = true;
                        link.last_sent = LastSent::Nothing;
                    }
                    s.log()
                        .note("differential control: this connection carries the unmutated valid message (acknowledged)");
                    return Ok(());
                }
                Kind::Control | Kind::Other | Kind::AuthAccepted | Kind::Warning => {}
                _ => {
                    let shown = r.describe(&s.rt().secrets());
                    return Err(format!(
                        "the unmutated valid message is not acknowledged on this connection \
                         ({shown}), so what follows cannot be judged against it"
                    )
                    .into());
                }
            }
        }
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
        // A flood of business messages is the protocol's own (its connect sent first, where
        // it has one), each message with its own id where the protocol numbers them.
        if !self.pings
            && let Some(channel) = s.channel()
        {
            channel
                .prepare_business()
                .await
                .map_err(|e| format!("cannot start the flood: {e}"))?;
        }
        let per_message = values::per_message(&self.text)
            || self.truncate.is_some()
            || self.in_array
            || self.pings
            || s.channel().is_some_and(|c| c.wraps_uniquely());
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
                    let message = self.message(s)?;
                    let channel = s.channel().ok_or("the connection went away")?;
                    if channel.has_ended() {
                        break;
                    }
                    let frame = self.frame(channel, &message);
                    if channel.send_raw(&frame).await.is_err() {
                        // The server cutting a flood short is what the judgement looks at.
                        break;
                    }
                    channel.sent_business_raw();
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
                        let message = self.message(s)?;
                        let channel = s.channel().ok_or("the connection went away")?;
                        batch.extend(self.frame(channel, &message));
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

/// Cuts the last `n` bytes off `message` (and the rest of a character cut in two), leaving
/// it malformed the way a truncated send is.
fn cut_last_bytes(message: &mut String, n: u32) {
    let keep = message.len().saturating_sub(n as usize);
    let cut = (0..=keep)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    message.truncate(cut);
}

impl Flood {
    /// One message of the flood, rendered and changed as the step says.
    fn message(&self, s: &Session) -> Result<String, StepError> {
        let mut message = s.render(&self.text)?;
        if let Some(n) = self.truncate {
            cut_last_bytes(&mut message, n);
        }
        if self.in_array {
            message = format!("[{message}]");
        }
        Ok(message)
    }

    /// Its wire bytes: a business message through the dialect, or a ping carrying it.
    fn frame(&self, channel: &mut Channel, message: &str) -> Vec<u8> {
        if self.pings {
            let payload: Vec<u8> = message.bytes().take(125).collect();
            FrameSpec::new(opcode::PING, payload).encode()
        } else {
            channel.encode_message(message)
        }
    }
}

impl Perform for Ramp {
    /// `ramp`: the valid message at rising rates, stage by stage, until the server closes;
    /// records the first push-back (a warning) and the close.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let Some(valid) = s.rt().target.valid_message().map(str::to_string) else {
            return Err("the target lists no valid message (messages.valid)".into());
        };
        let has_warning = s.rt().classifier.warning.is_some();
        let mut record = RampRecord::default();
        let started = Instant::now();
        let stages = self.stages.max(1);
        'stages: for i in 0..stages {
            let t = if stages == 1 {
                0.0
            } else {
                f64::from(i) / f64::from(stages - 1)
            };
            let factor = self.from * (self.to / self.from).powf(t);
            let rate = (f64::from(self.per_second) * factor).max(0.5);
            record.top_rate = rate;
            let gap = Duration::from_secs_f64(1.0 / rate);
            let stage_end = Instant::now() + self.each;
            let mut next = Instant::now();
            while Instant::now() < stage_end {
                let message = s.render(&valid)?;
                let Some(channel) = s.channel() else {
                    break 'stages;
                };
                if channel.send_message(&message).await.is_err() {
                    break 'stages;
                }
                record.sent += 1;
                next += gap;
                // Read what came back without waiting, until the next send is due.
                loop {
                    let r = s.next_reply(Instant::now()).await;
                    let at = started.elapsed().as_secs_f64();
                    match r.kind {
                        Kind::Timeout => break,
                        Kind::Warning | Kind::Rejection | Kind::Other
                            if record.warned.is_none()
                                && (r.kind == Kind::Warning || !has_warning) =>
                        {
                            record.warned = Some((record.sent, at, rate));
                        }
                        Kind::Closed | Kind::Dropped => {
                            let shown = r.describe(&s.rt().secrets());
                            record.closed = Some((record.sent, at, rate, shown));
                            break 'stages;
                        }
                        _ => {}
                    }
                }
                tokio::time::sleep_until(next.min(stage_end)).await;
            }
        }
        s.log().note(format!(
            "ramped to {:.0}/s: {} messages in {:.2}s",
            record.top_rate,
            record.sent,
            started.elapsed().as_secs_f64()
        ));
        s.set_ramp(record);
        set_sent(s, 0);
        Ok(())
    }
}

impl Judge for MeasuredRate {
    /// `measured_rate`: the limit the ramp met, estimated from the messages the server took
    /// before it first pushed back (`N` messages in `t` seconds, with the usual allowance of one
    /// second's worth of burst: about `N / (1 + t)` a second), within the policy's limit plus
    /// the tolerance. A server that never pushed back has no limit there at all.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let Some(r) = s.ramp().cloned() else {
            return Judgement::Inconclusive("no ramp was run".into());
        };
        let allowed = f64::from(self.max_per_second) * (1.0 + self.tolerance);
        let push_back = r.warned.map(|(n, t, rate)| (n, t, rate, "warned")).or(r
            .closed
            .as_ref()
            .map(|(n, t, rate, _)| (*n, *t, *rate, "closed")));
        let Some((n, t, rate, how)) = push_back else {
            return Judgement::Broken(format!(
                "never limited: {} messages up to {:.0}/s went through without a warning or a close \
                 (the policy allows {}/s)",
                r.sent, r.top_rate, self.max_per_second
            ));
        };
        let estimate = f64::from(n) / (1.0 + t);
        let closed = r
            .closed
            .as_ref()
            .map(|(n, t, rate, how)| {
                format!("; closed after {n} messages, {t:.2}s, at {rate:.0}/s ({how})")
            })
            .unwrap_or_else(|| "; not closed during the ramp".into());
        let shown = format!(
            "first {how} after {n} messages in {t:.2}s (sending {rate:.0}/s then): a limit of about \
             {estimate:.0}/s{closed}"
        );
        if estimate <= allowed {
            Judgement::Holds(format!(
                "{shown}, within the policy's {}/s (+{:.0} %)",
                self.max_per_second,
                self.tolerance * 100.0
            ))
        } else {
            Judgement::Broken(format!(
                "{shown}, more than the policy's {}/s + {:.0} % ({allowed:.0}/s)",
                self.max_per_second,
                self.tolerance * 100.0
            ))
        }
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
    /// `rejected`: positive evidence that what was sent was refused. A crash (close 1011, a
    /// drop after which fresh connections fail, a server that stops answering) never is one;
    /// a drop without a close frame counts only where the case allows it, the connection
    /// carried the unmutated message before (`send_valid`) and a fresh client is still served.
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
        let started = Instant::now();
        let deadline = started + wait;
        let classifier = s.rt().classifier.clone();
        loop {
            let r = s.next_reply(deadline).await;
            let shown = r.describe(&s.rt().secrets());
            match r.kind {
                Kind::Rejection => {
                    return Judgement::Holds(format!(
                        "rejected after {:.2}s: {shown}",
                        started.elapsed().as_secs_f64()
                    ));
                }
                Kind::Ack | Kind::AuthAccepted => {
                    return Judgement::Broken(format!("accepted: {shown}"));
                }
                Kind::Closed => {
                    return match r.close_code() {
                        Some(c) if classifier.is_crash(c) => Judgement::Broken(format!(
                            "the server crashed on this input: {shown} (internal error, not a refusal)"
                        )),
                        // A close frame without a status code says no more than a drop does
                        // (Socket.IO ends a transport it cannot decode that way): the drop rule.
                        None => {
                            judge_drop(
                                s,
                                self.drop_counts,
                                true,
                                &self.codes,
                                Ending::CodelessClose,
                            )
                            .await
                        }
                        Some(c) if classifier.counts_as(c, &self.codes) => {
                            Judgement::Holds(format!(
                                "closed with {c}{} after {:.2}s",
                                classifier
                                    .meaning(c)
                                    .map(|m| format!(" (the target's {m:?})").to_lowercase())
                                    .unwrap_or_default(),
                                started.elapsed().as_secs_f64()
                            ))
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
                Kind::Dropped => {
                    return judge_drop(s, self.drop_counts, true, &self.codes, Ending::Dropped)
                        .await;
                }
                Kind::Timeout if self.silence_counts => {
                    return Judgement::Holds(format!(
                        "no data for {:.1}s, which the policy treats as a refusal",
                        wait.as_secs_f64()
                    ));
                }
                Kind::Timeout => {
                    let rt = s.rt().clone();
                    let log = s.log().clone();
                    return match super::healthy(&rt, &log).await {
                        Judgement::Broken(why) => Judgement::Broken(format!(
                            "the server stopped answering after this input: nothing for {:.1}s, and {why}",
                            wait.as_secs_f64()
                        )),
                        _ => Judgement::Broken(format!(
                            "no rejection within {:.1}s: no error reply, no close (silence is not a rejection)",
                            wait.as_secs_f64()
                        )),
                    };
                }
                Kind::Other | Kind::Warning | Kind::Control => {}
            }
        }
    }
}

/// How a connection ended without saying why: the two endings the drop rule judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// The TCP connection ended without a close frame.
    Dropped,
    /// A close frame arrived that carries no status code (the peer sees 1005).
    CodelessClose,
}

impl Ending {
    fn describe(self) -> &'static str {
        match self {
            Ending::Dropped => "dropped without a close frame",
            Ending::CodelessClose => "closed without a status code",
        }
    }
}

/// A connection that ended without saying why (`ending`) after an attack: a refusal only where
/// drops count (`allowed`), the same connection carried the unmutated valid message first (when
/// `needs_control`: an ending is evidence of refusing *this* input), and a fresh client is
/// still served; a crash where fresh clients fail.
pub(super) async fn judge_drop(
    s: &mut Session,
    allowed: bool,
    needs_control: bool,
    codes: &[u16],
    ending: Ending,
) -> Judgement {
    let how = ending.describe();
    let rt = s.rt().clone();
    let log = s.log().clone();
    let confirmed = s.current().is_some_and(|l| l.valid_confirmed);
    let health = super::healthy(&rt, &log).await;
    if let Judgement::Broken(why) = &health {
        return Judgement::Broken(format!(
            "the server crashed on this input: the connection was {how}, and {why}"
        ));
    }
    if !allowed {
        return Judgement::Broken(format!(
            "{how}: this check requires a close code (one of {codes:?}), \
             and its policy does not allow drops"
        ));
    }
    if needs_control && !confirmed {
        return Judgement::Broken(format!(
            "{how}, and nothing shows this connection survives the unmutated message (no \
             differential control), so the ending is no evidence of a refusal"
        ));
    }
    match health {
        Judgement::Holds(_) if needs_control => Judgement::Holds(format!(
            "{how}: the same connection had carried the unmutated valid message, and a fresh \
             client is still served"
        )),
        Judgement::Holds(_) => Judgement::Holds(format!("{how}; a fresh client is still served")),
        other => other,
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
