//! Turns client frames into messages, applying the frame-level defences (protocol strictness,
//! maximum size, bounded inflation) before any payload is read. Sans-IO so it can be fuzzed.

use crate::wire::{Control, Data, OpCode, RawHeader};

use super::max_size::{self, InflateError};
use super::protocol;

/// What to do with a frame whose header just arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderDecision {
    /// Read this many payload bytes, then call [`Inbound::on_frame`].
    Read(usize),
    /// Discard this many payload bytes (a lax server ignoring a frame it does not understand).
    Skip(u64),
    /// Close with this code and reason without reading the payload.
    Close(u16, &'static str),
}

/// A complete event from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A reassembled (and inflated) data message.
    Message {
        /// Text (opcode 1) or binary (opcode 2).
        text: bool,
        /// The payload, not yet UTF-8 checked.
        data: Vec<u8>,
    },
    /// A ping to answer.
    Ping(Vec<u8>),
    /// A pong (heartbeat answer).
    Pong,
    /// The client closes; `code` echoes its code when it sent a valid one.
    Close(Option<u16>),
    /// A frame that completes nothing yet (a fragment).
    Nothing,
}

struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
}

/// Per-connection frame state.
pub struct Inbound {
    strict: bool,
    limit: usize,
    deflate: bool,
    partial: Option<Partial>,
    /// Flaw `size-per-frame`: only each frame's length is checked, not the message's.
    per_frame: bool,
    /// The bound on an inflated message (the size limit, unless flaw `size-inflated-unchecked`).
    inflate_limit: usize,
    /// Flaw `protocol-close-codes`: any close code is accepted.
    any_close_code: bool,
}

impl Inbound {
    /// `strict`: RFC 6455 violations close with 1002; `limit`: largest message; `deflate`:
    /// permessage-deflate was negotiated.
    pub fn new(strict: bool, limit: usize, deflate: bool) -> Self {
        Self {
            strict,
            limit,
            deflate,
            partial: None,
            per_frame: false,
            inflate_limit: limit,
            any_close_code: false,
        }
    }

    /// This state with the frame-level `flaws` of the reference server in force.
    pub fn with_flaws(mut self, flaws: &super::flaw::Flaws) -> Self {
        use super::flaw::Flaw;
        self.per_frame = flaws.is(Flaw::SizePerFrame);
        if flaws.is(Flaw::SizeInflatedUnchecked) {
            self.inflate_limit = self.inflate_limit.max(super::max_size::CARELESS_LIMIT);
        }
        self.any_close_code = flaws.is(Flaw::ProtocolCloseCodes);
        self
    }

    /// Decides from the header alone; the size decision never looks at the payload.
    pub fn on_header(&self, h: &RawHeader) -> HeaderDecision {
        if self.strict
            && let Some(reason) =
                protocol::header_violation(h, self.partial.is_some(), self.deflate)
        {
            return HeaderDecision::Close(1002, reason);
        }
        if h.is_reserved_opcode() {
            return HeaderDecision::Skip(h.length);
        }
        let buffered = if h.is_control() || self.per_frame {
            0
        } else {
            self.partial.as_ref().map_or(0, |p| p.data.len())
        };
        if !max_size::fits(buffered, h.length, self.limit) {
            return HeaderDecision::Close(1009, "message too big");
        }
        // `fits` bounded the length by `limit`, a usize.
        HeaderDecision::Read(usize::try_from(h.length).unwrap_or(self.limit))
    }

