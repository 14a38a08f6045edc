//! The message channel: the one place a case sends business and authentication messages and
//! reads replies, each reply classified once against the target (acknowledgement, rejection,
//! other data, end of connection with its close code and whether a close frame came at all).
//! Every judge, the login, the health check, floods and the live fuzzer go through it; a
//! protocol [`Dialect`] plugs in here. Frame-level actions (hand-built frames, streamed
//! payloads) pass through to the connection unchanged.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::dialect::Dialect;
use crate::client::conn::PingSeen;
use crate::client::{ClientError, Connection, ConnectionLog, Event, FrameSpec, Mask, StreamReport};
use crate::config::Secrets;
use crate::config::target::{CloseMeaning, Matcher, Target};

/// Bytes of events [`Channel::drain`] holds before leaving the rest queued in the connection:
/// thousands of acknowledgements, a handful of large messages.
pub const INBOX_BYTES: usize = 1024 * 1024;

/// How the target recognises its own replies: its matchers, read once from the target file.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    /// `messages.accepted_when`.
    pub ack: Option<Matcher>,
    /// `auth.accepted_when`.
    pub auth_ok: Option<Matcher>,
    /// `messages.rejected_when`.
    pub rejected: Option<Matcher>,
    /// `messages.warning_when`.
    pub warning: Option<Matcher>,
    /// The application close codes the target declares, and what they mean.
    pub close_codes: std::collections::BTreeMap<u16, CloseMeaning>,
}

impl Classifier {
    /// The matchers of `target`.
    pub fn of(target: &Target) -> Self {
        Self {
            ack: target
                .messages
                .as_ref()
                .and_then(|m| m.accepted_when.clone()),
            auth_ok: target.auth.as_ref().and_then(|a| a.accepted_when.clone()),
            rejected: target
                .messages
                .as_ref()
                .and_then(|m| m.rejected_when.clone()),
            warning: target
                .messages
                .as_ref()
                .and_then(|m| m.warning_when.clone()),
            close_codes: target.close_codes.clone(),
        }
    }

    /// Whether a close with `code` is one of `expected`, directly or as an application code
    /// the target declares with a meaning one of them has (4401 `unauthorized` for 1008).
    pub fn counts_as(&self, code: u16, expected: &[u16]) -> bool {
        expected.contains(&code)
            || self
                .close_codes
                .get(&code)
                .is_some_and(|m| m.standard_codes().iter().any(|c| expected.contains(c)))
    }

    /// What the target says a close code means, for evidence.
    pub fn meaning(&self, code: u16) -> Option<CloseMeaning> {
        self.close_codes.get(&code).copied()
    }

    /// The kind of one application message, given what the channel last sent (an
    /// authentication message is acknowledged by `auth.accepted_when`, a business message by
    /// `messages.accepted_when`; a text matching both counts as the one awaited).
    fn classify(&self, text: &str, awaiting: Awaiting) -> Kind {
        let matches = |m: &Option<Matcher>| m.as_ref().is_some_and(|m| m.matches(text));
        if matches(&self.rejected) {
            return Kind::Rejection;
        }
        if matches(&self.warning) {
            return Kind::Warning;
        }
        let (ack, auth) = (matches(&self.ack), matches(&self.auth_ok));
        match (ack, auth, awaiting) {
            (_, true, Awaiting::Auth) => Kind::AuthAccepted,
            (true, _, _) => Kind::Ack,
            (false, true, _) => Kind::AuthAccepted,
            (false, false, _) => Kind::Other,
        }
    }
}

/// What the channel sent last, deciding which acknowledgement a reply is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Awaiting {
    /// Nothing yet, or frames only.
    #[default]
    Nothing,
    /// An authentication message.
    Auth,
    /// Business messages.
    Business,
}

