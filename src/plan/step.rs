//! What a case does: the step vocabulary shared by suite files and the attack engine.
//! Each step acts on the case's *current connection* (the last one `connect` opened, or the one
//! `on` selected). Every step is documented for suite authors in `suites/README.md`.
//!
//! Adding a step: its variant and payload here (with its arm in [`with_step`], which the
//! compiler checks is complete), its execution (`impl Perform` in the `attacks` module of its
//! concern), and its row in `suites/README.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::expect::Within;
use crate::config::values::ByteSize;

/// One action of a case. Its name in suites is its variant's in snake case
/// ([`Step::name`]), from the same derive as serde's.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    JsonSchema,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    /// Open a new WebSocket connection (it becomes the current one).
    Connect(Connect),
    /// Obtain a ticket from the target's ticket endpoint (kept for `authenticate`).
    FetchTicket(FetchTicket),
    /// Send the target's first message with a chosen kind of ticket.
    Authenticate(Authenticate),
    /// Perform the target's legitimate authentication, whatever it is (ticket flow, token in
    /// the URL, or nothing), and wait for `auth.accepted_when` when the target defines it.
    Login,
    /// Send one or more data messages.
    Send(Send),
    /// Send one hand-built frame (or a fragmented message), bypassing the client's checks.
    SendFrame(SendFrame),
    /// Send many messages quickly on the current connection.
    Flood(Flood),
    /// Send the target's valid message and wait for its acknowledgement: the differential
    /// control on the connection an attack then uses, so a drop after the attack can be told
    /// from a connection that drops anything.
    SendValid(SendValid),
    /// Do nothing for `bound + slack`.
    Wait(Within),
    /// Whether the client answers the server's pings from now on (it does by default).
    AnswerPings(bool),
    /// Make a plain HTTP(S) request (the cookie check reads its `Set-Cookie`).
    HttpRequest(HttpRequest),
    /// Make a TLS handshake only, to observe the version and certificate.
    TlsProbe(TlsProbe),
    /// Send a hand-built ClientHello offering only an old version (or only a class of weak
    /// suites) and read the server's first flight.
    TlsHello(TlsHello),
    /// Keep sending control frames (or other traffic) on the current connection for a while,
    /// as a client that stays busy without ever authenticating.
    KeepBusy(KeepBusy),
    /// Send the valid message at rates rising stage by stage, recording when the server first
    /// warns and closes: a measurement of the limit it enforces.
    Ramp(Ramp),
    /// Act on the connection of this name (`connect: { as: NAME }`) from now on.
    On(String),
    /// Run branches of steps concurrently, each on its own connections (a race).
    Parallel(Vec<Vec<Step>>),
}

/// Runs `$body` with `$x` bound to a reference to the payload of `$step` (a unit step binds
/// its unit struct): the engine's dispatch, one arm per step, checked complete by the
/// compiler.
macro_rules! with_step {
    ($step:expr, $x:ident => $body:expr) => {
        match $step {
            $crate::plan::Step::Connect($x) => $body,
            $crate::plan::Step::FetchTicket($x) => $body,
            $crate::plan::Step::Authenticate($x) => $body,
            $crate::plan::Step::Login => {
                let $x = &$crate::plan::step::Login;
                $body
            }
            $crate::plan::Step::Send($x) => $body,
            $crate::plan::Step::SendFrame($x) => $body,
            $crate::plan::Step::Flood($x) => $body,
            $crate::plan::Step::SendValid($x) => $body,
            $crate::plan::Step::Wait(w) => {
                let $x = &$crate::plan::step::Wait(*w);
                $body
            }
            $crate::plan::Step::AnswerPings(on) => {
                let $x = &$crate::plan::step::AnswerPings(*on);
                $body
            }
            $crate::plan::Step::HttpRequest($x) => $body,
            $crate::plan::Step::TlsProbe($x) => $body,
            $crate::plan::Step::TlsHello($x) => $body,
            $crate::plan::Step::KeepBusy($x) => $body,
            $crate::plan::Step::Ramp($x) => $body,
            $crate::plan::Step::On(name) => {
                let $x = &$crate::plan::step::On(name.clone());
                $body
            }
            $crate::plan::Step::Parallel(branches) => {
                let $x = &$crate::plan::step::Parallel(branches.clone());
                $body
            }
        }
    };
}
pub(crate) use with_step;