    /// Consumes a frame's unmasked payload; `Err` carries the close code and reason.
    pub fn on_frame(
        &mut self,
        h: &RawHeader,
        payload: Vec<u8>,
    ) -> Result<Received, (u16, &'static str)> {
        match h.header.opcode {
            OpCode::Control(Control::Ping) => Ok(Received::Ping(payload)),
            OpCode::Control(Control::Pong) => Ok(Received::Pong),
            OpCode::Control(Control::Close) => {
                if self.strict
                    && let Some(v) = protocol::close_violation(&payload)
                    && !(self.any_close_code && v.1 == protocol::CLOSE_CODE_NOT_ALLOWED)
                {
                    return Err(v);
                }
                let code = crate::wire::parse_close(&payload)
                    .code
                    .filter(|c| crate::wire::close_code_allowed(*c));
                Ok(Received::Close(code))
            }
            OpCode::Data(Data::Continue) => match self.partial.as_mut() {
                // A lax server ignores a continuation with nothing to continue.
                None => Ok(Received::Nothing),
                Some(p) => {
                    p.data.extend_from_slice(&payload);
                    if h.header.is_final {
                        self.finish()
                    } else {
                        Ok(Received::Nothing)
                    }
                }
            },
            OpCode::Data(d) => {
                // Strict mode closed on an interleaved data frame; a lax server starts over.
                self.partial = Some(Partial {
                    text: d == Data::Text,
                    compressed: self.deflate && h.header.rsv1,
                    data: payload,
                });
                if h.header.is_final {
                    self.finish()
                } else {
                    Ok(Received::Nothing)
                }
            }
            OpCode::Control(Control::Reserved(_)) => Ok(Received::Nothing),
        }
    }

