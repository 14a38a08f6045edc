//! WebSocket framing shared by the reference server and the harness.
//!
//! Protocol logic lives apart from I/O, as in tungstenite: [`parse_header`] and [`encode_frame`]
//! work on byte slices, and [`FrameReader`] adds only the socket reads. Headers are parsed and
//! written with tungstenite's [`FrameHeader`], but unlike tungstenite's own reader nothing here
//! refuses a frame: callers see every header (reserved opcodes, RSV bits, missing masks, any
//! declared length) and decide, which is what a strictness switch and an attack client both need.

mod reader;
pub mod rules;

pub use reader::FrameReader;
pub use tungstenite::protocol::frame::FrameHeader;
pub use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

/// A parsed frame header with the facts tungstenite's type does not keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    /// FIN, RSV bits, opcode and mask as sent.
    pub header: FrameHeader,
    /// The four opcode bits as sent (reserved values included).
    pub opcode_bits: u8,
    /// Declared payload length (may be anything up to 2^64 - 1).
    pub length: u64,
    /// Bytes the header occupies on the wire.
    pub header_len: usize,
}

impl RawHeader {
    /// Whether the opcode is one RFC 6455 reserves (3-7, 0xB-0xF).
    pub fn is_reserved_opcode(&self) -> bool {
        matches!(self.opcode_bits, 3..=7 | 0xB..=0xF)
    }

    /// Whether this is a control frame (close, ping, pong or reserved control opcode).
    pub fn is_control(&self) -> bool {
        self.opcode_bits & 0x08 != 0
    }
}

/// Parses a frame header from the start of `buf`; `None` means more bytes are needed.
///
/// Never fails: reserved opcodes are reported through [`RawHeader::opcode_bits`] (tungstenite's
/// parser would refuse them), so a lenient server can skip such a frame by its length.
pub fn parse_header(buf: &[u8]) -> Option<RawHeader> {
    let first = *buf.first()?;
    let opcode_bits = first & 0x0F;
    // tungstenite's parser errors on reserved opcodes; parse a copy with a neutral opcode
    // (binary, or ping for the control range) and keep the real bits alongside.
    let mut head = [0u8; 14];
    let n = buf.len().min(14);
    head[..n].copy_from_slice(&buf[..n]);
    if matches!(opcode_bits, 3..=7) {
        head[0] = (first & 0xF0) | 0x2;
    } else if matches!(opcode_bits, 0xB..=0xF) {
        head[0] = (first & 0xF0) | 0x9;
    }
    let mut cursor = std::io::Cursor::new(&head[..n]);
    match FrameHeader::parse(&mut cursor) {
        Ok(Some((mut header, length))) => {
            header.opcode = OpCode::from(opcode_bits);
            Some(RawHeader {
                header,
                opcode_bits,
                length,
                header_len: usize::try_from(cursor.position()).unwrap_or(14),
            })
        }
        // Only the opcode check can fail in tungstenite's parser, and we neutralised it.
        _ => None,
    }
}

/// Applies (or removes) a WebSocket mask in place; `offset` is the payload position of `data[0]`.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: u64) {
    let shift = (offset % 4) as usize;
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[(i + shift) % 4];
    }
}

/// Appends one frame to `out`: header with the given bits, then the (masked, if `mask`) payload.
pub fn encode_frame(out: &mut Vec<u8>, header: &FrameHeader, payload: &[u8]) {
    encode_frame_declaring(out, header, payload.len() as u64, payload);
}

/// Like [`encode_frame`], but the header declares `declared` bytes whatever `payload` holds,
/// which is how an attack client lies about a frame's length.
pub fn encode_frame_declaring(
    out: &mut Vec<u8>,
    header: &FrameHeader,
    declared: u64,
    payload: &[u8],
) {
    // Writing into a Vec cannot fail.
    let _ = header.format(declared, out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = header.mask {
        apply_mask(&mut out[start..], mask, 0);
    }
}

/// A header for a complete (FIN) frame of `opcode`, masked when `mask` is given.
pub fn header(opcode: OpCode, mask: Option<[u8; 4]>) -> FrameHeader {
    FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        mask,
    }
}

/// The payload of a close frame: code then UTF-8 reason (truncated to fit 125 bytes).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

/// A received close frame's code and reason; `None` code for an empty payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosePayload {
    /// The status code, when the payload had one.
    pub code: Option<u16>,
    /// The reason text, lossily decoded.
    pub reason: String,
    /// Whether the payload breaks RFC 6455 (one byte long, or a non-UTF-8 reason).
    pub malformed: bool,
}

/// Parses a close frame payload without trusting it.
pub fn parse_close(payload: &[u8]) -> ClosePayload {
    match payload {
        [] => ClosePayload {
            code: None,
            reason: String::new(),
            malformed: false,
        },
        [_] => ClosePayload {
            code: None,
            reason: String::new(),
            malformed: true,
        },
        [a, b, rest @ ..] => ClosePayload {
            code: Some(u16::from_be_bytes([*a, *b])),
            reason: String::from_utf8_lossy(rest).into_owned(),
            malformed: std::str::from_utf8(rest).is_err(),
        },
    }
}

/// Whether a peer may send this close code (RFC 6455 section 7.4).
pub fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reserved_opcodes_and_huge_lengths() {
        let mut out = Vec::new();
        let h = header(OpCode::Data(Data::Binary), Some([1, 2, 3, 4]));
        let _ = h.format(100 << 20, &mut out);
        out[0] = (out[0] & 0xF0) | 0x3;
        let raw = parse_header(&out).expect("complete header");
        assert_eq!(raw.opcode_bits, 3);
        assert!(raw.is_reserved_opcode());
        assert_eq!(raw.length, 100 << 20);
        assert_eq!(raw.header_len, 14);
        assert!(parse_header(&out[..5]).is_none());
    }

    #[test]
    fn masking_round_trips() {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            &header(OpCode::Data(Data::Text), Some([9, 8, 7, 6])),
            b"hello",
        );
        let raw = parse_header(&out).expect("header");
        let mut payload = out[raw.header_len..].to_vec();
        apply_mask(&mut payload, [9, 8, 7, 6], 0);
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn close_payloads_are_checked() {
        assert_eq!(
            parse_close(&close_payload(1009, "too big")).code,
            Some(1009)
        );
        assert!(parse_close(&[3]).malformed);
        assert!(!close_code_allowed(1005));
        assert!(close_code_allowed(4000));
    }
}
