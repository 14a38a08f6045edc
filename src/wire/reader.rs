//! Reading frames from a socket with a small reused buffer, never allocating what a peer claims.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{RawHeader, apply_mask, parse_header};

/// Size of the read buffer; payloads larger than this are read in pieces or skipped.
const CHUNK: usize = 8 * 1024;

/// Reads frame headers and payloads from `io` through a fixed-size buffer.
pub struct FrameReader<R> {
    io: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a reader.
    pub fn new(io: R) -> Self {
        Self {
            io,
            buf: vec![0u8; CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Starts from bytes already read past the handshake.
    ///
    /// The whole prefix is kept (the buffer grows to hold it): dropping any of it would desync
    /// the frame stream. Callers bound the prefix by bounding how much they read for the head.
    pub fn with_prefix(io: R, prefix: &[u8]) -> Self {
        let mut buf = vec![0u8; CHUNK.max(prefix.len())].into_boxed_slice();
        buf[..prefix.len()].copy_from_slice(prefix);
        Self {
            io,
            buf,
            start: 0,
            end: prefix.len(),
        }
    }

    /// Bytes buffered but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` buffered bytes as consumed (at most what is buffered).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Parses and consumes a header from the buffered bytes, without any I/O.
    pub fn take_header(&mut self) -> Option<RawHeader> {
        let h = parse_header(self.buffered())?;
        self.start += h.header_len;
        Some(h)
    }

    /// Reads more bytes into the buffer; `Ok(0)` means end of stream.
    ///
    /// Cancel-safe: bytes enter the buffer only once read, so a caller whose own progress lives
    /// outside the future (see the server's frame source) can use it inside `select!`.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(io::Error::other("read buffer full"));
        }
        let n = self.io.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Reads the next header; `Ok(None)` on a clean end of stream between frames.
    pub async fn read_header(&mut self) -> io::Result<Option<RawHeader>> {
        loop {
            if let Some(h) = self.take_header() {
                return Ok(Some(h));
            }
            if self.fill().await? == 0 {
                return if self.buffered().is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "stream ended inside a frame header",
                    ))
                };
            }
        }
    }

    /// Reads exactly `len` payload bytes into a new vector, unmasking them.
    ///
    /// Callers decide `len` is acceptable before calling: this is the only allocation sized by
    /// the peer, and it happens after that decision.
    pub async fn read_payload(&mut self, len: usize, mask: Option<[u8; 4]>) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            if self.buffered().is_empty() && self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame payload",
                ));
            }
            let take = (len - out.len()).min(self.end - self.start);
            out.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.start += take;
        }
        if let Some(mask) = mask {
            apply_mask(&mut out, mask, 0);
        }
        Ok(out)
    }

    /// Consumes and drops `len` payload bytes without keeping them.
    pub async fn skip_payload(&mut self, mut len: u64) -> io::Result<()> {
        while len > 0 {
            if self.buffered().is_empty() && self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame payload",
                ));
            }
            let take = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(self.end - self.start);
            self.start += take;
            len -= take as u64;
        }
        Ok(())
    }

    /// Reads and discards raw bytes until end of stream or `max` bytes; returns how many.
    pub async fn drain(&mut self, max: u64) -> io::Result<u64> {
        let mut total = (self.end - self.start) as u64;
        self.start = 0;
        self.end = 0;
        while total < max {
            let n = self.io.read(&mut self.buf[..]).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok(total)
    }

    /// The underlying reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.io
    }
}
