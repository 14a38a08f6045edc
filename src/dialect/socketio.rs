//! Engine.IO v4 and Socket.IO v5 packets over a WebSocket (text packets only).
//!
//! An Engine.IO packet is a type digit and its data: `0` open (JSON), `1` close, `2` ping,
//! `3` pong, `4` message, `5` upgrade, `6` noop. A Socket.IO packet rides in a `4` message:
//! a type digit (`0` CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR, `5`/`6`
//! binary event/ack with an attachment count and `-`), the namespace when it is not `/`
//! (`/payments,`), an acknowledgement id, then JSON: `421["pay",{...}]`.

use super::json_string;

/// The Engine.IO protocol version spoken.
pub const ENGINE_IO_VERSION: &str = "4";

/// One Engine.IO packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    /// `0{...}`: the session's parameters.
    Open(&'a str),
    /// `1`: the session ends.
    Close,
    /// `2`: a heartbeat (answered with `3`).
    Ping(&'a str),
    /// `3`: the answer to a ping.
    Pong(&'a str),
    /// `4...`: a Socket.IO packet.
    Message(&'a str),
    /// `5`: transport upgrade.
    Upgrade,
    /// `6`: nothing.
    Noop,
}

/// Reads one Engine.IO text packet; `None` when it is not one.
pub fn parse_engine(text: &str) -> Option<EnginePacket<'_>> {
    let mut chars = text.chars();
    let kind = chars.next()?;
    let rest = chars.as_str();
    Some(match kind {
        '0' => EnginePacket::Open(rest),
        '1' => EnginePacket::Close,
        '2' => EnginePacket::Ping(rest),
        '3' => EnginePacket::Pong(rest),
        '4' => EnginePacket::Message(rest),
        '5' => EnginePacket::Upgrade,
        '6' => EnginePacket::Noop,
        _ => return None,
    })
}

/// The type of a Socket.IO packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `0`: connect to a namespace (with an auth object) or its acceptance (with a sid).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event, `["name", args...]`.
    Event,
    /// `3`: the acknowledgement of an event, `[args...]`.
    Ack,
    /// `4`: the namespace refused the connection.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

impl SocketKind {
    fn digit(self) -> char {
        match self {
            SocketKind::Connect => '0',
            SocketKind::Disconnect => '1',
            SocketKind::Event => '2',
            SocketKind::Ack => '3',
            SocketKind::ConnectError => '4',
            SocketKind::BinaryEvent => '5',
            SocketKind::BinaryAck => '6',
        }
    }
}

/// One Socket.IO packet, borrowing from the text it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPacket<'a> {
    /// Its type.
    pub kind: SocketKind,
    /// Its namespace (`/` when the packet names none).
    pub namespace: &'a str,
    /// Its acknowledgement id.
    pub ack_id: Option<u64>,
    /// Its JSON data as written (possibly empty, possibly malformed).
    pub data: &'a str,
}

/// Reads a Socket.IO packet (the text after Engine.IO's `4`); `None` when it is not one.
pub fn parse_socket(text: &str) -> Option<SocketPacket<'_>> {
    let mut chars = text.char_indices();
    let (_, kind) = chars.next()?;
    let kind = match kind {
        '0' => SocketKind::Connect,
        '1' => SocketKind::Disconnect,
        '2' => SocketKind::Event,
        '3' => SocketKind::Ack,
        '4' => SocketKind::ConnectError,
        '5' => SocketKind::BinaryEvent,
        '6' => SocketKind::BinaryAck,
        _ => return None,
    };
    let mut rest = &text[1..];
    if matches!(kind, SocketKind::BinaryEvent | SocketKind::BinaryAck) {
        // `<attachments>-`
        let dash = rest.find('-')?;
        if !rest[..dash].bytes().all(|b| b.is_ascii_digit()) || dash == 0 {
            return None;
        }
        rest = &rest[dash + 1..];
    }
    let mut namespace = "/";
    if rest.starts_with('/') {
        let comma = rest.find(',').unwrap_or(rest.len());
        namespace = &rest[..comma];
        rest = rest.get(comma + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits > 0 {
        // An id too long for u64 is not an id this harness or server ever issued.
        Some(rest[..digits].parse::<u64>().ok()?)
    } else {
        None
    };
    Some(SocketPacket {
        kind,
        namespace,
        ack_id,
        data: &rest[digits..],
    })
}

/// The Engine.IO message carrying one Socket.IO packet: `4`, the type, the namespace unless
/// it is `/`, the ack id, then `data` exactly as given (so a malformed payload stays
/// malformed inside an intact envelope).
pub fn encode(kind: SocketKind, namespace: &str, ack_id: Option<u64>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + namespace.len() + 24);
    out.push('4');
    out.push(kind.digit());
    if namespace != "/" {
        out.push_str(namespace);
        out.push(',');
    }
    if let Some(id) = ack_id {
        out.push_str(&id.to_string());
    }
    out.push_str(data);
    out
}

/// An EVENT packet: `42[<ack id>]["<event>",<payload>]`, the payload as given.
pub fn event(namespace: &str, ack_id: Option<u64>, event: &str, payload: &str) -> String {
    let data = format!("[{},{payload}]", json_string(event));
    encode(SocketKind::Event, namespace, ack_id, &data)
}

/// The session parameters of an Engine.IO open packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenParams {
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
}

