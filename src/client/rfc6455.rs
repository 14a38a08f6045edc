//! The client-side rules of RFC 6455 (and RFC 7692 for permessage-deflate) a browser enforces
//! on a server: the 101 response, then every frame the server sends. A server that breaks one
//! gets its connection failed, as a browser fails it, so no verdict rests on a connection no
//! browser could have used. Sans-IO: the handshake and the connection's reader call in here.

use std::fmt;

use crate::wire::RawHeader;
use crate::wire::rules::{CloseFault, HeaderFault, MAX_CONTROL_PAYLOAD, close_fault, header_fault};

/// A rule of RFC 6455 or RFC 7692 the server broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where the rule is written (`RFC 6455 §5.1`).
    pub rule: &'static str,
    /// What the server did, in a sentence.
    pub what: String,
    /// Whether a browser fails the connection for it (data after a close frame is noted but,
    /// as in a browser, the close stands).
    pub fatal: bool,
}

impl Violation {
    fn fatal(rule: &'static str, what: impl Into<String>) -> Self {
        Self {
            rule,
            what: what.into(),
            fatal: true,
        }
    }
}

impl Violation {
    /// What a connection that met this break is, for evidence: "the server broke ...; a
    /// browser fails such a connection".
    pub fn failed_connection(&self) -> String {
        format!("the server broke {self}; a browser fails such a connection")
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.what, self.rule)
    }
}

/// What the client asked for in its upgrade request, against which the 101 is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offered {
    /// Subprotocols offered (`Sec-WebSocket-Protocol`), in order.
    pub protocols: Vec<String>,
    /// Extension names offered (`Sec-WebSocket-Extensions`), lower case.
    pub extensions: Vec<String>,
    /// Whether the permessage-deflate offer carried `client_max_window_bits`.
    pub client_max_window_bits: bool,
}

impl Offered {
    /// Reads the offer from the request's header values.
    pub fn from_request(protocols: Option<&str>, extensions: Option<&str>) -> Self {
        let list = |v: Option<&str>| -> Vec<String> {
            v.into_iter()
                .flat_map(|v| v.split(','))
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        };
        let client_max_window_bits = list(extensions).iter().any(|e| {
            let mut parts = e.split(';').map(str::trim);
            parts
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case("permessage-deflate"))
                && parts.any(|p| {
                    p.split('=')
                        .next()
                        .is_some_and(|k| k.trim().eq_ignore_ascii_case("client_max_window_bits"))
                })
        });
        Self {
            protocols: list(protocols),
            extensions: extension_names(extensions),
            client_max_window_bits,
        }
    }
}

/// The extension names a `Sec-WebSocket-Extensions` response header negotiates, lower-cased,
/// without their parameters (`permessage-deflate; client_no_context_takeover` is
/// `permessage-deflate`). No header, or an empty one, negotiates nothing.
pub fn extension_names(header: Option<&str>) -> Vec<String> {
    header
        .unwrap_or_default()
        .split(',')
        .filter_map(|ext| ext.split(';').next())
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Checks a 101 response's headers (names lower case) against the offer: `Upgrade`,
/// `Connection`, and no subprotocol or extension the client did not ask for (RFC 6455 4.1,
/// RFC 7692 5 and 7.1). The accept key is checked by the handshake itself.
pub fn check_upgrade_response(
    headers: &[(String, String)],
    offered: &Offered,
) -> Result<(), Violation> {
    let all = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let upgrade = all("upgrade");
    if !upgrade
        .iter()
        .any(|v| v.trim().eq_ignore_ascii_case("websocket"))
    {
        return Err(Violation::fatal(
            "RFC 6455 §4.1",
            match upgrade.first() {
                None => "the 101 response has no `Upgrade: websocket` header".to_string(),
                Some(v) => format!(
                    "the 101 response says `Upgrade: {}`, not websocket",
                    clip(v)
                ),
            },
        ));
    }
    let connection = all("connection");
    if !connection
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    {
        return Err(Violation::fatal(
            "RFC 6455 §4.1",
            "the 101 response has no `Connection: Upgrade` header",
        ));
    }
    let protocols: Vec<&str> = all("sec-websocket-protocol")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    match protocols.as_slice() {
        [] => {}
        [one] if offered.protocols.iter().any(|p| p == one) => {}
        [one] => {
            return Err(Violation::fatal(
                "RFC 6455 §4.1",
                if offered.protocols.is_empty() {
                    format!(
                        "the server chose subprotocol `{}` though the client offered none",
                        clip(one)
                    )
                } else {
                    format!(
                        "the server chose subprotocol `{}`, which the client did not offer",
                        clip(one)
                    )
                },
            ));
        }
        many => {
            return Err(Violation::fatal(
                "RFC 6455 §4.1",
                format!(
                    "the server named {} subprotocols; it must choose one",
                    many.len()
                ),
            ));
        }
    }
    let mut deflate_seen = false;
    for ext in all("sec-websocket-extensions")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let mut parts = ext.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        if !offered.extensions.contains(&name) {
            return Err(Violation::fatal(
                "RFC 6455 §9.1",
                format!(
                    "the server named extension `{}`, which the client did not offer",
                    clip(&name)
                ),
            ));
        }
        if name == "permessage-deflate" {
            if deflate_seen {
                return Err(Violation::fatal(
                    "RFC 7692 §5",
                    "the server accepted permessage-deflate twice",
                ));
            }
            deflate_seen = true;
            check_deflate_params(parts, offered)?;
        }
    }
    Ok(())
}

