//! The application protocol the reference server speaks (`serve --dialect`): how it reads a
//! client's messages into connects and business messages, and how it writes acknowledgements,
//! errors, warnings, heartbeats and refusals. Every defence is the same in every dialect; only
//! the envelope differs (packets and frames from [`crate::dialect`]).

use std::time::Duration;

use crate::dialect::{DialectName, graphql_ws, signalr, socketio, stomp};

/// Where the STOMP server sends replies: the destination clients subscribe to.
pub const STOMP_REPLIES: &str = "/user/queue/replies";

/// What a reply answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTo {
    /// A raw message.
    Raw,
    /// A Socket.IO event, with its ack id if it asked for one.
    Socketio(Option<u64>),
    /// A graphql `subscribe` of this operation id.
    Graphql(String),
    /// A STOMP frame, with the receipt it asked for.
    Stomp(Option<String>),
    /// A SignalR invocation, with its invocation id if it wants a completion.
    Signalr(Option<String>),
}

/// One thing a client's message asks of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A connect or authentication, with the ticket it carries (`None`: none).
    Connect {
        /// The ticket.
        ticket: Option<String>,
        /// What the answer answers.
        reply: ReplyTo,
    },
    /// A business message: its payload as written.
    Business {
        /// The payload the schema judges.
        payload: String,
        /// What the answer answers.
        reply: ReplyTo,
    },
    /// The client is alive (a pong, a heart-beat, any frame where the protocol says so).
    Alive,
    /// Send this at once (a pong to the client's ping).
    Answer(String),
    /// The client leaves.
    Leave,
    /// A message the protocol cannot accept: say `said` (if anything) and close.
    Violation {
        /// What to send before closing.
        said: Option<String>,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: &'static str,
    },
}

/// Why the server refuses, for the protocol's way of saying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A bad, replayed, expired or foreign ticket (or none where one is needed).
    BadTicket,
    /// A business message before authentication.
    NotAuthenticated,
    /// No authentication in time.
    Timeout,
    /// Over the rate limit.
    RateLimited,
    /// A message of the wrong type or encoding.
    InvalidMessage,
    /// Anything else.
    Other,
}

/// The server's side of one connection's protocol session.
#[derive(Debug)]
pub struct Speaker {
    name: DialectName,
    sid: String,
    /// graphql: `connection_init` seen; socketio: CONNECT seen; signalr: handshake seen.
    opened: bool,
    /// STOMP: the subscription replies go to.
    subscription: Option<String>,
    /// STOMP: the heart-beat the client offered (cx, cy).
    client_heart_beat: (u32, u32),
    /// STOMP: the heart-beat the server answered with.
    server_heart_beat: (u64, u64),
    message_id: u64,
}

impl Speaker {
    /// A fresh session of dialect `name`.
    pub fn new(name: DialectName) -> Self {
        Self {
            name,
            sid: format!("{:016x}", rand::random::<u64>()),
            opened: false,
            subscription: None,
            client_heart_beat: (0, 0),
            server_heart_beat: (0, 0),
            message_id: 0,
        }
    }

    /// The dialect spoken.
    pub fn name(&self) -> DialectName {
        self.name
    }

    /// What the server says as the connection opens: the Engine.IO open packet.
    pub fn opening(&self, heartbeat: Option<(Duration, u32)>, max_payload: usize) -> Vec<String> {
        match self.name {
            DialectName::Socketio => {
                let (interval, missed) = heartbeat.unwrap_or((Duration::from_secs(25), 2));
                let ms = interval.as_millis() as u64;
                vec![socketio::open_packet(
                    &self.sid,
                    ms,
                    ms * u64::from(missed.saturating_sub(1).max(1)),
                    max_payload as u64,
                )]
            }
            _ => Vec::new(),
        }
    }

    /// Reads one text message from the client.
    pub fn read(&mut self, text: &str, authenticated: bool) -> Vec<Inbound> {
        match self.name {
            DialectName::Raw => vec![read_raw(text, authenticated)],
            DialectName::Socketio => vec![self.read_socketio(text)],
            DialectName::GraphqlTransportWs => vec![self.read_graphql(text)],
            DialectName::Stomp => self.read_stomp(text),
            DialectName::SignalrJson => self.read_signalr(text),
        }
    }

