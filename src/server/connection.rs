//! One upgraded WebSocket connection: a reader task turns frames into events (applying the
//! frame-level defences), and this task applies the message-level ones and owns every write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use crate::wire::{Control, Data, FrameReader, OpCode, close_payload, encode_frame, header};

use super::Shared;
use super::auth::{self, FirstMessage};
use super::heartbeat::{Beat, Heartbeat};
use super::inbound::{Event, HeaderDecision, Inbound};
use super::max_size;
use super::rate_limit::{ConnectionRate, RateDecision};
use super::schema::{self, Verdict};
use super::weaken::Defence;

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
    let (rd, mut wr) = tokio::io::split(io);
    let strict = !weakened.is(Defence::ProtocolStrict);
    let limit = max_size::effective_limit(settings.max_size, weakened);
    let (tx, mut rx) = mpsc::channel(8);
    let reader = tokio::spawn(read_loop(
        FrameReader::new(rd),
        Inbound::new(strict, limit, opened.deflate),
        tx,
    ));

    let mut authenticated = opened.authenticated;
    let mut rate = settings
        .rate
        .as_ref()
        .filter(|_| !weakened.is(Defence::RateLimit))
        .map(ConnectionRate::new);
    let mut heartbeat = settings
        .heartbeat
        .as_ref()
        .filter(|_| !weakened.is(Defence::Heartbeat))
        .map(|h| Heartbeat::new(h.interval_max, h.missed_max));
    let mut ticker = tokio::time::interval(
        heartbeat
            .as_ref()
            .map_or(Duration::from_secs(3600), |h| h.interval),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let auth_deadline = settings
        .unauth_timeout
        .filter(|_| !weakened.is(Defence::UnauthTimeout))
        .map(|t| tokio::time::Instant::now() + t);
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);

    let ending = loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                None => break Ending { code: None, reason: "peer went away", initiator: "client" },
                Some(Err((code, reason))) => {
                    shared.log.event("violation", opened.id, json!({"code": code, "reason": reason}));
                    break Ending::server(code, reason);
                }
                Some(Ok(Event::Close(code))) => {
                    let _ = send(&mut wr, OpCode::Control(Control::Close), &close_payload(code.unwrap_or(1000), "")).await;
                    break Ending { code, reason: "client closed", initiator: "client" };
                }
                Some(Ok(Event::Ping(p))) => {
                    if send(&mut wr, OpCode::Control(Control::Pong), &p).await.is_err() {
                        break Ending { code: None, reason: "write failed", initiator: "server" };
                    }
                }
                Some(Ok(Event::Pong)) => {
                    if let Some(hb) = heartbeat.as_mut() { hb.on_pong() }
                }
                Some(Ok(Event::Nothing)) => {}
                Some(Ok(Event::Message { text, data })) => {
                    let step = on_message(&shared, &opened, &mut authenticated, rate.as_mut(), text, data);
                    match step {
                        Step::Reply(v) => {
                            if send_json(&mut wr, &v).await.is_err() {
                                break Ending { code: None, reason: "write failed", initiator: "server" };
                            }
                        }
                        Step::Quiet => {}
                        Step::Close(code, reason) => {
                            shared.log.event("violation", opened.id, json!({"code": code, "reason": reason}));
                            break Ending::server(code, reason);
                        }
                    }
                }
            },
            _ = ticker.tick(), if heartbeat.is_some() => {
                let beat = heartbeat.as_mut().map(Heartbeat::tick);
                match beat {
                    Some(Beat::Ping(p)) if send(&mut wr, OpCode::Control(Control::Ping), &p).await.is_err() => {
                        break Ending { code: None, reason: "write failed", initiator: "server" };
                    }
                    Some(Beat::Ping(_)) => {}
                    Some(Beat::Terminate) => {
                        shared.log.event("violation", opened.id, json!({"code": 1001, "reason": "heartbeat missed"}));
                        break Ending::server(1001, "heartbeat missed");
                    }
                    None => {}
                }
            }
            _ = tokio::time::sleep_until(auth_deadline.unwrap_or(far)), if auth_deadline.is_some() && !authenticated => {
                shared.log.event("auth", opened.id, json!({"ok": false, "reason": "auth_timeout"}));
                break Ending::server(1008, "authentication timeout");
            }
        }
    };

    if let Some(code) = ending.code.filter(|_| ending.initiator == "server") {
        let _ = send(
            &mut wr,
            OpCode::Control(Control::Close),
            &close_payload(code, ending.reason),
        )
        .await;
    }
    // close_notify then FIN; the reader lingers briefly so the peer can read our close frame.
    let _ = tokio::time::timeout(WRITE_DEADLINE, wr.shutdown()).await;
    drop(rx);
    let mut reader = reader;
    if tokio::time::timeout(LINGER + Duration::from_millis(200), &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
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
enum Step {
    Reply(Value),
    Quiet,
    Close(u16, &'static str),
}

fn on_message(
    shared: &Shared,
    opened: &Opened,
    authenticated: &mut bool,
    rate: Option<&mut ConnectionRate>,
    text: bool,
    data: Vec<u8>,
) -> Step {
    let weakened = &shared.weakened;
    match rate.map(ConnectionRate::on_message) {
        Some(RateDecision::Warn) => {
            shared.log.event(
                "violation",
                opened.id,
                json!({"reason": "rate_limit_warning"}),
            );
            return Step::Reply(json!({"type": "warning", "reason": "rate_limit"}));
        }
        Some(RateDecision::Close) => return Step::Close(1008, "rate limit exceeded"),
        _ => {}
    }
    let text = match schema::decode(text, data, weakened) {
        Ok(t) => t,
        Err((code, reason)) => return Step::Close(code, reason),
    };
    if !*authenticated {
        match auth::first_message(&text, &shared.tickets, opened.session.as_deref(), weakened) {
            FirstMessage::Authenticated => {
                *authenticated = true;
                shared
                    .log
                    .event("auth", opened.id, json!({"ok": true, "method": "ticket"}));
                return Step::Reply(json!({"type": "auth_ok"}));
            }
            FirstMessage::Refused(reason) => {
                shared
                    .log
                    .event("auth", opened.id, json!({"ok": false, "reason": reason}));
                return Step::Close(1008, reason);
            }
            FirstMessage::NotAuth if !weakened.is(Defence::AuthRequired) => {
                shared.log.event(
                    "auth",
                    opened.id,
                    json!({"ok": false, "reason": "not_authenticated"}),
                );
                return Step::Close(1008, "authentication required");
            }
            FirstMessage::NotAuth => {}
        }
    }
    match schema::judge(&text, shared.validator.as_deref(), weakened) {
        Verdict::Reply(v) => {
            if v["type"] == "error" {
                shared.log.event(
                    "violation",
                    opened.id,
                    json!({"reason": v["reason"].clone()}),
                );
            }
            Step::Reply(v)
        }
        Verdict::Ignore => Step::Quiet,
        Verdict::Close(code, reason) => Step::Close(code, reason),
    }
}

async fn read_loop<R: AsyncRead>(
    mut reader: FrameReader<ReadHalf<R>>,
    mut inbound: Inbound,
    tx: mpsc::Sender<Result<Event, (u16, &'static str)>>,
) {
    loop {
        let h = match reader.read_header().await {
            Ok(Some(h)) => h,
            _ => return,
        };
        let event = match inbound.on_header(&h) {
            HeaderDecision::Close(code, reason) => Err((code, reason)),
            HeaderDecision::Skip(n) => match reader.skip_payload(n).await {
                Ok(()) => continue,
                Err(_) => return,
            },
            HeaderDecision::Read(n) => match reader.read_payload(n, h.header.mask).await {
                Ok(payload) => inbound.on_frame(&h, payload),
                Err(_) => return,
            },
        };
        let stop = event.is_err() || matches!(event, Ok(Event::Close(_)));
        if tx.send(event).await.is_err() || stop {
            break;
        }
    }
    // Discard (never buffer) a little more so the peer sees our close frame rather than a reset.
    let _ = tokio::time::timeout(LINGER, async {
        let mut left = LINGER_BYTES;
        while left > 0 {
            match reader.read_header().await {
                Ok(Some(h)) => {
                    let n = h.length.min(left);
                    left -= n;
                    if reader.skip_payload(n).await.is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
    })
    .await;
}

/// Writes one unmasked server frame within the write deadline.
async fn send<W: AsyncWrite>(
    wr: &mut WriteHalf<W>,
    opcode: OpCode,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(payload.len() + 10);
    encode_frame(&mut buf, &header(opcode, None), payload);
    tokio::time::timeout(WRITE_DEADLINE, async {
        wr.write_all(&buf).await?;
        wr.flush().await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write deadline passed"))?
}

async fn send_json<W: AsyncWrite>(wr: &mut WriteHalf<W>, v: &Value) -> std::io::Result<()> {
    send(wr, OpCode::Data(Data::Text), v.to_string().as_bytes()).await
}
