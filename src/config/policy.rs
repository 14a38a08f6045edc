//! The policy: portable requirements as a list of controls. The reference server enforces a
//! policy; the compiler turns it into attack cases. Both read this one model.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::deser::{At, Report, node, parse_document};
use super::source::{ConfigError, Location, SourceFile};
use super::values::{ByteSize, Origin};
use super::yaml_index::{YamlIndex, YamlPath};

/// A whole policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default, JsonSchema,
)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    #[schemars(with = "Option<serde_json::Value>")]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsParams {
    /// Lowest acceptable TLS version: "1.2" or "1.3". Every version below it (SSL 3.0 up) is
    /// probed with a ClientHello offering only that version, and must be refused.
    #[serde(default = "TlsParams::default_min")]
    pub min_version: TlsVersion,
    /// Cipher-suite classes each offered alone in a TLS 1.2 ClientHello, which the server must
    /// refuse. Default: all of them.
    #[serde(default = "SuiteClass::all")]
    pub forbidden_suites: Vec<SuiteClass>,
    /// A certificate that expires within this many days fails (0: only an expired one).
    #[serde(default)]
    pub cert_min_days: u32,
}

impl TlsParams {
    fn default_min() -> TlsVersion {
        TlsVersion::V1_2
    }
}

/// A protocol version below TLS 1.3 that a raw ClientHello can offer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum LegacyVersion {
    /// SSL 3.0 (RFC 6101), prohibited by RFC 7568.
    #[serde(rename = "3.0")]
    Ssl3,
    /// TLS 1.0 (RFC 2246), deprecated by RFC 8996.
    #[serde(rename = "1.0")]
    Tls10,
    /// TLS 1.1 (RFC 4346), deprecated by RFC 8996.
    #[serde(rename = "1.1")]
    Tls11,
    /// TLS 1.2 (RFC 5246).
    #[serde(rename = "1.2")]
    Tls12,
}

impl LegacyVersion {
    /// The version as it is written on the wire (`ProtocolVersion`).
    pub fn wire(self) -> u16 {
        match self {
            LegacyVersion::Ssl3 => 0x0300,
            LegacyVersion::Tls10 => 0x0301,
            LegacyVersion::Tls11 => 0x0302,
            LegacyVersion::Tls12 => 0x0303,
        }
    }

    /// The version's usual name, as reports show it ("TLS 1.0").
    pub fn name(self) -> &'static str {
        match self {
            LegacyVersion::Ssl3 => "SSL 3.0",
            LegacyVersion::Tls10 => "TLS 1.0",
            LegacyVersion::Tls11 => "TLS 1.1",
            LegacyVersion::Tls12 => "TLS 1.2",
        }
    }

    /// The version's number as policy and suite files write it ("1.0").
    pub fn number(self) -> &'static str {
        match self {
            LegacyVersion::Ssl3 => "3.0",
            LegacyVersion::Tls10 => "1.0",
            LegacyVersion::Tls11 => "1.1",
            LegacyVersion::Tls12 => "1.2",
        }
    }

    /// The version's identifier in case ids ("tls1.0").
    pub fn id(self) -> &'static str {
        match self {
            LegacyVersion::Ssl3 => "ssl3",
            LegacyVersion::Tls10 => "tls1.0",
            LegacyVersion::Tls11 => "tls1.1",
            LegacyVersion::Tls12 => "tls1.2",
        }
    }

    /// The versions a policy requiring `min` must see refused, oldest first.
    pub fn below(min: TlsVersion) -> Vec<LegacyVersion> {
        let mut v = vec![
            LegacyVersion::Ssl3,
            LegacyVersion::Tls10,
            LegacyVersion::Tls11,
        ];
        if min == TlsVersion::V1_3 {
            v.push(LegacyVersion::Tls12);
        }
        v
    }

    /// The version a wire value names; `None` for any other value (TLS 1.3 included).
    pub fn from_wire(wire: u16) -> Option<Self> {
        match wire {
            0x0300 => Some(LegacyVersion::Ssl3),
            0x0301 => Some(LegacyVersion::Tls10),
            0x0302 => Some(LegacyVersion::Tls11),
            0x0303 => Some(LegacyVersion::Tls12),
            _ => None,
        }
    }
}

