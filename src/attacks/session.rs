//! One case's run: its state across steps (current connection, tickets, last handshake, last
//! probe) and the dispatch of steps and expectations to the module that owns each concern.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::runtime::TargetRuntime;
use crate::client::{Connection, Event, HttpResponse, Ticket, TlsFacts};
use crate::plan::expect::Expectation;
use crate::plan::template::RUNTIME_PLACEHOLDERS;
use crate::plan::{Case, Step};
use crate::run::{Outcome, Transcript};

/// Bytes of events [`Session::drain`] holds before leaving the rest queued in the connection:
/// thousands of acknowledgements, a handful of large messages.
pub const INBOX_BYTES: usize = 1024 * 1024;

/// The memory an event holds, roughly (its payload plus a fixed overhead).
fn event_bytes(e: &Event) -> usize {
    e.held_bytes() + std::mem::size_of::<Event>()
}

/// How an expectation turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// It holds, with the evidence in a sentence.
    Holds(String),
    /// It does not: the attack worked, or the legitimate path failed.
    Broken(String),
    /// Nothing can be concluded (unreachable target, failed precondition).
    Inconclusive(String),
}

/// Why a step could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// Something failed (unreachable target, failed login): the case is `error`.
    Inconclusive(String),
    /// The step cannot apply to this target or client (e.g. a TLS version the client cannot
    /// speak): the case is `skipped`, with the reason.
    NotApplicable(String),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Inconclusive(r) | StepError::NotApplicable(r) => f.write_str(r),
        }
    }
}

impl From<String> for StepError {
    fn from(reason: String) -> Self {
        StepError::Inconclusive(reason)
    }
}

impl From<&str> for StepError {
    fn from(reason: &str) -> Self {
        StepError::Inconclusive(reason.to_string())
    }
}

/// The result of one step.
pub type StepResult = Result<(), StepError>;

/// What the last `connect` got.
#[derive(Debug, Clone)]
pub enum HandshakeSeen {
    /// 101 Switching Protocols; the negotiated extensions header, if any.
    Upgraded {
        /// `Sec-WebSocket-Extensions` of the response.
        extensions: Option<String>,
    },
    /// Any other status.
    Refused {
        /// The status code.
        status: u16,
    },
    /// No WebSocket answered at all (plaintext probes only: connection refused, not HTTP).
    NoWebSocket(String),
}

/// Which kind of reply the case waits for after its last action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastSent {
    /// Nothing was sent yet.
    Nothing,
    /// An authentication message (judged by `auth.accepted_when`).
    Auth,
    /// Business messages (judged by `messages.accepted_when`); how many.
    Data(u32),
}

/// The state of one running case.
pub struct Session {
    /// The run's shared target.
    pub rt: Arc<TargetRuntime>,
    /// Case-level evidence (kept even if the deadline cuts the case short).
    pub ev: Transcript,
    /// The current connection, if the last handshake upgraded.
    pub conn: Option<Connection>,
    /// When the current connection opened.
    pub opened_at: Option<Instant>,
    /// Events read during steps (pings answered, queue drained) and not judged yet.
    pub inbox: Vec<Event>,
    /// The last handshake's result.
    pub handshake: Option<HandshakeSeen>,
    /// Tickets: the case's own (unused), the one already used, another session's.
    pub own_ticket: Option<Ticket>,
    /// A ticket already sent in an `authenticate`.
    pub used_ticket: Option<String>,
    /// A ticket fetched for another session.
    pub other_ticket: Option<Ticket>,
    /// Whether an `authenticate` with a fresh ticket awaits confirmation on this connection.
    pub fresh_auth_pending: bool,
    /// What was sent last, deciding which acknowledgement counts.
    pub last_sent: LastSent,
    /// When pings stopped being answered.
    pub pings_off_at: Option<Instant>,
    /// The last `http_request` response.
    pub http: Option<Result<HttpResponse, String>>,
    /// The last `tls_probe` result.
    pub probe: Option<Result<TlsFacts, crate::client::ClientError>>,
    /// Whether the last `tls_probe` offered every version the client speaks (no `below`).
    pub probe_offered_all: bool,
    /// When the steps finished (timing expectations count from here).
    pub steps_done: Instant,
    /// A failure of the harness itself (a connection's reader task died): whatever the
    /// judgements say, the case is inconclusive.
    pub harness_fault: Option<String>,
}

