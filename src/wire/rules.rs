//! The frame rules of RFC 6455 (and RFC 7692 for RSV1), one set for both directions: the
//! reference server closes a client's connection on them (with a reason of its own), the
//! harness fails a server's connection on them (naming the rule), as a browser does. Only the
//! masking rule differs with the direction.

use super::{RawHeader, close_code_allowed, parse_close};

/// Largest payload of a control frame (RFC 6455 5.5).
pub const MAX_CONTROL_PAYLOAD: u64 = 125;

/// A rule of RFC 6455 a frame header breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderFault {
    /// A reserved opcode (3-7, 0xB-0xF).
    ReservedOpcode,
    /// Masked where the sender must not mask (a server), or unmasked where it must (a client).
    Masking,
    /// RSV2 or RSV3 set: no extension defines them.
    Rsv2Rsv3,
    /// RSV1 set with no extension negotiated.
    Rsv1WithoutExtension,
    /// RSV1 set on a control or continuation frame (permessage-deflate sets it on a message's
    /// first frame only).
    Rsv1NotFirstFrame,
    /// A 64-bit length with its most significant bit set.
    LengthTopBit,
    /// A control frame without FIN.
    FragmentedControl,
    /// A control frame with more than [`MAX_CONTROL_PAYLOAD`] bytes.
    ControlTooLong,
    /// A continuation with no message to continue.
    ContinuationWithoutMessage,
    /// A new data frame inside a fragmented message.
    DataInsideMessage,
}

/// The first rule `h` breaks, if any: `masked` says whether its sender must mask (a client),
/// `in_message` whether a fragmented data message is open, `deflate` whether permessage-deflate
/// is in force.
pub fn header_fault(
    h: &RawHeader,
    masked: bool,
    in_message: bool,
    deflate: bool,
) -> Option<HeaderFault> {
    let f = &h.header;
    if h.is_reserved_opcode() {
        return Some(HeaderFault::ReservedOpcode);
    }
    if f.mask.is_some() != masked {
        return Some(HeaderFault::Masking);
    }
    if f.rsv2 || f.rsv3 {
        return Some(HeaderFault::Rsv2Rsv3);
    }
    if f.rsv1 {
        if !deflate {
            return Some(HeaderFault::Rsv1WithoutExtension);
        }
        if h.is_control() || h.opcode_bits == 0 {
            return Some(HeaderFault::Rsv1NotFirstFrame);
        }
    }
    if h.length >> 63 != 0 {
        return Some(HeaderFault::LengthTopBit);
    }
    if h.is_control() {
        if !f.is_final {
            return Some(HeaderFault::FragmentedControl);
        }
        if h.length > MAX_CONTROL_PAYLOAD {
            return Some(HeaderFault::ControlTooLong);
        }
        return None;
    }
    match (h.opcode_bits == 0, in_message) {
        (true, false) => Some(HeaderFault::ContinuationWithoutMessage),
        (false, true) => Some(HeaderFault::DataInsideMessage),
        _ => None,
    }
}

/// A rule of RFC 6455 a close frame's payload breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseFault {
    /// A payload of one byte (a code takes two).
    OneByte,
    /// A code no endpoint may send (RFC 6455 7.4).
    CodeNotAllowed(u16),
    /// A reason that is not UTF-8.
    ReasonNotUtf8,
}

/// The first rule a close frame's payload breaks, if any (RFC 6455 5.5.1 and 7.4).
pub fn close_fault(payload: &[u8]) -> Option<CloseFault> {
    let close = parse_close(payload);
    match close.code {
        None if close.malformed => Some(CloseFault::OneByte),
        Some(code) if !close_code_allowed(code) => Some(CloseFault::CodeNotAllowed(code)),
        Some(_) if close.malformed => Some(CloseFault::ReasonNotUtf8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_header;

    #[test]
    fn only_the_masking_rule_depends_on_the_direction() {
        let h = parse_header(&[0x81, 0x82, 1, 2, 3, 4]).expect("masked text");
        assert_eq!(header_fault(&h, true, false, false), None);
        assert_eq!(
            header_fault(&h, false, false, false),
            Some(HeaderFault::Masking)
        );
        let h = parse_header(&[0xC9, 0x00]).expect("ping with RSV1");
        assert_eq!(
            header_fault(&h, false, false, true),
            Some(HeaderFault::Rsv1NotFirstFrame)
        );
        assert_eq!(
            header_fault(&h, false, false, false),
            Some(HeaderFault::Rsv1WithoutExtension)
        );
    }

    #[test]
    fn close_payloads() {
        assert_eq!(close_fault(&[]), None);
        assert_eq!(close_fault(&[3]), Some(CloseFault::OneByte));
        assert_eq!(
            close_fault(&[0x03, 0xED]),
            Some(CloseFault::CodeNotAllowed(1005))
        );
        assert_eq!(
            close_fault(&[0x03, 0xE8, 0xFF]),
            Some(CloseFault::ReasonNotUtf8)
        );
    }
}
