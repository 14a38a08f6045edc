//! RFC 6455 strictness: frames a conforming client never sends are closed with 1002.
//! With `protocol-strict` weakened the server tolerates them, like many lax servers do. The
//! other way round, the server's own 101 and frames follow the rules a browser checks, except
//! under the flaws `protocol-subprotocol-copy` and `protocol-data-after-close`.

use crate::wire::RawHeader;
use crate::wire::rules::{CloseFault, HeaderFault, close_fault, header_fault};

/// Why a frame header breaks RFC 6455, as sent in the 1002 close reason.
pub fn header_violation(
    h: &RawHeader,
    in_fragmented_message: bool,
    deflate: bool,
) -> Option<&'static str> {
    Some(
        match header_fault(h, true, in_fragmented_message, deflate)? {
            HeaderFault::ReservedOpcode => "reserved opcode",
            HeaderFault::Masking => "unmasked client frame",
            HeaderFault::Rsv2Rsv3 => "RSV2/RSV3 set without an extension",
            HeaderFault::Rsv1WithoutExtension | HeaderFault::Rsv1NotFirstFrame => {
                "RSV1 set without a negotiated extension"
            }
            HeaderFault::LengthTopBit => "payload length with the most significant bit set",
            HeaderFault::FragmentedControl => "fragmented control frame",
            HeaderFault::ControlTooLong => "control frame payload over 125 bytes",
            HeaderFault::ContinuationWithoutMessage => {
                "continuation frame without a message to continue"
            }
            HeaderFault::DataInsideMessage => "new data frame inside a fragmented message",
        },
    )
}

/// The reason of a close frame whose code may not be sent on the wire.
pub const CLOSE_CODE_NOT_ALLOWED: &str = "close code not allowed on the wire";

/// Why a client's close frame payload breaks RFC 6455: the close code to answer and the reason.
pub fn close_violation(payload: &[u8]) -> Option<(u16, &'static str)> {
    Some(match close_fault(payload)? {
        CloseFault::OneByte => (1002, "close payload of one byte"),
        CloseFault::CodeNotAllowed(_) => (1002, CLOSE_CODE_NOT_ALLOWED),
        CloseFault::ReasonNotUtf8 => (1007, "close reason is not UTF-8"),
    })
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