    fn finish(&mut self) -> Result<Received, (u16, &'static str)> {
        let Some(p) = self.partial.take() else {
            return Ok(Received::Nothing);
        };
        let data = if p.compressed {
            max_size::inflate_bounded(&p.data, self.inflate_limit).map_err(|e| match e {
                InflateError::TooBig => (1009, "inflated message too big"),
                InflateError::Corrupt => (1007, "invalid compressed payload"),
            })?
        } else {
            p.data
        };
        Ok(Received::Message { text: p.text, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FrameHeader, parse_header};

    fn raw(first: u8, len: u64, masked: bool) -> RawHeader {
        let mut out = Vec::new();
        let h = FrameHeader {
            is_final: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            rsv2: false,
            rsv3: false,
            opcode: OpCode::Data(Data::Binary),
            mask: masked.then_some([1, 2, 3, 4]),
        };
        let _ = h.format(len, &mut out);
        out[0] = first;
        parse_header(&out).expect("header")
    }

    #[test]
    fn size_is_decided_from_the_header() {
        let inb = Inbound::new(true, 1024, false);
        assert_eq!(
            inb.on_header(&raw(0x82, 100 << 20, true)),
            HeaderDecision::Close(1009, "message too big")
        );
        assert_eq!(
            inb.on_header(&raw(0x82, 1024, true)),
            HeaderDecision::Read(1024)
        );
    }

    #[test]
    fn fragments_add_up_against_the_limit() {
        let mut inb = Inbound::new(true, 1024, false);
        let first = raw(0x02, 800, true);
        assert_eq!(inb.on_header(&first), HeaderDecision::Read(800));
        assert_eq!(inb.on_frame(&first, vec![0; 800]), Ok(Received::Nothing));
        assert_eq!(
            inb.on_header(&raw(0x80, 300, true)),
            HeaderDecision::Close(1009, "message too big")
        );
    }

    #[test]
    fn strictness_is_switchable() {
        let strict = Inbound::new(true, 1024, false);
        let lax = Inbound::new(false, 1024, false);
        for (first, masked) in [
            (0x83, true),
            (0x82, false),
            (0xC2, true),
            (0x09, true),
            (0x80, true),
        ] {
            assert!(
                matches!(
                    strict.on_header(&raw(first, 4, masked)),
                    HeaderDecision::Close(1002, _)
                ),
                "{first:#x}"
            );
            assert!(
                !matches!(
                    lax.on_header(&raw(first, 4, masked)),
                    HeaderDecision::Close(..)
                ),
                "{first:#x}"
            );
        }
    }
}

/// What the frame source produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A complete event.
    Received(Received),
    /// A frame-level defence fired: close with this code and reason.
    Violation(u16, &'static str),
    /// The stream ended or failed.
    End,
}

enum Pending {
    Read {
        header: RawHeader,
        payload: Vec<u8>,
        len: usize,
    },
    Skip {
        left: u64,
    },
}

/// Client frames as events, read without a helper task.
///
/// Every await is a cancel-safe buffer fill and all progress (the pending header, the payload
/// read so far) lives in this struct, so [`FrameSource::next`] can sit in `select!` beside the
/// heartbeat and authentication timers without losing bytes.
pub struct FrameSource<R> {
    reader: crate::wire::FrameReader<R>,
    inbound: Inbound,
    pending: Option<Pending>,
}

impl<R: tokio::io::AsyncRead + Unpin> FrameSource<R> {
    /// Frames from `reader`, judged by `inbound`.
    pub fn new(reader: crate::wire::FrameReader<R>, inbound: Inbound) -> Self {
        Self {
            reader,
            inbound,
            pending: None,
        }
    }

    /// The next event, violation or end of stream.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(next) = self.advance() {
                return next;
            }
            match self.reader.fill().await {
                Ok(0) | Err(_) => return Next::End,
                Ok(_) => {}
            }
        }
    }

    /// Whether a whole frame is already buffered, so [`FrameSource::next`] answers without I/O.
    ///
    /// The connection writes queued replies only when this is false: a pipelining client then
    /// gets its answers in one write instead of one TLS record and syscall each.
    pub fn frame_ready(&self) -> bool {
        let buffered = self.reader.buffered();
        let needed = match &self.pending {
            None => match crate::wire::parse_header(buffered) {
                Some(h) => (h.header_len as u64).saturating_add(h.length),
                None => return false,
            },
            Some(Pending::Read { payload, len, .. }) => (len - payload.len()) as u64,
            Some(Pending::Skip { .. }) => return false,
        };
        buffered.len() as u64 >= needed
    }

    /// Makes all progress the buffered bytes allow; `None` means more bytes are needed.
    fn advance(&mut self) -> Option<Next> {
        loop {
            match &mut self.pending {
                None => {
                    let h = self.reader.take_header()?;
                    match self.inbound.on_header(&h) {
                        HeaderDecision::Close(code, reason) => {
                            return Some(Next::Violation(code, reason));
                        }
                        HeaderDecision::Skip(n) => self.pending = Some(Pending::Skip { left: n }),
                        HeaderDecision::Read(len) => {
                            self.pending = Some(Pending::Read {
                                header: h,
                                payload: Vec::with_capacity(len),
                                len,
                            })
                        }
                    }
                }
                Some(Pending::Skip { left }) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(self.reader.buffered().len());
                    self.reader.consume(n);
                    *left -= n as u64;
                    if *left > 0 {
                        return None;
                    }
                    self.pending = None;
                }
                Some(Pending::Read { payload, len, .. }) => {
                    let n = (*len - payload.len()).min(self.reader.buffered().len());
                    payload.extend_from_slice(&self.reader.buffered()[..n]);
                    self.reader.consume(n);
                    if payload.len() < *len {
                        return None;
                    }
                    let Some(Pending::Read {
                        header,
                        mut payload,
                        ..
                    }) = self.pending.take()
                    else {
                        return None;
                    };
                    if let Some(mask) = header.header.mask {
                        crate::wire::apply_mask(&mut payload, mask, 0);
                    }
                    match self.inbound.on_frame(&header, payload) {
                        Ok(Received::Nothing) => {}
                        Ok(event) => return Some(Next::Received(event)),
                        Err((code, reason)) => return Some(Next::Violation(code, reason)),
                    }
                }
            }
        }
    }

    /// After a close: discards raw bytes (never buffering them) so the peer can read our close
    /// frame instead of a reset.
    pub async fn linger(&mut self, max_bytes: u64) {
        let _ = self.reader.drain(max_bytes).await;
    }
}
