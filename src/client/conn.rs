//! An upgraded connection for attacks: raw frames of any shape out (any opcode, FIN/RSV bits,
//! mask or none, a declared length different from the bytes sent, a 100 MiB payload streamed
//! from one small buffer), and bounded events in, read by a background task that answers pings
//! (switchable) and logs when they arrived.
//!
//! Nothing a peer declares is allocated: frames above [`READ_CAP`] are skipped with their
//! declared length recorded, and every queue is bounded.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::deflate::{InflateError, Inflater};
use super::evidence::{ConnectionLog, Direction, PREVIEW_CHARS};
use super::rfc6455::{FrameRules, Violation, check_close, check_text, data_after_close};
use super::tls::TlsFacts;
use super::{ClientError, Deadline, Phase, io_error};
use crate::config::Secrets;
use crate::wire::{
    FrameHeader, FrameReader, OpCode, RawHeader, apply_mask, close_payload, encode_frame_declaring,
    parse_close,
};

/// Largest message (or control frame) kept in memory; larger ones are skipped.
pub const READ_CAP: usize = 1024 * 1024;
/// Size of the reused buffer [`Connection::stream_frame`] writes from.
pub const STREAM_CHUNK: usize = 16 * 1024;
/// Default bound on one write (a frame, a pong).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Events queued for the caller before the reader stops reading (TCP backpressure).
const EVENT_QUEUE: usize = 16;
/// Payload bytes queued for the caller before the reader stops reading: with [`READ_CAP`] per
/// message, a connection holds a few MiB whatever a peer streams, not `EVENT_QUEUE` full
/// messages.
pub const QUEUE_BYTES: usize = 2 * READ_CAP;
/// Pings kept in the log.
const PING_LOG: usize = 1024;
/// Events [`Connection::wait_for_close`] keeps besides the end.
const OBSERVED_KEEP: usize = 32;
/// How long the reader waits to send a pong before giving up on it.
const PONG_DEADLINE: Duration = Duration::from_secs(2);
/// How long the reader keeps reading after the server's close frame, to see whether the server
/// sends anything after it (RFC 6455 5.5.1); in the background, delaying no one.
pub const AFTER_CLOSE_GRACE: Duration = Duration::from_millis(250);

/// WebSocket opcodes by name, for [`FrameSpec::new`].
pub mod opcode {
    /// Continuation frame.
    pub const CONTINUATION: u8 = 0x0;
    /// Text frame.
    pub const TEXT: u8 = 0x1;
    /// Binary frame.
    pub const BINARY: u8 = 0x2;
    /// Close frame.
    pub const CLOSE: u8 = 0x8;
    /// Ping frame.
    pub const PING: u8 = 0x9;
    /// Pong frame.
    pub const PONG: u8 = 0xA;
}

/// Anything an upgraded connection can run over (TCP, TLS, an in-memory pipe in tests).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// How a frame is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// A fresh random mask, as RFC 6455 requires of clients.
    Random,
    /// This mask (predictable: an attack on intermediaries, or a reproducible test).
    Fixed([u8; 4]),
    /// No mask: a protocol violation for a client.
    Unmasked,
}

/// One frame to send, with every bit under the caller's control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpec {
    /// Opcode bits (only the low four are used; reserved values allowed).
    pub opcode: u8,
    /// FIN bit.
    pub fin: bool,
    /// RSV1 bit.
    pub rsv1: bool,
    /// RSV2 bit.
    pub rsv2: bool,
    /// RSV3 bit.
    pub rsv3: bool,
    /// Masking.
    pub mask: Mask,
    /// Payload bytes sent (before masking).
    pub payload: Vec<u8>,
    /// Length written in the header; `None` means the payload's true length.
    pub declared_length: Option<u64>,
}

impl FrameSpec {
    /// A final, randomly masked frame with this opcode and payload.
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            opcode,
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            mask: Mask::Random,
            payload: payload.into(),
            declared_length: None,
        }
    }

    /// A text frame.
    pub fn text(text: &str) -> Self {
        Self::new(opcode::TEXT, text.as_bytes())
    }

    /// A binary frame.
    pub fn binary(data: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::BINARY, data)
    }

    /// A close frame with a code and reason (any code, allowed or not).
    pub fn close(code: u16, reason: &str) -> Self {
        Self::new(opcode::CLOSE, close_payload(code, reason))
    }

    /// This frame with the FIN bit set as given.
    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    /// This frame with the RSV bits set as given.
    pub fn rsv(mut self, rsv1: bool, rsv2: bool, rsv3: bool) -> Self {
        (self.rsv1, self.rsv2, self.rsv3) = (rsv1, rsv2, rsv3);
        self
    }

    /// This frame with a mask choice.
    pub fn mask(mut self, mask: Mask) -> Self {
        self.mask = mask;
        self
    }

    /// This frame declaring `length` in its header whatever the payload holds.
    pub fn declaring(mut self, length: u64) -> Self {
        self.declared_length = Some(length);
        self
    }

    /// The header to send, with the mask resolved (a random one is drawn now).
    pub fn header(&self) -> FrameHeader {
        FrameHeader {
            is_final: self.fin,
            rsv1: self.rsv1,
            rsv2: self.rsv2,
            rsv3: self.rsv3,
            opcode: OpCode::from(self.opcode & 0x0F),
            mask: match self.mask {
                Mask::Random => Some(rand::random()),
                Mask::Fixed(m) => Some(m),
                Mask::Unmasked => None,
            },
        }
    }

    /// The bytes on the wire (one random mask drawn per call).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 14);
        let declared = self.declared_length.unwrap_or(self.payload.len() as u64);
        encode_frame_declaring(&mut out, &self.header(), declared, &self.payload);
        out
    }

    /// A short description for evidence (payload preview redacted by `redactor`).
    pub fn describe(&self, redactor: &Secrets) -> String {
        let declared = self.declared_length.unwrap_or(self.payload.len() as u64);
        let mut bits = String::new();
        for (on, name) in [
            (self.fin, " FIN"),
            (self.rsv1, " RSV1"),
            (self.rsv2, " RSV2"),
            (self.rsv3, " RSV3"),
            (self.mask == Mask::Unmasked, " unmasked"),
        ] {
            if on {
                bits.push_str(name);
            }
        }
        let length = if declared == self.payload.len() as u64 {
            format!("{declared} B")
        } else {
            format!("declaring {declared} B, carrying {} B", self.payload.len())
        };
        format!(
            "{} frame ({length},{bits}): {}",
            opcode_name(self.opcode & 0x0F),
            redactor.preview(&self.payload, PREVIEW_CHARS)
        )
    }
}

fn opcode_name(bits: u8) -> String {
    match bits {
        0 => "continuation".into(),
        1 => "text".into(),
        2 => "binary".into(),
        8 => "close".into(),
        9 => "ping".into(),
        10 => "pong".into(),
        b => format!("reserved opcode {b:#x}"),
    }
}

