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

use crate::client::conn::PingSeen;
use crate::client::{ClientError, Connection, ConnectionLog, Event, FrameSpec, Mask, StreamReport};
use crate::config::Secrets;
use crate::config::target::{CloseMeaning, Matcher, Target};
use crate::dialect::{ClientCodec, Opening, Signal};

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
    /// The matchers of `target`, and the close codes of its dialect unless it declares them
    /// itself.
    pub fn of(target: &Target) -> Self {
        let mut close_codes: std::collections::BTreeMap<u16, CloseMeaning> =
            target.dialect.close_codes().iter().copied().collect();
        close_codes.extend(target.close_codes.iter().map(|(c, m)| (*c, *m)));
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
            close_codes,
        }
    }

    /// Whether a close with `code` says the server failed (1011, or an application code the
    /// target or its protocol declares `internal_error`): a crash, never a refusal.
    pub fn is_crash(&self, code: u16) -> bool {
        code == 1011 || self.meaning(code) == Some(CloseMeaning::InternalError)
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

    /// The kind of one application message, given what its protocol says it is and what the
    /// channel last sent (an authentication message is acknowledged by `auth.accepted_when`,
    /// a business message by `messages.accepted_when`; a text matching both counts as the one
    /// awaited). The target's own matchers come first, then the protocol's signals.
    fn classify(&self, text: &str, signal: Signal, awaiting: Awaiting) -> Kind {
        let matches = |m: &Option<Matcher>| m.as_ref().is_some_and(|m| m.matches(text));
        if matches(&self.rejected) {
            return Kind::Rejection;
        }
        if matches(&self.warning) {
            return Kind::Warning;
        }
        match signal {
            Signal::Refusal => return Kind::Rejection,
            Signal::AuthAccepted => return Kind::AuthAccepted,
            Signal::Heartbeat | Signal::Chatter => return Kind::Control,
            Signal::Data | Signal::Ack | Signal::Receipt => {}
        }
        let (ack, auth) = (matches(&self.ack), matches(&self.auth_ok));
        match (ack, auth, awaiting) {
            (_, true, Awaiting::Auth) => Kind::AuthAccepted,
            (true, _, _) => Kind::Ack,
            (false, true, _) => Kind::AuthAccepted,
            // The protocol's own acknowledgement, where the target names none of its own.
            (false, false, _) if self.ack.is_none() && signal != Signal::Data => Kind::Ack,
            (false, false, _) if signal == Signal::Receipt => Kind::Control,
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
    /// What the dialect said it is (data for anything but protocol messages).
    pub signal: Signal,
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
    codec: ClientCodec,
    classifier: Arc<Classifier>,
    awaiting: Awaiting,
    /// Application messages read but not judged yet, with what their protocol says.
    inbox: VecDeque<(Event, Signal)>,
    /// Events read before the protocol's opening was complete, not decoded yet.
    unread: VecDeque<Event>,
    /// When the connection opened.
    opened_at: Instant,
    /// `Sec-WebSocket-Extensions` of the 101.
    extensions: Option<String>,
    /// A failure of the harness itself (the reader task died): the case is inconclusive.
    fault: Option<String>,
    /// How long to wait for the protocol's answer to a connect.
    reply_wait: Duration,
    /// A connect (with credentials or without) went out and its answer was not read yet:
    /// business messages wait for it (graphql refuses a `subscribe` before its ack, STOMP
    /// replies need the subscription sent once connected).
    connect_pending: bool,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("dialect", &self.codec.dialect().name())
            .field("awaiting", &self.awaiting)
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// The memory an event holds, roughly (its payload plus a fixed overhead).
fn event_bytes(e: &Event) -> usize {
    e.held_bytes() + std::mem::size_of::<Event>()
}

/// How long to wait for the protocol's answer to a connect, unless told otherwise.
const DEFAULT_REPLY_WAIT: Duration = Duration::from_secs(3);

impl Channel {
    /// A channel over an upgraded connection, speaking `codec`'s dialect: the connection's
    /// reader answers the protocol's own heartbeats from now on.
    pub fn new(
        conn: Connection,
        codec: ClientCodec,
        classifier: Arc<Classifier>,
        extensions: Option<String>,
    ) -> Self {
        let name = codec.dialect().name();
        if !codec.dialect().is_raw() {
            conn.set_text_heartbeat(Arc::new(move |text: &str| {
                ClientCodec::heartbeat(name, text)
            }));
        }
        Self {
            conn,
            codec,
            classifier,
            awaiting: Awaiting::Nothing,
            inbox: VecDeque::new(),
            unread: VecDeque::new(),
            opened_at: Instant::now(),
            extensions,
            fault: None,
            reply_wait: DEFAULT_REPLY_WAIT,
            connect_pending: false,
        }
    }

    /// Sets how long the channel waits for the protocol's answer to a connect.
    pub fn set_reply_wait(&mut self, wait: Duration) {
        self.reply_wait = wait;
    }

    /// The dialect spoken.
    pub fn dialect(&self) -> &crate::dialect::Dialect {
        self.codec.dialect()
    }

    /// When the connection opened.
    pub fn opened_at(&self) -> Instant {
        self.opened_at
    }

    /// Whether the 101 negotiated extension `name` (case-insensitive, parameters ignored).
    pub fn negotiated(&self, name: &str) -> bool {
        crate::client::extension_names(self.extensions.as_deref())
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

    /// Completes the protocol's opening (the Engine.IO open packet, the SignalR handshake)
    /// before `deadline`. Whatever else arrives first is kept for the judgements; a server that
    /// closes or answers otherwise leaves that for them to see, and the reason here.
    pub async fn open_dialect(&mut self, deadline: Instant) -> Result<(), String> {
        let (first, opening) = self.codec.opening();
        if let Some(first) = first {
            self.conn
                .send_text(first)
                .await
                .map_err(|e| format!("cannot send the protocol's handshake: {e}"))?;
        }
        if opening == Opening::None {
            return Ok(());
        }
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let e = self.conn.read_event(remaining).await;
            self.note_fault(&e);
            match e {
                Event::Text(t) => match self.codec.read_opening(&t) {
                    Some(Ok(rest)) => {
                        if let Some(rest) = rest {
                            self.unread.push_back(Event::Text(rest));
                        }
                        return Ok(());
                    }
                    Some(Err(why)) => return Err(why),
                    None => self.unread.push_back(Event::Text(t)),
                },
                Event::Timeout => {
                    return Err(format!(
                        "the protocol's opening did not complete ({opening:?} awaited)"
                    ));
                }
                Event::Ping(_) | Event::Pong(_) => {}
                e => {
                    let end = e.is_end();
                    self.unread.push_back(e);
                    if end {
                        return Err("the connection ended during the protocol's opening".into());
                    }
                }
            }
        }
    }

    /// The wire text of one business message in the dialect's envelope, its payload padded
    /// with JSON whitespace so the whole message is `pad_to` bytes where asked.
    fn business_wire(&mut self, payload: &str, pad_to: Option<usize>) -> String {
        let Some(target) = pad_to else {
            return self.codec.business(payload);
        };
        let mut padded = payload.to_string();
        // Two rounds: an envelope that states the payload's length (STOMP) grows with it.
        for _ in 0..2 {
            let overhead = self
                .codec
                .clone()
                .business(&padded)
                .len()
                .saturating_sub(padded.len());
            padded = pad(payload, target.saturating_sub(overhead));
        }
        self.codec.business(&padded)
    }

    /// Makes the session ready for a business message: in protocols where even a client
    /// without credentials connects first, a connect no one sent yet is sent and its answer
    /// awaited. `false` when the protocol refused it (the refusal stays for the judgements).
    pub async fn prepare_business(&mut self) -> Result<bool, ClientError> {
        // A client without credentials: its connect's acceptance is no business of the
        // judgements (a server may connect anyone and refuse their messages).
        let bare = self.codec.needs_connect();
        if bare && let Some(message) = self.codec.connect(None).ok().flatten() {
            self.conn
                .note("connect without credentials (the protocol connects first)");
            self.conn.send_text(&message).await?;
            self.connect_pending = true;
        }
        if !self.connect_pending {
            return Ok(true);
        }
        let deadline = Instant::now() + self.reply_wait;
        let mut kept = Vec::new();
        let accepted = loop {
            let r = self.next_with(deadline, Awaiting::Auth).await;
            match r.kind {
                Kind::AuthAccepted => {
                    if !bare {
                        kept.push(r);
                    }
                    break true;
                }
                Kind::Timeout => break true,
                Kind::Control => {}
                _ if r.is_end() || r.kind == Kind::Rejection => {
                    kept.push(r);
                    break false;
                }
                _ => kept.push(r),
            }
        };
        self.connect_pending = false;
        // What came besides the answer is judged later, in order, before anything newer.
        for (i, r) in kept.into_iter().enumerate() {
            self.inbox.insert(i, (r.event, r.signal));
        }
        Ok(accepted)
    }

    /// Sends one business message (already rendered), in the dialect's envelope.
    pub async fn send_message(&mut self, message: &str) -> Result<(), ClientError> {
        self.send_message_padded(message, None).await
    }

    /// Sends one business message padded so its wire size is `pad_to` bytes.
    pub async fn send_message_padded(
        &mut self,
        message: &str,
        pad_to: Option<usize>,
    ) -> Result<(), ClientError> {
        self.awaiting = Awaiting::Business;
        if !self.prepare_business().await? {
            self.conn
                .note("business message not sent: the protocol refused the connect");
            return Ok(());
        }
        let wire = self.business_wire(message, pad_to);
        self.conn.send_text(&wire).await
    }

    /// Sends one business message in the dialect's envelope, as a frame of `opcode` with its
    /// wire bytes changed by `mutate`: a message that differs from a valid one only in its
    /// frame type or its encoding.
    pub async fn send_message_mutated(
        &mut self,
        message: &str,
        opcode: u8,
        mutate: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), ClientError> {
        self.awaiting = Awaiting::Business;
        if !self.prepare_business().await? {
            return Ok(());
        }
        let mut bytes = self.codec.business(message).into_bytes();
        mutate(&mut bytes);
        self.conn.send_frame(&FrameSpec::new(opcode, bytes)).await
    }

    /// The wire bytes of one business message for a hand-built frame: the payload in the
    /// dialect's envelope, padded so the message is `pad_to` bytes where asked (frame-level
    /// attacks carry the valid message as a real client would send it).
    pub async fn frame_payload(
        &mut self,
        message: &str,
        pad_to: Option<usize>,
    ) -> Result<Vec<u8>, ClientError> {
        self.prepare_business().await?;
        Ok(self.business_wire(message, pad_to).into_bytes())
    }

    /// Sends the authentication payload (already rendered) where the dialect carries it.
    pub async fn send_auth(&mut self, message: &str) -> Result<(), ClientError> {
        let wire = self
            .codec
            .connect(Some(message))
            .map_err(|why| ClientError::InvalidUrl {
                url: "the authentication payload".into(),
                reason: why,
            })?;
        self.awaiting = Awaiting::Auth;
        match wire {
            Some(wire) => {
                self.conn.send_text(&wire).await?;
                self.connect_pending = self.codec.answers_auth();
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Whether the protocol answers an authentication itself (the login waits for it).
    pub fn answers_auth(&self) -> bool {
        self.codec.answers_auth()
    }

    /// The wire bytes of one business message as a masked text frame (for floods, which
    /// write many at once).
    pub fn encode_message(&mut self, message: &str) -> Vec<u8> {
        FrameSpec::text(&self.codec.business(message))
            .mask(Mask::Random)
            .encode()
    }

    /// Whether each business message carries its own id, so a flood must encode each.
    pub fn wraps_uniquely(&self) -> bool {
        self.codec.wraps_uniquely()
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

    /// Whether pings (the WebSocket's and the protocol's own) are answered from now on.
    pub fn answer_pings(&self, on: bool) {
        self.conn.answer_pings(on);
    }

    /// The pings seen so far (the protocol's own heartbeats included).
    pub fn pings(&self) -> Vec<PingSeen> {
        self.conn.pings()
    }

    /// Whether the connection has ended (close, drop or harness fault).
    pub fn has_ended(&self) -> bool {
        self.conn.has_ended()
            || self.inbox.iter().any(|(e, _)| e.is_end())
            || self.unread.iter().any(Event::is_end)
    }

    /// Registers a secret to redact from the connection's transcript.
    pub fn add_secret(&self, secret: &str) {
        self.conn.add_secret(secret);
    }

    /// The connection's transcript so far.
    pub fn transcript(&self) -> ConnectionLog {
        self.conn.transcript()
    }

    /// The rules of RFC 6455 the server broke on this connection (see
    /// [`Connection::violations`]).
    pub fn violations(&self) -> Vec<crate::client::Violation> {
        self.conn.violations()
    }

    /// Closes politely (a close frame, bounded wait).
    pub async fn close(self, code: u16, reason: &str) {
        let _ = self.conn.close(code, reason).await;
    }

    /// The next reply, classified: queued ones first, then from the connection until
    /// `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Reply {
        let awaiting = self.awaiting;
        self.next_with(deadline, awaiting).await
    }

    async fn next_with(&mut self, deadline: Instant, awaiting: Awaiting) -> Reply {
        let r = self.next_classified(deadline, awaiting).await;
        if r.kind == Kind::AuthAccepted {
            self.connect_pending = false;
        }
        r
    }

    async fn next_classified(&mut self, deadline: Instant, awaiting: Awaiting) -> Reply {
        loop {
            if let Some((event, signal)) = self.inbox.pop_front() {
                return self.classify(event, signal, awaiting);
            }
            let e = match self.unread.pop_front() {
                Some(e) => e,
                None => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let e = self.conn.read_event(remaining).await;
                    self.note_fault(&e);
                    e
                }
            };
            match e {
                // A protocol message may hold no application message at all (only answers
                // went out); then read on, until the deadline.
                Event::Text(t) => {
                    self.decode(t).await;
                    if self.inbox.is_empty() && Instant::now() >= deadline {
                        return self.classify(Event::Timeout, Signal::Data, awaiting);
                    }
                }
                e => return self.classify(e, Signal::Data, awaiting),
            }
        }
    }

    /// Reads one text message through the dialect into the inbox, sending what the protocol
    /// requires (a subscription once connected) and answering the heartbeats it held while the
    /// client answers pings.
    async fn decode(&mut self, text: String) {
        let read = self.codec.read(&text);
        for m in &read.send {
            let _ = self.conn.send_text(m).await;
        }
        let answering = self.conn.answering_pings();
        for answer in &read.heartbeat_answers {
            let sent = answering && self.conn.send_text(answer).await.is_ok();
            self.conn.record_ping(answer.len(), sent);
        }
        for m in read.incoming {
            self.inbox.push_back((Event::Text(m.view), m.signal));
        }
    }

    fn classify(&self, event: Event, signal: Signal, awaiting: Awaiting) -> Reply {
        let kind = match &event {
            Event::Text(t) => self.classifier.classify(t, signal, awaiting),
            Event::Binary(_) => Kind::Other,
            Event::Ping(_) | Event::Pong(_) | Event::Skipped { .. } => Kind::Control,
            Event::Close { .. } => Kind::Closed,
            Event::Dropped { .. } => Kind::Dropped,
            // Neither a refusal nor an answer: the session reports the violation instead.
            Event::ReaderFailed { .. } | Event::Violation(_) => Kind::Fault,
            Event::Timeout => Kind::Timeout,
        };
        Reply {
            kind,
            event,
            signal,
        }
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
        let mut held: usize = self.inbox.iter().map(|(e, _)| event_bytes(e)).sum();
        while held < INBOX_BYTES {
            let e = match self.unread.pop_front() {
                Some(e) => e,
                None => self.conn.read_event(Duration::ZERO).await,
            };
            match e {
                Event::Timeout => break,
                e => {
                    self.note_fault(&e);
                    let end = e.is_end();
                    if !matches!(e, Event::Ping(_) | Event::Pong(_)) {
                        held += event_bytes(&e);
                        match e {
                            Event::Text(t) => self.decode(t).await,
                            e => self.inbox.push_back((e, Signal::Data)),
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

/// `text` padded with spaces (JSON whitespace) to `size` bytes.
pub fn pad(text: &str, size: usize) -> String {
    let mut out = text.to_string();
    if size > out.len() {
        out.push_str(&" ".repeat(size - out.len()));
    }
    out
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
        let data = Signal::Data;
        assert_eq!(c.classify(ok, data, Awaiting::Auth), Kind::AuthAccepted);
        assert_eq!(c.classify(ok, data, Awaiting::Business), Kind::Ack);
        assert_eq!(
            c.classify(r#"{"type":"error"}"#, data, Awaiting::Business),
            Kind::Rejection
        );
        assert_eq!(c.classify("hello", data, Awaiting::Business), Kind::Other);
        let only_auth = Classifier {
            auth_ok: matcher(r#"{ json: { "/type": "welcome" } }"#),
            ..Classifier::default()
        };
        assert_eq!(
            only_auth.classify(r#"{"type":"welcome"}"#, data, Awaiting::Business),
            Kind::AuthAccepted
        );
    }

    #[test]
    fn the_target_matchers_come_before_the_protocol_signals() {
        let c = Classifier {
            ack: matcher(r#"{ json: { "/0/type": "ack" } }"#),
            rejected: matcher(r#"{ json: { "/0/type": "error" } }"#),
            warning: matcher(r#"{ json: { "/0": "warning" } }"#),
            ..Classifier::default()
        };
        let b = Awaiting::Business;
        // A protocol acknowledgement carrying an application error is an error.
        assert_eq!(
            c.classify(r#"[{"type":"error"}]"#, Signal::Ack, b),
            Kind::Rejection
        );
        assert_eq!(c.classify(r#"[{"type":"ack"}]"#, Signal::Ack, b), Kind::Ack);
        // Where the target names its acknowledgement, another protocol ack is just data.
        assert_eq!(
            c.classify(r#"[{"type":"other"}]"#, Signal::Ack, b),
            Kind::Other
        );
        assert_eq!(
            c.classify(r#"["warning",{}]"#, Signal::Data, b),
            Kind::Warning
        );
        assert_eq!(c.classify("RECEIPT r1", Signal::Receipt, b), Kind::Control);
        assert_eq!(
            c.classify(r#"{"message":"no"}"#, Signal::Refusal, b),
            Kind::Rejection
        );
        let bare = Classifier::default();
        assert_eq!(bare.classify("RECEIPT r1", Signal::Receipt, b), Kind::Ack);
        assert_eq!(bare.classify("{}", Signal::Ack, b), Kind::Ack);
        assert_eq!(bare.classify("{}", Signal::Data, b), Kind::Other);
    }
}
