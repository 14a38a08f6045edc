//! One case's run: its connections (named; one is current), its tickets and its last
//! observations, behind the narrow API the step and expectation modules use.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::StepError;
use super::channel::{Channel, Reply};
use super::runtime::TargetRuntime;
use super::setup_state::SetupState;
use super::values::Values;
use crate::client::{ClientError, Event, HttpResponse, Ticket, TlsFacts, Violation};
use crate::report::CaseLog;

/// Bytes of events a connection's drain holds before leaving the rest queued in the
/// connection (see [`Channel::drain`]).
pub const INBOX_BYTES: usize = super::channel::INBOX_BYTES;

/// The name of a connection opened without `as`.
pub const DEFAULT_CONNECTION: &str = "main";

/// What a `connect` got.
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

/// Which kind of reply a connection waits for after its last action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastSent {
    /// Nothing was sent yet.
    Nothing,
    /// An authentication message (judged by `auth.accepted_when`).
    Auth,
    /// Business messages (judged by `messages.accepted_when`); how many.
    Data(u32),
}

/// One named connection of a case: what its handshake got and, once upgraded, its channel.
#[derive(Debug)]
pub struct Link {
    /// Its name (`connect: { as: NAME }`, else [`DEFAULT_CONNECTION`]).
    pub name: String,
    /// What its handshake got.
    pub handshake: HandshakeSeen,
    /// The channel, when the handshake upgraded.
    pub channel: Option<Channel>,
    /// What was sent last on it.
    pub last_sent: LastSent,
    /// Whether an `authenticate` with a fresh ticket awaits confirmation on it.
    pub fresh_auth_pending: bool,
    /// When it stopped answering pings.
    pub pings_off_at: Option<Instant>,
    /// Whether it carried the unmutated valid message, acknowledged (`send_valid`): the
    /// differential control of what is sent on it next.
    pub valid_confirmed: bool,
    /// Whether a hand-built frame (`send_frame`) went out on it: what the server sends after
    /// that answers the case's own malformed input.
    pub mutated: bool,
}

/// A rule of RFC 6455 the server broke in a way a browser fails the connection for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRule {
    /// The rule and what the server did.
    pub violation: Violation,
    /// Whether it came in answer to a hand-built frame sent after the unmutated message was
    /// acknowledged on that connection: the legitimate path worked, and the break is how the
    /// server answered the case's malformed input (an oversized ping echoed in an oversized
    /// pong), not a refusal of it.
    pub answering_attack: bool,
}

/// The tickets of a case.
#[derive(Debug, Clone, Default)]
pub struct Tickets {
    /// The case's own ticket, fetched and not used yet.
    pub own: Option<Ticket>,
    /// The value of the last ticket fetched for the case's own session, used or not.
    pub last_fetched: Option<String>,
    /// A ticket already sent in an `authenticate`.
    pub used: Option<String>,
    /// A ticket fetched for another session.
    pub other: Option<Ticket>,
}

/// What the last `tls_probe` saw.
#[derive(Debug, Clone)]
pub struct ProbeSeen {
    /// The handshake's facts, or why it failed.
    pub result: Result<TlsFacts, ClientError>,
    /// The target has no TLS endpoint at all (a `ws://` URL): nothing was probed.
    pub plaintext: bool,
}

/// What the last `tls_hello` offered and got back.
#[derive(Debug, Clone)]
pub struct HelloSeen {
    /// The only version offered.
    pub version: crate::client::tls_hello::LegacyVersion,
    /// The only class of suites offered, if the hello offered one.
    pub class: Option<crate::client::tls_hello::SuiteClass>,
    /// The server's first flight, or why none could be read.
    pub result: Result<crate::client::tls_hello::FirstFlight, ClientError>,
    /// The target has no TLS endpoint at all (a `ws://` URL): nothing was sent.
    pub plaintext: bool,
}

/// What the last `ramp` saw: when the server first pushed back, and when it closed.
#[derive(Debug, Clone, Default)]
pub struct RampRecord {
    /// Messages sent in all.
    pub sent: u32,
    /// The first warning: messages sent before it, seconds into the ramp, the rate then.
    pub warned: Option<(u32, f64, f64)>,
    /// The close (or drop): messages sent before it, seconds into the ramp, the rate then, and
    /// how it ended.
    pub closed: Option<(u32, f64, f64, String)>,
    /// The highest rate sent.
    pub top_rate: f64,
}

