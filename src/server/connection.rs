//! One upgraded WebSocket connection: a reader task turns frames into events (applying the
//! frame-level defences), and this task applies the message-level ones and owns every write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, WriteHalf};

use crate::wire::{Control, Data, FrameReader, OpCode, close_payload, encode_frame, header};

use super::Shared;
use super::auth::{self, FirstMessage};
use super::flaw::Flaw;
use super::heartbeat::{Beat, Heartbeat};
use super::inbound::{FrameSource, Inbound, Next, Received};
use super::max_size;
use super::rate_limit::{ConnectionRate, RateDecision};
use super::schema::{self, Decision};
use super::variant::{Refusal, Variant};
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

    let mut authenticated = opened.authenticated;
    let mut rate = settings
        .rate
        .as_ref()
        .filter(|_| !weakened.is(Defence::RateLimit))
        .map(|r| ConnectionRate::with_flaws(r, flaws));
    let mut heartbeat = settings
        .heartbeat
        .as_ref()
        .filter(|_| !weakened.is(Defence::Heartbeat))
        .map(|h| {
            // Flaw `heartbeat-slow` pings at four times the interval; `heartbeat-no-terminate`
            // never gives up on a client.
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
            Heartbeat::new(interval, missed)
        });
    let mut ticker = tokio::time::interval(
        heartbeat
            .as_ref()
            .map_or(Duration::from_secs(3600), |h| h.interval),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let unauth_timeout = settings
        .unauth_timeout
        .filter(|_| !weakened.is(Defence::UnauthTimeout));
    let mut auth_deadline = unauth_timeout.map(|t| tokio::time::Instant::now() + t);
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let updates_on = shared.variants.is(Variant::UnsolicitedUpdates);
    let mut updates = tokio::time::interval(UPDATE_EVERY);
    updates.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut update_seq: u64 = 0;

    let ending = loop {
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
                    break Ending { code, reason: "client closed", initiator: "client" };
                }
                Next::Received(Received::Ping(p)) => {
                    // Pings count against the rate limit like messages (unless flaw
                    // `rate-pings-free`): a ping flood is a flood.
                    let counted = rate.as_mut().filter(|_| !flaws.is(Flaw::RatePingsFree));
                    if let Some(RateDecision::Close) = counted.map(ConnectionRate::on_message) {
                        shared.log.event("violation", opened.id, json!({"code": 1008, "reason": "rate limit exceeded (pings)"}));
                        break Ending::server(shared.variants.close_code(1008, Refusal::RateLimited), "rate limit exceeded");
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
                    let step = on_message(&shared, &opened, &mut authenticated, rate.as_mut(), text, data).await;
                    match step {
                        AfterMessage::Reply(v) => wr.queue(OpCode::Data(Data::Text), v.as_bytes()),
                        AfterMessage::Quiet => {}
                        AfterMessage::Close(code, reason) => {
                            shared.log.event("violation", opened.id, json!({"code": code, "reason": reason}));
                            break Ending::server(code, reason);
                        }
                    }
                }
            }},
            _ = ticker.tick(), if heartbeat.is_some() => {
                let write_failed = match heartbeat.as_mut().map(Heartbeat::tick) {
                    Some(Beat::Ping(p)) => wr.send(OpCode::Control(Control::Ping), &p).await.is_err(),
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
                break Ending::server(shared.variants.close_code(1008, Refusal::Timeout), "authentication timeout");
            }
            _ = updates.tick(), if updates_on && authenticated => {
                update_seq += 1;
                let update = format!(r#"{{"type":"update","seq":{update_seq}}}"#);
                wr.queue(OpCode::Data(Data::Text), update.as_bytes());
            }
        }
    };

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