impl Session {
    /// A session for a side connection (the health probe) sharing the case's evidence.
    pub fn probe(rt: Arc<TargetRuntime>, ev: Transcript) -> Self {
        Self::new(rt, ev)
    }

    fn new(rt: Arc<TargetRuntime>, ev: Transcript) -> Self {
        Self {
            rt,
            ev,
            conn: None,
            opened_at: None,
            inbox: Vec::new(),
            handshake: None,
            own_ticket: None,
            used_ticket: None,
            other_ticket: None,
            fresh_auth_pending: false,
            last_sent: LastSent::Nothing,
            pings_off_at: None,
            http: None,
            probe: None,
            probe_offered_all: false,
            steps_done: Instant::now(),
            harness_fault: None,
        }
    }

    /// Fills the run-time placeholders (`{{ticket}}`, `{{credential}}`).
    ///
    /// A placeholder without a value (no ticket fetched, a target with no API credential) makes
    /// the step not applicable: sending it empty (`?token=`) would be refused whatever the
    /// server does, a pass that proves nothing.
    pub fn fill(&self, text: &str) -> Result<String, StepError> {
        let mut out = text.to_string();
        for name in RUNTIME_PLACEHOLDERS {
            let placeholder = format!("{{{{{name}}}}}");
            if !out.contains(&placeholder) {
                continue;
            }
            match self.runtime_value(name) {
                Ok(value) => out = out.replace(&placeholder, &value),
                Err(why) => {
                    return Err(StepError::NotApplicable(format!(
                        "{placeholder} has no value: {why}"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The value of a run-time placeholder, or why there is none.
    fn runtime_value(&self, name: &str) -> Result<String, &'static str> {
        let (value, why) = match name {
            "ticket" => (
                self.own_ticket.as_ref().map(|t| t.value().to_string()),
                "no ticket was fetched before this step",
            ),
            "credential" => (
                self.rt.credential(),
                "the target has no API credential (no Authorization header on its ticket request) \
                 to put there",
            ),
            _ => (None, "the engine does not know this placeholder"),
        };
        value.filter(|v| !v.is_empty()).ok_or(why)
    }

    /// Moves the current connection's transcript into the case evidence and drops it.
    pub fn close_connection(&mut self) {
        if let Some(conn) = self.conn.take() {
            let t = conn.transcript();
            self.ev
                .note("connection transcript (times from its handshake):");
            // Through the case transcript's redaction too: secrets registered after an entry
            // was recorded (a cookie, a later ticket) are hidden before the line can be cut.
            for entry in t.entries() {
                let line = format!("+{}ms {}", entry.at.as_millis(), entry.what);
                match entry.direction {
                    crate::client::evidence::Direction::Sent => self.ev.sent(line),
                    crate::client::evidence::Direction::Received => self.ev.saw(line),
                    crate::client::evidence::Direction::Note => self.ev.note(line),
                }
            }
            if t.omitted() > 0 {
                self.ev
                    .note(format!("({} connection events not kept)", t.omitted()));
            }
        }
        self.opened_at = None;
        self.inbox.clear();
        self.pings_off_at = None;
    }

    /// The next event: from the inbox first, then from the connection until `deadline`.
    pub async fn next_event(&mut self, deadline: Instant) -> Event {
        if !self.inbox.is_empty() {
            return self.inbox.remove(0);
        }
        match self.conn.as_mut() {
            Some(c) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let e = c.read_event(remaining).await;
                self.note_fault(&e);
                e
            }
            None => Event::Dropped {
                error: "no connection is open".into(),
            },
        }
    }

    /// Remembers a harness fault so the case ends `error`, whatever a judgement made of it.
    fn note_fault(&mut self, e: &Event) {
        if let Event::ReaderFailed { error } = e
            && self.harness_fault.is_none()
        {
            self.ev.note(format!("harness fault: {error}"));
            self.harness_fault = Some(error.clone());
        }
    }

    /// Reads whatever is queued without waiting, so pings keep being answered and the
    /// connection's bounded queue does not stall its reader, up to [`INBOX_BYTES`] held.
    ///
    /// Past that bound events stay queued in the connection: its reader stops reading and TCP
    /// holds the peer back, instead of this session buffering whatever an endless stream sends.
    pub async fn drain(&mut self) {
        let mut held: usize = self.inbox.iter().map(event_bytes).sum();
        while let Some(c) = self.conn.as_mut() {
            if held >= INBOX_BYTES {
                break;
            }
            match c.read_event(Duration::ZERO).await {
                Event::Timeout => break,
                e => {
                    self.note_fault(&e);
                    let end = e.is_end();
                    if !matches!(e, Event::Ping(_) | Event::Pong(_)) {
                        held += event_bytes(&e);
                        self.inbox.push(e);
                    }
                    if end {
                        break;
                    }
                }
            }
        }
    }

    /// Sleeps until `until`, draining events on the way.
    pub async fn idle_until(&mut self, until: Instant) {
        while Instant::now() < until {
            let ended = self.conn.as_ref().is_none_or(Connection::has_ended);
            let step = until.min(Instant::now() + Duration::from_millis(50));
            if ended {
                tokio::time::sleep_until(until).await;
                return;
            }
            tokio::time::sleep_until(step).await;
            self.drain().await;
        }
    }

    async fn step(&mut self, step: &Step) -> StepResult {
        match step {
            Step::Connect(c) => self.connect(c).await,
            Step::FetchTicket(f) => self.fetch_ticket(f).await,
            Step::Authenticate(a) => self.authenticate(a).await,
            Step::Login => self.login().await,
            Step::Send(s) => self.send(s).await,
            Step::SendFrame(f) => self.send_frame(f).await,
            Step::Flood(f) => self.flood(f).await,
            Step::Wait(w) => {
                self.ev.note(format!(
                    "waiting {:.1}s (bound {:?} + slack {:?})",
                    w.total().as_secs_f64(),
                    w.bound,
                    w.slack
                ));
                self.idle_until(Instant::now() + w.total()).await;
                Ok(())
            }
            Step::AnswerPings(on) => {
                if let Some(c) = &self.conn {
                    c.answer_pings(*on);
                }
                self.pings_off_at = (!on).then(Instant::now);
                self.ev.note(if *on {
                    "answering pings"
                } else {
                    "no longer answering pings"
                });
                Ok(())
            }
            Step::HttpRequest(h) => self.http_request(h).await,
            Step::TlsProbe(p) => self.tls_probe(p).await,
        }
    }

    async fn judge(&mut self, e: &Expectation) -> Judgement {
        match e {
            Expectation::HandshakeRefused(h) => self.judge_refused(h),
            Expectation::HandshakeUpgraded(h) => self.judge_upgraded(h),
            Expectation::UrlWithoutParams(u) => self.judge_url_params(u),
            Expectation::Rejected(r) => self.judge_rejected(r).await,
            Expectation::Accepted(a) => self.judge_accepted(a).await,
            Expectation::Closed(c) => self.judge_closed(c).await,
            Expectation::PingSeen(p) => self.judge_ping(p).await,
            Expectation::Cookie(c) => self.judge_cookie(c),
            Expectation::Tls(t) => self.judge_tls(t),
            Expectation::TlsRefused => self.judge_tls_refused(),
            Expectation::Healthy => self.judge_healthy().await,
            Expectation::Attested(a) => Judgement::Holds(format!("attested: {}", a.evidence)),
        }
    }
}

/// Runs one case: its steps in order, then its expectations; the first broken expectation
/// decides a failure, an inconclusive one an error.
pub async fn run_case(case: Case, rt: Arc<TargetRuntime>, ev: Transcript) -> Outcome {
    if let Some(Expectation::Attested(a)) = case.expect.first() {
        ev.note(format!("evidence: {}", a.evidence));
        return Outcome::skipped(format!(
            "not testable from outside; attested by: {}",
            a.evidence
        ));
    }
    let mut s = Session::new(rt, ev);
    for (i, step) in case.steps.iter().enumerate() {
        s.ev.note(format!("step {}: {}", i + 1, step.name()));
        let result = s.step(step).await;
        if let Some(fault) = s.harness_fault.take() {
            s.close_connection();
            return harness_error(&format!("step {} ({})", i + 1, step.name()), &fault);
        }
        match result {
            Ok(()) => {}
            Err(StepError::NotApplicable(reason)) => {
                s.close_connection();
                return Outcome::skipped(format!("not applicable: {reason}"));
            }
            Err(StepError::Inconclusive(reason)) => {
                s.close_connection();
                return Outcome::error(format!(
                    "step {} ({}) could not be carried out: {reason}",
                    i + 1,
                    step.name()
                ));
            }
        }
    }
    s.steps_done = Instant::now();
    let mut reasons = Vec::new();
    for e in &case.expect {
        let j = s.judge(e).await;
        s.ev.note(format!("{}: {j:?}", e.name()));
        if let Some(fault) = s.harness_fault.take() {
            s.close_connection();
            return harness_error(e.name(), &fault);
        }
        match j {
            Judgement::Holds(why) => reasons.push(why),
            Judgement::Broken(why) => {
                s.close_connection();
                return Outcome::fail(format!("{}: {why}", e.name()));
            }
            Judgement::Inconclusive(why) => {
                s.close_connection();
                return Outcome::error(format!("{}: inconclusive: {why}", e.name()));
            }
        }
    }
    s.close_connection();
    Outcome::pass(reasons.join("; "))
}

/// The outcome of a case the harness itself failed: inconclusive, never evidence either way.
fn harness_error(during: &str, fault: &str) -> Outcome {
    Outcome::error(format!(
        "{during}: inconclusive: harness fault, not the target's doing ({fault})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::conn::test_support::PanicOnRead;
    use crate::plan::expect::{REJECTION_CODES, Rejected};

    #[tokio::test]
    async fn a_reader_fault_is_inconclusive_never_a_rejection() {
        crate::tls::install_crypto_provider();
        let target = crate::plan::sample_target().expect("sample target");
        let rt = Arc::new(TargetRuntime::new(&target).expect("runtime"));
        let mut s = Session::probe(rt, Transcript::default());
        s.conn = Some(Connection::new(PanicOnRead, &[]));
        // A drop counts as a rejection; the reader's panic must not pass for one.
        let rejected = Expectation::Rejected(Rejected {
            codes: REJECTION_CODES.to_vec(),
            drop_counts: true,
            silence_counts: true,
            within: None,
        });
        match s.judge(&rejected).await {
            Judgement::Inconclusive(why) => assert!(why.contains("harness fault"), "{why}"),
            other => panic!("a harness fault was judged {other:?}"),
        }
        let fault = s.harness_fault.clone().expect("the fault is remembered");
        assert!(fault.contains("injected reader fault"), "{fault}");
        let outcome = harness_error("rejected", &fault);
        assert_eq!(outcome.verdict, crate::report::Verdict::Error);
        assert!(
            outcome
                .reason
                .contains("harness fault, not the target's doing"),
            "{}",
            outcome.reason
        );
    }
}
