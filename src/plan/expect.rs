//! What a case expects: the expectation vocabulary shared by suite files and the attack engine.
//! A case passes when every expectation holds. Every expectation is documented for suite
//! authors in `suites/README.md`.
//!
//! Adding an expectation: its variant and payload here (with its arm in [`with_expectation`],
//! which the compiler checks is complete), its judgement (`impl Judge` in the `attacks` module
//! of its concern), and its row in `suites/README.md`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::policy::{SameSite, TlsVersion};

/// Close codes that count as a rejection: protocol error, unsupported data, invalid payload,
/// policy violation, message too big (SPEC "A rejection needs positive evidence").
pub const REJECTION_CODES: [u16; 5] = [1002, 1003, 1007, 1008, 1009];

/// Slack added to a timing bound when a suite states none.
pub const DEFAULT_SLACK: Duration = Duration::from_secs(1);

/// One condition a case checks once its steps ran. Its name in suites is its variant's in
/// snake case ([`Expectation::name`]), from the same derive as serde's.
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
pub enum Expectation {
    /// The last handshake was refused (no 101); with `status`, exactly that HTTP status.
    HandshakeRefused(HandshakeRefused),
    /// The last handshake completed with 101 (and negotiated exactly the set `extensions` when
    /// given: an empty list means no extension at all).
    HandshakeUpgraded(HandshakeUpgraded),
    /// The target's own URLs carry none of these query parameters: a target that authenticates
    /// with a credential in its URL does what a URL-token control forbids.
    UrlWithoutParams(UrlWithoutParams),
    /// The server rejected what was sent, with positive evidence.
    Rejected(Rejected),
    /// The server accepted what was sent: replies match `messages.accepted_when` (after a
    /// `send`) or `auth.accepted_when` (after `authenticate`/`login`).
    Accepted(Accepted),
    /// The server closed the connection (or dropped it when `codes` is empty) within the bound.
    Closed(Closed),
    /// The server sent a ping within the bound.
    PingSeen(PingSeen),
    /// The response of the last `http_request` sets the session cookie(s) with these attributes.
    Cookie(CookieAttributes),
    /// The last `tls_probe` negotiated at least `min_version`, with a valid certificate when asked.
    Tls(TlsExpectation),
    /// The last `tls_hello` was refused: the server answered the ClientHello with an alert or a
    /// close, or with a version at or above the policy's minimum, never with the old version or
    /// the weak suite offered.
    TlsRefused,
    /// After the case, a fresh connection still logs in and gets a valid message acknowledged.
    Healthy,
    /// Not testable from outside: reported as skipped, with the evidence named by the policy.
    Attested(Attested),
    /// Of the case's connections (or those named), at most `at_most` authenticated: the
    /// server accepted their authentication or acknowledged a valid business message.
    Authenticated(Authenticated),
    /// The refusals the named connections got (close code and reason, or error reply) are all
    /// alike: they do not tell which was which (a thief learns nothing of a stolen ticket).
    RefusalsAlike(RefusalsAlike),
    /// The limit the last `ramp` measured is within the policy's, give or take `tolerance`.
    MeasuredRate(MeasuredRate),
    /// The target's legitimate client authenticates with a ticket from its ticket endpoint in
    /// the first message (judged on the target file; without, the evidence shows how it gets
    /// data instead).
    TicketFlow,
    /// The server's 101 and every frame it sent in the case follow the rules of RFC 6455 (and
    /// RFC 7692) a browser enforces; after a frame of the case's own (a close), waits up to
    /// [`CONFORMS_WAIT`] for the connection to end, so the close handshake and anything sent
    /// after it are checked too.
    Conforms,
}

/// How long `conforms` waits for the case's connection to end.
pub const CONFORMS_WAIT: Duration = Duration::from_secs(2);

