//! The policy: portable requirements as a list of controls. The reference server enforces a
//! policy; the compiler turns it into attack cases. Both read this one model.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::source::{ConfigError, Diagnostic, SourceFile, yaml_diagnostic};
use super::values::{ByteSize, Origin};

/// A whole policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Name of the policy (shown in reports).
    pub policy: String,
    /// Format version; only 1 exists.
    pub version: u32,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The controls, in file order.
    pub controls: Vec<Control>,
}

/// How bad a failed control is; maps to SARIF `security-severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Low,
    /// Should be fixed.
    #[default]
    Medium,
    /// Must be fixed soon.
    High,
    /// Must be fixed before release.
    Critical,
}

/// One requirement: a stable ID, the check family that tests it, and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Stable identifier, e.g. `WS-ORIGIN-01`.
    pub id: String,
    /// One-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Which check family tests it, e.g. `origin.allowlist`.
    pub check: String,
    /// Parameters of the check; their shape depends on `check`.
    #[serde(default, skip_serializing_if = "is_null")]
    pub with: serde_yaml::Value,
    /// How bad a failure is.
    #[serde(default)]
    pub severity: Severity,
    /// References such as `pci-dss-4.0:4.2.1` or `cwe:1385`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
}

fn is_null(v: &serde_yaml::Value) -> bool {
    v.is_null()
}

/// Parameters of `transport.tls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsParams {
    /// Lowest acceptable TLS version: "1.2" or "1.3".
    #[serde(default = "TlsParams::default_min")]
    pub min_version: TlsVersion,
}

impl TlsParams {
    fn default_min() -> TlsVersion {
        TlsVersion::V1_2
    }
}

/// A TLS protocol version a policy can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    V1_3,
}

/// What the server must do with a handshake that carries no Origin header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MissingOrigin {
    /// Refuse it like a foreign origin.
    #[default]
    Reject,
    /// Accept it (non-browser clients send none).
    Allow,
}

/// Parameters of `origin.allowlist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginParams {
    /// Exact origins (scheme, host, port) allowed to open a WebSocket.
    pub allowed: Vec<Origin>,
    /// What to do when the handshake has no Origin.
    #[serde(default)]
    pub missing_origin: MissingOrigin,
    /// When set, a refusal must use exactly this HTTP status (e.g. 403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// Parameters of `auth.ticket`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketParams {
    /// Longest a ticket may stay valid after it is issued.
    #[serde(with = "humantime_serde")]
    pub ttl_max: Duration,
    /// Whether a ticket may authenticate only one connection.
    #[serde(default = "yes")]
    pub single_use: bool,
}

/// Parameters of `auth.no_url_tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlTokenParams {
    /// Query parameter names tried with a valid credential.
    #[serde(default = "UrlTokenParams::default_params")]
    pub params: Vec<String>,
}

impl UrlTokenParams {
    /// The query parameter names careless servers commonly read credentials from.
    pub fn default_params() -> Vec<String> {
        ["token", "access_token", "ticket", "auth", "jwt"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}

/// Parameters of `auth.unauthenticated_timeout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnauthParams {
    /// How long a connection may stay open without authenticating.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

/// Parameters of `messages.schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaParams {
    /// A JSON Schema every business message must satisfy.
    pub schema: serde_json::Value,
}

/// Whether permessage-deflate may be negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeflatePolicy {
    /// Never negotiate compression.
    #[default]
    Refuse,
    /// Negotiate it, bounding the inflated size by the same limit.
    Allow,
}

/// Parameters of `messages.max_size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxSizeParams {
    /// Largest message (after reassembly and inflation) the server accepts.
    pub limit: ByteSize,
    /// Whether compression may be negotiated.
    #[serde(default)]
    pub deflate: DeflatePolicy,
}

/// Parameters of `messages.rate_limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitParams {
    /// Sustained messages per second allowed on one connection.
    pub max_per_second: u32,
    /// Whether the first excess gets a warning before the close.
    #[serde(default = "yes")]
    pub warn_first: bool,
}

/// Parameters of `heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatParams {
    /// Longest gap between two server pings.
    #[serde(with = "humantime_serde")]
    pub interval_max: Duration,
    /// Consecutive unanswered pings after which the connection must be closed.
    pub missed_max: u32,
}