/// `login`, as a payload for [`with_step`].
#[derive(Debug, Clone, Copy)]
pub struct Login;

/// `wait`, as a payload for [`with_step`].
#[derive(Debug, Clone, Copy)]
pub struct Wait(pub Within);

/// `answer_pings`, as a payload for [`with_step`].
#[derive(Debug, Clone, Copy)]
pub struct AnswerPings(pub bool);

/// `on`, as a payload for [`with_step`].
#[derive(Debug, Clone)]
pub struct On(pub String);

/// `parallel`, as a payload for [`with_step`].
#[derive(Debug, Clone)]
pub struct Parallel(pub Vec<Vec<Step>>);

impl Parallel {
    /// The connections each branch acts on (`on: NAME`), which the branch takes over.
    pub fn connections_used(branch: &[Step]) -> Vec<String> {
        branch
            .iter()
            .filter_map(|s| match s {
                Step::On(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Step {
    /// The step's name as written in suites.
    pub fn name(&self) -> &'static str {
        self.into()
    }

    /// Time this step deliberately spends (waits and floods), counted into the case deadline;
    /// branches of a `parallel` run at once, so the longest counts.
    pub fn planned_time(&self) -> Duration {
        match self {
            Step::Wait(w) => w.total(),
            Step::Flood(f) => f.duration.unwrap_or_default(),
            Step::KeepBusy(k) => k.duration,
            Step::Ramp(r) => r.each.saturating_mul(r.stages),
            Step::Parallel(branches) => branches
                .iter()
                .map(|b| b.iter().map(Step::planned_time).sum())
                .max()
                .unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    /// How long this step likely takes against a secure target, for scheduling: a `keep_busy`
    /// lasts until the close its case expects (that expectation's bound counts instead).
    pub fn likely_time(&self) -> Duration {
        match self {
            Step::KeepBusy(_) => Duration::ZERO,
            Step::Parallel(branches) => branches
                .iter()
                .map(|b| b.iter().map(Step::likely_time).sum())
                .max()
                .unwrap_or_default(),
            s => s.planned_time(),
        }
    }

    /// Handshakes this step makes at most (each may take a connect timeout).
    pub fn handshakes(&self) -> u32 {
        match self {
            Step::Connect(_) => 1,
            Step::Parallel(branches) => branches
                .iter()
                .map(|b| b.iter().map(Step::handshakes).sum::<u32>())
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// Problems serde cannot see (e.g. a `send` with two payloads), as messages.
    pub fn problems(&self) -> Vec<String> {
        match self {
            Step::Send(s) => s.problems(),
            Step::SendFrame(f) => f.problems(),
            Step::Flood(f) => f.problems(),
            Step::Authenticate(a) if (a.ticket == TicketChoice::Tampered) != a.tamper.is_some() => {
                vec![
                    "authenticate: `tamper` goes with `ticket: tampered` and only with it"
                        .to_string(),
                ]
            }
            Step::Ramp(r) if r.stages == 0 || !(r.from > 0.0 && r.to >= r.from) => {
                vec!["ramp: expected at least one stage and 0 < from <= to".to_string()]
            }
            Step::Parallel(branches) => {
                let mut out: Vec<String> =
                    branches.iter().flatten().flat_map(Step::problems).collect();
                if branches.len() < 2 {
                    out.push(format!(
                        "parallel has {} branch(es): expected at least 2 to run at once",
                        branches.len()
                    ));
                }
                let mut named = std::collections::BTreeSet::new();
                for b in branches {
                    for s in b {
                        if let Step::Connect(Connect { name: Some(n), .. }) = s
                            && !named.insert(n.clone())
                        {
                            out.push(format!(
                                "parallel: two branches open a connection named `{n}`: expected distinct names"
                            ));
                        }
                    }
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

/// `connect`: a WebSocket handshake: the target's legitimate one (its URL, headers, cookies,
/// subprotocols) with what the fields below change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    /// The connection's name, for `on` and for cases with several connections; a connection
    /// of the same name is closed first. Absent: `main`.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Origin header; omitted (or null) sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Query parameters added to the URL (values may use `{{ticket}}`/`{{credential}}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Which session cookie the handshake carries.
    #[serde(default, skip_serializing_if = "CookieChoice::is_none")]
    pub cookie: CookieChoice,
    /// Extensions offered in `Sec-WebSocket-Extensions` (e.g. `permessage-deflate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    /// Use the target's plaintext URL instead of its TLS URL.
    #[serde(default, skip_serializing_if = "is_false")]
    pub plaintext: bool,
    /// Drop the target's own query string (e.g. a token in the URL) from the URL.
    #[serde(default, skip_serializing_if = "is_false")]
    pub strip_query: bool,
    /// Whether the handshake carries the target's credentials (`connect.headers` such as
    /// `Authorization`, `connect.cookies`, a token in the URL's query); `false` sends none.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub credentials: bool,
    /// Appended to the URL's path (a credential as a path segment: `/{{ticket}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_suffix: Option<String>,
    /// Subprotocols offered after the target's own (a credential as a subprotocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprotocols: Option<Vec<String>>,
    /// Carry only what a browser sends on its own to another site's socket: the legitimate
    /// client's session cookies (`connect.cookies`, the setup requests', the ticket
    /// endpoint's), no credential header, no credential in the URL.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cookies_only: bool,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            name: None,
            origin: None,
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            cookie: CookieChoice::None,
            extensions: Vec::new(),
            plaintext: false,
            strip_query: false,
            credentials: true,
            path_suffix: None,
            subprotocols: None,
            cookies_only: false,
        }
    }
}

/// The cookie a handshake carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CookieChoice {
    /// No cookie.
    #[default]
    None,
    /// The session cookie the last `fetch_ticket` received.
    Session,
    /// A session cookie of another, separately fetched session.
    OtherSession,
}

impl CookieChoice {
    fn is_none(&self) -> bool {
        *self == CookieChoice::None
    }
}

/// `fetch_ticket`: request a ticket as the target describes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchTicket {
    /// Whose session the ticket belongs to.
    #[serde(default, skip_serializing_if = "SessionChoice::is_own")]
    pub session: SessionChoice,
}

/// Which session a ticket is fetched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionChoice {
    /// The case's own session.
    #[default]
    Own,
    /// A second, unrelated session.
    Other,
}

impl SessionChoice {
    fn is_own(&self) -> bool {
        *self == SessionChoice::Own
    }
}

/// `authenticate`: the target's first message carrying a chosen ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authenticate {
    /// Which ticket to put in the message.
    pub ticket: TicketChoice,
    /// With `ticket: tampered`: how the fresh ticket is changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tamper: Option<TicketTamper>,
}

/// How `authenticate: { ticket: tampered }` changes a fresh, unused ticket: JWT forgeries for a
/// ticket that is a JWT, character-level ones for an opaque ticket (each kind not applicable to
/// the other form of ticket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketTamper {
    /// JWT: the header says `"alg": "none"`, the signature is dropped.
    AlgNone,
    /// JWT: the signature is removed (`header.payload.`).
    StripSignature,
    /// JWT: one character of the signature changed.
    AlterSignature,
    /// JWT: a claim changed (`sub` set to another user), re-encoded, the old signature kept.
    ChangeClaims,
    /// JWT: `exp` pushed a day later, re-encoded, the old signature kept.
    ExtendExp,
    /// Opaque: its last character changed.
    FlipChar,
    /// Opaque: its last character dropped.
    Truncate,
    /// Opaque: the case of its letters swapped.
    SwapCase,
}

impl TicketTamper {
    /// Every tamper, in plan order.
    pub const ALL: [TicketTamper; 8] = [
        TicketTamper::AlgNone,
        TicketTamper::StripSignature,
        TicketTamper::AlterSignature,
        TicketTamper::ChangeClaims,
        TicketTamper::ExtendExp,
        TicketTamper::FlipChar,
        TicketTamper::Truncate,
        TicketTamper::SwapCase,
    ];

    /// Its name as written in suites.
    pub fn name(self) -> &'static str {
        match self {
            TicketTamper::AlgNone => "alg_none",
            TicketTamper::StripSignature => "strip_signature",
            TicketTamper::AlterSignature => "alter_signature",
            TicketTamper::ChangeClaims => "change_claims",
            TicketTamper::ExtendExp => "extend_exp",
            TicketTamper::FlipChar => "flip_char",
            TicketTamper::Truncate => "truncate",
            TicketTamper::SwapCase => "swap_case",
        }
    }

    /// Whether it applies to JWT tickets (else to opaque ones).
    pub fn for_jwt(self) -> bool {
        matches!(
            self,
            TicketTamper::AlgNone
                | TicketTamper::StripSignature
                | TicketTamper::AlterSignature
                | TicketTamper::ChangeClaims
                | TicketTamper::ExtendExp
        )
    }
}

/// Kinds of ticket `authenticate` can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketChoice {
    /// A ticket fetched for this and never used (fetched now unless `fetch_ticket` just ran).
    Fresh,
    /// The ticket an earlier `authenticate` of this case already used.
    Reused,
    /// The last fetched ticket, unused, after a `wait` longer than the policy's TTL.
    Expired,
    /// A random string of the shape of a ticket that the server never issued.
    Forged,
    /// A ticket fetched with `fetch_ticket: { session: other }`.
    OtherSession,
    /// The last ticket fetched for the case's own session, used or not: several connections
    /// redeeming it at once (a race).
    Fetched,
    /// A fresh, unused ticket changed as `tamper` says (a forgery built from a real ticket).
    Tampered,
}

/// `send`: one data message (or `repeat` copies).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Send {
    /// A text message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A JSON value sent as a compact text message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// A binary message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<Bytes>,
    /// A text message of nested JSON arrays this deep (`[[[...]]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep_json: Option<u32>,
    /// A text message holding a JSON array of this many zeros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wide_json: Option<u32>,
    /// A permessage-deflate compressed message that inflates to this size (a bomb); not
    /// applicable (the case is skipped) when the handshake did not negotiate permessage-deflate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflates_to: Option<ByteSize>,
    /// Pad a text message with trailing spaces (valid JSON whitespace) to this size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to: Option<ByteSize>,
    /// The JSON object (the target's valid message) a `deep_json` or `wide_json` array goes
    /// into, as the value of its first member: only the nesting or the width differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_in: Option<String>,
    /// Send the text as a binary message instead (only the frame type differs).
    #[serde(default, skip_serializing_if = "is_false")]
    pub as_binary: bool,
    /// Drop this many bytes from the end of the text (the valid message, made malformed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<u32>,
    /// Put an invalid UTF-8 sequence (C3 28) after the text's first `"` (only the encoding
    /// differs).
    #[serde(default, skip_serializing_if = "is_false")]
    pub invalid_utf8: bool,
    /// How many times to send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
}

impl Send {
    fn problems(&self) -> Vec<String> {
        let payloads = [
            self.text.is_some(),
            self.json.is_some(),
            self.binary.is_some(),
            self.deep_json.is_some(),
            self.wide_json.is_some(),
            self.inflates_to.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        let mut out = Vec::new();
        if payloads != 1 {
            out.push(format!(
                "send has {payloads} payloads: expected exactly one of text, json, binary, deep_json, wide_json, inflates_to"
            ));
        }
        let text = self.text.is_some() || self.json.is_some();
        if self.pad_to.is_some() && !text {
            out.push("send.pad_to pads text only: expected it with text or json".to_string());
        }
        for (set, name) in [
            (self.as_binary, "as_binary"),
            (self.truncate.is_some(), "truncate"),
            (self.invalid_utf8, "invalid_utf8"),
        ] {
            if set && !text {
                out.push(format!(
                    "send.{name} changes text only: expected it with text or json"
                ));
            }
        }
        if self.embed_in.is_some() && self.deep_json.is_none() && self.wide_json.is_none() {
            out.push(
                "send.embed_in places a generated array: expected it with deep_json or wide_json"
                    .to_string(),
            );
        }
        out
    }
}

/// `send_valid`: the differential control on the current connection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendValid {}

/// `send_frame`: a raw frame, possibly malformed on purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendFrame {
    /// The opcode: a name (text, binary, continuation, close, ping, pong) or a number 0-15.
    pub opcode: Opcode,
    /// The FIN bit.
    #[serde(default = "yes")]
    pub fin: bool,
    /// The RSV1 bit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rsv1: bool,
    /// The RSV2 bit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rsv2: bool,
    /// The RSV3 bit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rsv3: bool,
    /// Whether the frame is masked (clients must mask).
    #[serde(default = "yes")]
    pub masked: bool,
    /// The exact payload bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Bytes>,
    /// The payload as UTF-8 text (e.g. the target's valid message, so a server that tolerates
    /// the frame's defect visibly acknowledges it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A payload of this many filler bytes (`a`), streamed from a small buffer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_size: Option<ByteSize>,
    /// Pad `text` (the target's valid message) with trailing spaces to this size, streamed
    /// from a small buffer when large: an oversized message that is still the valid one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to: Option<ByteSize>,
    /// The length written in the header when it differs from the bytes sent (the client
    /// sends the payload it has and then waits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_length: Option<ByteSize>,
    /// Split the payload into this many frames (first with the opcode, then continuations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragments: Option<u32>,
    /// A close frame's status code (written before `payload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
}

impl SendFrame {
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let payloads = [
            self.payload.is_some(),
            self.payload_size.is_some(),
            self.text.is_some(),
        ];
        if payloads.iter().filter(|b| **b).count() > 1 {
            out.push("send_frame has more than one of payload, payload_size and text: expected at most one".to_string());
        }
        if self.fragments == Some(0) {
            out.push("send_frame.fragments is 0: expected at least 1".to_string());
        }
        if self.pad_to.is_some() && self.text.is_none() {
            out.push("send_frame.pad_to pads text: expected it with text".to_string());
        }
        if self.pad_to.is_some() && self.payload_size.is_some() {
            out.push("send_frame has both pad_to and payload_size: expected one size".to_string());
        }
        out
    }
}

/// `flood`: many messages quickly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Flood {
    /// The message sent each time.
    pub text: String,
    /// How many messages (or `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// For how long (or `count`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::config::values::duration::option"
    )]
    #[schemars(schema_with = "crate::config::values::duration_schema")]
    pub duration: Option<Duration>,
    /// Messages per second; absent sends as fast as possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<u32>,
    /// Drop this many bytes from the end of each message (the valid message, made invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<u32>,
    /// Send each message as the only element of a JSON array (`[valid]`): well-formed JSON,
    /// inside an intact protocol envelope, that no object schema accepts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub in_array: bool,
    /// Send pings (carrying `text`) instead of messages: a ping flood.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pings: bool,
}