/// The parameters of a permessage-deflate acceptance (RFC 7692 7.1): known, once each, with
/// valid values, and `client_max_window_bits` only when offered.
fn check_deflate_params<'a>(
    params: impl Iterator<Item = &'a str>,
    offered: &Offered,
) -> Result<(), Violation> {
    let bad = |what: String| Err(Violation::fatal("RFC 7692 §7.1", what));
    let mut seen: Vec<String> = Vec::new();
    for p in params.filter(|p| !p.is_empty()) {
        let (key, value) = match p.split_once('=') {
            Some((k, v)) => (
                k.trim().to_ascii_lowercase(),
                Some(v.trim().trim_matches('"')),
            ),
            None => (p.to_ascii_lowercase(), None),
        };
        if seen.contains(&key) {
            return bad(format!(
                "permessage-deflate parameter `{}` appears twice",
                clip(&key)
            ));
        }
        match (key.as_str(), value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("server_max_window_bits", Some(v)) | ("client_max_window_bits", Some(v))
                if !matches!(v.parse::<u8>(), Ok(8..=15)) =>
            {
                return bad(format!(
                    "permessage-deflate parameter `{key}={}` is not a window size from 8 to 15",
                    clip(v)
                ));
            }
            ("server_max_window_bits", Some(_)) => {}
            ("client_max_window_bits", Some(_)) if offered.client_max_window_bits => {}
            ("client_max_window_bits", Some(_)) => {
                return bad(
                    "the server set client_max_window_bits, which the client did not offer".into(),
                );
            }
            _ => {
                return bad(format!(
                    "permessage-deflate parameter `{}` is unknown or malformed",
                    clip(p)
                ));
            }
        }
        seen.push(key);
    }
    Ok(())
}

/// A header value cut for a rule's message (the value is the server's, and bounded).
fn clip(v: &str) -> String {
    crate::config::secrets::preview(v.as_bytes(), 40)
}

/// The per-connection state the frame rules need: whether permessage-deflate is in force and
/// whether a fragmented data message is open.
#[derive(Debug, Clone, Default)]
pub struct FrameRules {
    deflate: bool,
    in_message: bool,
}

impl FrameRules {
    /// Rules for a connection, `deflate` when the 101 accepted permessage-deflate.
    pub fn new(deflate: bool) -> Self {
        Self {
            deflate,
            in_message: false,
        }
    }

    /// Checks a frame header from the server before its payload is read, and tracks
    /// fragmentation (RFC 6455 5.1 to 5.5, RFC 7692 6).
    pub fn check_header(&mut self, h: &RawHeader) -> Result<(), Violation> {
        let name = opcode_name(h.opcode_bits);
        let Some(fault) = header_fault(h, false, self.in_message, self.deflate) else {
            if !h.is_control() {
                self.in_message = !h.header.is_final;
            }
            return Ok(());
        };
        let (rule, what) = match fault {
            HeaderFault::Masking => (
                "RFC 6455 §5.1",
                format!("the server sent a masked {name} frame (servers must not mask)"),
            ),
            HeaderFault::LengthTopBit => (
                "RFC 6455 §5.2",
                format!(
                    "a {name} frame declares {} bytes: the most significant bit of a 64-bit length must be 0",
                    h.length
                ),
            ),
            HeaderFault::Rsv2Rsv3 => (
                "RFC 6455 §5.2",
                format!("a {name} frame has RSV2 or RSV3 set, and no extension defines them"),
            ),
            HeaderFault::ReservedOpcode => (
                "RFC 6455 §5.2",
                format!(
                    "the server sent a frame with the reserved opcode {:#x}",
                    h.opcode_bits
                ),
            ),
            HeaderFault::Rsv1WithoutExtension => (
                "RFC 6455 §5.2",
                format!("a {name} frame has RSV1 set, and no extension was negotiated"),
            ),
            HeaderFault::Rsv1NotFirstFrame => (
                "RFC 7692 §6",
                format!("a {name} frame has RSV1 set: only a message's first frame may"),
            ),
            HeaderFault::FragmentedControl => (
                "RFC 6455 §5.5",
                format!("a {name} frame is fragmented (FIN clear): control frames must not be"),
            ),
            HeaderFault::ControlTooLong => (
                "RFC 6455 §5.5",
                format!(
                    "a {name} frame carries {} bytes: control frames carry at most {MAX_CONTROL_PAYLOAD}",
                    h.length
                ),
            ),
            HeaderFault::ContinuationWithoutMessage => (
                "RFC 6455 §5.4",
                "a continuation frame arrived with no message to continue".to_string(),
            ),
            HeaderFault::DataInsideMessage => (
                "RFC 6455 §5.4",
                format!("a new {name} frame arrived inside a fragmented message"),
            ),
        };
        Err(Violation::fatal(rule, what))
    }
}