/// The SameSite attribute value a cookie must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SameSite {
    /// `SameSite=Strict`.
    #[default]
    Strict,
    /// `SameSite=Lax`.
    Lax,
}

/// Parameters of `cookies.samesite`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieParams {
    /// Required SameSite value.
    #[serde(default)]
    pub samesite: SameSite,
    /// Whether `Secure` is required.
    #[serde(default = "yes")]
    pub secure: bool,
    /// Whether `HttpOnly` is required.
    #[serde(default = "yes")]
    pub http_only: bool,
}

/// Parameters of `attestation`: a control that cannot be tested from outside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationParams {
    /// Where the evidence is kept (a runbook, a log query, a ticket).
    pub evidence: String,
}

/// Parameters of checks that take none (`protocol.rfc6455`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

fn yes() -> bool {
    true
}

/// A control's parameters, typed by its check.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckParams {
    /// `transport.tls`
    Tls(TlsParams),
    /// `origin.allowlist`
    Origin(OriginParams),
    /// `auth.ticket`
    Ticket(TicketParams),
    /// `auth.no_url_tokens`
    UrlTokens(UrlTokenParams),
    /// `auth.unauthenticated_timeout`
    Unauthenticated(UnauthParams),
    /// `messages.schema`
    Schema(SchemaParams),
    /// `messages.max_size`
    MaxSize(MaxSizeParams),
    /// `messages.rate_limit`
    RateLimit(RateLimitParams),
    /// `heartbeat`
    Heartbeat(HeartbeatParams),
    /// `cookies.samesite`
    Cookies(CookieParams),
    /// `protocol.rfc6455`
    Protocol(NoParams),
    /// `attestation`
    Attestation(AttestationParams),
    /// A check provided only by a user suite; its parameters are kept as written.
    Custom(serde_yaml::Value),
}

/// The check names built into wsaudit, in catalogue order.
pub const BUILTIN_CHECKS: &[&str] = &[
    "transport.tls",
    "origin.allowlist",
    "auth.no_url_tokens",
    "auth.ticket",
    "auth.unauthenticated_timeout",
    "messages.schema",
    "messages.rate_limit",
    "messages.max_size",
    "heartbeat",
    "cookies.samesite",
    "protocol.rfc6455",
    "attestation",
];

impl CheckParams {
    /// Parses `with` according to `check`; unknown checks are kept as [`CheckParams::Custom`].
    pub fn parse(check: &str, with: &serde_yaml::Value) -> Result<Self, serde_yaml::Error> {
        fn typed<T: serde::de::DeserializeOwned>(
            v: &serde_yaml::Value,
        ) -> Result<T, serde_yaml::Error> {
            let v = if v.is_null() {
                serde_yaml::Value::Mapping(Default::default())
            } else {
                v.clone()
            };
            serde_yaml::from_value(v)
        }
        Ok(match check {
            "transport.tls" => Self::Tls(typed(with)?),
            "origin.allowlist" => Self::Origin(typed(with)?),
            "auth.ticket" => Self::Ticket(typed(with)?),
            "auth.no_url_tokens" => Self::UrlTokens(typed(with)?),
            "auth.unauthenticated_timeout" => Self::Unauthenticated(typed(with)?),
            "messages.schema" => Self::Schema(typed(with)?),
            "messages.max_size" => Self::MaxSize(typed(with)?),
            "messages.rate_limit" => Self::RateLimit(typed(with)?),
            "heartbeat" => Self::Heartbeat(typed(with)?),
            "cookies.samesite" => Self::Cookies(typed(with)?),
            "protocol.rfc6455" => Self::Protocol(typed(with)?),
            "attestation" => Self::Attestation(typed(with)?),
            _ => Self::Custom(with.clone()),
        })
    }
}

/// A policy with every control's parameters parsed and checked.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The policy as written.
    pub policy: Policy,
    /// Typed parameters, index-aligned with `policy.controls`.
    pub params: Vec<CheckParams>,
    /// Where the policy came from (for SARIF locations and messages).
    pub source: SourceFile,
}