/// Runs `$body` with `$x` bound to a reference to the payload of `$expectation` (a unit
/// expectation binds its unit struct): the engine's dispatch, one arm per expectation, checked
/// complete by the compiler.
macro_rules! with_expectation {
    ($expectation:expr, $x:ident => $body:expr) => {
        match $expectation {
            $crate::plan::Expectation::HandshakeRefused($x) => $body,
            $crate::plan::Expectation::HandshakeUpgraded($x) => $body,
            $crate::plan::Expectation::UrlWithoutParams($x) => $body,
            $crate::plan::Expectation::Rejected($x) => $body,
            $crate::plan::Expectation::Accepted($x) => $body,
            $crate::plan::Expectation::Closed($x) => $body,
            $crate::plan::Expectation::PingSeen($x) => $body,
            $crate::plan::Expectation::Cookie($x) => $body,
            $crate::plan::Expectation::Tls($x) => $body,
            $crate::plan::Expectation::TlsRefused => {
                let $x = &$crate::plan::expect::TlsRefused;
                $body
            }
            $crate::plan::Expectation::Healthy => {
                let $x = &$crate::plan::expect::Healthy;
                $body
            }
            $crate::plan::Expectation::Attested($x) => $body,
            $crate::plan::Expectation::Authenticated($x) => $body,
            $crate::plan::Expectation::RefusalsAlike($x) => $body,
            $crate::plan::Expectation::MeasuredRate($x) => $body,
            $crate::plan::Expectation::TicketFlow => {
                let $x = &$crate::plan::expect::TicketFlow;
                $body
            }
            $crate::plan::Expectation::Conforms => {
                let $x = &$crate::plan::expect::Conforms;
                $body
            }
        }
    };
}
pub(crate) use with_expectation;

/// `refusals_alike`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusalsAlike {
    /// The connections whose refusals are compared, by name.
    pub connections: Vec<String>,
}

/// `measured_rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasuredRate {
    /// The policy's limit, messages per second.
    pub max_per_second: u32,
    /// How far above the limit the measured one may be, as a fraction (0.5: 50 % above).
    pub tolerance: f64,
}

/// `tls_refused`, as a payload for [`with_expectation`].
#[derive(Debug, Clone, Copy)]
pub struct TlsRefused;

/// `ticket_flow`, as a payload for [`with_expectation`].
#[derive(Debug, Clone, Copy)]
pub struct TicketFlow;

/// `conforms`, as a payload for [`with_expectation`].
#[derive(Debug, Clone, Copy)]
pub struct Conforms;

/// `healthy`, as a payload for [`with_expectation`].
#[derive(Debug, Clone, Copy)]
pub struct Healthy;

/// `authenticated`: how many of the case's connections may have authenticated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authenticated {
    /// The most connections that may have authenticated.
    pub at_most: u32,
    /// The connections judged, by name; absent: every connection of the case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<String>,
}

impl Expectation {
    /// The expectation's name as written in suites.
    pub fn name(&self) -> &'static str {
        self.into()
    }

    /// The longest this expectation may wait for its evidence (bound + slack).
    pub fn planned_time(&self) -> Duration {
        match self {
            Expectation::Closed(c) => c.within.total(),
            Expectation::PingSeen(p) => p.within.total(),
            Expectation::Rejected(r) => r.within.as_ref().map(Within::total).unwrap_or_default(),
            Expectation::Conforms => CONFORMS_WAIT,
            _ => Duration::ZERO,
        }
    }

    /// How long deciding likely takes against a secure target, for scheduling: a timed
    /// expectation is usually met at its bound, not after the slack.
    pub fn likely_time(&self) -> Duration {
        match self {
            Expectation::Closed(c) => c.within.bound,
            Expectation::PingSeen(p) => p.within.bound,
            Expectation::Rejected(r) => r.within.map(|w| w.bound).unwrap_or_default(),
            Expectation::Conforms => CONFORMS_WAIT,
            _ => Duration::ZERO,
        }
    }
}

/// A timing bound from the policy plus the slack the harness allows on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Within {
    /// The bound the policy sets.
    #[serde(with = "crate::config::values::duration")]
    #[schemars(schema_with = "crate::config::values::duration_schema")]
    pub bound: Duration,
    /// Allowance for network and scheduling delays, stated so verdicts are honest.
    #[serde(default = "default_slack", with = "crate::config::values::duration")]
    #[schemars(schema_with = "crate::config::values::duration_schema")]
    pub slack: Duration,
}