/// A class of weak cipher suites a server must not accept; a probe offers the whole class and
/// the server either picks one of them or refuses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum SuiteClass {
    /// No encryption at all (`*_WITH_NULL_*`).
    #[serde(rename = "null")]
    Null,
    /// The 40- and 56-bit export suites (`*_EXPORT*`), broken by FREAK and Logjam.
    #[serde(rename = "export")]
    Export,
    /// Anonymous key exchange (`*_anon_*`): no server authentication, so no defence against a
    /// man in the middle.
    #[serde(rename = "anon")]
    Anonymous,
    /// RC4 (RFC 7465 prohibits it).
    #[serde(rename = "rc4")]
    Rc4,
    /// Triple DES, with a 64-bit block (Sweet32).
    #[serde(rename = "3des")]
    TripleDes,
    /// CBC suites with static RSA key exchange (`TLS_RSA_WITH_*_CBC_*`): no forward secrecy,
    /// and exposed to padding oracles (Lucky 13, ROBOT).
    #[serde(rename = "cbc-rsa")]
    CbcRsaKx,
}

impl SuiteClass {
    /// Every class, in the order reports list them.
    pub const ALL: [SuiteClass; 6] = [
        SuiteClass::Null,
        SuiteClass::Export,
        SuiteClass::Anonymous,
        SuiteClass::Rc4,
        SuiteClass::TripleDes,
        SuiteClass::CbcRsaKx,
    ];

    /// The class's name in report text ("3DES").
    pub fn name(self) -> &'static str {
        match self {
            SuiteClass::Null => "NULL",
            SuiteClass::Export => "EXPORT",
            SuiteClass::Anonymous => "anonymous",
            SuiteClass::Rc4 => "RC4",
            SuiteClass::TripleDes => "3DES",
            SuiteClass::CbcRsaKx => "CBC with RSA key exchange",
        }
    }

    /// The class's identifier in policy files and case ids ("3des").
    pub fn slug(self) -> &'static str {
        match self {
            SuiteClass::Null => "null",
            SuiteClass::Export => "export",
            SuiteClass::Anonymous => "anon",
            SuiteClass::Rc4 => "rc4",
            SuiteClass::TripleDes => "3des",
            SuiteClass::CbcRsaKx => "cbc-rsa",
        }
    }

    /// Every class, the default of `forbidden_suites`.
    pub fn all() -> Vec<SuiteClass> {
        Self::ALL.to_vec()
    }

    /// The class a slug names; `None` for an unknown slug.
    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.slug() == slug)
    }
}

/// A TLS protocol version a policy can require.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    V1_3,
}

/// What the server must do with a handshake that carries no Origin header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MissingOrigin {
    /// Refuse it like a foreign origin.
    #[default]
    Reject,
    /// Accept it (non-browser clients send none).
    Allow,
}

/// Parameters of `origin.allowlist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginParams {
    /// Exact origins (scheme, host, port) allowed to open a WebSocket.
    pub allowed: Vec<Origin>,
    /// What to do when the handshake has no Origin.
    #[serde(default)]
    pub missing_origin: MissingOrigin,
    /// When set, a refusal must use exactly this HTTP status (e.g. 403). Always serialised
    /// (as null when unset) so suites can read `{{policy.status}}`.
    #[serde(default)]
    pub status: Option<u16>,
}

/// Parameters of `auth.ticket`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketParams {
    /// Longest a ticket may stay valid after it is issued (at most 24h).
    #[serde(with = "crate::config::values::duration")]
    #[schemars(schema_with = "crate::config::values::duration_schema")]
    pub ttl_max: Duration,
    /// Whether a ticket may authenticate only one connection.
    #[serde(default = "yes")]
    pub single_use: bool,
}

/// Parameters of `auth.no_url_tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlTokenParams {
    /// Query parameter names tried with a valid credential.
    #[serde(default = "UrlTokenParams::default_params")]
    pub params: Vec<String>,
}

impl UrlTokenParams {
    /// The query parameter names careless servers commonly read credentials from.
    pub const DEFAULT_PARAMS: &[&str] = &["token", "access_token", "ticket", "auth", "jwt"];

    /// [`Self::DEFAULT_PARAMS`], owned (the `params` default).
    pub fn default_params() -> Vec<String> {
        Self::DEFAULT_PARAMS.iter().map(|s| s.to_string()).collect()
    }

    /// More names a careless server may read a credential from, tried besides `params`.
    pub const COMMON_PARAMS: &[&str] = &[
        "token",
        "access_token",
        "ticket",
        "auth",
        "jwt",
        "api_key",
        "apikey",
        "key",
        "access-token",
        "accessToken",
        "auth_token",
        "authorization",
        "bearer",
        "session",
        "sid",
        "id_token",
    ];