    fn read_socketio(&mut self, text: &str) -> Inbound {
        let invalid = |reason| Inbound::Violation {
            said: None,
            code: 1003,
            reason,
        };
        match socketio::parse_engine(text) {
            Some(socketio::EnginePacket::Pong(_)) => Inbound::Alive,
            Some(socketio::EnginePacket::Ping(data)) => Inbound::Answer(format!("3{data}")),
            Some(socketio::EnginePacket::Close) => Inbound::Leave,
            Some(socketio::EnginePacket::Noop) => Inbound::Alive,
            Some(socketio::EnginePacket::Message(m)) => match socketio::parse_socket(m) {
                Some(p) if p.namespace != "/" => Inbound::Answer(socketio::encode(
                    socketio::SocketKind::ConnectError,
                    p.namespace,
                    None,
                    r#"{"message":"Invalid namespace"}"#,
                )),
                Some(p) => match p.kind {
                    socketio::SocketKind::Connect => {
                        self.opened = true;
                        let ticket = serde_json::from_str::<serde_json::Value>(p.data)
                            .ok()
                            .and_then(|v| v.get("ticket")?.as_str().map(str::to_string));
                        Inbound::Connect {
                            ticket,
                            reply: ReplyTo::Socketio(None),
                        }
                    }
                    socketio::SocketKind::Disconnect => Inbound::Leave,
                    socketio::SocketKind::Event => {
                        // The payload is the argument after the event name, exactly as written;
                        // what cannot be read as an event array is judged as it is (malformed).
                        let payload = socketio::array_elements(p.data)
                            .and_then(|items| items.get(1).map(|s| s.to_string()))
                            .unwrap_or_else(|| {
                                p.data
                                    .find(',')
                                    .map_or(p.data, |i| &p.data[i + 1..])
                                    .to_string()
                            });
                        Inbound::Business {
                            payload,
                            reply: ReplyTo::Socketio(p.ack_id),
                        }
                    }
                    socketio::SocketKind::Ack | socketio::SocketKind::BinaryAck => Inbound::Alive,
                    _ => invalid("binary Socket.IO packets are not accepted"),
                },
                None => invalid("not a Socket.IO packet"),
            },
            Some(socketio::EnginePacket::Open(_) | socketio::EnginePacket::Upgrade) | None => {
                invalid("not an Engine.IO packet a client sends")
            }
        }
    }