/// The kind of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A data message matching `messages.accepted_when`.
    Ack,
    /// A data message matching `auth.accepted_when`.
    AuthAccepted,
    /// A data message matching `messages.rejected_when`.
    Rejection,
    /// A data message matching `messages.warning_when`.
    Warning,
    /// Any other data message (text or binary).
    Other,
    /// A ping, a pong or a frame the client skipped.
    Control,
    /// A close frame (its code, if any, is in the event).
    Closed,
    /// The connection ended without a close frame.
    Dropped,
    /// The harness's own reader failed: nothing is known about the peer.
    Fault,
    /// Nothing before the deadline.
    Timeout,
}

/// One reply, classified once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// What it is.
    pub kind: Kind,
    /// The event it came from.
    pub event: Event,
}

impl Reply {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        match &self.event {
            Event::Close { code, .. } => *code,
            _ => None,
        }
    }

    /// The text of a text message.
    pub fn text(&self) -> Option<&str> {
        match &self.event {
            Event::Text(t) => Some(t),
            _ => None,
        }
    }

    /// Whether the connection is over after this reply.
    pub fn is_end(&self) -> bool {
        matches!(self.kind, Kind::Closed | Kind::Dropped | Kind::Fault)
    }

    /// Whether this acknowledges something (a business message or an authentication).
    pub fn is_acceptance(&self) -> bool {
        matches!(self.kind, Kind::Ack | Kind::AuthAccepted)
    }

    /// Whether it carries application data (anything but control frames and endings).
    pub fn is_data(&self) -> bool {
        matches!(
            self.kind,
            Kind::Ack | Kind::AuthAccepted | Kind::Rejection | Kind::Warning | Kind::Other
        )
    }

    /// A short, redacted description for evidence.
    pub fn describe(&self, secrets: &Secrets) -> String {
        self.event.describe(secrets)
    }
}

/// An upgraded connection speaking the target's dialect.
pub struct Channel {
    conn: Connection,
    dialect: Dialect,
    classifier: Arc<Classifier>,
    awaiting: Awaiting,
    /// Application messages unwrapped but not read yet, and events drained but not judged.
    inbox: VecDeque<Event>,
    /// When the connection opened.
    opened_at: Instant,
    /// `Sec-WebSocket-Extensions` of the 101.
    extensions: Option<String>,
    /// A failure of the harness itself (the reader task died): the case is inconclusive.
    fault: Option<String>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("dialect", &self.dialect)
            .field("awaiting", &self.awaiting)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// The memory an event holds, roughly (its payload plus a fixed overhead).
fn event_bytes(e: &Event) -> usize {
    e.held_bytes() + std::mem::size_of::<Event>()
}

impl Channel {
    /// A channel over an upgraded connection.
    pub fn new(
        conn: Connection,
        dialect: Dialect,
        classifier: Arc<Classifier>,
        extensions: Option<String>,
    ) -> Self {
        Self {
            conn,
            dialect,
            classifier,
            awaiting: Awaiting::Nothing,
            inbox: VecDeque::new(),
            opened_at: Instant::now(),
            extensions,
            fault: None,
        }
    }

    /// The dialect spoken.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// When the connection opened.
    pub fn opened_at(&self) -> Instant {
        self.opened_at
    }

