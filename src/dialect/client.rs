//! The client side of a dialect session, without I/O: the URL and subprotocols of the
//! upgrade, the protocol's opening, the message that connects (with or without an
//! authentication payload), business messages in their envelope, and every server message
//! read into what it means ([`Signal`]) and the text matchers see (its view).

use super::{Dialect, DialectName, graphql_ws, signalr, socketio, stomp};

/// What a server message means at the protocol level, before the target's matchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Application data: the target's matchers decide.
    Data,
    /// The protocol acknowledges a business message with application data (a Socket.IO ACK, a
    /// graphql `next` without errors, a SignalR completion with a result): an acknowledgement
    /// where the target defines no `accepted_when`, otherwise data for its matchers.
    Ack,
    /// The protocol acknowledges receipt and nothing more (a STOMP `RECEIPT`, a SignalR
    /// completion without a result): an acknowledgement where the target defines no
    /// `accepted_when`, otherwise protocol chatter.
    Receipt,
    /// A protocol-level refusal (Socket.IO CONNECT_ERROR or DISCONNECT, graphql `error` or
    /// errors in `next`, STOMP `ERROR`, a SignalR completion or close with an error).
    Refusal,
    /// The protocol accepted the connection or its authentication.
    AuthAccepted,
    /// A heartbeat from the server (its answer, if any, is returned beside it).
    Heartbeat,
    /// Protocol traffic with no application meaning (`complete`, a pong, a no-op).
    Chatter,
}

/// One application message the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The text the target's matchers see (see the dialect docs).
    pub view: String,
    /// What it means at the protocol level.
    pub signal: Signal,
}

/// What reading one WebSocket message gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Read {
    /// The application messages it held, in order.
    pub incoming: Vec<Incoming>,
    /// Messages the protocol requires the client to send now (a STOMP `SUBSCRIBE` once
    /// connected).
    pub send: Vec<String>,
    /// Answers to the heartbeats it held (sent only while the client answers pings).
    pub heartbeat_answers: Vec<String>,
}

/// What the client must see after the upgrade before the session is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Nothing: the session is open with the upgrade.
    None,
    /// The Engine.IO open packet.
    EngineOpen,
    /// The answer to the SignalR handshake the client sends first.
    SignalrHandshake,
}

/// The client's state in one session.
#[derive(Debug, Clone)]
pub struct ClientCodec {
    dialect: Dialect,
    host: String,
    next_id: u64,
    auth_id: Option<String>,
    connect_sent: bool,
}

impl ClientCodec {
    /// A fresh session of `dialect` with a server at `host` (STOMP names it in `CONNECT`).
    pub fn new(dialect: Dialect, host: &str) -> Self {
        Self {
            dialect,
            host: host.to_string(),
            next_id: 0,
            auth_id: None,
            connect_sent: false,
        }
    }

    /// The dialect spoken.
    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// Query parameters the protocol needs on the upgrade URL, given those already there.
    pub fn url_query(&self, existing: &[String]) -> Vec<(&'static str, &'static str)> {
        match self.dialect {
            Dialect::Socketio { .. } => [
                ("EIO", socketio::ENGINE_IO_VERSION),
                ("transport", "websocket"),
            ]
            .into_iter()
            .filter(|(k, _)| !existing.iter().any(|e| e == k))
            .collect(),
            _ => Vec::new(),
        }
    }