/// Checks a close frame's payload: empty, or a code a peer may send followed by UTF-8
/// (RFC 6455 5.5.1 and 7.4).
pub fn check_close(payload: &[u8]) -> Result<(), Violation> {
    match close_fault(payload) {
        None => Ok(()),
        Some(CloseFault::OneByte) => Err(Violation::fatal(
            "RFC 6455 §5.5.1",
            "a close frame carries a 1-byte payload (a code takes two)",
        )),
        Some(CloseFault::CodeNotAllowed(code)) => Err(Violation::fatal(
            "RFC 6455 §7.4",
            format!("a close frame carries code {code}, which no endpoint may send"),
        )),
        Some(CloseFault::ReasonNotUtf8) => Err(Violation::fatal(
            "RFC 6455 §5.5.1",
            "a close frame's reason is not valid UTF-8",
        )),
    }
}

/// Checks that a whole text message is UTF-8 (RFC 6455 8.1).
pub fn check_text(data: &[u8]) -> Result<(), Violation> {
    match std::str::from_utf8(data) {
        Ok(_) => Ok(()),
        Err(e) => Err(Violation::fatal(
            "RFC 6455 §8.1",
            format!(
                "a text message is not valid UTF-8 (byte {} of {})",
                e.valid_up_to(),
                data.len()
            ),
        )),
    }
}