/// Something the peer did, as seen by [`Connection::read_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text message (lossily decoded if it was not UTF-8).
    Text(String),
    /// A complete binary message.
    Binary(Vec<u8>),
    /// A ping (already answered unless [`Connection::answer_pings`] switched that off).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame; `code` is `None` for an empty payload.
    Close {
        /// The close code.
        code: Option<u16>,
        /// The reason, lossily decoded.
        reason: String,
    },
    /// The server broke a rule of RFC 6455 a browser enforces (a masked frame, RSV bits with
    /// no extension, an oversized ping...): the client failed the connection, as a browser
    /// does. Never a refusal: nothing on this connection is judged.
    Violation(Violation),
    /// A message that was not kept: above [`READ_CAP`], or compressed data that does not
    /// inflate within it.
    Skipped {
        /// The frame's opcode bits.
        opcode: u8,
        /// The length its header declared (a message's total so far, when over the cap).
        declared_len: u64,
        /// Why it was skipped.
        reason: &'static str,
    },
    /// The connection ended without a close frame (reset, EOF, unreadable bytes).
    Dropped {
        /// What the read said.
        error: String,
    },
    /// The harness's own reader task failed (panicked or was cancelled): nothing is known
    /// about the peer, so this is never evidence of a rejection.
    ReaderFailed {
        /// What happened to the task.
        error: String,
    },
    /// Nothing arrived before the deadline.
    Timeout,
}

impl Event {
    /// The bytes this event holds (payload, reason or error text), for memory bounds.
    pub fn held_bytes(&self) -> usize {
        match self {
            Event::Text(t) => t.len(),
            Event::Binary(b) | Event::Ping(b) | Event::Pong(b) => b.len(),
            Event::Close { reason, .. } => reason.len(),
            Event::Dropped { error } | Event::ReaderFailed { error } => error.len(),
            Event::Violation(v) => v.what.len(),
            Event::Skipped { .. } | Event::Timeout => 0,
        }
    }

    /// Whether the connection is over after this event (for a [`Event::ReaderFailed`], over
    /// for the harness: nothing more can be read).
    pub fn is_end(&self) -> bool {
        matches!(
            self,
            Event::Close { .. }
                | Event::Dropped { .. }
                | Event::ReaderFailed { .. }
                | Event::Violation(_)
        )
    }

    /// Whether this is a harness fault rather than something the peer did.
    pub fn is_harness_fault(&self) -> bool {
        matches!(self, Event::ReaderFailed { .. })
    }

    /// A short description for evidence.
    pub fn describe(&self, redactor: &Secrets) -> String {
        let p = |b: &[u8]| redactor.preview(b, PREVIEW_CHARS);
        match self {
            Event::Text(t) => format!("text ({} B): {}", t.len(), p(t.as_bytes())),
            Event::Binary(b) => format!("binary ({} B): {}", b.len(), p(b)),
            Event::Ping(b) => format!("ping ({} B)", b.len()),
            Event::Pong(b) => format!("pong ({} B)", b.len()),
            Event::Close { code, reason } => match code {
                Some(c) => format!("close {c}: {}", p(reason.as_bytes())),
                None => "close without a code".into(),
            },
            Event::Skipped {
                opcode,
                declared_len,
                reason,
            } => format!(
                "{} frame declaring {declared_len} B skipped: {reason}",
                opcode_name(*opcode)
            ),
            Event::Dropped { error } => format!("connection dropped: {}", p(error.as_bytes())),
            Event::ReaderFailed { error } => {
                format!("harness fault, not the peer: {}", p(error.as_bytes()))
            }
            Event::Violation(v) => format!(
                "the client failed the connection (close 1002), as a browser does: the server broke {}",
                p(v.to_string().as_bytes())
            ),
            Event::Timeout => "nothing before the deadline".into(),
        }
    }
}

/// A ping the peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingSeen {
    /// When it arrived.
    pub at: Instant,
    /// Time since the connection opened.
    pub since_open: Duration,
    /// Its payload length.
    pub payload_len: usize,
    /// Whether a pong was sent back.
    pub answered: bool,
}

/// Why [`Connection::stream_frame`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStop {
    /// Every byte asked for was written.
    Completed,
    /// The peer closed or dropped the connection (its event is waiting in
    /// [`Connection::read_event`]).
    PeerEnded,
    /// A write failed (reset, broken pipe).
    WriteFailed(String),
    /// The deadline passed.
    Deadline,
}

/// What [`Connection::stream_frame`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// Length the header declared.
    pub declared_len: u64,
    /// Whether the header went out.
    pub header_sent: bool,
    /// Payload bytes written.
    pub payload_sent: u64,
    /// Why it stopped.
    pub stop: StreamStop,
}

/// Events seen until the connection ended (or the deadline passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The last event: close, drop, or timeout.
    pub end: Event,
    /// Text and binary messages received on the way (data that flowed).
    pub data_messages: u64,
    /// The first events before the end, pings included.
    pub events: Vec<Event>,
}

/// Recognises a protocol's own heartbeat in a whole text message (an Engine.IO `2`, a STOMP
/// end-of-line, a SignalR ping record) and gives its answer: the reader answers these like
/// WebSocket pings, and logs them as pings, even while no one reads the connection.
pub type TextHeartbeat = Arc<dyn Fn(&str) -> Option<Option<String>> + Send + Sync>;

/// State shared by the caller's side and the reader task.
struct Shared {
    opened: Instant,
    /// Permits for [`QUEUE_BYTES`]: taken by the reader per queued event, returned on receipt.
    queue_bytes: tokio::sync::Semaphore,
    answer_pings: AtomicBool,
    ended: AtomicBool,
    pings: Mutex<Vec<PingSeen>>,
    transcript: Mutex<ConnectionLog>,
    /// The protocol heartbeat recogniser, once the caller sets one.
    text_heartbeat: std::sync::OnceLock<TextHeartbeat>,
    /// The rules of RFC 6455 the server broke on this connection, in order.
    violations: Mutex<Vec<Violation>>,
}

/// Locks a std mutex; a poisoned lock still holds usable evidence.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn record(&self, direction: Direction, what: impl AsRef<str>) {
        lock(&self.transcript).push(direction, what);
    }

    fn redactor(&self) -> Secrets {
        lock(&self.transcript).redactor().clone()
    }
}

type Writer = Arc<tokio::sync::Mutex<WriteHalf<BoxStream>>>;

/// An upgraded WebSocket connection driven by the harness.
pub struct Connection {
    writer: Writer,
    events: mpsc::Receiver<Event>,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    /// How the reader task ended, once known (a finished handle must not be polled again).
    reader_end: Option<Result<(), String>>,
    write_timeout: Duration,
    tls: Option<TlsFacts>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("ended", &self.has_ended())
            .field("tls", &self.tls.as_ref().map(|t| t.version.as_str()))
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Starts a connection over an upgraded stream; `prefix` holds bytes read past the
    /// handshake. Must run inside a tokio runtime (the reader is a task).
    pub fn new<S: Stream>(stream: S, prefix: &[u8]) -> Self {
        Self::with_transcript(stream, prefix, ConnectionLog::new(), None, false)
    }