    /// Whether the 101 negotiated extension `name` (case-insensitive, parameters ignored).
    pub fn negotiated(&self, name: &str) -> bool {
        extension_names(self.extensions.as_deref())
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    /// A harness fault seen on this channel, taken (reported once).
    pub fn take_fault(&mut self) -> Option<String> {
        self.fault.take()
    }

    /// What the channel last sent.
    pub fn awaiting(&self) -> Awaiting {
        self.awaiting
    }

    /// Sends one business message (already rendered), wrapped by the dialect.
    pub async fn send_message(&mut self, message: &str) -> Result<(), ClientError> {
        let wire = self.dialect.wrap(message).into_owned();
        self.conn.send_text(&wire).await?;
        self.awaiting = Awaiting::Business;
        Ok(())
    }

    /// Sends one business message wrapped by the dialect, as a frame of `opcode` with its wire
    /// bytes changed by `mutate`: a message that differs from a valid one only in its frame
    /// type or its encoding.
    pub async fn send_message_mutated(
        &mut self,
        message: &str,
        opcode: u8,
        mutate: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), ClientError> {
        let mut bytes = self.dialect.wrap(message).into_owned().into_bytes();
        mutate(&mut bytes);
        self.conn.send_frame(&FrameSpec::new(opcode, bytes)).await?;
        self.awaiting = Awaiting::Business;
        Ok(())
    }

    /// Sends one authentication message (already rendered), wrapped by the dialect.
    pub async fn send_auth(&mut self, message: &str) -> Result<(), ClientError> {
        let wire = self.dialect.wrap(message).into_owned();
        self.conn.send_text(&wire).await?;
        self.awaiting = Awaiting::Auth;
        Ok(())
    }

    /// The wire bytes of one business message as a masked text frame (for floods, which
    /// write many at once).
    pub fn encode_message(&self, message: &str) -> Vec<u8> {
        FrameSpec::text(&self.dialect.wrap(message))
            .mask(Mask::Random)
            .encode()
    }

    /// Notes that business messages went out through [`Channel::send_raw`] (a flood).
    pub fn sent_business_raw(&mut self) {
        self.awaiting = Awaiting::Business;
    }

    /// Sends one hand-built frame as it is (frame-level attacks bypass the dialect).
    pub async fn send_frame(&self, frame: &FrameSpec) -> Result<(), ClientError> {
        self.conn.send_frame(frame).await
    }

    /// Writes bytes as they are (pre-encoded frames, garbage).
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<(), ClientError> {
        self.conn.send_raw(bytes).await
    }

    /// Streams one frame of `payload_len` bytes from a small reused buffer.
    pub async fn stream_frame(
        &self,
        frame: &FrameSpec,
        payload_len: u64,
        timeout: Duration,
    ) -> StreamReport {
        self.conn.stream_frame(frame, payload_len, timeout).await
    }

    /// Streams one frame whose payload starts with `prefix` (see
    /// [`Connection::stream_frame_after`]).
    pub async fn stream_frame_after(
        &self,
        frame: &FrameSpec,
        prefix: &[u8],
        payload_len: u64,
        timeout: Duration,
    ) -> StreamReport {
        self.conn
            .stream_frame_after(frame, prefix, payload_len, timeout)
            .await
    }

    /// Whether pings are answered from now on.
    pub fn answer_pings(&self, on: bool) {
        self.conn.answer_pings(on);
    }

    /// The pings seen so far.
    pub fn pings(&self) -> Vec<PingSeen> {
        self.conn.pings()
    }

    /// Whether the connection has ended (close, drop or harness fault).
    pub fn has_ended(&self) -> bool {
        self.conn.has_ended() || self.inbox.iter().any(Event::is_end)
    }

    /// Registers a secret to redact from the connection's transcript.
    pub fn add_secret(&self, secret: &str) {
        self.conn.add_secret(secret);
    }

    /// The connection's transcript so far.
    pub fn transcript(&self) -> ConnectionLog {
        self.conn.transcript()
    }

    /// Closes politely (a close frame, bounded wait).
    pub async fn close(self, code: u16, reason: &str) {
        let _ = self.conn.close(code, reason).await;
    }

    /// The next reply, classified: queued ones first, then from the connection until
    /// `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Reply {
        let event = match self.inbox.pop_front() {
            Some(e) => e,
            None => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let e = self.conn.read_event(remaining).await;
                self.note_fault(&e);
                match e {
                    Event::Text(t) => {
                        let mut messages = self.dialect.unwrap(t).into_iter().map(Event::Text);
                        let Some(first) = messages.next() else {
                            return self.control(Event::Skipped {
                                opcode: crate::client::conn::opcode::TEXT,
                                declared_len: 0,
                                reason: "a protocol message with no application data",
                            });
                        };
                        // The rest of one wire message come next, before anything newer.
                        for (i, m) in messages.enumerate() {
                            self.inbox.insert(i, m);
                        }
                        first
                    }
                    e => e,
                }
            }
        };
        self.classify(event)
    }