impl LoadedPolicy {
    /// Loads and validates a policy file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        Self::parse(SourceFile::read(path)?)
    }

    /// Parses and validates policy text.
    pub fn parse(source: SourceFile) -> Result<Self, ConfigError> {
        let policy: Policy = match serde_yaml::from_str(&source.text) {
            Ok(p) => p,
            Err(e) => {
                let d = yaml_diagnostic(&source, &e);
                return Err(ConfigError::new(&source, vec![d]));
            }
        };
        let mut diagnostics = Vec::new();
        if policy.version != 1 {
            diagnostics.push(locate_key(
                &source,
                "version",
                0,
                "unsupported policy version: expected 1",
            ));
        }
        let mut params = Vec::with_capacity(policy.controls.len());
        let mut seen = std::collections::HashMap::new();
        for (i, control) in policy.controls.iter().enumerate() {
            if let Some(first) = seen.insert(control.id.as_str(), i) {
                diagnostics.push(locate_control(
                    &source,
                    &control.id,
                    1,
                    format!(
                        "duplicate control id `{}` (first used by control #{}): expected every id to be unique",
                        control.id,
                        first + 1
                    ),
                ));
            }
            match CheckParams::parse(&control.check, &control.with) {
                Ok(p) => {
                    if let Err(msg) = validate_params(&p) {
                        diagnostics.push(locate_control(
                            &source,
                            &control.id,
                            0,
                            format!("control `{}`: {msg}", control.id),
                        ));
                    }
                    params.push(p)
                }
                Err(e) => {
                    diagnostics.push(locate_control(
                        &source,
                        &control.id,
                        0,
                        format!(
                            "control `{}` ({}): invalid `with`: {}",
                            control.id, control.check, e
                        ),
                    ));
                    params.push(CheckParams::Custom(control.with.clone()));
                }
            }
        }
        if diagnostics.is_empty() {
            Ok(Self {
                policy,
                params,
                source,
            })
        } else {
            Err(ConfigError::new(&source, diagnostics))
        }
    }

    /// The first control of a check, with its typed parameters.
    pub fn find(&self, check: &str) -> Option<(&Control, &CheckParams)> {
        self.policy
            .controls
            .iter()
            .zip(&self.params)
            .find(|(c, _)| c.check == check)
    }

    /// Parameters of `origin.allowlist`, if the policy has it.
    pub fn origin(&self) -> Option<&OriginParams> {
        self.params.iter().find_map(|p| match p {
            CheckParams::Origin(o) => Some(o),
            _ => None,
        })
    }
}

/// Semantic checks serde cannot express.
fn validate_params(p: &CheckParams) -> Result<(), String> {
    match p {
        CheckParams::Origin(o) if o.allowed.is_empty() => {
            Err("`allowed` is empty: expected at least one origin".into())
        }
        CheckParams::RateLimit(r) if r.max_per_second == 0 => {
            Err("`max_per_second` is 0: expected a positive number".into())
        }
        CheckParams::Heartbeat(h) if h.missed_max == 0 || h.interval_max.is_zero() => {
            Err("`interval_max` and `missed_max` must be positive".into())
        }
        CheckParams::MaxSize(m) if m.limit.0 == 0 => {
            Err("`limit` is 0: expected a positive size".into())
        }
        CheckParams::Schema(s) => jsonschema::validator_for(&s.schema)
            .map(|_| ())
            .map_err(|e| format!("`schema` is not a valid JSON Schema: {e}")),
        _ => Ok(()),
    }
}

/// Locates the `- id: ID` line of a control (plus `offset` lines), falling back to the file start.
fn locate_control(source: &SourceFile, id: &str, offset: usize, message: String) -> Diagnostic {
    let mut matches = source.text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        t.strip_prefix("id:")
            .map(|rest| rest.trim().trim_matches(['"', '\'']) == id)
            .unwrap_or(false)
    });
    // Duplicates point at the second occurrence.
    let hit = if offset == 1 {
        matches.nth(1)
    } else {
        matches.next()
    };
    match hit {
        Some((i, l)) => {
            let col = l.find("id:").map(|c| c + 1).unwrap_or(1);
            source.error_at(i + 1, col, message)
        }
        None => source.error_without_location(message),
    }
}

fn locate_key(source: &SourceFile, key: &str, _nth: usize, message: &str) -> Diagnostic {
    match source.find_line(|l| l.trim_start().starts_with(&format!("{key}:"))) {
        Some(loc) => source.error_at(loc.line, loc.column, message),
        None => source.error_without_location(message),
    }
}
