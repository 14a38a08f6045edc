//! One upgraded WebSocket connection: a reader task turns frames into events (applying the
//! frame-level defences), and this task applies the message-level ones and owns every write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};

use crate::dialect::DialectName;
use crate::wire::{Control, Data, FrameReader, OpCode, close_payload, encode_frame, header};

use super::Shared;
use super::auth::{self, FirstMessage};
use super::dialect::{Inbound as ProtocolMessage, Refusal, ReplyTo, Speaker};
use super::flaw::Flaw;
use super::heartbeat::{Beat, Heartbeat};
use super::inbound::{FrameSource, Inbound, Next, Received};
use super::max_size;
use super::rate_limit::{ConnectionRate, RateDecision};
use super::schema::{self, Decision};
use super::variant::{Refusal as VariantRefusal, Variant};
use super::weaken::Defence;

/// Interval of [`Variant::UnsolicitedUpdates`].
const UPDATE_EVERY: Duration = Duration::from_millis(50);

/// How long one write may take before the peer is considered stuck.
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// After closing, how long and how much we keep discarding so the peer can read our close frame.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: u64 = 256 * 1024;

/// Facts the handshake established about a connection.
pub struct Opened {
    /// Log correlation id.
    pub id: u64,
    /// The session cookie the handshake carried, if it named a known session.
    pub session: Option<String>,
    /// Already authenticated (auth not required, or a weakened URL/cookie path).
    pub authenticated: bool,
    /// permessage-deflate was negotiated.
    pub deflate: bool,
    /// The subprotocol the handshake chose.
    pub subprotocol: Option<String>,
}

/// Why the connection ends: the close code we send (None: the peer went away first).
struct Ending {
    code: Option<u16>,
    reason: &'static str,
    initiator: &'static str,
}

impl Ending {
    fn server(code: u16, reason: &'static str) -> Self {
        Self {
            code: Some(code),
            reason,
            initiator: "server",
        }
    }
}