    /// The names tried: `params`, then every common name they lack.
    pub fn tried(&self) -> Vec<String> {
        let mut out = self.params.clone();
        for p in Self::COMMON_PARAMS {
            if !out.iter().any(|o| o == p) {
                out.push(p.to_string());
            }
        }
        out
    }
}

/// Parameters of `auth.unauthenticated_timeout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnauthParams {
    /// How long a connection may stay open without authenticating (at most 24h).
    #[serde(with = "crate::config::values::duration")]
    #[schemars(schema_with = "crate::config::values::duration_schema")]
    pub timeout: Duration,
}

/// Parameters of `messages.schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaParams {
    /// A JSON Schema every business message must satisfy.
    pub schema: serde_json::Value,
}

/// Whether permessage-deflate may be negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeflatePolicy {
    /// Never negotiate compression.
    #[default]
    Refuse,
    /// Negotiate it, bounding the inflated size by the same limit.
    Allow,
}

/// Parameters of `messages.max_size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaxSizeParams {
    /// Largest message (after reassembly and inflation) the server accepts (at most 1GiB).
    pub limit: ByteSize,
    /// Whether compression may be negotiated.
    #[serde(default)]
    pub deflate: DeflatePolicy,
    /// Whether a connection dropped without a close frame counts as refusing an oversized
    /// message (the check otherwise requires close 1009). Always serialised so suites can read
    /// `{{policy.drop_counts}}`.
    #[serde(default)]
    pub drop_counts: bool,
}

/// Parameters of `messages.rate_limit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitParams {
    /// Sustained messages per second allowed on one connection (1 to 1000000).
    #[schemars(range(min = 1, max = MAX_RATE))]
    pub max_per_second: u32,
    /// Whether the first excess gets a warning before the close.
    #[serde(default = "yes")]
    pub warn_first: bool,
}

/// Parameters of `heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatParams {
    /// Longest gap between two server pings (at most 24h).
    #[serde(with = "crate::config::values::duration")]
    #[schemars(schema_with = "crate::config::values::duration_schema")]
    pub interval_max: Duration,
    /// Consecutive unanswered pings after which the connection must be closed (1 to 1000).
    #[schemars(range(min = 1, max = MAX_MISSED))]
    pub missed_max: u32,
}

/// The SameSite attribute value a cookie must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
pub enum SameSite {
    /// `SameSite=Strict`.
    #[default]
    Strict,
    /// `SameSite=Lax`.
    Lax,
}

/// Parameters of `cookies.samesite`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CookieParams {
    /// Minimum SameSite value: `Strict` also satisfies `Lax`; `None` or no attribute never does.
    #[serde(default)]
    pub samesite: SameSite,
    /// Names of the session cookies to judge; empty (the default) judges every cookie the
    /// endpoint sets. Name them when a load balancer or analytics cookie rides along. Always
    /// serialised (as `[]` when empty) so suites can read `{{policy.names}}`.
    #[serde(default)]
    pub names: Vec<String>,
    /// Whether `Secure` is required.
    #[serde(default = "yes")]
    pub secure: bool,
    /// Whether `HttpOnly` is required.
    #[serde(default = "yes")]
    pub http_only: bool,
    /// Whether the service must set a session cookie at all. When it need not and sets none,
    /// SameSite has nothing to protect: the control is skipped, saying so.
    #[serde(default)]
    pub required: bool,
}

/// Parameters of `attestation`: a control that cannot be tested from outside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationParams {
    /// Where the evidence is kept (a runbook, a log query, a ticket).
    pub evidence: String,
}

/// Parameters of `protocol.rfc6455`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtocolParams {
    /// Whether a connection dropped without a close frame counts as refusing a protocol
    /// violation (the check otherwise requires close 1002). Always serialised so suites can
    /// read `{{policy.drop_counts}}`.
    #[serde(default)]
    pub drop_counts: bool,
}

/// Parameters of checks that take none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

fn yes() -> bool {
    true
}

