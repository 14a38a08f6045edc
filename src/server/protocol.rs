//! RFC 6455 strictness: frames a conforming client never sends are closed with 1002.
//! With `protocol-strict` weakened the server tolerates them, like many lax servers do. The
//! other way round, the server's own 101 and frames follow the rules a browser checks, except
//! under the flaws `protocol-subprotocol-copy` and `protocol-data-after-close`.

use crate::wire::{OpCode, RawHeader};

/// Why a frame header breaks RFC 6455, as sent in the 1002 close reason.
pub fn header_violation(
    h: &RawHeader,
    in_fragmented_message: bool,
    deflate: bool,
) -> Option<&'static str> {
    let hd = &h.header;
    if h.is_reserved_opcode() {
        return Some("reserved opcode");
    }
    if hd.mask.is_none() {
        return Some("unmasked client frame");
    }
    if hd.rsv2 || hd.rsv3 {
        return Some("RSV2/RSV3 set without an extension");
    }
    if hd.rsv1 {
        let first_data_frame =
            matches!(hd.opcode, OpCode::Data(d) if d != crate::wire::Data::Continue);
        if !(deflate && first_data_frame) {
            return Some("RSV1 set without a negotiated extension");
        }
    }
    if h.length >> 63 != 0 {
        return Some("payload length with the most significant bit set");
    }
    if h.is_control() {
        if !hd.is_final {
            return Some("fragmented control frame");
        }
        if h.length > 125 {
            return Some("control frame payload over 125 bytes");
        }
    } else {
        let is_continuation = h.opcode_bits == 0;
        if is_continuation && !in_fragmented_message {
            return Some("continuation frame without a message to continue");
        }
        if !is_continuation && in_fragmented_message {
            return Some("new data frame inside a fragmented message");
        }
    }
    None
}

/// The reason of a close frame whose code may not be sent on the wire.
pub const CLOSE_CODE_NOT_ALLOWED: &str = "close code not allowed on the wire";

/// Why a client's close frame payload breaks RFC 6455: the close code to answer and the reason.
pub fn close_violation(payload: &[u8]) -> Option<(u16, &'static str)> {
    let close = crate::wire::parse_close(payload);
    if close.malformed && close.code.is_none() {
        return Some((1002, "close payload of one byte"));
    }
    if let Some(code) = close.code
        && !crate::wire::close_code_allowed(code)
    {
        return Some((1002, CLOSE_CODE_NOT_ALLOWED));
    }
    if close.malformed {
        return Some((1007, "close reason is not UTF-8"));
    }
    None
}

/// The `Sec-WebSocket-Protocol` value a `protocol-subprotocol-copy` server answers: the whole
/// offer, when it holds a protocol the server does not speak (`speaks`).
pub fn copied_offer(offered: &[String], speaks: &[&str]) -> Option<String> {
    offered
        .iter()
        .any(|p| !speaks.contains(&p.as_str()))
        .then(|| offered.join(", "))
}

/// What a `protocol-data-after-close` server sends after its close frame.
pub const AFTER_CLOSE: &str = r#"{"type":"notice","text":"session ended"}"#;