/// The finding for bytes a server sent after its close frame (RFC 6455 5.5.1: no data after
/// a close). Not fatal: the close already ended the connection for a browser too.
pub fn data_after_close(bytes: usize) -> Violation {
    Violation {
        rule: "RFC 6455 §5.5.1",
        what: format!("the server sent {bytes} more byte(s) after its close frame"),
        fatal: false,
    }
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        0x0 => "continuation",
        0x1 => "text",
        0x2 => "binary",
        0x8 => "close",
        0x9 => "ping",
        0xA => "pong",
        _ => "reserved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_header;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    const UPGRADED: [(&str, &str); 2] = [
        ("Upgrade", "WebSocket"),
        ("Connection", "keep-alive, Upgrade"),
    ];

    #[test]
    fn a_conforming_101_passes_and_each_header_rule_is_named() {
        let none = Offered::default();
        assert_eq!(check_upgrade_response(&headers(&UPGRADED), &none), Ok(()));
        let no_upgrade = check_upgrade_response(&headers(&[("Connection", "Upgrade")]), &none)
            .expect_err("no Upgrade");
        assert!(
            no_upgrade.what.contains("Upgrade: websocket"),
            "{no_upgrade}"
        );
        let h2c = check_upgrade_response(
            &headers(&[("Upgrade", "h2c"), ("Connection", "Upgrade")]),
            &none,
        )
        .expect_err("h2c");
        assert!(h2c.what.contains("h2c"));
        let no_conn = check_upgrade_response(&headers(&[("Upgrade", "websocket")]), &none)
            .expect_err("no Connection");
        assert!(no_conn.what.contains("Connection: Upgrade"));
    }

    #[test]
    fn subprotocols_and_extensions_must_have_been_offered() {
        let with = |extra: (&str, &str)| {
            let mut h = headers(&UPGRADED);
            h.extend(headers(&[extra]));
            h
        };
        let none = Offered::default();
        let offered = Offered::from_request(
            Some("v1, v2"),
            Some("permessage-deflate; client_max_window_bits"),
        );
        assert!(offered.client_max_window_bits);
        assert!(check_upgrade_response(&with(("Sec-WebSocket-Protocol", "v2")), &offered).is_ok());
        let e = check_upgrade_response(&with(("Sec-WebSocket-Protocol", "v2")), &none)
            .expect_err("unrequested");
        assert!(e.what.contains("offered none"), "{e}");
        let e = check_upgrade_response(&with(("Sec-WebSocket-Protocol", "v3")), &offered)
            .expect_err("other");
        assert!(e.what.contains("did not offer"));
        assert!(
            check_upgrade_response(&with(("Sec-WebSocket-Protocol", "v1, v2")), &offered).is_err()
        );
        let deflate = ("Sec-WebSocket-Extensions", "permessage-deflate");
        assert!(check_upgrade_response(&with(deflate), &offered).is_ok());
        let e = check_upgrade_response(&with(deflate), &none).expect_err("not offered");
        assert_eq!(e.rule, "RFC 6455 §9.1");
        for (value, ok) in [
            (
                "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
                true,
            ),
            (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                true,
            ),
            ("permessage-deflate; server_max_window_bits=16", false),
            ("permessage-deflate; server_no_context_takeover=1", false),
            ("permessage-deflate; mystery", false),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                false,
            ),
            ("permessage-deflate, permessage-deflate", false),
        ] {
            let r = check_upgrade_response(&with(("Sec-WebSocket-Extensions", value)), &offered);
            assert_eq!(r.is_ok(), ok, "{value}: {r:?}");
        }
        let plain_offer = Offered::from_request(None, Some("permessage-deflate"));
        assert!(
            check_upgrade_response(
                &with((
                    "Sec-WebSocket-Extensions",
                    "permessage-deflate; client_max_window_bits=15"
                )),
                &plain_offer
            )
            .is_err()
        );
    }

    fn header_of(bytes: &[u8]) -> RawHeader {
        parse_header(bytes).expect("a whole header")
    }

    #[test]
    fn each_frame_rule_is_named() {
        let cases: [(&[u8], &str); 9] = [
            (&[0x81, 0x82, 1, 2, 3, 4], "masked"),
            (&[0xC1, 0x00], "RSV1"),
            (&[0xA1, 0x00], "RSV2 or RSV3"),
            (&[0x83, 0x00], "reserved opcode"),
            (&[0x09, 0x00], "fragmented"),
            (&[0x89, 0x7E, 0x00, 0xC8], "at most 125"),
            (&[0x80, 0x00], "no message to continue"),
            (
                &[0x81, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0],
                "most significant bit",
            ),
            // "HTTP" read as a frame: FIN clear, RSV1 set, opcode close.
            (b"HTTP", "RSV1"),
        ];
        for (bytes, named) in cases {
            let v = FrameRules::new(false)
                .check_header(&header_of(bytes))
                .expect_err("a violation");
            assert!(v.what.contains(named) && v.fatal, "{bytes:?}: {v}");
        }
        let mut deflate = FrameRules::new(true);
        assert!(deflate.check_header(&header_of(&[0xC1, 0x00])).is_ok());
        assert!(deflate.check_header(&header_of(&[0xC9, 0x00])).is_err());
    }

    #[test]
    fn fragmentation_is_tracked() {
        let mut r = FrameRules::new(false);
        assert!(r.check_header(&header_of(&[0x01, 0x01])).is_ok());
        assert!(
            r.check_header(&header_of(&[0x89, 0x00])).is_ok(),
            "a ping between fragments"
        );
        let v = r
            .check_header(&header_of(&[0x81, 0x00]))
            .expect_err("new message");
        assert!(v.what.contains("inside a fragmented message"));
        let mut r = FrameRules::new(false);
        assert!(r.check_header(&header_of(&[0x01, 0x01])).is_ok());
        assert!(r.check_header(&header_of(&[0x80, 0x01])).is_ok());
        assert!(r.check_header(&header_of(&[0x81, 0x01])).is_ok());
    }

    #[test]
    fn close_payloads_and_text_are_checked() {
        assert!(check_close(&[]).is_ok());
        assert!(check_close(&[0x03, 0xE8, b'o', b'k']).is_ok());
        assert!(
            check_close(&[0x03])
                .expect_err("one byte")
                .what
                .contains("1-byte")
        );
        assert!(
            check_close(&[0x03, 0xED])
                .expect_err("1005")
                .what
                .contains("1005")
        );
        assert!(
            check_close(&[0x03, 0xE8, 0xFF])
                .expect_err("utf-8")
                .what
                .contains("UTF-8")
        );
        assert!(check_text("zürich".as_bytes()).is_ok());
        assert!(check_text(&[b'a', 0xC3]).is_err());
        assert!(!data_after_close(3).fatal);
    }

    proptest::proptest! {
        #[test]
        fn no_bytes_make_the_rules_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..16)) {
            if let Some(h) = parse_header(&bytes) {
                let _ = FrameRules::new(bytes.first().is_some_and(|b| b & 1 == 1)).check_header(&h);
            }
            let _ = check_close(&bytes);
            let _ = check_text(&bytes);
        }
    }
}