/// Serves one connection until it closes.
pub async fn run<S>(io: S, shared: Arc<Shared>, opened: Opened)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let started = Instant::now();
    let settings = &shared.settings;
    let weakened = &shared.weakened;
    let (rd, wr) = tokio::io::split(io);
    let mut wr = Writer::new(wr);
    let strict = !weakened.is(Defence::ProtocolStrict);
    let limit = max_size::effective_limit(settings.max_size, weakened);
    let flaws = &shared.flaws;
    let mut source = FrameSource::new(
        FrameReader::new(rd),
        Inbound::new(strict, limit, opened.deflate).with_flaws(flaws),
    );
    let mut speaker = Speaker::new(shared.dialect);

    let mut authenticated = opened.authenticated;
    let mut rate = settings
        .rate
        .as_ref()
        .filter(|_| !weakened.is(Defence::RateLimit))
        .map(|r| ConnectionRate::with_flaws(r, flaws));
    // Flaw `heartbeat-slow` pings at four times the interval; `heartbeat-no-terminate` never
    // gives up on a client.
    let beat = settings
        .heartbeat
        .as_ref()
        .filter(|_| !weakened.is(Defence::Heartbeat))
        .map(|h| {
            let interval = if flaws.is(Flaw::HeartbeatSlow) {
                h.interval_max * 4
            } else {
                h.interval_max
            };
            let missed = if flaws.is(Flaw::HeartbeatNoTerminate) {
                u32::MAX
            } else {
                h.missed_max
            };
            (interval, missed)
        });
    // STOMP heart-beats start once the session is connected, at the negotiated periods.
    let mut heartbeat = beat
        .filter(|_| shared.dialect != DialectName::Stomp)
        .map(|(interval, missed)| Heartbeat::new(interval, missed));
    let mut ticker = new_ticker(heartbeat.as_ref().map(|h| h.interval));
    let unauth_timeout = settings
        .unauth_timeout
        .filter(|_| !weakened.is(Defence::UnauthTimeout));
    let mut auth_deadline = unauth_timeout.map(|t| tokio::time::Instant::now() + t);
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let updates_on = shared.variants.is(Variant::UnsolicitedUpdates);
    let mut updates = tokio::time::interval(UPDATE_EVERY);
    updates.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut update_seq: u64 = 0;

    for text in speaker.opening(beat, limit) {
        wr.queue(OpCode::Data(Data::Text), text.as_bytes());
    }
    // graphql-transport-ws is spoken only under its subprotocol (graphql-ws closes 4406).
    let wrong_subprotocol = shared.dialect == DialectName::GraphqlTransportWs
        && opened.subprotocol.as_deref() != Some(crate::dialect::graphql_ws::SUBPROTOCOL);

    let ending = loop {
        if wrong_subprotocol {
            break Ending::server(4406, "Subprotocol not acceptable");
        }
        // Replies queue while whole frames are already buffered and go out before the
        // connection waits for more input: one write for a pipelined burst, never a reply held
        // back while we wait.
        if wr.has_queued() && !source.frame_ready() && wr.flush().await.is_err() {
            break Ending {
                code: None,
                reason: "write failed",
                initiator: "server",
            };
        }
        tokio::select! {
            next = source.next() => {
            // Flaw `unauth-idle-timer`: the authentication deadline is an idle timer, pushed
            // back by every frame the client sends.
            if flaws.is(Flaw::UnauthIdleTimer) && !authenticated && matches!(next, Next::Received(_)) {
                auth_deadline = unauth_timeout.map(|t| tokio::time::Instant::now() + t);
            }
            match next {
                Next::End => break Ending { code: None, reason: "peer went away", initiator: "client" },
                Next::Violation(code, reason) => {
                    shared.log.event("violation", opened.id, json!({"code": code, "reason": reason}));
                    break Ending::server(code, reason);
                }
                Next::Received(Received::Close(code)) => {
                    let _ = wr.send(OpCode::Control(Control::Close), &close_payload(code.unwrap_or(1000), "")).await;
                    if flaws.is(Flaw::ProtocolDataAfterClose) {
                        let _ = wr.send(OpCode::Data(Data::Text), super::protocol::AFTER_CLOSE.as_bytes()).await;
                    }
                    break Ending { code, reason: "client closed", initiator: "client" };
                }
                Next::Received(Received::Ping(p)) => {
                    // Pings count against the rate limit like messages (unless flaw
                    // `rate-pings-free`): a ping flood is a flood.
                    let counted = rate.as_mut().filter(|_| !flaws.is(Flaw::RatePingsFree));
                    if let Some(RateDecision::Close) = counted.map(ConnectionRate::on_message) {
                        shared.log.event("violation", opened.id, json!({"code": 1008, "reason": "rate limit exceeded (pings)"}));
                        break Ending::server(shared.variants.close_code(1008, VariantRefusal::RateLimited), "rate limit exceeded");
                    }
                    if wr.send(OpCode::Control(Control::Pong), &p).await.is_err() {
                        break Ending { code: None, reason: "write failed", initiator: "server" };
                    }
                }
                Next::Received(Received::Pong) => {
                    if let Some(hb) = heartbeat.as_mut() { hb.on_pong() }
                }
                Next::Received(Received::Nothing) => {}
                Next::Received(Received::Message { text, data }) => {
                    let after = on_message(&shared, &opened, &mut speaker, &mut authenticated, rate.as_mut(), beat, DataMessage { text, data }).await;
                    for reply in &after.send {
                        wr.queue(OpCode::Data(Data::Text), reply.as_bytes());
                    }
                    if after.alive && let Some(hb) = heartbeat.as_mut() {
                        hb.on_pong();
                    }
                    if after.connected
                        && let (Some((_, missed)), Some((send, expect))) = (beat, speaker.stomp_heartbeat())
                        && !send.is_zero()
                    {
                        // STOMP: beat at the negotiated period; give up after as many of the
                        // client's periods as the policy allows.
                        let windows = (expect.as_secs_f64() * f64::from(missed) / send.as_secs_f64()).ceil();
                        heartbeat = Some(Heartbeat::new(send, (windows as u32).max(1)));
                        ticker = new_ticker(Some(send));
                    }
                    if let Some((code, reason)) = after.close {
                        if code != 1000 {
                            shared.log.event("violation", opened.id, json!({"code": code, "reason": reason}));
                        }
                        break Ending::server(code, reason);
                    }
                }
            }},
            _ = ticker.tick(), if heartbeat.is_some() && speaker.may_beat() => {
                let write_failed = match heartbeat.as_mut().map(Heartbeat::tick) {
                    Some(Beat::Ping(p)) => match speaker.heartbeat() {
                        Some(text) => wr.send(OpCode::Data(Data::Text), text.as_bytes()).await.is_err(),
                        None => wr.send(OpCode::Control(Control::Ping), &p).await.is_err(),
                    },
                    Some(Beat::Terminate) => {
                        shared.log.event("violation", opened.id, json!({"code": 1001, "reason": "heartbeat missed"}));
                        break Ending::server(1001, "heartbeat missed");
                    }
                    None => false,
                };
                if write_failed {
                    break Ending { code: None, reason: "write failed", initiator: "server" };
                }
            }
            _ = tokio::time::sleep_until(auth_deadline.unwrap_or(far)), if auth_deadline.is_some() && !authenticated => {
                shared.log.event("auth", opened.id, json!({"ok": false, "reason": "auth_timeout"}));
                let (said, code) = speaker.refusal(Refusal::Timeout, "authentication timeout", None);
                for text in said {
                    wr.queue(OpCode::Data(Data::Text), text.as_bytes());
                }
                break Ending::server(shared.close_code(code, VariantRefusal::Timeout), "authentication timeout");
            }
            _ = updates.tick(), if updates_on && authenticated => {
                update_seq += 1;
                let update = format!(r#"{{"type":"update","seq":{update_seq}}}"#);
                for text in speaker.push("update", &update, None) {
                    wr.queue(OpCode::Data(Data::Text), text.as_bytes());
                }
            }
        }
    };

    let _ = wr.flush().await;
    if let Some(code) = ending.code.filter(|_| ending.initiator == "server") {
        let _ = wr
            .send(
                OpCode::Control(Control::Close),
                &close_payload(code, ending.reason),
            )
            .await;
    }
    // close_notify then FIN; then linger briefly so the peer can read our close frame.
    let _ = tokio::time::timeout(WRITE_DEADLINE, wr.inner.shutdown()).await;
    let _ = tokio::time::timeout(LINGER, source.linger(LINGER_BYTES)).await;
    shared.log.event(
        "close",
        opened.id,
        json!({
            "code": ending.code,
            "reason": ending.reason,
            "initiator": ending.initiator,
            "duration_ms": started.elapsed().as_millis() as u64,
        }),
    );
}