/// The table of built-in checks: each check's name in policies, its [`CheckParams`] variant
/// and parameter type. The enum, [`BUILTIN_CHECKS`], parsing and [`CheckParams::check`] all
/// derive from it; adding a check is one line here plus its suite and its server defence.
macro_rules! builtin_checks {
    ($( $(#[$doc:meta])* $name:literal => $variant:ident($params:ty), )*) => {
        /// A control's parameters, typed by its check.
        #[derive(Debug, Clone, PartialEq)]
        pub enum CheckParams {
            $( $(#[$doc])* $variant($params), )*
            /// A check provided only by a user suite; its parameters are kept as written.
            Custom(serde_yaml::Value),
        }

        /// The check names built into wsaudit, in catalogue order.
        pub const BUILTIN_CHECKS: &[&str] = &[$($name),*];

        impl CheckParams {
            /// The check these parameters belong to (`custom` for a user suite's check).
            pub fn check(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $name, )*
                    Self::Custom(_) => "custom",
                }
            }

            /// Parses `with` according to `check`; unknown checks are kept as
            /// [`CheckParams::Custom`].
            pub fn parse(check: &str, with: &serde_yaml::Value) -> Result<Self, serde_yaml::Error> {
                let typed = || {
                    if with.is_null() {
                        serde_yaml::Value::Mapping(Default::default())
                    } else {
                        with.clone()
                    }
                };
                Ok(match check {
                    $( $name => Self::$variant(serde_yaml::from_value(typed())?), )*
                    _ => Self::Custom(with.clone()),
                })
            }

            /// Parses a control's `with` by its check, recording located errors in `report`.
            fn parse_reported(
                control: &Control,
                report: &mut Report<'_>,
                with_path: &YamlPath,
                control_path: &YamlPath,
                label: &str,
            ) -> Option<Self> {
                let with = if control.with.is_null() {
                    serde_yaml::Value::Mapping(Default::default())
                } else {
                    control.with.clone()
                };
                match control.check.as_str() {
                    $( $name => report
                        .deserialize(&with, with_path, control_path, label)
                        .map(Self::$variant), )*
                    _ => Some(Self::Custom(control.with.clone())),
                }
            }

            /// The JSON Schema of each built-in check's `with`, by check name.
            pub fn param_schemas(
                generator: &mut schemars::SchemaGenerator,
            ) -> Vec<(&'static str, serde_json::Value)> {
                vec![$( ($name, generator.subschema_for::<$params>().to_value()), )*]
            }

            /// The parameters as YAML, with every default filled in (what suites'
            /// placeholders read).
            pub fn to_value(&self) -> serde_yaml::Value {
                let v = match self {
                    $( Self::$variant(p) => serde_yaml::to_value(p), )*
                    Self::Custom(v) => Ok(v.clone()),
                };
                v.unwrap_or(serde_yaml::Value::Null)
            }
        }
    };
}

builtin_checks! {
    /// `transport.tls`
    "transport.tls" => Tls(TlsParams),
    /// `origin.allowlist`
    "origin.allowlist" => Origin(OriginParams),
    /// `auth.no_url_tokens`
    "auth.no_url_tokens" => UrlTokens(UrlTokenParams),
    /// `auth.ticket`
    "auth.ticket" => Ticket(TicketParams),
    /// `auth.unauthenticated_timeout`
    "auth.unauthenticated_timeout" => Unauthenticated(UnauthParams),
    /// `messages.schema`
    "messages.schema" => Schema(SchemaParams),
    /// `messages.rate_limit`
    "messages.rate_limit" => RateLimit(RateLimitParams),
    /// `messages.max_size`
    "messages.max_size" => MaxSize(MaxSizeParams),
    /// `heartbeat`
    "heartbeat" => Heartbeat(HeartbeatParams),
    /// `cookies.samesite`
    "cookies.samesite" => Cookies(CookieParams),
    /// `protocol.rfc6455`
    "protocol.rfc6455" => Protocol(ProtocolParams),
    /// `attestation`
    "attestation" => Attestation(AttestationParams),
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
    /// Loads and validates a policy file whose controls use the built-in checks.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        Self::parse(SourceFile::read(path)?)
    }

    /// Parses and validates policy text whose controls use the built-in checks.
    pub fn parse(source: SourceFile) -> Result<Self, ConfigError> {
        Self::parse_with_checks(source, BUILTIN_CHECKS)
    }

    /// Parses and validates policy text; a control naming a check outside `known_checks` (the
    /// checks some suite provides) is an error. Every error of the file is reported.
    pub fn parse_with_checks(
        source: SourceFile,
        known_checks: &[&str],
    ) -> Result<Self, ConfigError> {
        let (doc, index) = parse_document(&source)?;
        let mut report = Report::new(&source, &index);
        let root = YamlPath::root();
        let controls_path = root.key("controls");
        // The top level first, with the controls left out: each control is read on its own
        // below so an error in one does not hide errors in the next.
        let mut top = doc.clone();
        if let Some(serde_yaml::Value::Sequence(items)) =
            top.as_mapping_mut().and_then(|m| m.get_mut("controls"))
        {
            items.clear();
        }
        let head: Option<Policy> = report.deserialize(&top, &root, &root, "");
        if let Some(h) = &head
            && h.version != 1
        {
            report.error(
                &root.key("version"),
                At::Value,
                format!(
                    "version: unsupported policy version {}: expected 1",
                    h.version
                ),
            );
        }
        let raw_controls = match node(&doc, &controls_path) {
            Some(serde_yaml::Value::Sequence(items)) => items.clone(),
            _ => Vec::new(),
        };
        if head.is_some() && raw_controls.is_empty() {
            report.error(
                &controls_path,
                At::Value,
                "controls: the list is empty: expected at least one control",
            );
        }
        let mut controls = Vec::with_capacity(raw_controls.len());
        let mut params = Vec::with_capacity(raw_controls.len());
        let mut first_use: std::collections::HashMap<String, usize> = Default::default();
        for (i, raw) in raw_controls.iter().enumerate() {
            let path = controls_path.index(i);
            let label = match raw.get("id").and_then(|v| v.as_str()) {
                Some(id) => format!("control {id}: "),
                None => format!("control #{}: ", i + 1),
            };
            let Some(control) = report.deserialize::<Control>(raw, &path, &path, &label) else {
                continue;
            };
            let label = format!("control {} ({}): ", control.id, control.check);
            if let Some(first) = first_use.get(&control.id) {
                let first = controls_path.index(*first).key("id");
                report.duplicate_id("control", &control.id, &first, &path.key("id"));
            } else {
                first_use.insert(control.id.clone(), i);
            }
            if !known_checks.contains(&control.check.as_str()) {
                report.error(
                    &path.key("check"),
                    At::Value,
                    unknown_check_message(&control, known_checks),
                );
                params.push(CheckParams::Custom(control.with.clone()));
                controls.push(control);
                continue;
            }
            let with_path = path.key("with");
            let before = report.len();
            let parsed =
                CheckParams::parse_reported(&control, &mut report, &with_path, &path, &label);
            if let Some(p) = parsed.as_ref().filter(|_| report.len() == before) {
                for (rel, msg) in validate_params(p) {
                    let at = with_path.join(&rel);
                    let shown = at.strip_prefix(&path);
                    report.error(&at, At::Value, format!("{label}{shown}: {msg}"));
                }
            }
            if report.len() == before {
                params.push(parsed.unwrap_or_else(|| CheckParams::Custom(control.with.clone())));
            } else {
                params.push(CheckParams::Custom(control.with.clone()));
            }
            controls.push(control);
        }
        let policy = match head {
            Some(mut h) => {
                h.controls = controls;
                h
            }
            None => return Err(report.into_error()),
        };
        if !report.is_empty() {
            return Err(report.into_error());
        }
        Ok(Self {
            policy,
            params,
            source,
        })
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

    /// Where the `i`-th control starts in the policy file (for SARIF and messages).
    pub fn control_location(&self, i: usize) -> Option<Location> {
        YamlIndex::build(&self.source.text)
            .get(&YamlPath::root().key("controls").index(i))
            .map(|n| n.value)
    }

    /// Where `key` of the `i`-th control is written, else the nearest enclosing node.
    pub fn control_key_location(&self, i: usize, key: &str) -> Option<Location> {
        YamlIndex::build(&self.source.text)
            .value_or_ancestor(&YamlPath::root().key("controls").index(i).key(key))
    }
}

/// The error for a control whose check no suite provides, listing the checks that exist.
pub fn unknown_check_message(control: &Control, known_checks: &[&str]) -> String {
    format!(
        "control {}: unknown check `{}`: expected one of {} (or a check provided by a suite given with --suites)",
        control.id,
        control.check,
        known_checks.join(", ")
    )
}

/// Largest `messages.max_size` limit: the size attacks build messages one byte over it, and no
/// WebSocket service needs single messages past a gibibyte.
pub const MAX_MESSAGE_SIZE: u64 = 1 << 30;
/// Largest `messages.rate_limit` rate, per second: the flood attack sends four times as many
/// messages, which must stay countable (u32) and sendable in one case.
pub const MAX_RATE: u32 = 1_000_000;
/// Longest duration a policy may state (ticket TTL, unauthenticated timeout, heartbeat
/// interval): cases wait that long, and a longer bound tests nothing a run can observe.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// Most unanswered heartbeats a policy may allow before the close.
pub const MAX_MISSED: u32 = 1000;

/// Why a count is out of `1..=max`, if it is.
fn count_error(value: u32, max: u32) -> Option<String> {
    if value == 0 {
        Some("0 is not allowed: expected a positive number".into())
    } else if value > max {
        Some(format!("{value} is too large: expected at most {max}"))
    } else {
        None
    }
}

/// Why a duration is zero or longer than [`MAX_DURATION`], if it is.
fn duration_error(value: Duration) -> Option<String> {
    if value.is_zero() {
        Some("0s is not allowed: expected a positive duration".into())
    } else if value > MAX_DURATION {
        Some(format!(
            "{} is too long: expected at most {}h",
            humantime::format_duration(value),
            MAX_DURATION.as_secs() / 3600
        ))
    } else {
        None
    }
}

/// Semantic checks serde cannot express, as (path inside `with`, message) pairs.
fn validate_params(p: &CheckParams) -> Vec<(YamlPath, String)> {
    let at = |k: &str| YamlPath::root().key(k);
    let mut errors = Vec::new();
    match p {
        CheckParams::Origin(o) if o.allowed.is_empty() => errors.push((
            at("allowed"),
            "the list is empty: expected at least one origin".into(),
        )),
        CheckParams::Origin(o) => {
            if let Some(s) = o
                .status
                .filter(|s| !(100..=599).contains(s) || (200..300).contains(s) || *s == 101)
            {
                errors.push((
                    at("status"),
                    format!(
                        "status {s} is not a refusal: expected an HTTP error status such as 403"
                    ),
                ));
            }
        }
        CheckParams::RateLimit(r) => errors
            .extend(count_error(r.max_per_second, MAX_RATE).map(|m| (at("max_per_second"), m))),
        CheckParams::Heartbeat(h) => {
            errors.extend(duration_error(h.interval_max).map(|m| (at("interval_max"), m)));
            errors.extend(count_error(h.missed_max, MAX_MISSED).map(|m| (at("missed_max"), m)));
        }
        CheckParams::Ticket(t) => {
            errors.extend(duration_error(t.ttl_max).map(|m| (at("ttl_max"), m)))
        }
        CheckParams::Unauthenticated(u) => {
            errors.extend(duration_error(u.timeout).map(|m| (at("timeout"), m)))
        }
        CheckParams::MaxSize(m) if m.limit.0 == 0 => errors.push((
            at("limit"),
            "0 is not allowed: expected a positive size such as 64KiB".into(),
        )),
        CheckParams::MaxSize(m) if m.limit.0 > MAX_MESSAGE_SIZE => errors.push((
            at("limit"),
            format!(
                "{} is too large: expected at most {}",
                m.limit,
                ByteSize(MAX_MESSAGE_SIZE)
            ),
        )),
        CheckParams::UrlTokens(u) if u.params.is_empty() => errors.push((
            at("params"),
            "the list is empty: expected at least one query parameter name".into(),
        )),
        CheckParams::Schema(s) => {
            if let Err(e) = jsonschema::validator_for(&s.schema) {
                let inside = json_pointer_path(&s.schema, e.instance_path().as_str());
                errors.push((
                    at("schema").join(&inside),
                    format!("{e}: expected a valid JSON Schema"),
                ));
            }
        }
        _ => {}
    }
    errors
}

/// The YAML path of a JSON pointer into `doc` (array indices where `doc` has arrays).
fn json_pointer_path(doc: &serde_json::Value, pointer: &str) -> YamlPath {
    let mut path = YamlPath::root();
    let mut cur = Some(doc);
    for raw in pointer.split('/').skip(1) {
        let part = raw.replace("~1", "/").replace("~0", "~");
        match (cur, part.parse::<usize>()) {
            (Some(serde_json::Value::Array(items)), Ok(i)) => {
                cur = items.get(i);
                path = path.index(i);
            }
            (node, _) => {
                cur = node.and_then(|n| n.get(&part));
                path = path.key(part);
            }
        }
    }
    path
}