/// `keep_busy`: traffic that is not authentication, every `every`, for `duration` (or until the
/// server ends the connection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepBusy {
    /// What is sent each time.
    pub send: BusyFrame,
    /// The gap between two.
    #[serde(with = "crate::config::values::duration")]
    #[schemars(schema_with = "crate::config::values::duration_schema")]
    pub every: Duration,
    /// For how long.
    #[serde(with = "crate::config::values::duration")]
    #[schemars(schema_with = "crate::config::values::duration_schema")]
    pub duration: Duration,
}

/// What `keep_busy` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BusyFrame {
    /// A ping.
    Ping,
    /// An unsolicited pong (a heartbeat reply).
    Pong,
}

/// `ramp`: the valid message at `per_second` times a rising factor, `stages` stages of `each`,
/// from `from` to `to` times the base rate (geometrically).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// The base rate (the policy's limit), messages per second.
    pub per_second: u32,
    /// The first stage's factor of the base rate.
    pub from: f64,
    /// The last stage's factor.
    pub to: f64,
    /// How many stages.
    pub stages: u32,
    /// How long each stage lasts.
    #[serde(with = "crate::config::values::duration")]
    #[schemars(schema_with = "crate::config::values::duration_schema")]
    pub each: Duration,
}

impl Flood {
    fn problems(&self) -> Vec<String> {
        match (self.count, self.duration) {
            (None, None) | (Some(_), Some(_)) => {
                vec!["flood needs exactly one of count and duration".to_string()]
            }
            _ if self.per_second == Some(0) => {
                vec!["flood.per_second is 0: expected a positive rate".to_string()]
            }
            _ => Vec::new(),
        }
    }
}