/// What the connection does after one data message.
enum AfterMessage {
    Reply(String),
    Quiet,
    Close(u16, &'static str),
}

async fn on_message(
    shared: &Shared,
    opened: &Opened,
    authenticated: &mut bool,
    rate: Option<&mut ConnectionRate>,
    text: bool,
    data: Vec<u8>,
) -> AfterMessage {
    let weakened = &shared.weakened;
    let flaws = &shared.flaws;
    // Flaw `rate-after-validation`: the limiter only sees messages that passed validation.
    let (rate, rate_later) = if flaws.is(Flaw::RateAfterValidation) {
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
            return AfterMessage::Reply(r#"{"type":"warning","reason":"rate_limit"}"#.to_string());
        }
        Some(RateDecision::Close) => {
            return AfterMessage::Close(
                shared.variants.close_code(1008, Refusal::RateLimited),
                "rate limit exceeded",
            );
        }
        _ => {}
    }
    // Before authentication only an auth message is acceptable, and it is text: a binary first
    // message is "any other first message" (1008), whatever the message rules would say.
    if !*authenticated && !text && !weakened.is(Defence::AuthRequired) {
        return refuse_unauthenticated(shared, opened);
    }
    let text = match schema::decode(text, data, weakened) {
        Ok(t) => t,
        Err((code, reason)) => {
            return AfterMessage::Close(
                shared.variants.close_code(code, Refusal::InvalidMessage),
                reason,
            );
        }
    };
    if !*authenticated {
        // User-bound tickets: any connection may redeem a ticket (it is bound to the API user
        // who fetched it), so no session cookie is compared.
        let session = opened
            .session
            .as_deref()
            .filter(|_| !shared.variants.is(Variant::UserBoundTickets));
        let outcome = if flaws.is(Flaw::TicketRace) {
            // Flaw `ticket-race`: checked, then marked used a moment later.
            auth::first_message_racy(&text, &shared.tickets, session, weakened).await
        } else {
            auth::first_message(&text, &shared.tickets, session, weakened)
        };
        match outcome {
            FirstMessage::Authenticated => {
                *authenticated = true;
                shared
                    .log
                    .event("auth", opened.id, json!({"ok": true, "method": "ticket"}));
                return AfterMessage::Reply(r#"{"type":"auth_ok"}"#.to_string());
            }
            FirstMessage::Refused(reason) => {
                shared
                    .log
                    .event("auth", opened.id, json!({"ok": false, "reason": reason}));
                // The client learns only that the ticket did not do (the log has why): an
                // unknown, a replayed and an expired ticket look alike, so a thief cannot tell
                // whether a stolen one was genuine (flaw `ticket-verbose` says why).
                let told = if flaws.is(Flaw::TicketVerbose) || !reason.starts_with("ticket_") {
                    reason
                } else {
                    "invalid_ticket"
                };
                return AfterMessage::Close(
                    shared.variants.close_code(1008, Refusal::Unauthorized),
                    told,
                );
            }
            // Flaw `unauth-silent`: a business message before authentication is dropped (or
            // executed) without a word; only the authentication deadline ends the connection.
            FirstMessage::NotAuth if flaws.is(Flaw::UnauthSilent) => {
                return AfterMessage::Quiet;
            }
            FirstMessage::NotAuth if !weakened.is(Defence::AuthRequired) => {
                return refuse_unauthenticated(shared, opened);
            }
            FirstMessage::NotAuth => {}
        }
    }
    let decision = schema::judge_with(&text, shared.validator.as_deref(), weakened, flaws);
    if matches!(decision, Decision::Reply(_)) {
        match rate_later.map(ConnectionRate::on_message) {
            Some(RateDecision::Warn) => {
                return AfterMessage::Reply(
                    r#"{"type":"warning","reason":"rate_limit"}"#.to_string(),
                );
            }
            Some(RateDecision::Close) => {
                return AfterMessage::Close(
                    shared.variants.close_code(1008, Refusal::RateLimited),
                    "rate limit exceeded",
                );
            }
            _ => {}
        }
    }
    match decision {
        Decision::Reply(reply) => AfterMessage::Reply(reply),
        Decision::Rejected { reply, reason } => {
            shared
                .log
                .event("violation", opened.id, json!({"reason": reason}));
            if shared.variants.is(Variant::Strict) {
                AfterMessage::Close(shared.variants.close_code(1008, Refusal::Other), reason)
            } else {
                AfterMessage::Reply(reply)
            }
        }
        Decision::Ignore => AfterMessage::Quiet,
        Decision::Close(code, reason) => AfterMessage::Close(code, reason),
    }
}

/// Logs and closes a connection whose first message is not an auth message.
fn refuse_unauthenticated(shared: &Shared, opened: &Opened) -> AfterMessage {
    shared.log.event(
        "auth",
        opened.id,
        json!({"ok": false, "reason": "not_authenticated"}),
    );
    AfterMessage::Close(
        shared.variants.close_code(1008, Refusal::Unauthorized),
        "authentication required",
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