    /// Like [`Connection::new`], continuing a transcript and keeping the TLS facts; `deflate`
    /// when the handshake negotiated permessage-deflate (compressed messages are inflated).
    pub fn with_transcript<S: Stream>(
        stream: S,
        prefix: &[u8],
        transcript: ConnectionLog,
        tls: Option<TlsFacts>,
        deflate: bool,
    ) -> Self {
        let boxed: BoxStream = Box::new(stream);
        let (rd, wr) = tokio::io::split(boxed);
        let writer = Arc::new(tokio::sync::Mutex::new(wr));
        let shared = Arc::new(Shared {
            opened: Instant::now(),
            queue_bytes: tokio::sync::Semaphore::new(QUEUE_BYTES),
            answer_pings: AtomicBool::new(true),
            ended: AtomicBool::new(false),
            pings: Mutex::new(Vec::new()),
            transcript: Mutex::new(transcript),
            text_heartbeat: std::sync::OnceLock::new(),
            violations: Mutex::new(Vec::new()),
        });
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let reader = tokio::spawn(read_loop(
            FrameReader::with_prefix(rd, prefix),
            tx,
            shared.clone(),
            writer.clone(),
            deflate.then(Inflater::new),
        ));
        Self {
            writer,
            events,
            shared,
            reader,
            reader_end: None,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            tls,
        }
    }

    /// TLS facts of the connection, for `wss://`.
    pub fn tls_facts(&self) -> Option<&TlsFacts> {
        self.tls.as_ref()
    }

    /// Whether pings are answered with pongs (on by default); off simulates a stale client.
    pub fn answer_pings(&self, answer: bool) {
        self.shared.answer_pings.store(answer, Ordering::Relaxed);
    }

    /// Whether pings are answered now.
    pub fn answering_pings(&self) -> bool {
        self.shared.answer_pings.load(Ordering::Relaxed)
    }

    /// Sets the recogniser of the protocol's own heartbeats (once; later calls are ignored):
    /// whole text messages it recognises are answered and logged as pings.
    pub fn set_text_heartbeat(&self, heartbeat: TextHeartbeat) {
        let _ = self.shared.text_heartbeat.set(heartbeat);
    }

    /// Logs a protocol heartbeat the caller found inside a larger message (and answered, or
    /// not), as the reader logs the ones it answers itself.
    pub fn record_ping(&self, payload_len: usize, answered: bool) {
        log_ping(
            &self.shared,
            payload_len,
            self.answering_pings(),
            answered,
            "protocol ping",
        );
    }

    /// Pings received so far, with arrival times.
    pub fn pings(&self) -> Vec<PingSeen> {
        lock(&self.shared.pings).clone()
    }

    /// Whether the reader saw the connection end (close frame, EOF or error).
    pub fn has_ended(&self) -> bool {
        self.shared.ended.load(Ordering::Relaxed)
    }