/// The state of one running case.
pub struct Session {
    rt: Arc<TargetRuntime>,
    log: CaseLog,
    links: Vec<Link>,
    current: Option<usize>,
    tickets: Tickets,
    http: Option<Result<HttpResponse, String>>,
    probe: Option<ProbeSeen>,
    hello: Option<HelloSeen>,
    steps_done: Instant,
    fault: Option<String>,
    /// For a `parallel` branch: the case's own ticket when the branch started, so joining
    /// tells whether the branch consumed or replaced it.
    ticket_at_fork: Option<String>,
    /// What the last `ramp` saw.
    ramp: Option<RampRecord>,
    /// What the target's setup requests gave this case, once run.
    setup: Option<Arc<SetupState>>,
    /// Rules of RFC 6455 the server broke on connections no longer held (refused 101s,
    /// retired connections, a branch's), each with whether it answered the case's malformed
    /// input (see [`BrokenRule`]).
    violations: Vec<(Violation, bool)>,
    /// Whether the case judges the server's conformance to RFC 6455: its violations are then
    /// the finding, not a reason to leave the case unjudged.
    judges_conformance: bool,
}

impl Session {
    /// A session with no connection yet, recording its evidence into `log`.
    pub fn new(rt: Arc<TargetRuntime>, log: CaseLog) -> Self {
        Self {
            rt,
            log,
            links: Vec::new(),
            current: None,
            tickets: Tickets::default(),
            http: None,
            probe: None,
            hello: None,
            steps_done: Instant::now(),
            fault: None,
            ticket_at_fork: None,
            ramp: None,
            setup: None,
            violations: Vec::new(),
            judges_conformance: false,
        }
    }

    /// Marks the case as one judging the server's conformance (see [`Session::violation`]).
    pub fn set_judges_conformance(&mut self) {
        self.judges_conformance = true;
    }

    /// Whether the case judges the server's conformance.
    pub fn judges_conformance(&self) -> bool {
        self.judges_conformance
    }

    /// Records a rule the server broke outside any held connection (a 101 a browser fails).
    pub fn note_violation(&mut self, v: Violation) {
        self.log.note(format!("the server broke {v}"));
        self.keep_violations(vec![v], false);
    }

    fn keep_violations(&mut self, vs: Vec<Violation>, answering_attack: bool) {
        for v in vs {
            if !self.violations.iter().any(|(k, _)| *k == v) {
                self.violations.push((v, answering_attack));
            }
        }
    }

    /// Every rule of RFC 6455 the server broke in this case so far, in order, each with
    /// whether it answered the case's malformed input.
    fn all_violations(&self) -> Vec<(Violation, bool)> {
        let mut all = self.violations.clone();
        for l in &self.links {
            let Some(c) = l.channel.as_ref() else {
                continue;
            };
            for v in c.violations() {
                if !all.iter().any(|(k, _)| *k == v) {
                    all.push((v, l.mutated && l.valid_confirmed));
                }
            }
        }
        all
    }