/// `http_request`: an HTTP request, by default the target's own ticket request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// Which request to make.
    pub endpoint: HttpEndpoint,
}

/// Requests `http_request` can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpEndpoint {
    /// The target's `auth.ticket.request`, headers and all.
    Ticket,
}

/// `tls_probe`: a TLS handshake with the target's TLS endpoint (TLS 1.3 and 1.2, as rustls
/// speaks them), recording the version and certificate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsProbe {}

/// `tls_hello`: a raw ClientHello to the target's TLS endpoint, as testssl.sh sends them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsHello {
    /// The only version offered: "3.0", "1.0", "1.1" or "1.2".
    pub version: crate::config::policy::LegacyVersion,
    /// Offer only this class of weak suites; absent: the suites real clients of `version`
    /// offered (so a refusal is about the version, not the suites).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suites: Option<crate::config::policy::SuiteClass>,
}

/// A frame opcode, written by name or as a number 0-15 (reserved ones included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opcode(pub u8);

impl Opcode {
    const NAMES: [(&'static str, u8); 6] = [
        ("continuation", 0),
        ("text", 1),
        ("binary", 2),
        ("close", 8),
        ("ping", 9),
        ("pong", 10),
    ];
}

impl Serialize for Opcode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match Self::NAMES.iter().find(|(_, n)| *n == self.0) {
            Some((name, _)) => s.serialize_str(name),
            None => s.serialize_u8(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Opcode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTED: &str =
            "expected text, binary, continuation, close, ping, pong or a number 0-15";
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Opcode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an opcode name or a number 0-15")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Opcode, E> {
                u8::try_from(n)
                    .ok()
                    .filter(|n| *n <= 15)
                    .map(Opcode)
                    .ok_or_else(|| E::custom(format!("invalid opcode {n}: {EXPECTED}")))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Opcode, E> {
                Err(E::custom(format!("invalid opcode {n}: {EXPECTED}")))
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Opcode, E> {
                Opcode::NAMES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, code)| Opcode(*code))
                    .ok_or_else(|| E::custom(format!("invalid opcode `{name}`: {EXPECTED}")))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl JsonSchema for Opcode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Opcode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                { "enum": ["continuation", "text", "binary", "close", "ping", "pong"] },
                { "type": "integer", "minimum": 0, "maximum": 15 }
            ]
        })
    }
}