/// Reads the data of an open packet; `None` when it is not the JSON Engine.IO v4 sends.
pub fn parse_open(data: &str) -> Option<OpenParams> {
    let v: serde_json::Value = serde_json::from_str(data).ok()?;
    Some(OpenParams {
        ping_interval: v.get("pingInterval")?.as_u64()?,
        ping_timeout: v.get("pingTimeout")?.as_u64()?,
    })
}

/// The open packet a server sends: its session id and timings, no upgrades (the WebSocket is
/// already the transport).
pub fn open_packet(
    sid: &str,
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: u64,
) -> String {
    format!(
        r#"0{{"sid":{},"upgrades":[],"pingInterval":{ping_interval_ms},"pingTimeout":{ping_timeout_ms},"maxPayload":{max_payload}}}"#,
        json_string(sid)
    )
}

/// The elements of a JSON array as written (each element's exact text, duplicate keys and all),
/// or `None` when `data` is not a JSON array.
pub fn array_elements(data: &str) -> Option<Vec<&str>> {
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(data).ok()?;
    Some(items.into_iter().map(|r| r.get()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_read_as_the_protocol_writes_them() {
        assert_eq!(parse_engine("2"), Some(EnginePacket::Ping("")));
        assert_eq!(parse_engine(""), None);
        assert_eq!(parse_engine("x"), None);
        let p = parse_socket(r#"21["pay",{"a":1}]"#).expect("event");
        assert_eq!(
            (p.kind, p.namespace, p.ack_id, p.data),
            (SocketKind::Event, "/", Some(1), r#"["pay",{"a":1}]"#)
        );
        let p = parse_socket(r#"0/admin,{"token":"t"}"#).expect("connect");
        assert_eq!(
            (p.kind, p.namespace, p.data),
            (SocketKind::Connect, "/admin", r#"{"token":"t"}"#)
        );
        let p = parse_socket(r#"51-["x",{"_placeholder":true,"num":0}]"#).expect("binary");
        assert_eq!(p.kind, SocketKind::BinaryEvent);
        assert_eq!(parse_socket("599999999999999999999999["), None);
        assert_eq!(parse_socket("7"), None);
        assert_eq!(parse_socket("5-[]"), None);
        assert_eq!(
            event("/", Some(3), "pay", r#"{"a":1}"#),
            r#"423["pay",{"a":1}]"#
        );
        assert_eq!(encode(SocketKind::Connect, "/p", None, ""), "40/p,");
        assert_eq!(
            array_elements(r#"["pay", {"a":1,"a":2}]"#),
            Some(vec![r#""pay""#, r#"{"a":1,"a":2}"#])
        );
        let open = open_packet("s1", 500, 500, 65536);
        let EnginePacket::Open(data) = parse_engine(&open).expect("open") else {
            panic!("not open")
        };
        assert_eq!(
            parse_open(data),
            Some(OpenParams {
                ping_interval: 500,
                ping_timeout: 500
            })
        );
    }
}