    /// Every rule of RFC 6455 the server broke in this case so far, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.all_violations().into_iter().map(|(v, _)| v).collect()
    }

    /// The first rule broken in a way a browser fails the connection for: no verdict of a
    /// case that does not judge conformance may rest on that connection, unless the break
    /// answered the case's own malformed input (see [`BrokenRule`]).
    pub fn fatal_violation(&self) -> Option<BrokenRule> {
        self.all_violations()
            .into_iter()
            .find(|(v, _)| v.fatal)
            .map(|(violation, answering_attack)| BrokenRule {
                violation,
                answering_attack,
            })
    }

    /// What the target's setup requests gave this case: run once, the first time a step
    /// needs it (a case that never connects makes no login).
    pub async fn setup(&mut self) -> Result<Arc<SetupState>, StepError> {
        if let Some(s) = &self.setup {
            return Ok(s.clone());
        }
        let state = super::legitimate::setup(&self.rt, &self.log)
            .await
            .map_err(|why| StepError::Inconclusive(format!("the target's setup failed: {why}")))?;
        self.setup = Some(state.clone());
        Ok(state)
    }

    /// What the last `ramp` saw.
    pub fn ramp(&self) -> Option<&RampRecord> {
        self.ramp.as_ref()
    }

    /// Keeps what a `ramp` saw.
    pub fn set_ramp(&mut self, record: RampRecord) {
        self.ramp = Some(record);
    }

    /// The run's shared target.
    pub fn rt(&self) -> &Arc<TargetRuntime> {
        &self.rt
    }

    /// The case's evidence.
    pub fn log(&self) -> &CaseLog {
        &self.log
    }

    /// The case's tickets.
    pub fn tickets(&mut self) -> &mut Tickets {
        &mut self.tickets
    }

    /// The values run-time placeholders are filled from now.
    pub fn values(&self) -> Values<'_> {
        Values {
            ticket: self.tickets.own.as_ref().map(Ticket::value),
            credential: self.rt.credential_ref(),
            seq: Some(&self.rt.seq),
            setup: self.setup.as_deref(),
        }
    }

    /// Fills the run-time placeholders of `text`.
    pub fn render(&self, text: &str) -> Result<String, StepError> {
        self.values().render(text)
    }

    /// The current connection, if any.
    pub fn current(&mut self) -> Option<&mut Link> {
        self.current.and_then(|i| self.links.get_mut(i))
    }

    /// The current connection's channel, when its handshake upgraded.
    pub fn channel(&mut self) -> Option<&mut Channel> {
        self.current().and_then(|l| l.channel.as_mut())
    }

    /// Why the current connection has no channel to judge: `Some(Some(status))` when its
    /// handshake was refused with that status, `Some(None)` when no connection is open (or
    /// nothing answered), `None` when it has a channel.
    pub fn no_channel(&mut self) -> Option<Option<u16>> {
        match self.current() {
            None => Some(None),
            Some(link) if link.channel.is_some() => None,
            Some(link) => Some(match link.handshake {
                HandshakeSeen::Refused { status } => Some(status),
                _ => None,
            }),
        }
    }

    /// The connection named `name`.
    pub fn link(&mut self, name: &str) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.name == name)
    }

    /// Every connection, in the order opened.
    pub fn links(&mut self) -> &mut [Link] {
        &mut self.links
    }

    /// Makes the connection named `name` the current one; `false` when there is none.
    pub fn select(&mut self, name: &str) -> bool {
        match self.links.iter().position(|l| l.name == name) {
            Some(i) => {
                self.current = Some(i);
                true
            }
            None => false,
        }
    }

    /// Adds a connection (replacing, and closing, one of the same name) and makes it current.
    pub fn add_link(&mut self, link: Link) {
        if let Some(i) = self.links.iter().position(|l| l.name == link.name) {
            let old = self.links.remove(i);
            self.retire(old);
        }
        self.links.push(link);
        self.current = Some(self.links.len() - 1);
    }

    /// Moves a connection's transcript into the case evidence and drops it.
    fn retire(&mut self, link: Link) {
        let Some(channel) = link.channel else { return };
        self.keep_violations(channel.violations(), link.mutated && link.valid_confirmed);
        let t = channel.transcript();
        let label = if link.name == DEFAULT_CONNECTION {
            String::new()
        } else {
            format!(" `{}`", link.name)
        };
        self.log.note(format!(
            "connection{label} transcript (times from its handshake):"
        ));
        // Through the case log's redaction too: secrets registered after an entry was recorded
        // (a cookie, a later ticket) are hidden before the line can be cut.
        for entry in t.entries() {
            let line = format!("+{}ms {}", entry.at.as_millis(), entry.what);
            match entry.direction {
                crate::client::evidence::Direction::Sent => self.log.sent(line),
                crate::client::evidence::Direction::Received => self.log.saw(line),
                crate::client::evidence::Direction::Note => self.log.note(line),
            }
        }
        if t.omitted() > 0 {
            self.log
                .note(format!("({} connection events not kept)", t.omitted()));
        }
    }

    /// Closes every connection, keeping their transcripts as evidence.
    pub fn close_all(&mut self) {
        for link in std::mem::take(&mut self.links) {
            self.retire(link);
        }
        self.current = None;
    }

    /// The next reply on the current connection until `deadline`.
    pub async fn next_reply(&mut self, deadline: Instant) -> Reply {
        let Some(channel) = self.channel() else {
            return Reply {
                kind: super::channel::Kind::Dropped,
                event: Event::Dropped {
                    error: "no connection is open".into(),
                },
                signal: crate::dialect::Signal::Data,
            };
        };
        let r = channel.next(deadline).await;
        let fault = channel.take_fault();
        if let Some(f) = fault {
            self.note_fault(f);
        }
        r
    }

    /// Records a harness fault so the case ends `error`, whatever a judgement made of it.
    pub fn note_fault(&mut self, fault: String) {
        if self.fault.is_none() {
            self.log.note(format!("harness fault: {fault}"));
            self.fault = Some(fault);
        }
    }

    /// The harness fault seen so far, taken.
    pub fn take_fault(&mut self) -> Option<String> {
        let from_channels: Vec<String> = self
            .links
            .iter_mut()
            .filter_map(|l| l.channel.as_mut().and_then(Channel::take_fault))
            .collect();
        for f in from_channels {
            self.note_fault(f);
        }
        self.fault.take()
    }

    /// Reads what is queued on the current connection without waiting (see
    /// [`Channel::drain`]).
    pub async fn drain(&mut self) {
        if let Some(c) = self.channel() {
            c.drain().await;
        }
        if let Some(f) = self.channel().and_then(Channel::take_fault) {
            self.note_fault(f);
        }
    }

    /// Sleeps until `until`, draining the current connection on the way.
    pub async fn idle_until(&mut self, until: Instant) {
        while Instant::now() < until {
            let ended = self.channel().is_none_or(|c| c.has_ended());
            let step = until.min(Instant::now() + Duration::from_millis(50));
            if ended {
                tokio::time::sleep_until(until).await;
                return;
            }
            tokio::time::sleep_until(step).await;
            self.drain().await;
        }
    }

    /// The last `http_request` response.
    pub fn http(&self) -> Option<&Result<HttpResponse, String>> {
        self.http.as_ref()
    }

    /// Keeps an `http_request` response.
    pub fn set_http(&mut self, response: Result<HttpResponse, String>) {
        self.http = Some(response);
    }

    /// The last `tls_probe` result.
    pub fn probe(&self) -> Option<&ProbeSeen> {
        self.probe.as_ref()
    }

    /// Keeps a `tls_probe` result.
    pub fn set_probe(&mut self, probe: ProbeSeen) {
        self.probe = Some(probe);
    }

    /// The last `tls_hello` result.
    pub fn hello(&self) -> Option<&HelloSeen> {
        self.hello.as_ref()
    }

    /// Keeps a `tls_hello` result.
    pub fn set_hello(&mut self, hello: HelloSeen) {
        self.hello = Some(hello);
    }

    /// When the steps finished (timing expectations count from here).
    pub fn steps_done(&self) -> Instant {
        self.steps_done
    }

    /// Marks the end of the steps.
    pub fn finish_steps(&mut self) {
        self.steps_done = Instant::now();
    }

    /// A session for one branch of a `parallel` step: the same target, evidence and tickets,
    /// and the connections `names` moved over from this session (the branch acts on them).
    pub fn fork(&mut self, names: &[String]) -> Session {
        let mut child = Session::new(self.rt.clone(), self.log.clone());
        child.judges_conformance = self.judges_conformance;
        child.tickets = self.tickets.clone();
        child.setup = self.setup.clone();
        child.ticket_at_fork = self.tickets.own.as_ref().map(|t| t.value().to_string());
        let mut i = 0;
        while i < self.links.len() {
            if names.contains(&self.links[i].name) {
                child.links.push(self.links.remove(i));
            } else {
                i += 1;
            }
        }
        self.current = None;
        child.current = child.links.len().checked_sub(1);
        child
    }

    /// Takes back a branch's connections and what it learnt of tickets and faults.
    pub fn join(&mut self, mut child: Session) {
        if let Some(f) = child.take_fault() {
            self.note_fault(f);
        }
        for (v, answering) in std::mem::take(&mut child.violations) {
            self.keep_violations(vec![v], answering);
        }
        for link in std::mem::take(&mut child.links) {
            self.add_link(link);
        }
        if child.tickets.used.is_some() {
            self.tickets.used = child.tickets.used.clone();
        }
        if child.tickets.last_fetched.is_some() {
            self.tickets.last_fetched = child.tickets.last_fetched.clone();
        }
        // A ticket a branch consumed (or replaced) is consumed (or replaced) for the case.
        if child.tickets.own.as_ref().map(|t| t.value().to_string()) != child.ticket_at_fork {
            self.tickets.own = child.tickets.own.take();
        }
        if child.tickets.other.is_some() {
            self.tickets.other = child.tickets.other.take();
        }
        if child.http.is_some() {
            self.http = child.http.take();
        }
        if child.probe.is_some() {
            self.probe = child.probe.take();
        }
    }
}