    fn read_graphql(&mut self, text: &str) -> Inbound {
        let invalid = Inbound::Violation {
            said: None,
            code: 4400,
            reason: "Invalid message received",
        };
        let Some(m) = graphql_ws::parse(text) else {
            return invalid;
        };
        match m.kind.as_ref() {
            "connection_init" if self.opened => Inbound::Violation {
                said: None,
                code: 4429,
                reason: "Too many initialisation requests",
            },
            "connection_init" => {
                self.opened = true;
                Inbound::Connect {
                    ticket: graphql_ws::string_field(m.payload, "ticket"),
                    reply: ReplyTo::Graphql(String::new()),
                }
            }
            "ping" => Inbound::Answer(r#"{"type":"pong"}"#.to_string()),
            "pong" => Inbound::Alive,
            "complete" => Inbound::Alive,
            "subscribe" => {
                let (Some(id), Some(payload)) = (m.id, m.payload) else {
                    return invalid;
                };
                let input = graphql_ws::variable(payload, "input").unwrap_or("null");
                Inbound::Business {
                    payload: input.to_string(),
                    reply: ReplyTo::Graphql(id.into_owned()),
                }
            }
            _ => invalid,
        }
    }

    fn read_stomp(&mut self, text: &str) -> Vec<Inbound> {
        let parsed = stomp::parse(text);
        let mut out = Vec::new();
        if parsed.heartbeats > 0 {
            out.push(Inbound::Alive);
        }
        for f in parsed.frames {
            out.push(Inbound::Alive);
            let receipt = f.get("receipt").map(str::to_string);
            match f.command.as_str() {
                "CONNECT" | "STOMP" => {
                    self.opened = true;
                    if let Some(hb) = f.get("heart-beat").and_then(stomp::parse_heart_beat) {
                        self.client_heart_beat = hb;
                    }
                    out.push(Inbound::Connect {
                        ticket: f.get("passcode").map(str::to_string),
                        reply: ReplyTo::Stomp(receipt),
                    });
                }
                "SUBSCRIBE" => {
                    if f.get("destination") == Some(STOMP_REPLIES) {
                        self.subscription = f.get("id").map(str::to_string);
                    }
                    if let Some(r) = receipt {
                        out.push(Inbound::Answer(receipt_frame(&r)));
                    }
                }
                "SEND" => out.push(Inbound::Business {
                    payload: f.body.clone(),
                    reply: ReplyTo::Stomp(receipt),
                }),
                "DISCONNECT" => {
                    if let Some(r) = receipt {
                        out.push(Inbound::Answer(receipt_frame(&r)));
                    }
                    out.push(Inbound::Leave);
                }
                "UNSUBSCRIBE" | "ACK" | "NACK" | "BEGIN" | "COMMIT" | "ABORT" => {
                    if let Some(r) = receipt {
                        out.push(Inbound::Answer(receipt_frame(&r)));
                    }
                }
                _ => {
                    out.push(stomp_violation("unknown command"));
                    return out;
                }
            }
        }
        if let Some(why) = parsed.malformed {
            out.push(stomp_violation(why));
        }
        out
    }

    fn read_signalr(&mut self, text: &str) -> Vec<Inbound> {
        let mut out = Vec::new();
        if !text.ends_with(signalr::RS) {
            return vec![signalr_violation("a record without its separator")];
        }
        for record in signalr::records(text) {
            let Some(r) = signalr::parse(record) else {
                out.push(signalr_violation("invalid message"));
                return out;
            };
            if !self.opened {
                // The first record is the handshake.
                match r.protocol.as_deref() {
                    Some("json") => {
                        self.opened = true;
                        out.push(Inbound::Answer(format!("{{}}{}", signalr::RS)));
                        continue;
                    }
                    _ => {
                        out.push(Inbound::Violation {
                            said: Some(format!(
                                "{{\"error\":\"only the json protocol is supported\"}}{}",
                                signalr::RS
                            )),
                            code: 1002,
                            reason: "bad handshake",
                        });
                        return out;
                    }
                }
            }
            out.push(Inbound::Alive);
            match r.kind {
                Some(signalr::kind::INVOCATION) => {
                    let id = r.invocation_id.map(|i| i.into_owned());
                    let target = r.target.as_deref().unwrap_or_default();
                    let first = signalr::first_argument(r.arguments).unwrap_or("null");
                    if target.eq_ignore_ascii_case("authenticate") {
                        let ticket = serde_json::from_str::<String>(first).ok();
                        out.push(Inbound::Connect {
                            ticket,
                            reply: ReplyTo::Signalr(id),
                        });
                    } else {
                        out.push(Inbound::Business {
                            payload: first.to_string(),
                            reply: ReplyTo::Signalr(id),
                        });
                    }
                }
                Some(signalr::kind::CLOSE) => out.push(Inbound::Leave),
                Some(_) => {}
                None => {
                    out.push(signalr_violation("a record without a type"));
                    return out;
                }
            }
        }
        out
    }

    /// The answer to an accepted connect or authentication.
    pub fn connected(&mut self, reply: &ReplyTo, heartbeat: Option<Duration>) -> Vec<String> {
        match (self.name, reply) {
            (DialectName::Raw, _) => vec![r#"{"type":"auth_ok"}"#.to_string()],
            (DialectName::Socketio, _) => vec![socketio::encode(
                socketio::SocketKind::Connect,
                "/",
                None,
                &format!("{{\"sid\":\"{}\"}}", self.sid),
            )],
            (DialectName::GraphqlTransportWs, _) => {
                vec![r#"{"type":"connection_ack"}"#.to_string()]
            }
            (DialectName::Stomp, ReplyTo::Stomp(receipt)) => {
                let ms = heartbeat.map_or(0, |h| h.as_millis() as u64);
                // The server sends every max(ours, what the client asks); it expects the
                // client's at max(ours, what the client offers) (STOMP 1.2 heart-beating).
                self.server_heart_beat = (ms, ms);
                let mut f = stomp::Frame::new("CONNECTED")
                    .header("version", "1.2")
                    .header("heart-beat", &format!("{ms},{ms}"))
                    .header("server", "wsaudit-reference")
                    .header("session", &self.sid);
                if let Some(r) = receipt {
                    f = f.header("receipt-id", r);
                }
                vec![f.encode()]
            }
            (DialectName::SignalrJson, ReplyTo::Signalr(Some(id))) => {
                vec![signalr::completion_result(id, r#"{"type":"auth_ok"}"#)]
            }
            _ => Vec::new(),
        }
    }

    /// The STOMP heart-beat periods once connected: how often the server beats, and the
    /// window in which it expects the client's (STOMP 1.2: the larger of what each side
    /// offers); `None` outside STOMP.
    pub fn stomp_heartbeat(&self) -> Option<(Duration, Duration)> {
        if self.name != DialectName::Stomp {
            return None;
        }
        let (sx, sy) = self.server_heart_beat;
        let (cx, cy) = self.client_heart_beat;
        let send = sx.max(u64::from(cy));
        let expect = sy.max(u64::from(cx));
        Some((Duration::from_millis(send), Duration::from_millis(expect)))
    }

    /// What to say for a refusal, and the close code (before the variants' mapping).
    pub fn refusal(
        &self,
        kind: Refusal,
        reason: &str,
        reply: Option<&ReplyTo>,
    ) -> (Vec<String>, u16) {
        let standard = match kind {
            Refusal::InvalidMessage => 1003,
            _ => 1008,
        };
        match self.name {
            DialectName::Raw => (Vec::new(), standard),
            DialectName::Socketio => {
                let said = match kind {
                    Refusal::BadTicket | Refusal::NotAuthenticated | Refusal::Timeout => {
                        vec![socketio::encode(
                            socketio::SocketKind::ConnectError,
                            "/",
                            None,
                            &format!("{{\"message\":{}}}", crate::dialect::json_string(reason)),
                        )]
                    }
                    _ => Vec::new(),
                };
                (said, standard)
            }
            DialectName::GraphqlTransportWs => (
                Vec::new(),
                match kind {
                    Refusal::BadTicket => 4403,
                    Refusal::NotAuthenticated => 4401,
                    Refusal::Timeout => 4408,
                    Refusal::InvalidMessage => 4400,
                    Refusal::RateLimited | Refusal::Other => 1008,
                },
            ),
            DialectName::Stomp => {
                let mut f = stomp::Frame::new("ERROR").header("message", reason);
                if let Some(ReplyTo::Stomp(Some(r))) = reply {
                    f = f.header("receipt-id", r);
                }
                (vec![f.encode()], standard)
            }
            DialectName::SignalrJson => {
                let mut said = Vec::new();
                if let Some(ReplyTo::Signalr(Some(id))) = reply {
                    said.push(signalr::completion_error(id, reason));
                }
                said.push(signalr::close(reason));
                (said, standard)
            }
        }
    }

    /// The reply to a business message: `json` (an acknowledgement, or an error where
    /// `accepted` is false). `None` asks the caller to close (`refusal` says how): a protocol
    /// whose error closes the connection.
    pub fn reply(&mut self, to: &ReplyTo, json: &str, accepted: bool) -> Option<Vec<String>> {
        Some(match to {
            ReplyTo::Raw => vec![json.to_string()],
            ReplyTo::Socketio(Some(id)) => vec![socketio::encode(
                socketio::SocketKind::Ack,
                "/",
                Some(*id),
                &format!("[{json}]"),
            )],
            ReplyTo::Socketio(None) => vec![socketio::event(
                "/",
                None,
                if accepted { "ack" } else { "error" },
                json,
            )],
            ReplyTo::Graphql(id) if accepted => vec![
                format!(
                    r#"{{"id":{},"type":"next","payload":{{"data":{{"pay":{json}}}}}}}"#,
                    crate::dialect::json_string(id)
                ),
                format!(
                    r#"{{"id":{},"type":"complete"}}"#,
                    crate::dialect::json_string(id)
                ),
            ],
            ReplyTo::Graphql(id) => vec![format!(
                r#"{{"id":{},"type":"error","payload":[{{"message":"invalid payment","extensions":{{"code":"BAD_USER_INPUT","reply":{json}}}}}]}}"#,
                crate::dialect::json_string(id)
            )],
            ReplyTo::Stomp(receipt) => {
                let mut out = Vec::new();
                match self.stomp_message(json) {
                    Some(frame) => out.push(frame),
                    // Nowhere to say it: an error is an ERROR frame, which ends the session.
                    None if !accepted => return None,
                    None => {}
                }
                if let Some(r) = receipt {
                    out.push(receipt_frame(r));
                }
                out
            }
            ReplyTo::Signalr(Some(id)) if accepted => vec![signalr::completion_result(id, json)],
            ReplyTo::Signalr(Some(id)) => vec![signalr::completion_error(
                id,
                &format!("invalid payment: {json}"),
            )],
            ReplyTo::Signalr(None) => vec![signalr::invocation(
                None,
                if accepted { "ack" } else { "error" },
                json,
            )],
        })
    }

    /// `json` as a STOMP `MESSAGE` on the client's subscription; `None` before it subscribed.
    fn stomp_message(&mut self, json: &str) -> Option<String> {
        let sub = self.subscription.as_ref()?;
        self.message_id += 1;
        Some(
            stomp::Frame::new("MESSAGE")
                .header("subscription", sub)
                .header("message-id", &self.message_id.to_string())
                .header("destination", STOMP_REPLIES)
                .header("content-type", "application/json")
                .body(json)
                .encode(),
        )
    }

    /// A message the server sends on its own (a warning, an update): `json` as an event.
    pub fn push(&mut self, event: &str, json: &str, to: Option<&ReplyTo>) -> Vec<String> {
        match self.name {
            DialectName::Raw => vec![json.to_string()],
            DialectName::Socketio => vec![socketio::event("/", None, event, json)],
            DialectName::GraphqlTransportWs => {
                let id = match to {
                    Some(ReplyTo::Graphql(id)) => id.clone(),
                    _ => event.to_string(),
                };
                let code = if event == "warning" {
                    "RATE_LIMITED"
                } else {
                    "UPDATE"
                };
                vec![format!(
                    r#"{{"id":{},"type":"error","payload":[{{"message":{},"extensions":{{"code":"{code}","reply":{json}}}}}]}}"#,
                    crate::dialect::json_string(&id),
                    crate::dialect::json_string(event)
                )]
            }
            DialectName::Stomp => match self.stomp_message(json) {
                Some(frame) => vec![frame],
                None => vec![
                    stomp::Frame::new("ERROR")
                        .header("message", event)
                        .body(json)
                        .encode(),
                ],
            },
            DialectName::SignalrJson => vec![signalr::invocation(None, event, json)],
        }
    }

    /// The protocol's own heartbeat, where it has one (sent instead of a WebSocket ping).
    pub fn heartbeat(&self) -> Option<&'static str> {
        match self.name {
            DialectName::Socketio => Some("2"),
            DialectName::Stomp => Some("\n"),
            DialectName::SignalrJson => Some(signalr::PING),
            DialectName::Raw | DialectName::GraphqlTransportWs => None,
        }
    }

    /// Whether the server may send its heartbeat yet: a SignalR server says nothing before its
    /// handshake response (the client takes the first record for it).
    pub fn may_beat(&self) -> bool {
        self.name != DialectName::SignalrJson || self.opened
    }

    /// Whether the protocol must be connected (CONNECT, `connection_init`, the SignalR
    /// handshake) before anything else, even with authentication switched off.
    pub fn opened(&self) -> bool {
        self.opened || matches!(self.name, DialectName::Raw)
    }
}

/// Raw: the first message is the authentication `{"type":"auth","ticket":...}` until the
/// connection is authenticated; everything else is business.
fn read_raw(text: &str, authenticated: bool) -> Inbound {
    if authenticated {
        return Inbound::Business {
            payload: text.to_string(),
            reply: ReplyTo::Raw,
        };
    }
    match super::auth::auth_ticket(text) {
        Ok(ticket) => Inbound::Connect {
            ticket: Some(ticket),
            reply: ReplyTo::Raw,
        },
        Err(super::auth::FirstMessage::Refused(_)) => Inbound::Connect {
            ticket: None,
            reply: ReplyTo::Raw,
        },
        Err(_) => Inbound::Business {
            payload: text.to_string(),
            reply: ReplyTo::Raw,
        },
    }
}

fn receipt_frame(id: &str) -> String {
    stomp::Frame::new("RECEIPT")
        .header("receipt-id", id)
        .encode()
}

fn stomp_violation(why: &'static str) -> Inbound {
    Inbound::Violation {
        said: Some(stomp::Frame::new("ERROR").header("message", why).encode()),
        code: 1002,
        reason: why,
    }
}

fn signalr_violation(why: &'static str) -> Inbound {
    Inbound::Violation {
        said: Some(signalr::close(why)),
        code: 1003,
        reason: why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_reads_connects_and_business_payloads_as_written() {
        let mut s = Speaker::new(DialectName::Socketio);
        assert_eq!(
            s.read(r#"40{"ticket":"t"}"#, false),
            vec![Inbound::Connect {
                ticket: Some("t".into()),
                reply: ReplyTo::Socketio(None)
            }]
        );
        assert_eq!(
            s.read(r#"427["pay",{"a":1,"a":2}]"#, true),
            vec![Inbound::Business {
                payload: r#"{"a":1,"a":2}"#.into(),
                reply: ReplyTo::Socketio(Some(7))
            }]
        );
        assert_eq!(
            s.reply(&ReplyTo::Socketio(Some(7)), r#"{"type":"ack"}"#, true),
            Some(vec![r#"437[{"type":"ack"}]"#.to_string()])
        );
        let mut g = Speaker::new(DialectName::GraphqlTransportWs);
        assert!(matches!(
            g.read(
                r#"{"type":"subscribe","id":"1","payload":{"query":"q","variables":{"input":{"a":"#,
                false
            )[0],
            Inbound::Violation { code: 4400, .. }
        ));
        assert!(matches!(
            g.read(
                r#"{"type":"connection_init","payload":{"ticket":"t"}}"#,
                false
            )[0],
            Inbound::Connect { .. }
        ));
        assert!(matches!(
            g.read(r#"{"type":"connection_init"}"#, true)[0],
            Inbound::Violation { code: 4429, .. }
        ));
        let mut st = Speaker::new(DialectName::Stomp);
        let connect = stomp::Frame::new("CONNECT")
            .header("passcode", "t")
            .header("heart-beat", "10000,10000")
            .encode();
        assert!(st.read(&connect, false).contains(&Inbound::Connect {
            ticket: Some("t".into()),
            reply: ReplyTo::Stomp(None)
        }));
        st.connected(&ReplyTo::Stomp(None), Some(Duration::from_millis(500)));
        assert_eq!(
            st.stomp_heartbeat(),
            Some((Duration::from_secs(10), Duration::from_secs(10)))
        );
        let mut r = Speaker::new(DialectName::SignalrJson);
        assert_eq!(
            r.read(signalr::HANDSHAKE, false),
            vec![Inbound::Answer("{}\u{1e}".into())]
        );
        let auth = signalr::invocation(Some("0"), "Authenticate", r#""tk""#);
        assert!(r.read(&auth, false).contains(&Inbound::Connect {
            ticket: Some("tk".into()),
            reply: ReplyTo::Signalr(Some("0".into()))
        }));
    }
}
