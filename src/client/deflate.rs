//! permessage-deflate (RFC 7692) both ways. Sending: a message compressed as the extension
//! sends it (the deflate attacks). Receiving: a server that negotiated the extension
//! compresses what it sends, and the harness must read it. Everything a server sends is
//! bounded, inflated bytes included: a message that inflates past the cap is cut there (a
//! decompression bomb costs the harness at most the cap), and the reason says so.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The tail RFC 7692 strips from every compressed message and the receiver appends back.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The sending half: one raw DEFLATE stream whose context later messages may refer back to
/// (context takeover, the extension's default).
pub struct Deflater {
    stream: Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflater {
    /// A fresh stream at the best compression.
    pub fn new() -> Self {
        Self {
            stream: Compress::new(Compression::best(), false),
        }
    }

    /// `data` as one compressed message: a sync flush, its trailing `00 00 ff ff` removed.
    pub fn message(&mut self, data: &[u8]) -> Vec<u8> {
        let start = self.stream.total_in();
        let mut out = Vec::with_capacity(data.len() / 64 + 1024);
        loop {
            let done = usize::try_from(self.stream.total_in() - start).unwrap_or(data.len());
            if self
                .stream
                .compress_vec(&data[done.min(data.len())..], &mut out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            let done = usize::try_from(self.stream.total_in() - start).unwrap_or(data.len());
            if done >= data.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(64 * 1024);
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        out
    }
}

/// `data` compressed as a single permessage-deflate message, on a fresh stream.
pub fn compress_message(data: &[u8]) -> Vec<u8> {
    Deflater::new().message(data)
}

/// How inflating one message failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates past `limit` bytes (the rest was not inflated).
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// The bytes are not a DEFLATE stream.
    Corrupt(String),
}

impl std::fmt::Display for InflateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InflateError::TooLarge { limit } => write!(
                f,
                "inflates past the client's cap of {limit} bytes (cut there: a decompression bomb \
                 costs the harness no more)"
            ),
            InflateError::Corrupt(e) => write!(f, "compressed data that does not inflate: {e}"),
        }
    }
}

/// The receiving half of one connection's permessage-deflate: one raw DEFLATE stream for the
/// whole connection (a server keeping its context references earlier messages; one that
/// resets it only starts new blocks, which the same stream reads as well).
pub struct Inflater {
    stream: Decompress,
    broken: bool,
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// A fresh stream (raw DEFLATE, the largest window, which reads any smaller one).
    pub fn new() -> Self {
        Self {
            stream: Decompress::new(false),
            broken: false,
        }
    }

    /// Inflates one message's payload (all its frames, joined) into at most `limit` bytes.
    /// After an error the stream's state is lost: later messages fail as corrupt.
    pub fn inflate(&mut self, compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        if self.broken {
            return Err(InflateError::Corrupt(
                "an earlier message broke the compression context".into(),
            ));
        }
        let result = self.run(compressed, limit);
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    fn run(&mut self, compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        let mut chunk = vec![0u8; CHUNK];
        for input in [compressed, &TAIL[..]] {
            let mut at = 0;
            loop {
                let (in_before, out_before) = (self.stream.total_in(), self.stream.total_out());
                let status = self
                    .stream
                    .decompress(&input[at..], &mut chunk, FlushDecompress::Sync)
                    .map_err(|e| InflateError::Corrupt(e.to_string()))?;
                let consumed = usize::try_from(self.stream.total_in() - in_before).unwrap_or(0);
                let produced = usize::try_from(self.stream.total_out() - out_before).unwrap_or(0);
                at += consumed;
                if out.len() + produced > limit {
                    return Err(InflateError::TooLarge { limit });
                }
                out.extend_from_slice(&chunk[..produced]);
                if status == Status::StreamEnd {
                    // A final block (BFINAL): the next message starts a new stream.
                    self.stream.reset(false);
                    return Ok(out);
                }
                let drained = produced < chunk.len();
                if (at >= input.len() && drained) || (consumed == 0 && produced == 0) {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Bytes inflated per step.
const CHUNK: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_inflate_across_a_shared_context() {
        let mut c = Deflater::new();
        let mut d = Inflater::new();
        let first = c.message(br#"{"type":"auth_ok"}"#);
        assert_eq!(
            d.inflate(&first, 1024).expect("first"),
            br#"{"type":"auth_ok"}"#
        );
        // The second message refers back to the first (context takeover).
        let second = c.message(br#"{"type":"auth_ok"}"#);
        assert!(second.len() < first.len());
        assert_eq!(
            d.inflate(&second, 1024).expect("second"),
            br#"{"type":"auth_ok"}"#
        );
    }

    #[test]
    fn a_bomb_is_cut_at_the_cap() {
        let bomb = compress_message(&vec![b' '; 8 * 1024 * 1024]);
        assert!(bomb.len() < 16 * 1024, "{} bytes", bomb.len());
        let mut d = Inflater::new();
        assert_eq!(
            d.inflate(&bomb, 1024 * 1024),
            Err(InflateError::TooLarge { limit: 1024 * 1024 })
        );
        // Exactly at the cap is fine.
        let exact = compress_message(&[b'a'; 4096]);
        assert_eq!(
            Inflater::new().inflate(&exact, 4096).map(|v| v.len()),
            Ok(4096)
        );
    }

    #[test]
    fn garbage_is_corrupt_and_breaks_the_context() {
        let mut d = Inflater::new();
        assert!(matches!(
            d.inflate(&[0xff, 0xff, 0xff, 0xff, 0x00], 1024),
            Err(InflateError::Corrupt(_))
        ));
        assert!(matches!(
            d.inflate(&[], 1024),
            Err(InflateError::Corrupt(_))
        ));
    }
}