/// Bytes written in suites as hex (`"c3 28"`, spaces allowed) and shown the same way.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Bytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let bad =
            || format!("invalid hex bytes \"{s}\": expected pairs of hex digits such as \"c3 28\"");
        if !digits.len().is_multiple_of(2) {
            return Err(bad());
        }
        (0..digits.len())
            .step_by(2)
            .map(|i| {
                digits
                    .get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<u8>, String>>()
            .map(Bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Bytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HexBytes".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Bytes as hex digit pairs, spaces allowed, e.g. \"c3 28\".",
            "type": "string",
            "pattern": "^(\\s*[0-9a-fA-F]{2})*\\s*$"
        })
    }
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_opcodes_round_trip() {
        let b: Bytes = "c3 28".parse().expect("hex");
        assert_eq!(b.0, vec![0xc3, 0x28]);
        assert_eq!(b.to_string(), "c3 28");
        assert!("c3 2".parse::<Bytes>().is_err());
        let o: Opcode = serde_yaml::from_str("3").expect("opcode");
        assert_eq!(serde_yaml::to_string(&o).expect("yaml").trim(), "3");
        let t: Opcode = serde_yaml::from_str("text").expect("opcode");
        assert_eq!(t, Opcode(1));
        assert!(serde_yaml::from_str::<Opcode>("16").is_err());
    }
}