    /// The rules of RFC 6455 the server broke on this connection so far: the one that failed
    /// it, and any bytes sent after its close frame.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.shared.violations).clone()
    }

    /// A copy of the transcript so far.
    pub fn transcript(&self) -> ConnectionLog {
        lock(&self.shared.transcript).clone()
    }

    /// Registers a secret (ticket, token) to redact from transcript entries recorded from now on.
    pub fn add_secret(&self, secret: &str) {
        lock(&self.shared.transcript).add_secret(secret);
    }

    /// Adds a note to the transcript (what the caller is about to test, for instance).
    pub fn note(&self, what: &str) {
        self.shared.record(Direction::Note, what);
    }

    /// Sets the bound on each later write.
    pub fn set_write_timeout(&mut self, timeout: Duration) {
        self.write_timeout = timeout;
    }

    async fn write(&self, bytes: &[u8], deadline: &Deadline) -> Result<(), ClientError> {
        deadline
            .run(Phase::WriteFrame, async {
                let mut w = self.writer.lock().await;
                w.write_all(bytes)
                    .await
                    .map_err(|e| io_error(Phase::WriteFrame, &e))?;
                w.flush().await.map_err(|e| io_error(Phase::WriteFrame, &e))
            })
            .await
    }

    /// Sends one frame exactly as specified.
    pub async fn send_frame(&self, spec: &FrameSpec) -> Result<(), ClientError> {
        let redactor = self.shared.redactor();
        let result = self
            .write(&spec.encode(), &Deadline::after(self.write_timeout))
            .await;
        let what = spec.describe(&redactor);
        match &result {
            Ok(()) => self.shared.record(Direction::Sent, what),
            Err(e) => self
                .shared
                .record(Direction::Note, format!("failed to send {what}: {e}")),
        }
        result
    }

    /// Sends a masked text frame.
    pub async fn send_text(&self, text: &str) -> Result<(), ClientError> {
        self.send_frame(&FrameSpec::text(text)).await
    }

    /// Sends a masked binary frame.
    pub async fn send_binary(&self, data: &[u8]) -> Result<(), ClientError> {
        self.send_frame(&FrameSpec::binary(data)).await
    }

    /// Sends a close frame with any code and reason.
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), ClientError> {
        self.send_frame(&FrameSpec::close(code, reason)).await
    }

    /// Writes arbitrary bytes (garbage, a hand-made frame).
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<(), ClientError> {
        let result = self
            .write(bytes, &Deadline::after(self.write_timeout))
            .await;
        let redactor = self.shared.redactor();
        self.shared.record(
            Direction::Sent,
            format!(
                "{} raw bytes: {}",
                bytes.len(),
                redactor.preview(bytes, PREVIEW_CHARS)
            ),
        );
        result
    }

    /// Sends one message split into `fragments`: the first with `opcode`, the rest as
    /// continuations, FIN on the last (an empty list sends one empty final frame).
    pub async fn send_fragmented(
        &self,
        opcode: u8,
        fragments: &[&[u8]],
    ) -> Result<(), ClientError> {
        if fragments.is_empty() {
            return self.send_frame(&FrameSpec::new(opcode, Vec::new())).await;
        }
        for (i, part) in fragments.iter().enumerate() {
            let op = if i == 0 { opcode } else { opcode::CONTINUATION };
            let spec = FrameSpec::new(op, *part).fin(i + 1 == fragments.len());
            self.send_frame(&spec).await?;
        }
        Ok(())
    }

    /// Streams one frame of `send_len` payload bytes from a small reused buffer, under `timeout`.
    ///
    /// The header bits, mask and declared length come from `spec` (declared defaults to
    /// `send_len`); its payload is the fill pattern, repeated (zeros when empty, first 1 KiB
    /// used). Stops early when the peer ends the connection or a write fails.
    pub async fn stream_frame(
        &self,
        spec: &FrameSpec,
        send_len: u64,
        timeout: Duration,
    ) -> StreamReport {
        self.stream_frame_after(spec, &[], send_len, timeout).await
    }

    /// [`Connection::stream_frame`] whose payload starts with `prefix` (a valid message), the
    /// fill pattern after it up to `send_len` bytes in all (a message padded to a size).
    pub async fn stream_frame_after(
        &self,
        spec: &FrameSpec,
        prefix: &[u8],
        send_len: u64,
        timeout: Duration,
    ) -> StreamReport {
        let deadline = Deadline::after(timeout);
        let header = spec.header();
        let declared = spec.declared_length.unwrap_or(send_len);
        let mut head = Vec::with_capacity(14);
        // Writing into a Vec cannot fail.
        let _ = header.format(declared, &mut head);
        let prefix = &prefix[..prefix
            .len()
            .min(usize::try_from(send_len).unwrap_or(usize::MAX))];
        let mut first = prefix.to_vec();
        if let Some(m) = header.mask {
            apply_mask(&mut first, m, 0);
        }
        // The fill continues the stream at offset `prefix.len()`: mask it from there.
        let chunk = stream_chunk_at(&spec.payload, header.mask, prefix.len() as u64);
        let mut header_sent = false;
        let mut sent: u64 = 0;
        let outcome = tokio::time::timeout_at(deadline.at, async {
            let mut w = self.writer.lock().await;
            w.write_all(&head).await?;
            header_sent = true;
            w.write_all(&first).await?;
            sent = first.len() as u64;
            while sent < send_len {
                if self.shared.ended.load(Ordering::Relaxed) {
                    return Ok(StreamStop::PeerEnded);
                }
                // The chunk length is a multiple of the mask and pattern periods, so the byte
                // for fill offset `sent - prefix` is at that offset modulo its length.
                let pos = ((sent - first.len() as u64) % chunk.len() as u64) as usize;
                let n =
                    (chunk.len() - pos).min(usize::try_from(send_len - sent).unwrap_or(usize::MAX));
                let k = w.write(&chunk[pos..pos + n]).await?;
                if k == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::WriteZero));
                }
                sent += k as u64;
            }
            w.flush().await?;
            Ok(StreamStop::Completed)
        })
        .await;
        let stop = match outcome {
            Err(_) => StreamStop::Deadline,
            Ok(Ok(stop)) => stop,
            // A write error right after the peer ended is the peer ending, not a client fault.
            Ok(Err(_)) if self.has_ended() => StreamStop::PeerEnded,
            Ok(Err(e)) => StreamStop::WriteFailed(e.to_string()),
        };
        self.shared.record(
            Direction::Sent,
            format!(
                "streamed {} frame declaring {declared} B: {sent} B of {send_len} B sent, stopped: {stop:?}",
                opcode_name(spec.opcode & 0x0F)
            ),
        );
        StreamReport {
            declared_len: declared,
            header_sent,
            payload_sent: sent,
            stop,
        }
    }

    /// The next event, waiting at most `timeout`.
    pub async fn read_event(&mut self, timeout: Duration) -> Event {
        self.read_event_by(&Deadline::after(timeout)).await
    }

    /// The next event, waiting until `deadline`.
    pub async fn read_event_by(&mut self, deadline: &Deadline) -> Event {
        match tokio::time::timeout_at(deadline.at, self.events.recv()).await {
            Err(_) => Event::Timeout,
            Ok(Some(e)) => {
                self.shared.queue_bytes.add_permits(queue_cost(&e));
                e
            }
            Ok(None) => self.after_reader(),
        }
    }

    /// The event for a read after the reader's queue closed. A reader that ended normally
    /// queued the end of the connection first (and set `ended`), so this is a read past the
    /// end; one that panicked or was cancelled is a harness fault, never a peer's drop.
    fn after_reader(&mut self) -> Event {
        if self.reader_end.is_none() {
            use futures_util::FutureExt as _;
            self.reader_end = match (&mut self.reader).now_or_never() {
                Some(Ok(())) => Some(Ok(())),
                Some(Err(e)) if e.is_panic() => Some(Err(format!(
                    "the connection's reader task panicked: {}",
                    panic_message(e.into_panic())
                ))),
                Some(Err(_)) => Some(Err("the connection's reader task was cancelled".into())),
                // Still unwinding: a normal end would have been reported first.
                None if !self.has_ended() => Some(Err(
                    "the connection's reader task stopped without reporting how the connection ended"
                        .into(),
                )),
                None => None,
            };
        }
        match &self.reader_end {
            Some(Err(error)) => {
                self.shared.ended.store(true, Ordering::Relaxed);
                Event::ReaderFailed {
                    error: error.clone(),
                }
            }
            _ => Event::Dropped {
                error: "the connection has already ended".into(),
            },
        }
    }

    /// Reads until the connection ends or `timeout` passes, counting the data that flowed.
    pub async fn wait_for_close(&mut self, timeout: Duration) -> Observed {
        let deadline = Deadline::after(timeout);
        let mut observed = Observed {
            end: Event::Timeout,
            data_messages: 0,
            events: Vec::new(),
        };
        loop {
            let e = self.read_event_by(&deadline).await;
            if e.is_end() || e == Event::Timeout {
                observed.end = e;
                return observed;
            }
            if matches!(e, Event::Text(_) | Event::Binary(_)) {
                observed.data_messages += 1;
            }
            if observed.events.len() < OBSERVED_KEEP {
                observed.events.push(e);
            }
        }
    }

    /// The next text message parsed as JSON, skipping pings and pongs; otherwise the event that
    /// came instead (a non-JSON text, a close, a drop, a timeout...).
    pub async fn expect_json_reply(
        &mut self,
        timeout: Duration,
    ) -> Result<serde_json::Value, Event> {
        let deadline = Deadline::after(timeout);
        loop {
            match self.read_event_by(&deadline).await {
                Event::Ping(_) | Event::Pong(_) => continue,
                Event::Text(t) => return serde_json::from_str(&t).map_err(|_| Event::Text(t)),
                other => return Err(other),
            }
        }
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_string(), |s| (*s).to_string()),
    }
}

/// The pre-masked chunk [`Connection::stream_frame`] repeats: the pattern tiled over a length
/// that is a multiple of 4 (the mask period) and of the pattern length.
#[cfg(test)]
fn stream_chunk(pattern: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    stream_chunk_at(pattern, mask, 0)
}