    fn control(&self, event: Event) -> Reply {
        Reply {
            kind: Kind::Control,
            event,
        }
    }

    fn classify(&self, event: Event) -> Reply {
        let kind = match &event {
            Event::Text(t) => self.classifier.classify(t, self.awaiting),
            Event::Binary(_) => Kind::Other,
            Event::Ping(_) | Event::Pong(_) | Event::Skipped { .. } => Kind::Control,
            Event::Close { .. } => Kind::Closed,
            Event::Dropped { .. } => Kind::Dropped,
            Event::ReaderFailed { .. } => Kind::Fault,
            Event::Timeout => Kind::Timeout,
        };
        Reply { kind, event }
    }

    /// Remembers a harness fault so the case ends `error`, whatever a judgement made of it.
    fn note_fault(&mut self, e: &Event) {
        if let Event::ReaderFailed { error } = e
            && self.fault.is_none()
        {
            self.fault = Some(error.clone());
        }
    }

    /// Reads whatever is queued without waiting, so pings keep being answered and the
    /// connection's bounded queue does not stall its reader, up to [`INBOX_BYTES`] held.
    ///
    /// Past that bound events stay queued in the connection: its reader stops reading and TCP
    /// holds the peer back, instead of this channel buffering whatever an endless stream sends.
    pub async fn drain(&mut self) {
        let mut held: usize = self.inbox.iter().map(event_bytes).sum();
        while held < INBOX_BYTES {
            match self.conn.read_event(Duration::ZERO).await {
                Event::Timeout => break,
                e => {
                    self.note_fault(&e);
                    let end = e.is_end();
                    if !matches!(e, Event::Ping(_) | Event::Pong(_)) {
                        held += event_bytes(&e);
                        match e {
                            Event::Text(t) => self
                                .inbox
                                .extend(self.dialect.unwrap(t).into_iter().map(Event::Text)),
                            e => self.inbox.push_back(e),
                        }
                    }
                    if end {
                        break;
                    }
                }
            }
        }
    }

    /// Reads what is queued without waiting, up to `max_bytes` or `max_time`, and returns the
    /// replies read (not kept for later judgements): the live fuzzer's drain between cases.
    pub async fn drain_replies(&mut self, max_bytes: usize, max_time: Duration) -> Vec<Reply> {
        let deadline = Instant::now() + max_time;
        let mut read = 0usize;
        let mut out = Vec::new();
        while read < max_bytes && Instant::now() < deadline {
            let r = self.next(Instant::now()).await;
            if r.kind == Kind::Timeout {
                break;
            }
            read += r.event.held_bytes().max(1);
            let end = r.is_end();
            out.push(r);
            if end {
                break;
            }
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(json: &str) -> Option<Matcher> {
        serde_yaml::from_str(json).ok()
    }

    #[test]
    fn replies_are_read_as_what_was_awaited() {
        let c = Classifier {
            ack: matcher(r#"{ json: { "/type": "ok" } }"#),
            auth_ok: matcher(r#"{ json: { "/type": "ok" } }"#),
            rejected: matcher(r#"{ json: { "/type": "error" } }"#),
            ..Classifier::default()
        };
        let ok = r#"{"type":"ok"}"#;
        assert_eq!(c.classify(ok, Awaiting::Auth), Kind::AuthAccepted);
        assert_eq!(c.classify(ok, Awaiting::Business), Kind::Ack);
        assert_eq!(
            c.classify(r#"{"type":"error"}"#, Awaiting::Business),
            Kind::Rejection
        );
        assert_eq!(c.classify("hello", Awaiting::Business), Kind::Other);
        let only_auth = Classifier {
            auth_ok: matcher(r#"{ json: { "/type": "welcome" } }"#),
            ..Classifier::default()
        };
        assert_eq!(
            only_auth.classify(r#"{"type":"welcome"}"#, Awaiting::Business),
            Kind::AuthAccepted
        );
    }
}