impl Within {
    /// `bound + slack`: how long the engine waits before deciding.
    pub fn total(&self) -> Duration {
        self.bound.saturating_add(self.slack)
    }
}

fn default_slack() -> Duration {
    DEFAULT_SLACK
}

/// `handshake_refused`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandshakeRefused {
    /// The exact HTTP status required, when the policy demands one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// `handshake_upgraded`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandshakeUpgraded {
    /// The exact set of extension names the 101 must negotiate in `Sec-WebSocket-Extensions`
    /// (case-insensitive, order and parameters ignored); an empty list requires that nothing was
    /// negotiated (no header, or an empty one). Absent: the extensions are not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<String>>,
}

/// `url_without_params`: judged on the target file, not on traffic.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlWithoutParams {
    /// Query parameter names that must not appear in the target's `url` or `plaintext_url`
    /// (compared case-insensitively; values are never shown).
    pub params: Vec<String>,
}

/// `rejected`: positive evidence of a rejection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejected {
    /// Close codes that count (default 1002, 1003, 1007, 1008, 1009).
    #[serde(default = "default_codes")]
    pub codes: Vec<u16>,
    /// Whether the connection dropping without a close frame counts.
    #[serde(default = "yes")]
    pub drop_counts: bool,
    /// Whether silence (no acknowledgement, no data) until the bound counts; only where the
    /// policy makes silence the secure behaviour.
    #[serde(default, skip_serializing_if = "is_false")]
    pub silence_counts: bool,
    /// How long to wait for the evidence (the case deadline when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Within>,
}

/// `accepted`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    /// How many acknowledgements are needed (one per message sent when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Whether the connection must still be open afterwards.
    #[serde(default, skip_serializing_if = "is_false")]
    pub still_open: bool,
}

/// `closed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Closed {
    /// Close codes that count; empty accepts any close or a drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<u16>,
    /// Whether a drop without close frame also counts when `codes` is not empty.
    #[serde(default = "yes")]
    pub drop_counts: bool,
    /// A reply matching `messages.rejected_when` must come before the close.
    #[serde(default, skip_serializing_if = "is_false")]
    pub after_warning: bool,
    /// No business data may arrive before the close.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_data: bool,
    /// The deadline, counted from the end of the steps (or from `from`).
    pub within: Within,
    /// Where the clock starts: `steps` (default) or `connect` (when the connection opened:
    /// an absolute deadline that traffic during the steps does not push back).
    #[serde(default, skip_serializing_if = "ClockStart::is_steps")]
    pub from: ClockStart,
}

/// Where a `closed` clock starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockStart {
    /// When the steps finished.
    #[default]
    Steps,
    /// When the connection opened.
    Connect,
}

impl ClockStart {
    fn is_steps(&self) -> bool {
        *self == ClockStart::Steps
    }
}

/// `ping_seen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PingSeen {
    /// The deadline for the first ping.
    pub within: Within,
}

/// `cookie`: attributes of the session cookie(s) in the `Set-Cookie` of the last `http_request`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CookieAttributes {
    /// The session cookies judged, by name: each must be set and carry the attributes; other
    /// cookies (a load balancer's) are ignored. Empty: every cookie set is judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// `Secure` required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// `HttpOnly` required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// Minimum `SameSite` value: `Strict` satisfies `Lax`; `None` or no attribute satisfies
    /// neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samesite: Option<SameSite>,
    /// Whether a session cookie must be set at all; when not, a response setting none makes
    /// the case not applicable (nothing for the attributes to protect).
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
}

/// `tls`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsExpectation {
    /// Lowest acceptable negotiated version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// The certificate must be valid for the host (with the target's CA when given).
    #[serde(default, skip_serializing_if = "is_false")]
    pub certificate_valid: bool,
    /// The certificate must stay valid at least this many more days (0: not checked beyond
    /// validity).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_days_left: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `attested`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attested {
    /// Where the evidence is kept.
    pub evidence: String,
}

fn default_codes() -> Vec<u16> {
    REJECTION_CODES.to_vec()
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}