/// [`stream_chunk`] for a fill that starts at stream offset `offset` (after a prefix): masked
/// from that offset.
fn stream_chunk_at(pattern: &[u8], mask: Option<[u8; 4]>, offset: u64) -> Vec<u8> {
    let pattern: &[u8] = match pattern.len() {
        0 => &[0],
        n => &pattern[..n.min(1024)],
    };
    let period = lcm(4, pattern.len());
    let len = STREAM_CHUNK - STREAM_CHUNK % period;
    let mut chunk: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
    if let Some(m) = mask {
        apply_mask(&mut chunk, m, offset);
    }
    chunk
}

fn lcm(a: usize, b: usize) -> usize {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    a / x * b
}

/// A message being reassembled from fragments.
enum Partial {
    None,
    /// Collecting a message.
    Collecting(Message),
    /// Dropping the rest of a message that went over the cap.
    Skipping,
}

/// A data message as it came off the wire.
struct Message {
    /// Text (else binary).
    text: bool,
    /// Compressed with permessage-deflate (RSV1 on its first frame).
    compressed: bool,
    /// Its payload, frames joined.
    data: Vec<u8>,
}

/// What one frame completed.
enum Completed {
    /// A data message.
    Message(Message),
    /// Anything else.
    Event(Event),
}

/// Reads frames until the connection ends, answering pings and queuing events; compressed
/// messages are inflated when the handshake negotiated permessage-deflate (`inflater`).
async fn read_loop(
    mut reader: FrameReader<ReadHalf<BoxStream>>,
    tx: mpsc::Sender<Event>,
    shared: Arc<Shared>,
    writer: Writer,
    mut inflater: Option<Inflater>,
) {
    let mut partial = Partial::None;
    let mut rules = FrameRules::new(inflater.is_some());
    let end = loop {
        let h = match reader.read_header().await {
            Ok(Some(h)) => h,
            Ok(None) => {
                break Event::Dropped {
                    error: "connection closed without a close frame".into(),
                };
            }
            Err(e) => {
                break Event::Dropped {
                    error: e.to_string(),
                };
            }
        };
        if let Err(v) = rules.check_header(&h) {
            break fail_connection(&shared, &writer, v).await;
        }
        let kept = match &partial {
            Partial::Collecting(m) if !h.is_control() => m.data.len() as u64,
            _ => 0,
        };
        if kept.saturating_add(h.length) > READ_CAP as u64 {
            let event = Event::Skipped {
                opcode: h.opcode_bits,
                declared_len: kept.saturating_add(h.length),
                reason: "larger than the client's read cap",
            };
            if !h.is_control() {
                partial = if h.header.is_final {
                    Partial::None
                } else {
                    Partial::Skipping
                };
            }
            if !queue(&tx, &shared, event).await {
                return;
            }
            // Skipping reads through a small buffer; a peer claiming 2^63 bytes just keeps
            // this task busy until the caller's deadline drops the connection.
            if let Err(e) = reader.skip_payload(h.length).await {
                break Event::Dropped {
                    error: e.to_string(),
                };
            }
            continue;
        }
        // The cap check above bounds the length.
        let len = usize::try_from(h.length).unwrap_or(READ_CAP);
        let payload = match reader.read_payload(len, h.header.mask).await {
            Ok(p) => p,
            Err(e) => {
                break Event::Dropped {
                    error: e.to_string(),
                };
            }
        };
        if h.opcode_bits == opcode::CLOSE
            && let Err(v) = check_close(&payload)
        {
            break fail_connection(&shared, &writer, v).await;
        }
        let completed = match on_frame(&h, payload, &mut partial) {
            Some(Completed::Message(m)) => match message_event(m, inflater.as_mut(), &shared) {
                Ok(e) => Some(e),
                Err(v) => break fail_connection(&shared, &writer, v).await,
            },
            Some(Completed::Event(e)) => Some(e),
            None => None,
        };
        let event = match completed {
            Some(Event::Ping(p)) => {
                answer_heartbeat(&shared, &writer, Some((opcode::PONG, &p)), p.len(), "ping").await;
                Event::Ping(p)
            }
            Some(Event::Text(t)) => match shared.text_heartbeat.get().and_then(|hb| hb(&t)) {
                Some(reply) => {
                    let reply = reply.as_deref().map(|r| (opcode::TEXT, r.as_bytes()));
                    answer_heartbeat(&shared, &writer, reply, t.len(), "protocol ping").await;
                    Event::Ping(t.into_bytes())
                }
                None => Event::Text(t),
            },
            Some(e) if e.is_end() => break e,
            Some(e) => e,
            None => continue,
        };
        if !queue(&tx, &shared, event).await {
            return;
        }
    };
    shared.ended.store(true, Ordering::Relaxed);
    let closed = matches!(end, Event::Close { .. });
    let _ = queue(&tx, &shared, end).await;
    // The caller's reads end here; only the watch for bytes after a close goes on.
    drop(tx);
    if closed {
        watch_after_close(&mut reader, &shared).await;
    }
}

/// Fails the connection for a broken rule, as a browser does (RFC 6455 7.1.7): records it,
/// sends a close 1002 (best effort, bounded), and gives the event that ends the connection.
async fn fail_connection(shared: &Shared, writer: &Writer, v: Violation) -> Event {
    lock(&shared.violations).push(v.clone());
    let frame = FrameSpec::close(1002, "").encode();
    let _ = tokio::time::timeout(PONG_DEADLINE, async {
        let mut w = writer.lock().await;
        w.write_all(&frame).await?;
        w.flush().await?;
        w.shutdown().await
    })
    .await;
    Event::Violation(v)
}

/// After the server's close frame, notes whatever else it sends within [`AFTER_CLOSE_GRACE`]
/// (RFC 6455 5.5.1: nothing may follow a close). A browser ignores such bytes; so does the
/// client, but the protocol control reports them.
async fn watch_after_close(reader: &mut FrameReader<ReadHalf<BoxStream>>, shared: &Shared) {
    let mut extra = reader.buffered().len();
    if extra == 0 {
        extra = match tokio::time::timeout(AFTER_CLOSE_GRACE, reader.fill()).await {
            Ok(Ok(n)) => n,
            _ => 0,
        };
    }
    if extra > 0 {
        let v = data_after_close(extra);
        shared.record(Direction::Note, format!("the server broke {v}"));
        lock(&shared.violations).push(v);
    }
}

/// The event of a complete data message: inflated first when it came compressed on a
/// connection that negotiated permessage-deflate (bounded by [`READ_CAP`], like every other
/// message; the transcript notes the compression and any cut).
fn message_event(
    m: Message,
    inflater: Option<&mut Inflater>,
    shared: &Shared,
) -> Result<Event, Violation> {
    let data = match (m.compressed, inflater) {
        (true, Some(inflater)) => {
            let wire = m.data.len();
            match inflater.inflate(&m.data, READ_CAP) {
                Ok(data) => {
                    shared.record(
                        Direction::Note,
                        format!(
                            "the next message came compressed (permessage-deflate): {wire} B on \
                             the wire, {} B inflated",
                            data.len()
                        ),
                    );
                    data
                }
                Err(e) => {
                    shared.record(
                        Direction::Note,
                        format!("a compressed message of {wire} B on the wire {e}"),
                    );
                    return Ok(Event::Skipped {
                        opcode: if m.text { opcode::TEXT } else { opcode::BINARY },
                        declared_len: wire as u64,
                        reason: match e {
                            InflateError::TooLarge { .. } => {
                                "inflates past the client's read cap (cut there)"
                            }
                            InflateError::Corrupt(_) => "compressed data that does not inflate",
                        },
                    });
                }
            }
        }
        _ => m.data,
    };
    if m.text {
        check_text(&data)?;
        Ok(Event::Text(String::from_utf8(data).unwrap_or_else(|e| {
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        })))
    } else {
        Ok(Event::Binary(data))
    }
}