    /// The subprotocols the protocol offers when the target names none.
    pub fn subprotocols(&self) -> &'static [&'static str] {
        match self.dialect {
            Dialect::GraphqlTransportWs { .. } => &[graphql_ws::SUBPROTOCOL],
            Dialect::Stomp { .. } => &stomp::SUBPROTOCOLS,
            _ => &[],
        }
    }

    /// Whether the client negotiates over HTTP before connecting (SignalR).
    pub fn negotiates(&self) -> bool {
        matches!(
            self.dialect,
            Dialect::SignalrJson {
                negotiate: true,
                ..
            }
        )
    }

    /// What to send right after the upgrade, and what to wait for before the session is open.
    pub fn opening(&self) -> (Option<&'static str>, Opening) {
        match self.dialect {
            Dialect::Socketio { .. } => (None, Opening::EngineOpen),
            Dialect::SignalrJson { .. } => (Some(signalr::HANDSHAKE), Opening::SignalrHandshake),
            _ => (None, Opening::None),
        }
    }

    /// Reads a message awaited by the opening: `Some(Ok(rest))` when the session is open
    /// (with what followed the opening in the same message, to be read as usual),
    /// `Some(Err(why))` when the server refused it, `None` when this is not the opening answer.
    pub fn read_opening(&mut self, text: &str) -> Option<Result<Option<String>, String>> {
        match self.dialect {
            Dialect::Socketio { .. } => match socketio::parse_engine(text)? {
                socketio::EnginePacket::Open(data) => Some(match socketio::parse_open(data) {
                    Some(_) => Ok(None),
                    None => Err(format!(
                        "an Engine.IO open packet that is not Engine.IO v4: {data}"
                    )),
                }),
                _ => None,
            },
            Dialect::SignalrJson { .. } => {
                let (first, rest) = text.split_once(signalr::RS)?;
                let record = signalr::parse(first)?;
                if record.kind.is_some() {
                    return None;
                }
                Some(match record.error {
                    Some(e) => Err(format!("the hub refused the handshake: {e}")),
                    None => Ok((!rest.is_empty()).then(|| rest.to_string())),
                })
            }
            _ => None,
        }
    }

    /// The message that connects, carrying `auth` (the target's authentication payload,
    /// rendered) where the protocol carries credentials; `None` when there is nothing to send.
    pub fn connect(&mut self, auth: Option<&str>) -> Result<Option<String>, String> {
        let message = match &self.dialect {
            Dialect::Raw => auth.map(str::to_string),
            Dialect::Socketio { namespace, .. } => Some(socketio::encode(
                socketio::SocketKind::Connect,
                namespace,
                None,
                auth.unwrap_or(""),
            )),
            Dialect::GraphqlTransportWs { .. } => Some(graphql_ws::connection_init(auth)),
            Dialect::Stomp { heart_beat, .. } => {
                let mut frame = stomp::connect_frame(&self.host, *heart_beat);
                if let Some(auth) = auth {
                    for (name, value) in headers_of(auth)? {
                        frame = frame.header(&name, &value);
                    }
                }
                Some(frame.encode())
            }
            Dialect::SignalrJson { .. } => match auth {
                None => None,
                Some(auth) => {
                    let id = self.fresh_id();
                    let m = signalr::invocation_from(&id, auth).ok_or_else(|| {
                        format!(
                            "the authentication payload is not a hub invocation: expected {}",
                            self.dialect.auth_carrier()
                        )
                    })?;
                    self.auth_id = Some(id);
                    Some(m)
                }
            },
        };
        if auth.is_some() || !matches!(self.dialect, Dialect::Raw | Dialect::SignalrJson { .. }) {
            self.connect_sent = true;
        }
        Ok(message)
    }

    /// Whether a business message must be preceded by a connect message no one sent yet (a
    /// client with no credentials still connects in these protocols).
    pub fn needs_connect(&self) -> bool {
        !self.connect_sent
            && matches!(
                self.dialect,
                Dialect::Socketio { .. }
                    | Dialect::GraphqlTransportWs { .. }
                    | Dialect::Stomp { .. }
            )
    }

    /// Whether the protocol answers a connect or an authentication itself (the login waits
    /// for that answer).
    pub fn answers_auth(&self) -> bool {
        !self.dialect.is_raw()
    }

    /// One business message in its envelope, `payload` as given.
    pub fn business(&mut self, payload: &str) -> String {
        let id = self.fresh_id();
        match &self.dialect {
            Dialect::Raw => payload.to_string(),
            Dialect::Socketio { event, namespace } => {
                socketio::event(namespace, id.parse().ok(), event, payload)
            }
            Dialect::GraphqlTransportWs { query, variable } => {
                graphql_ws::subscribe(&id, query, variable, payload)
            }
            Dialect::Stomp { destination, .. } => stomp::Frame::new("SEND")
                .header("destination", destination)
                .header("content-type", "application/json")
                .header("receipt", &format!("r{id}"))
                .header("content-length", &payload.len().to_string())
                .body(payload)
                .encode(),
            Dialect::SignalrJson { method, .. } => signalr::invocation(Some(&id), method, payload),
        }
    }

    /// Whether each business message carries its own id (a flood must wrap each one).
    pub fn wraps_uniquely(&self) -> bool {
        !self.dialect.is_raw()
    }

    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    /// Reads one text message from the server.
    pub fn read(&mut self, text: &str) -> Read {
        let mut incoming = Vec::new();
        let mut answers = Vec::new();
        let mut send = Vec::new();
        let mut push = |view: &str, signal| {
            incoming.push(Incoming {
                view: view.to_string(),
                signal,
            })
        };
        match &self.dialect {
            Dialect::Raw => push(text, Signal::Data),
            Dialect::Socketio { .. } => match socketio::parse_engine(text) {
                Some(socketio::EnginePacket::Ping(data)) => {
                    push(text, Signal::Heartbeat);
                    answers.push(format!("3{data}"));
                }
                Some(socketio::EnginePacket::Close) => push("engine.io close", Signal::Refusal),
                Some(socketio::EnginePacket::Message(m)) => match socketio::parse_socket(m) {
                    Some(p) => {
                        let signal = match p.kind {
                            socketio::SocketKind::Connect => Signal::AuthAccepted,
                            socketio::SocketKind::ConnectError
                            | socketio::SocketKind::Disconnect => Signal::Refusal,
                            socketio::SocketKind::Ack | socketio::SocketKind::BinaryAck => {
                                Signal::Ack
                            }
                            _ => Signal::Data,
                        };
                        let view = if p.data.is_empty() { text } else { p.data };
                        push(view, signal);
                    }
                    None => push(text, Signal::Data),
                },
                Some(_) => push(text, Signal::Chatter),
                None => push(text, Signal::Data),
            },
            Dialect::GraphqlTransportWs { .. } => {
                let signal = match graphql_ws::parse(text) {
                    None => Signal::Data,
                    Some(m) => match m.kind.as_ref() {
                        "connection_ack" => Signal::AuthAccepted,
                        "ping" => {
                            answers.push(r#"{"type":"pong"}"#.to_string());
                            Signal::Heartbeat
                        }
                        "pong" | "complete" => Signal::Chatter,
                        "next" if graphql_ws::has_errors(m.payload) => Signal::Refusal,
                        "next" => Signal::Ack,
                        "error" => Signal::Refusal,
                        _ => Signal::Data,
                    },
                };
                push(text, signal);
            }
            Dialect::Stomp { subscribe, .. } => {
                let parsed = stomp::parse(text);
                if parsed.heartbeats > 0 && parsed.frames.is_empty() && parsed.malformed.is_none() {
                    push(text, Signal::Heartbeat);
                    answers.push("\n".to_string());
                }
                for f in &parsed.frames {
                    match f.command.as_str() {
                        "CONNECTED" => {
                            push(
                                &format!("CONNECTED {}", f.get("version").unwrap_or("")),
                                Signal::AuthAccepted,
                            );
                            if let Some(d) = subscribe {
                                send.push(
                                    stomp::Frame::new("SUBSCRIBE")
                                        .header("id", "sub-0")
                                        .header("destination", d)
                                        .header("ack", "auto")
                                        .encode(),
                                );
                            }
                        }
                        "RECEIPT" => push(
                            &format!("RECEIPT {}", f.get("receipt-id").unwrap_or("")),
                            Signal::Receipt,
                        ),
                        "MESSAGE" => push(&f.body, Signal::Data),
                        "ERROR" => {
                            let view = match (f.body.is_empty(), f.get("message")) {
                                (false, _) => f.body.clone(),
                                (true, Some(m)) => format!("ERROR {m}"),
                                (true, None) => "ERROR".to_string(),
                            };
                            push(&view, Signal::Refusal)
                        }
                        _ => push(&f.encode(), Signal::Chatter),
                    }
                }
                if parsed.malformed.is_some() {
                    push(text, Signal::Data);
                }
            }
            Dialect::SignalrJson { .. } => {
                for record in signalr::records(text) {
                    let Some(r) = signalr::parse(record) else {
                        push(record, Signal::Data);
                        continue;
                    };
                    let ours = r.invocation_id.as_deref().is_some()
                        && r.invocation_id.as_deref() == self.auth_id.as_deref();
                    let signal = match (r.kind, &r.error) {
                        (Some(signalr::kind::PING), _) => {
                            answers.push(signalr::PING.to_string());
                            Signal::Heartbeat
                        }
                        (Some(signalr::kind::COMPLETION), Some(_)) => Signal::Refusal,
                        (Some(signalr::kind::COMPLETION), None) if ours => Signal::AuthAccepted,
                        (Some(signalr::kind::COMPLETION), None) if r.result.is_some() => {
                            Signal::Ack
                        }
                        (Some(signalr::kind::COMPLETION), None) => Signal::Receipt,
                        (Some(signalr::kind::CLOSE), Some(_)) => Signal::Refusal,
                        (Some(signalr::kind::CLOSE), None) => Signal::Chatter,
                        (None, Some(_)) => Signal::Refusal,
                        (None, None) => Signal::Chatter,
                        _ => Signal::Data,
                    };
                    push(record, signal);
                }
            }
        }
        Read {
            incoming,
            send,
            heartbeat_answers: answers,
        }
    }

    /// Whether a whole server message is only a heartbeat of `dialect`, and its answer: the
    /// connection's reader answers these itself, even while no one reads the connection.
    pub fn heartbeat(dialect: DialectName, text: &str) -> Option<Option<String>> {
        match dialect {
            DialectName::Raw => None,
            DialectName::Socketio => match socketio::parse_engine(text)? {
                socketio::EnginePacket::Ping(data) => Some(Some(format!("3{data}"))),
                _ => None,
            },
            DialectName::GraphqlTransportWs => {
                let m = graphql_ws::parse(text)?;
                (m.kind == "ping").then(|| Some(r#"{"type":"pong"}"#.to_string()))
            }
            DialectName::Stomp => stomp::is_heartbeat(text).then(|| Some("\n".to_string())),
            DialectName::SignalrJson => {
                signalr::is_ping_only(text).then(|| Some(signalr::PING.to_string()))
            }
        }
    }
}

/// The STOMP headers an authentication payload names (a JSON object of strings or numbers).
fn headers_of(auth: &str) -> Result<Vec<(String, String)>, String> {
    let v: serde_json::Value = serde_json::from_str(auth).map_err(|e| {
        format!("the STOMP authentication payload is not JSON ({e}): expected a JSON object of CONNECT headers")
    })?;
    let Some(map) = v.as_object() else {
        return Err("the STOMP authentication payload is not a JSON object: expected a JSON object of CONNECT headers".into());
    };
    Ok(map
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), value)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(codec: &mut ClientCodec, text: &str) -> Vec<Signal> {
        codec.read(text).incoming.iter().map(|i| i.signal).collect()
    }

    #[test]
    fn socketio_session() {
        let mut c = ClientCodec::new(
            Dialect::Socketio {
                event: "pay".into(),
                namespace: "/".into(),
            },
            "h",
        );
        assert_eq!(
            c.url_query(&["EIO".into()]),
            vec![("transport", "websocket")]
        );
        assert_eq!(
            c.read_opening(r#"0{"sid":"x","pingInterval":1,"pingTimeout":2}"#),
            Some(Ok(None))
        );
        assert!(c.needs_connect());
        assert_eq!(
            c.connect(Some(r#"{"t":1}"#)),
            Ok(Some(r#"40{"t":1}"#.into()))
        );
        assert!(!c.needs_connect());
        assert_eq!(c.business(r#"{"a":1}"#), r#"421["pay",{"a":1}]"#);
        assert_eq!(
            kinds(&mut c, r#"40{"sid":"s"}"#),
            vec![Signal::AuthAccepted]
        );
        let r = c.read(r#"431[{"type":"ack"}]"#);
        assert_eq!(
            r.incoming[0],
            Incoming {
                view: r#"[{"type":"ack"}]"#.into(),
                signal: Signal::Ack
            }
        );
        assert_eq!(
            kinds(&mut c, r#"44{"message":"no"}"#),
            vec![Signal::Refusal]
        );
        assert_eq!(c.read("2").heartbeat_answers, vec!["3".to_string()]);
        assert_eq!(
            ClientCodec::heartbeat(DialectName::Socketio, "2"),
            Some(Some("3".into()))
        );
        assert_eq!(ClientCodec::heartbeat(DialectName::Socketio, "42[]"), None);
    }

    #[test]
    fn stomp_session() {
        let mut c = ClientCodec::new(
            Dialect::Stomp {
                destination: "/app/pay".into(),
                subscribe: Some("/user/queue/replies".into()),
                heart_beat: (500, 500),
            },
            "example.com",
        );
        let connect = c
            .connect(Some(r#"{"passcode":"t"}"#))
            .expect("ok")
            .expect("frame");
        let f = &stomp::parse(&connect).frames[0];
        assert_eq!(
            (f.get("passcode"), f.get("host"), f.get("heart-beat")),
            (Some("t"), Some("example.com"), Some("500,500"))
        );
        let r = c.read("CONNECTED\nversion:1.2\n\n\0");
        assert_eq!(r.incoming[0].signal, Signal::AuthAccepted);
        assert!(r.send[0].starts_with("SUBSCRIBE\n"));
        let send = c.business("{}");
        assert!(
            send.contains("receipt:r1\n") && send.contains("content-length:2\n"),
            "{send:?}"
        );
        assert_eq!(
            kinds(&mut c, "RECEIPT\nreceipt-id:r1\n\n\0"),
            vec![Signal::Receipt]
        );
        assert_eq!(
            kinds(&mut c, "ERROR\nmessage:bad\n\n\0"),
            vec![Signal::Refusal]
        );
        assert_eq!(kinds(&mut c, "\n"), vec![Signal::Heartbeat]);
        assert!(c.connect(Some("[1]")).is_err());
    }

    #[test]
    fn graphql_and_signalr_sessions() {
        let mut g = ClientCodec::new(
            Dialect::GraphqlTransportWs {
                query: "mutation".into(),
                variable: "input".into(),
            },
            "h",
        );
        assert_eq!(g.subprotocols(), &["graphql-transport-ws"]);
        assert_eq!(
            kinds(&mut g, r#"{"type":"connection_ack"}"#),
            vec![Signal::AuthAccepted]
        );
        assert_eq!(
            kinds(&mut g, r#"{"id":"1","type":"error","payload":[]}"#),
            vec![Signal::Refusal]
        );
        assert_eq!(
            kinds(&mut g, r#"{"id":"1","type":"next","payload":{"data":{}}}"#),
            vec![Signal::Ack]
        );
        let mut s = ClientCodec::new(
            Dialect::SignalrJson {
                method: "Pay".into(),
                negotiate: true,
            },
            "h",
        );
        assert_eq!(
            s.read_opening("{}\u{1e}{\"type\":6}\u{1e}"),
            Some(Ok(Some("{\"type\":6}\u{1e}".into())))
        );
        assert!(!s.needs_connect());
        let auth = s
            .connect(Some(r#"{"target":"Authenticate","arguments":["t"]}"#))
            .expect("ok")
            .expect("invocation");
        assert!(auth.contains(r#""invocationId":"1""#), "{auth}");
        assert_eq!(
            kinds(
                &mut s,
                "{\"type\":3,\"invocationId\":\"1\",\"result\":{}}\u{1e}"
            ),
            vec![Signal::AuthAccepted]
        );
        assert_eq!(
            kinds(
                &mut s,
                "{\"type\":3,\"invocationId\":\"2\",\"error\":\"x\"}\u{1e}{\"type\":6}\u{1e}"
            ),
            vec![Signal::Refusal, Signal::Heartbeat]
        );
    }
}