/// A heartbeat ticker at `interval` (an hour when there is none: the branch is off anyway).
fn new_ticker(interval: Option<Duration>) -> tokio::time::Interval {
    let mut t = tokio::time::interval(interval.unwrap_or(Duration::from_secs(3600)));
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

/// The rate limiter's warning, in every dialect.
const WARNING: &str = r#"{"type":"warning","reason":"rate_limit"}"#;

/// What the connection does after one data message.
#[derive(Debug, Default)]
struct AfterMessage {
    /// Text messages to send, in order.
    send: Vec<String>,
    /// Close with this code and reason (after sending).
    close: Option<(u16, &'static str)>,
    /// The client showed it is alive (a heartbeat answer, any STOMP or SignalR frame).
    alive: bool,
    /// The protocol session was connected by this message.
    connected: bool,
}

impl AfterMessage {
    fn closing(said: Vec<String>, code: u16, reason: &'static str) -> Self {
        Self {
            send: said,
            close: Some((code, reason)),
            ..Self::default()
        }
    }
}

/// One complete data message a client sent.
struct DataMessage {
    /// Whether it was a text message (else binary).
    text: bool,
    /// Its payload.
    data: Vec<u8>,
}

async fn on_message(
    shared: &Shared,
    opened: &Opened,
    speaker: &mut Speaker,
    authenticated: &mut bool,
    rate: Option<&mut ConnectionRate>,
    beat: Option<(Duration, u32)>,
    message: DataMessage,
) -> AfterMessage {
    let DataMessage { text, data } = message;
    let weakened = &shared.weakened;
    let flaws = &shared.flaws;
    // Flaw `rate-after-validation`: the limiter only sees messages that passed validation.
    let (rate, mut rate_later) = if flaws.is(Flaw::RateAfterValidation) {
        (None, rate)
    } else {
        (rate, None)
    };
    match rate.map(ConnectionRate::on_message) {
        Some(RateDecision::Warn) => {
            shared.log.event(
                "violation",
                opened.id,
                json!({"reason": "rate_limit_warning"}),
            );
            let to = warning_target(speaker, text, &data);
            return AfterMessage {
                send: speaker.push("warning", WARNING, to.as_ref()),
                ..AfterMessage::default()
            };
        }
        Some(RateDecision::Close) => {
            return refuse(
                shared,
                speaker,
                Refusal::RateLimited,
                "rate limit exceeded",
                None,
            );
        }
        _ => {}
    }
    // Before authentication only an auth message is acceptable, and it is text: a binary first
    // message is "any other first message" (1008), whatever the message rules would say.
    if !*authenticated && !text && !weakened.is(Defence::AuthRequired) {
        return refuse_unauthenticated(shared, opened, speaker, None);
    }
    let text = match schema::decode(text, data, weakened) {
        Ok(t) => t,
        Err((code, reason)) => {
            let (said, _) = speaker.refusal(Refusal::InvalidMessage, reason, None);
            let code = shared.close_code(code, VariantRefusal::InvalidMessage);
            return AfterMessage::closing(said, code, reason);
        }
    };
    let mut out = AfterMessage::default();
    for item in speaker.read(&text, *authenticated) {
        match item {
            ProtocolMessage::Alive => out.alive = true,
            ProtocolMessage::Answer(s) => out.send.push(s),
            ProtocolMessage::Leave => {
                out.close = Some((1000, "client left"));
                return out;
            }
            ProtocolMessage::Violation { said, code, reason } => {
                out.send.extend(said);
                out.close = Some((code, reason));
                return out;
            }
            ProtocolMessage::Connect { ticket, reply } => {
                let heartbeat = beat.map(|(interval, _)| interval);
                if *authenticated {
                    out.send.extend(speaker.connected(&reply, heartbeat));
                    out.connected = true;
                    continue;
                }
                let Some(ticket) = ticket else {
                    // Flaw `unauth-silent` in a protocol that connects first: a client without
                    // credentials is connected (not authenticated), and its business messages
                    // are dropped without a word.
                    let silent = flaws.is(Flaw::UnauthSilent) && speaker.name() != DialectName::Raw;
                    if weakened.is(Defence::AuthRequired) || silent {
                        // Connected, not authenticated: business messages pass anyway.
                        out.send.extend(speaker.connected(&reply, heartbeat));
                        out.connected = true;
                        continue;
                    }
                    shared.log.event(
                        "auth",
                        opened.id,
                        json!({"ok": false, "reason": "auth_malformed"}),
                    );
                    let mut refused = refuse(
                        shared,
                        speaker,
                        Refusal::BadTicket,
                        "auth_malformed",
                        Some(&reply),
                    );
                    refused.send.splice(0..0, out.send);
                    return refused;
                };
                match redeem(shared, opened, &ticket).await {
                    FirstMessage::Authenticated => {
                        *authenticated = true;
                        shared.log.event(
                            "auth",
                            opened.id,
                            json!({"ok": true, "method": "ticket"}),
                        );
                        out.send.extend(speaker.connected(&reply, heartbeat));
                        out.connected = true;
                    }
                    FirstMessage::Refused(reason) => {
                        shared
                            .log
                            .event("auth", opened.id, json!({"ok": false, "reason": reason}));
                        // The client learns only that the ticket did not do (the log has why):
                        // an unknown, a replayed and an expired ticket look alike, so a thief
                        // cannot tell whether a stolen one was genuine (flaw `ticket-verbose`
                        // says why).
                        let told =
                            if flaws.is(Flaw::TicketVerbose) || !reason.starts_with("ticket_") {
                                reason
                            } else {
                                "invalid_ticket"
                            };
                        let mut refused =
                            refuse(shared, speaker, Refusal::BadTicket, told, Some(&reply));
                        refused.send.splice(0..0, out.send);
                        return refused;
                    }
                    FirstMessage::NotAuth => {}
                }
            }
            ProtocolMessage::Business { payload, reply } => {
                if !*authenticated && !weakened.is(Defence::AuthRequired) {
                    // Flaw `unauth-silent`: a business message before authentication is
                    // dropped (or executed) without a word; only the deadline ends it.
                    if flaws.is(Flaw::UnauthSilent) {
                        continue;
                    }
                    let mut refused = refuse_unauthenticated(shared, opened, speaker, Some(&reply));
                    refused.send.splice(0..0, out.send);
                    return refused;
                }
                let decision =
                    schema::judge_with(&payload, shared.validator.as_deref(), weakened, flaws);
                if matches!(decision, Decision::Reply(_)) {
                    match rate_later.as_deref_mut().map(ConnectionRate::on_message) {
                        Some(RateDecision::Warn) => {
                            out.send
                                .extend(speaker.push("warning", WARNING, Some(&reply)));
                            continue;
                        }
                        Some(RateDecision::Close) => {
                            let mut refused = refuse(
                                shared,
                                speaker,
                                Refusal::RateLimited,
                                "rate limit exceeded",
                                Some(&reply),
                            );
                            refused.send.splice(0..0, out.send);
                            return refused;
                        }
                        _ => {}
                    }
                }
                match decision {
                    Decision::Reply(json) => {
                        out.send
                            .extend(speaker.reply(&reply, &json, true).unwrap_or_default());
                    }
                    Decision::Rejected {
                        reply: json,
                        reason,
                    } => {
                        shared
                            .log
                            .event("violation", opened.id, json!({"reason": reason}));
                        let said = if shared.variants.is(Variant::Strict) {
                            None
                        } else {
                            speaker.reply(&reply, &json, false)
                        };
                        match said {
                            Some(said) => out.send.extend(said),
                            // Strict, or a protocol whose errors end the session.
                            None => {
                                let mut refused =
                                    refuse(shared, speaker, Refusal::Other, reason, Some(&reply));
                                refused.send.splice(0..0, out.send);
                                return refused;
                            }
                        }
                    }
                    Decision::Ignore => {}
                    Decision::Close(code, reason) => {
                        out.close = Some((code, reason));
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// Redeems a ticket for this connection (bound to its session cookie unless tickets are
/// user-bound).
async fn redeem(shared: &Shared, opened: &Opened, ticket: &str) -> FirstMessage {
    // User-bound tickets: any connection may redeem a ticket (it is bound to the API user who
    // fetched it), so no session cookie is compared.
    let session = opened
        .session
        .as_deref()
        .filter(|_| !shared.variants.is(Variant::UserBoundTickets));
    if shared.flaws.is(Flaw::TicketRace) {
        // Flaw `ticket-race`: checked, then marked used a moment later.
        auth::redeem_racy(ticket, &shared.tickets, session, &shared.weakened).await
    } else {
        auth::redeem(ticket, &shared.tickets, session, &shared.weakened)
    }
}

/// Where a rate-limit warning goes: the operation the offending message belongs to, where the
/// protocol names one.
fn warning_target(speaker: &Speaker, text: bool, data: &[u8]) -> Option<ReplyTo> {
    if !text || speaker.name() != DialectName::GraphqlTransportWs {
        return None;
    }
    let m = crate::dialect::graphql_ws::parse(std::str::from_utf8(data).ok()?)?;
    m.id.map(|id| ReplyTo::Graphql(id.into_owned()))
}

/// A refusal in the dialect's words and its close code.
fn refuse(
    shared: &Shared,
    speaker: &Speaker,
    kind: Refusal,
    reason: &'static str,
    reply: Option<&ReplyTo>,
) -> AfterMessage {
    let (said, code) = speaker.refusal(kind, reason, reply);
    let variant_kind = match kind {
        Refusal::BadTicket | Refusal::NotAuthenticated => VariantRefusal::Unauthorized,
        Refusal::Timeout => VariantRefusal::Timeout,
        Refusal::RateLimited => VariantRefusal::RateLimited,
        Refusal::InvalidMessage => VariantRefusal::InvalidMessage,
        Refusal::Other => VariantRefusal::Other,
    };
    AfterMessage::closing(said, shared.close_code(code, variant_kind), reason)
}

/// Logs and closes a connection whose first message is not an auth message.
fn refuse_unauthenticated(
    shared: &Shared,
    opened: &Opened,
    speaker: &Speaker,
    reply: Option<&ReplyTo>,
) -> AfterMessage {
    shared.log.event(
        "auth",
        opened.id,
        json!({"ok": false, "reason": "not_authenticated"}),
    );
    refuse(
        shared,
        speaker,
        Refusal::NotAuthenticated,
        "authentication required",
        reply,
    )
}

/// The write half with one reused frame buffer (no allocation per reply).
///
/// Frames are queued into the buffer and written together by [`Writer::flush`]; [`Writer::send`]
/// flushes at once, so anything queued before it goes out first, in order.
struct Writer<W> {
    inner: WriteHalf<W>,
    buf: Vec<u8>,
}

impl<W: AsyncWrite> Writer<W> {
    fn new(inner: WriteHalf<W>) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(256),
        }
    }

    /// Whether frames are queued but not yet written.
    fn has_queued(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Appends one unmasked server frame to the queue, without writing.
    fn queue(&mut self, opcode: OpCode, payload: &[u8]) {
        encode_frame(&mut self.buf, &header(opcode, None), payload);
    }

    /// Writes one unmasked server frame (after anything queued) within the write deadline.
    async fn send(&mut self, opcode: OpCode, payload: &[u8]) -> std::io::Result<()> {
        self.queue(opcode, payload);
        self.flush().await
    }

    /// Writes and flushes everything queued within the write deadline.
    async fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let (inner, buf) = (&mut self.inner, &self.buf);
        let written = tokio::time::timeout(WRITE_DEADLINE, async {
            inner.write_all(buf).await?;
            inner.flush().await
        })
        .await;
        self.buf.clear();
        written.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "write deadline passed")
        })?
    }
}