/// What one frame completes; `None` while a fragmented message is incomplete.
fn on_frame(h: &RawHeader, payload: Vec<u8>, partial: &mut Partial) -> Option<Completed> {
    let skipped = |reason| {
        Some(Completed::Event(Event::Skipped {
            opcode: h.opcode_bits,
            declared_len: h.length,
            reason,
        }))
    };
    match h.opcode_bits {
        opcode::PING => Some(Completed::Event(Event::Ping(payload))),
        opcode::PONG => Some(Completed::Event(Event::Pong(payload))),
        opcode::CLOSE => {
            let c = parse_close(&payload);
            Some(Completed::Event(Event::Close {
                code: c.code,
                reason: c.reason,
            }))
        }
        opcode::TEXT | opcode::BINARY => {
            let m = Message {
                text: h.opcode_bits == opcode::TEXT,
                compressed: h.header.rsv1,
                data: payload,
            };
            if h.header.is_final {
                *partial = Partial::None;
                Some(Completed::Message(m))
            } else {
                *partial = Partial::Collecting(m);
                None
            }
        }
        opcode::CONTINUATION => match std::mem::replace(partial, Partial::None) {
            Partial::Collecting(mut m) => {
                m.data.extend_from_slice(&payload);
                if h.header.is_final {
                    Some(Completed::Message(m))
                } else {
                    *partial = Partial::Collecting(m);
                    None
                }
            }
            Partial::Skipping => {
                if !h.header.is_final {
                    *partial = Partial::Skipping;
                }
                None
            }
            Partial::None => skipped("continuation without a message to continue"),
        },
        _ => skipped("reserved opcode"),
    }
}

/// Logs a heartbeat of `len` bytes from the server (`what`: a ping, a protocol ping) and,
/// unless answering is switched off, sends `reply` (opcode and payload: a pong, the
/// protocol's answer) within [`PONG_DEADLINE`].
async fn answer_heartbeat(
    shared: &Shared,
    writer: &Writer,
    reply: Option<(u8, &[u8])>,
    len: usize,
    what: &str,
) {
    let answer = shared.answer_pings.load(Ordering::Relaxed);
    let mut answered = false;
    if let (true, Some((op, payload))) = (answer, reply) {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        crate::wire::encode_frame(
            &mut frame,
            &crate::wire::header(OpCode::from(op), Some(rand::random())),
            payload,
        );
        answered = tokio::time::timeout(PONG_DEADLINE, async {
            let mut w = writer.lock().await;
            w.write_all(&frame).await?;
            w.flush().await
        })
        .await
        .is_ok_and(|r| r.is_ok());
    }
    log_ping(shared, len, answer, answered, what);
}

/// Keeps a ping in the ping log and the transcript.
fn log_ping(shared: &Shared, payload_len: usize, answer: bool, answered: bool, what: &str) {
    let mut pings = lock(&shared.pings);
    if pings.len() < PING_LOG {
        pings.push(PingSeen {
            at: Instant::now(),
            since_open: shared.opened.elapsed(),
            payload_len,
            answered,
        });
    }
    drop(pings);
    shared.record(
        Direction::Received,
        format!(
            "{what} ({payload_len} B), {}",
            match (answer, answered) {
                (false, _) => "not answered (pongs switched off)",
                (true, true) => "answered",
                (true, false) => "the answer could not be sent",
            }
        ),
    );
}

/// Records and queues an event; pings and pongs are dropped when the caller lags (they are in
/// the ping log and transcript), everything else waits. `false` once the caller is gone.
async fn queue(tx: &mpsc::Sender<Event>, shared: &Shared, event: Event) -> bool {
    if !matches!(event, Event::Ping(_)) {
        let what = event.describe(&shared.redactor());
        shared.record(Direction::Received, what);
    }
    let cost = queue_cost(&event);
    match event {
        Event::Ping(_) | Event::Pong(_) => {
            let Ok(permit) = shared.queue_bytes.try_acquire_many(cost as u32) else {
                return !tx.is_closed();
            };
            match tx.try_send(event) {
                Ok(()) => {
                    permit.forget();
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        }
        e => {
            // The semaphore is never closed; the caller returns the permits on receipt.
            let Ok(permit) = shared.queue_bytes.acquire_many(cost as u32).await else {
                return false;
            };
            permit.forget();
            tx.send(e).await.is_ok()
        }
    }
}

/// What an event costs against [`QUEUE_BYTES`]: its payload, at least one, at most the whole
/// budget (so any event can be queued once the queue is empty).
fn queue_cost(e: &Event) -> usize {
    e.held_bytes().clamp(1, QUEUE_BYTES)
}

/// Streams for tests of the harness's own failure paths.
#[cfg(test)]
pub(crate) mod test_support {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite};

    /// A stream whose reads panic: a bug in the harness's own reader, not anything a peer does.
    pub struct PanicOnRead;

    impl AsyncRead for PanicOnRead {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            panic!("injected reader fault")
        }
    }

    impl AsyncWrite for PanicOnRead {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_header;
    use test_support::PanicOnRead;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_panicking_reader_is_a_harness_fault_never_a_drop() {
        let mut conn = Connection::new(PanicOnRead, &[]);
        let e = conn.read_event(Duration::from_secs(10)).await;
        match &e {
            Event::ReaderFailed { error } => {
                assert!(error.contains("injected reader fault"), "{error}");
            }
            other => panic!("a reader panic surfaced as {other:?}"),
        }
        assert!(e.is_harness_fault() && e.is_end());
        assert!(conn.has_ended());
        // Every later read says the same; none becomes a drop (rejection evidence).
        assert!(conn.read_event(Duration::ZERO).await.is_harness_fault());
    }

    #[tokio::test]
    async fn a_read_past_a_normal_end_is_still_a_drop() {
        let (client, server) = tokio::io::duplex(1024);
        drop(server);
        let mut conn = Connection::new(client, &[]);
        let first = conn.read_event(Duration::from_secs(10)).await;
        assert!(matches!(first, Event::Dropped { .. }), "{first:?}");
        let again = conn.read_event(Duration::from_secs(10)).await;
        assert!(matches!(again, Event::Dropped { .. }), "{again:?}");
    }

    #[test]
    fn frame_specs_encode_every_bit_as_asked() {
        let f = FrameSpec::new(0x3, b"abc".to_vec())
            .fin(false)
            .rsv(true, false, true)
            .mask(Mask::Unmasked)
            .declaring(1 << 40)
            .encode();
        let h = parse_header(&f).expect("header");
        assert_eq!(h.opcode_bits, 3);
        assert!(!h.header.is_final && h.header.rsv1 && !h.header.rsv2 && h.header.rsv3);
        assert_eq!(h.header.mask, None);
        assert_eq!(h.length, 1 << 40);
        assert_eq!(&f[h.header_len..], b"abc");
        let masked = FrameSpec::text("hi")
            .mask(Mask::Fixed([1, 2, 3, 4]))
            .encode();
        assert_eq!(masked[..2], [0x81, 0x82]);
        assert_eq!(masked[6..], [b'h' ^ 1, b'i' ^ 2]);
        let desc = FrameSpec::new(0xF, b"x".to_vec())
            .declaring(9)
            .describe(&Secrets::new());
        assert!(
            desc.contains("reserved opcode 0xf") && desc.contains("declaring 9 B"),
            "{desc}"
        );
        assert_eq!(FrameSpec::close(1000, "").payload, [0x03, 0xE8]);
    }

    #[test]
    fn stream_chunks_repeat_seamlessly_under_the_mask() {
        let mask = [9, 8, 7, 6];
        let chunk = stream_chunk(b"abc", Some(mask));
        assert_eq!(chunk.len() % 12, 0);
        assert!(chunk.len() <= STREAM_CHUNK);
        // Unmask two consecutive copies as one stream: the pattern must continue across.
        let mut two = [chunk.clone(), chunk].concat();
        apply_mask(&mut two, mask, 0);
        assert!(two.chunks(3).all(|c| c == b"abc"));
        assert_eq!(stream_chunk(&[], None).len(), STREAM_CHUNK);
    }

    /// A connection over an in-memory pipe, and the peer's end.
    fn pair() -> (Connection, tokio::io::DuplexStream) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        (Connection::new(a, &[]), b)
    }

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        FrameSpec::new(opcode, payload.to_vec())
            .mask(Mask::Unmasked)
            .encode()
    }

    #[tokio::test]
    async fn compressed_messages_are_inflated_and_a_bomb_is_cut_at_the_cap() {
        let (a, mut peer) = tokio::io::duplex(64 * 1024);
        let mut conn = Connection::with_transcript(a, &[], ConnectionLog::new(), None, true);
        let auth_ok = super::super::deflate::compress_message(br#"{"type":"auth_ok"}"#);
        // Fragmented: RSV1 on the first frame only.
        let (head, tail) = auth_ok.split_at(auth_ok.len() / 2);
        let mut wire = FrameSpec::new(opcode::TEXT, head.to_vec())
            .rsv(true, false, false)
            .fin(false)
            .mask(Mask::Unmasked)
            .encode();
        wire.extend(server_frame(opcode::CONTINUATION, tail));
        peer.write_all(&wire).await.expect("write");
        assert_eq!(
            conn.read_event(Duration::from_secs(5)).await,
            Event::Text(r#"{"type":"auth_ok"}"#.into())
        );
        // An uncompressed message on the same connection is read as it is.
        peer.write_all(&server_frame(opcode::TEXT, b"plain"))
            .await
            .expect("write");
        assert_eq!(
            conn.read_event(Duration::from_secs(5)).await,
            Event::Text("plain".into())
        );
        // 64 MiB of spaces in a few KiB: cut at the cap, nothing close to it allocated.
        let bomb = super::super::deflate::compress_message(&vec![b' '; 64 * 1024 * 1024]);
        assert!(bomb.len() < 128 * 1024, "{}", bomb.len());
        let mut fresh = Connection::with_transcript(
            {
                let (a, b) = tokio::io::duplex(256 * 1024);
                peer = b;
                a
            },
            &[],
            ConnectionLog::new(),
            None,
            true,
        );
        let frame = FrameSpec::new(opcode::TEXT, bomb.clone())
            .rsv(true, false, false)
            .mask(Mask::Unmasked)
            .encode();
        let writer = tokio::spawn(async move {
            let _ = peer.write_all(&frame).await;
            peer
        });
        match fresh.read_event(Duration::from_secs(20)).await {
            Event::Skipped {
                declared_len,
                reason,
                ..
            } => {
                assert_eq!(declared_len, bomb.len() as u64);
                assert!(reason.contains("read cap"), "{reason}");
            }
            other => panic!("expected the bomb skipped, got {other:?}"),
        }
        let t = fresh.transcript().to_string();
        assert!(
            t.contains("inflates past the client's cap of 1048576 bytes"),
            "{t}"
        );
        drop(writer);
        let t = conn.transcript().to_string();
        assert!(t.contains("came compressed (permessage-deflate)"), "{t}");
    }

    #[tokio::test]
    async fn pings_are_answered_logged_and_can_be_ignored() {
        let (mut conn, mut peer) = pair();
        peer.write_all(&server_frame(opcode::PING, b"p1"))
            .await
            .expect("write");
        assert_eq!(
            conn.read_event(Duration::from_secs(5)).await,
            Event::Ping(b"p1".to_vec())
        );
        let mut pong = [0u8; 8];
        peer.read_exact(&mut pong).await.expect("pong");
        let h = parse_header(&pong).expect("pong header");
        assert_eq!(h.opcode_bits, opcode::PONG);
        let mut body = pong[h.header_len..].to_vec();
        apply_mask(&mut body, h.header.mask.expect("masked pong"), 0);
        assert_eq!(body, b"p1");

        conn.answer_pings(false);
        peer.write_all(&server_frame(opcode::PING, b"p2"))
            .await
            .expect("write");
        peer.write_all(&server_frame(opcode::TEXT, b"{\"a\":1}"))
            .await
            .expect("write");
        let reply = conn.expect_json_reply(Duration::from_secs(5)).await;
        assert_eq!(reply, Ok(serde_json::json!({"a": 1})));
        let pings = conn.pings();
        assert_eq!(pings.len(), 2);
        assert!(pings[0].answered && !pings[1].answered);
        let t = conn.transcript().to_string();
        assert!(t.contains("not answered"), "{t}");
    }

    #[tokio::test]
    async fn oversized_and_fragmented_messages_are_bounded() {
        let (mut conn, mut peer) = pair();
        let d = Duration::from_secs(5);
        let big = vec![b'x'; READ_CAP + 1];
        let writer = tokio::spawn(async move {
            peer.write_all(&server_frame(opcode::BINARY, &big))
                .await
                .expect("write");
            // A fragmented text message with a ping inside, then a stray continuation.
            for frame in [
                FrameSpec::new(opcode::TEXT, b"he".to_vec()).fin(false),
                FrameSpec::new(opcode::PING, b"".to_vec()),
                FrameSpec::new(opcode::CONTINUATION, b"llo".to_vec()),
                FrameSpec::new(opcode::CONTINUATION, b"?".to_vec()),
            ] {
                peer.write_all(&frame.mask(Mask::Unmasked).encode())
                    .await
                    .expect("write");
            }
            peer
        });
        assert_eq!(
            conn.read_event(d).await,
            Event::Skipped {
                opcode: opcode::BINARY,
                declared_len: READ_CAP as u64 + 1,
                reason: "larger than the client's read cap"
            }
        );
        assert!(matches!(conn.read_event(d).await, Event::Ping(_)));
        assert_eq!(conn.read_event(d).await, Event::Text("hello".into()));
        // The stray continuation breaks RFC 6455 5.4: the client fails the connection.
        let e = conn.read_event(d).await;
        assert!(
            matches!(&e, Event::Violation(v) if v.rule == "RFC 6455 §5.4"),
            "{e:?}"
        );
        assert!(conn.has_ended());
        assert_eq!(conn.violations().len(), 1);
        assert!(matches!(conn.read_event(d).await, Event::Dropped { .. }));
        drop(writer.await.expect("writer"));
    }

    #[tokio::test]
    async fn an_invalid_ping_is_never_answered_and_fails_the_connection() {
        let (mut conn, mut peer) = pair();
        let d = Duration::from_secs(5);
        peer.write_all(&server_frame(opcode::PING, &[b'p'; 200]))
            .await
            .expect("write");
        let e = conn.read_event(d).await;
        assert!(
            matches!(&e, Event::Violation(v) if v.what.contains("at most 125")),
            "{e:?}"
        );
        // What the client sent back: a masked close 1002, and no pong.
        let mut back = Vec::new();
        tokio::time::timeout(d, peer.read_to_end(&mut back))
            .await
            .expect("the client closes")
            .expect("read");
        let h = parse_header(&back).expect("a frame");
        assert_eq!(h.opcode_bits, opcode::CLOSE, "{back:?}");
        let mut payload = back[h.header_len..].to_vec();
        apply_mask(&mut payload, h.header.mask.expect("masked"), 0);
        assert_eq!(payload, 1002u16.to_be_bytes());
        assert!(conn.pings().is_empty());
    }

    #[tokio::test]
    async fn bytes_after_the_close_frame_are_noted_not_fatal() {
        let (mut conn, mut peer) = pair();
        let mut bytes = FrameSpec::close(1000, "bye").mask(Mask::Unmasked).encode();
        bytes.extend(FrameSpec::text("late").mask(Mask::Unmasked).encode());
        peer.write_all(&bytes).await.expect("write");
        let e = conn.read_event(Duration::from_secs(5)).await;
        assert!(
            matches!(
                e,
                Event::Close {
                    code: Some(1000),
                    ..
                }
            ),
            "{e:?}"
        );
        tokio::time::sleep(AFTER_CLOSE_GRACE * 2).await;
        let v = conn.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(!v[0].fatal && v[0].what.contains("after its close frame"));
    }

    #[tokio::test]
    async fn streaming_sends_exactly_the_asked_bytes_and_stops_when_the_peer_goes() {
        let (conn, mut peer) = pair();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.expect("read");
            got
        });
        let spec = FrameSpec::binary(b"ab".to_vec())
            .mask(Mask::Fixed([1, 2, 3, 4]))
            .declaring(1 << 30);
        let report = conn
            .stream_frame(&spec, 40_003, Duration::from_secs(5))
            .await;
        assert_eq!(report.stop, StreamStop::Completed);
        assert_eq!(
            (report.payload_sent, report.declared_len),
            (40_003, 1 << 30)
        );
        drop(conn);
        let got = reader.await.expect("reader");
        let h = parse_header(&got).expect("header");
        assert_eq!(h.length, 1 << 30);
        let mut payload = got[h.header_len..].to_vec();
        assert_eq!(payload.len(), 40_003);
        apply_mask(&mut payload, [1, 2, 3, 4], 0);
        assert!(payload.chunks(2).all(|c| c == &b"ab"[..c.len()]));

        let (conn, peer) = pair();
        drop(peer);
        let report = conn
            .stream_frame(
                &FrameSpec::binary(Vec::new()),
                100 << 20,
                Duration::from_secs(5),
            )
            .await;
        assert!(report.payload_sent < 100 << 20);
        assert_ne!(report.stop, StreamStop::Completed);
    }

    #[tokio::test]
    async fn a_streamed_payload_can_start_with_a_message_and_be_padded() {
        let (conn, mut peer) = pair();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.expect("read");
            got
        });
        let spec = FrameSpec::text("")
            .mask(Mask::Fixed([7, 1, 2, 9]))
            .declaring(1 << 20);
        let message = br#"{"type":"payment"}"#;
        let mut padded = FrameSpec::text("").mask(Mask::Fixed([7, 1, 2, 9]));
        padded.payload = b" ".to_vec();
        padded.declared_length = spec.declared_length;
        let report = conn
            .stream_frame_after(&padded, message, 70_001, Duration::from_secs(5))
            .await;
        assert_eq!(report.stop, StreamStop::Completed);
        assert_eq!(report.payload_sent, 70_001);
        drop(conn);
        let got = reader.await.expect("reader");
        let h = parse_header(&got).expect("header");
        assert_eq!(h.length, 1 << 20);
        let mut payload = got[h.header_len..].to_vec();
        apply_mask(&mut payload, [7, 1, 2, 9], 0);
        assert_eq!(payload.len(), 70_001);
        assert!(payload.starts_with(message));
        assert!(payload[message.len()..].iter().all(|b| *b == b' '));
    }

    #[tokio::test]
    async fn garbage_and_huge_claims_never_panic_or_allocate() {
        let (mut conn, mut peer) = pair();
        // A text frame claiming 2^63 - 1 bytes (the most RFC 6455 allows), then silence.
        let mut claim = vec![0x81, 0x7F];
        claim.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        peer.write_all(&claim).await.expect("write");
        assert!(matches!(
            conn.read_event(Duration::from_secs(5)).await,
            Event::Skipped { declared_len, .. } if declared_len == u64::MAX >> 1
        ));
        assert_eq!(
            conn.read_event(Duration::from_millis(50)).await,
            Event::Timeout
        );
        drop(peer);
        assert!(matches!(
            conn.read_event(Duration::from_secs(5)).await,
            Event::Dropped { .. }
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_bytes_from_the_peer_end_in_events_without_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let (mut conn, mut peer) = pair();
                peer.write_all(&bytes).await.expect("write");
                drop(peer);
                let observed = conn.wait_for_close(Duration::from_secs(5)).await;
                assert!(observed.end.is_end(), "{:?}", observed.end);
            });
        }
    }
}
