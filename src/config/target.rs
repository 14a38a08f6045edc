//! The target: where and how to reach one deployment. `${VAR}` in any string reads the
//! environment, and every such value (and every `Authorization` header) becomes a secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::deser::{At, Report, node_mut, parse_document};
use super::secrets::Secrets;
use super::source::{ConfigError, SourceFile};
use super::values::{HttpUrl, JsonPointer, Origin, WsUrl};
use super::yaml_index::YamlPath;
use crate::dialect::Dialect;

/// A whole target file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name of the deployment (shown in reports).
    pub target: String,
    /// The WebSocket endpoint, `wss://` (or `ws://` for a target that has no TLS).
    pub url: WsUrl,
    /// The plaintext endpoint the transport check tries; derived from `url` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_url: Option<WsUrl>,
    /// Extra trust for the TLS endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TargetTls>,
    /// The Origin legitimate clients send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The application protocol spoken over the WebSocket (`raw` when absent): how business
    /// messages are carried and the server's answers read (see docs/dialects.md).
    #[serde(default, skip_serializing_if = "Dialect::is_raw")]
    pub dialect: Dialect,
    /// What a legitimate client's upgrade request carries besides URL and Origin: request
    /// headers (an `Authorization` header), cookies and subprotocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<TargetConnect>,
    /// HTTP requests a legitimate client makes before it connects, in order (a login, the
    /// creation of a room): cookies they set go to the cookie jar of the case, and values
    /// they extract are `{{setup.NAME}}` in the URL, connect headers and messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<SetupRequest>,
    /// How a legitimate client authenticates; absent when the service has no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<TargetAuth>,
    /// What valid business messages look like and how the server answers them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<TargetMessages>,
    /// The application close codes (4000-4999) the service uses, and what each means: a close
    /// with one of them is a refusal wherever a standard code of that meaning is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub close_codes: BTreeMap<u16, CloseMeaning>,
    /// Timeouts and parallelism of the run.
    #[serde(default)]
    pub limits: Limits,
}

/// Trust roots of the TLS endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetTls {
    /// PEM file of an extra CA, relative to the target file's directory.
    pub ca_file: PathBuf,
}

/// The legitimate client's handshake, beyond URL and Origin.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConnect {
    /// Request headers of the upgrade; `Authorization`, `Cookie` and `Proxy-Authorization`
    /// values are secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Cookies sent with the upgrade, by name; their values are secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cookies: BTreeMap<String, String>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`, in order of preference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subprotocols: Vec<String>,
}

/// One HTTP request made before connecting, and the values kept from its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The request (a non-2xx answer fails the setup).
    pub request: HttpRequestSpec,
    /// Values kept from the response, by name (`{{setup.NAME}}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extract: BTreeMap<String, Extract>,
}

/// Where one value is taken from in a response: exactly one of `json`, `header`, `cookie`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    /// A JSON pointer into the response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonPointer>,
    /// A response header (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A cookie the response sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// Whether the value is a secret, never shown (the default).
    #[serde(default = "Extract::secret_by_default")]
    pub secret: bool,
}

impl Extract {
    fn secret_by_default() -> bool {
        true
    }
}

/// The legitimate authentication flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetAuth {
    /// How to obtain a ticket over HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketFlow>,
    /// The first message after the upgrade; `{{ticket}}` is replaced by the ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<String>,
    /// How the server says authentication succeeded (or welcomes a URL-token client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_when: Option<Matcher>,
    /// A second identity (another user or session) for cases between two identities (a ticket
    /// of one used on the other's connection): its ticket request headers, which replace the
    /// same-named headers of `ticket.request`. Absent: those cases are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_identity: Option<Identity>,
}

/// Another identity's credentials.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Request headers of its ticket request (`Authorization` values are secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

pub use crate::dialect::CloseMeaning;

/// The ticket request and where the ticket is in its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketFlow {
    /// The HTTP request that returns a ticket.
    pub request: HttpRequestSpec,
    /// JSON pointer to the ticket in the response body.
    pub extract: JsonPointer,
}

/// An HTTP request described in a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestSpec {
    /// HTTP method.
    #[serde(default = "HttpRequestSpec::default_method")]
    pub method: HttpMethod,
    /// Absolute http(s) URL.
    pub url: HttpUrl,
    /// Request headers; `Authorization` values are secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The request body, sent as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl HttpRequestSpec {
    fn default_method() -> HttpMethod {
        HttpMethod::Post
    }
}

/// HTTP methods a described request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
}

impl HttpMethod {
    /// The method as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
        }
    }
}

/// Business messages of the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetMessages {
    /// Messages the server accepts from an authenticated client; the first is the template for
    /// generated attacks.
    #[serde(default)]
    pub valid: Vec<String>,
    /// How the server acknowledges a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_when: Option<Matcher>,
    /// How the server reports a rejected message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_when: Option<Matcher>,
    /// How the server warns before it closes (a rate-limit warning); absent, any message
    /// that acknowledges nothing counts as a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning_when: Option<Matcher>,
}

/// Recognises a server message: every JSON pointer must hold the given value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// JSON pointer → expected value, e.g. `{ "/type": "ack" }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: BTreeMap<JsonPointer, serde_json::Value>,
    /// Text the message must contain (for servers that do not answer in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

impl Matcher {
    /// Whether a server message matches: every pointer holds its value and `contains` occurs.
    pub fn matches(&self, message: &str) -> bool {
        if let Some(c) = &self.contains
            && !message.contains(c.as_str())
        {
            return false;
        }
        if self.json.is_empty() {
            return true;
        }
        match serde_json::from_str::<serde_json::Value>(message) {
            Ok(doc) => self.json.iter().all(|(p, v)| p.get(&doc) == Some(v)),
            Err(_) => false,
        }
    }
}

/// Timeouts and parallelism of a run against this target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Longest a TCP + TLS + WebSocket handshake may take.
    #[serde(default = "Limits::default_connect", with = "super::values::duration")]
    #[schemars(schema_with = "super::values::duration_schema")]
    pub connect_timeout: Duration,
    /// Longest one case may take unless its timing bounds need more.
    #[serde(default = "Limits::default_case", with = "super::values::duration")]
    #[schemars(schema_with = "super::values::duration_schema")]
    pub case_timeout: Duration,
    /// Cases run at the same time.
    #[serde(default = "Limits::default_parallel")]
    pub max_parallel: u32,
    /// How long to wait for a target that stopped accepting connections after a destructive
    /// case to come back before the remaining destructive cases are given up.
    #[serde(default = "Limits::default_recovery", with = "super::values::duration")]
    #[schemars(schema_with = "super::values::duration_schema")]
    pub recovery: Duration,
}

impl Limits {
    fn default_connect() -> Duration {
        Duration::from_secs(5)
    }
    fn default_case() -> Duration {
        Duration::from_secs(120)
    }
    fn default_parallel() -> u32 {
        8
    }
    fn default_recovery() -> Duration {
        Duration::from_secs(5)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Self::default_connect(),
            case_timeout: Self::default_case(),
            max_parallel: Self::default_parallel(),
            recovery: Self::default_recovery(),
        }
    }
}

impl Target {
    /// The plaintext endpoint: `plaintext_url`, or `url` with the `ws` scheme (port 80 when
    /// `url` uses the default port, the same port otherwise).
    pub fn plaintext_url(&self) -> WsUrl {
        if let Some(p) = &self.plaintext_url {
            return p.clone();
        }
        let mut u = self.url.0.clone();
        if u.scheme() == "wss" {
            let explicit = u.port();
            // `set_scheme` between ws and wss always succeeds; keep the URL on failure anyway.
            let _ = u.set_scheme("ws");
            let _ = u.set_port(explicit);
        }
        super::values::CheckedUrl(u)
    }

    /// The first valid business message, the template of generated message attacks.
    pub fn valid_message(&self) -> Option<&str> {
        self.messages
            .as_ref()
            .and_then(|m| m.valid.first())
            .map(String::as_str)
    }
}

/// A target with its secrets and the directory relative paths are resolved against.
#[derive(Debug, Clone)]
pub struct LoadedTarget {
    /// The target as written, with `${VAR}` already replaced.
    pub target: Target,
    /// Values that must never be printed.
    pub secrets: Secrets,
    /// Where the target came from.
    pub source: SourceFile,
}

impl LoadedTarget {
    /// Loads a target file, reading `${VAR}` from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(SourceFile::read(path)?, &|name| std::env::var(name).ok())
    }

    /// Parses target text; `env` answers `${VAR}` look-ups (tests pass a map, the CLI the
    /// process environment). Every error of the file is reported.
    pub fn parse(
        source: SourceFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let (mut doc, index) = parse_document(&source)?;
        let mut report = Report::new(&source, &index);
        let mut secrets = Secrets::new();
        expand_env(&mut doc, &YamlPath::root(), env, &mut secrets, &mut report);
        check_matcher_pointers(&mut doc, &mut report);
        let root = YamlPath::root();
        let target: Option<Target> = report.deserialize(&doc, &root, &root, "");
        if let Some(t) = &target {
            validate(t, &source, &mut report, &mut secrets);
        }
        match target {
            Some(target) if report.is_empty() => Ok(Self {
                target,
                secrets,
                source,
            }),
            _ => {
                // serde quotes offending values, and a value may come from `${VAR}`: hide the
                // secrets that are not already in the file (its lines are shown anyway).
                let mut hidden = Secrets::new();
                for v in secrets.values().filter(|v| !source.text.contains(*v)) {
                    hidden.register(v);
                }
                let mut e = report.into_error();
                for d in &mut e.diagnostics {
                    d.message = hidden.redact(&d.message);
                }
                Err(e)
            }
        }
    }

    /// The directory relative paths of the target are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.source
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The CA file resolved against the target's directory.
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.target
            .tls
            .as_ref()
            .map(|t| self.base_dir().join(&t.ca_file))
    }
}

/// Checks the JSON pointer keys of every matcher where they are written (serde would point at
/// their values), removing bad ones so the rest of the file is still checked.
fn check_matcher_pointers(doc: &mut Value, report: &mut Report<'_>) {
    for (section, matcher) in [
        ("auth", "accepted_when"),
        ("messages", "accepted_when"),
        ("messages", "rejected_when"),
        ("messages", "warning_when"),
    ] {
        let json_path = YamlPath::root().key(section).key(matcher).key("json");
        let Some(Value::Mapping(m)) = node_mut(doc, &json_path) else {
            continue;
        };
        let mut bad = Vec::new();
        for key in m.keys() {
            let Some(text) = key.as_str() else { continue };
            if let Err(msg) = text.parse::<JsonPointer>() {
                report.error(
                    &json_path.key(text),
                    At::Key,
                    format!("{section}.{matcher}.json: {msg}"),
                );
                bad.push(key.clone());
            }
        }
        for key in bad {
            m.remove(&key);
        }
    }
}

/// Semantic checks of a parsed target; registers header secrets.
fn validate(t: &Target, source: &SourceFile, report: &mut Report<'_>, secrets: &mut Secrets) {
    let root = YamlPath::root();
    if let Some(tls) = &t.tls {
        let base = source.path.parent().unwrap_or(Path::new(""));
        if !base.join(&tls.ca_file).is_file() {
            report.error(
                &root.key("tls").key("ca_file"),
                At::Value,
                format!(
                    "tls.ca_file: file not found: {}: expected a PEM file, relative to the target file's directory",
                    tls.ca_file.display()
                ),
            );
        }
    }
    if let Some(p) = &t.plaintext_url
        && p.0.scheme() != "ws"
    {
        report.error(
            &root.key("plaintext_url"),
            At::Value,
            format!("plaintext_url: \"{p}\" is not plaintext: expected a ws:// URL"),
        );
    }
    for code in t.close_codes.keys() {
        if !(4000..=4999).contains(code) {
            report.error(
                &root.key("close_codes").key(code.to_string()),
                At::Key,
                format!(
                    "close_codes: {code} is not an application close code: expected 4000-4999 (standard codes already have their meaning)"
                ),
            );
        }
    }
    if let Some(identity) = t.auth.as_ref().and_then(|a| a.second_identity.as_ref()) {
        for (name, value) in &identity.headers {
            if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie") {
                secrets.register_authorization(value);
            }
        }
    }
    if let Some(c) = &t.connect {
        for (name, value) in &c.headers {
            if CREDENTIAL_HEADERS
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            {
                secrets.register_authorization(value);
            }
        }
        for value in c.cookies.values() {
            secrets.register(value.clone());
        }
    }
    if let Some(auth) = &t.auth {
        let auth_path = root.key("auth");
        if let Some(ticket) = &auth.ticket {
            for (name, value) in &ticket.request.headers {
                if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie")
                {
                    secrets.register_authorization(value);
                }
            }
            let uses_ticket = auth
                .first_message
                .as_deref()
                .is_some_and(|m| m.contains("{{ticket}}"));
            if !uses_ticket {
                report.error(
                    &auth_path.key("ticket"),
                    At::Key,
                    "auth.ticket: the ticket is never sent: expected auth.first_message containing {{ticket}}",
                );
            }
        }
        if auth.ticket.is_none()
            && auth
                .first_message
                .as_deref()
                .is_some_and(|m| m.contains("{{ticket}}"))
        {
            report.error(
                &auth_path.key("first_message"),
                At::Value,
                "auth.first_message: uses {{ticket}} but there is no ticket flow: expected auth.ticket",
            );
        }
    }
    if let Some(m) = &t.messages {
        for (i, text) in m.valid.iter().enumerate() {
            if text.is_empty() {
                report.error(
                    &root.key("messages").key("valid").index(i),
                    At::Value,
                    format!(
                        "messages.valid[{i}]: the message is empty: expected a business message"
                    ),
                );
            }
        }
    }
    validate_setup(t, report, secrets);
    validate_dialect(t, report);
    if t.limits.max_parallel == 0 {
        report.error(
            &root.key("limits").key("max_parallel"),
            At::Value,
            "limits.max_parallel: 0 is not allowed: expected a positive number",
        );
    }
    for (key, d) in [
        ("connect_timeout", t.limits.connect_timeout),
        ("case_timeout", t.limits.case_timeout),
    ] {
        if d.is_zero() {
            report.error(
                &root.key("limits").key(key),
                At::Value,
                format!("limits.{key}: 0s is not allowed: expected a positive duration"),
            );
        }
    }
}

/// Header names whose values are credentials.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// Checks the setup requests and every `{{setup.NAME}}` reference; registers their credential
/// headers as secrets.
fn validate_setup(t: &Target, report: &mut Report<'_>, secrets: &mut Secrets) {
    let root = YamlPath::root();
    let mut defined: Vec<&str> = Vec::new();
    for (i, step) in t.setup.iter().enumerate() {
        let at = root.key("setup").index(i);
        let req = &step.request;
        for (name, value) in &req.headers {
            if CREDENTIAL_HEADERS
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            {
                secrets.register_authorization(value);
            }
        }
        // A request may use what the requests before it extracted.
        let mut texts: Vec<(YamlPath, &str)> =
            vec![(at.key("request").key("url"), req.url.0.as_str())];
        texts.extend(
            req.headers
                .iter()
                .map(|(k, v)| (at.key("request").key("headers").key(k), v.as_str())),
        );
        if let Some(b) = &req.body {
            texts.push((at.key("request").key("body"), b.as_str()));
        }
        check_setup_refs(&texts, &defined, report);
        for (name, ex) in &step.extract {
            let path = at.key("extract").key(name);
            let valid_name = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid_name {
                report.error(
                    &path,
                    At::Key,
                    format!(
                        "setup[{i}].extract: `{name}` is not a valid name: expected lower-case letters, digits and _"
                    ),
                );
            }
            let sources = [ex.json.is_some(), ex.header.is_some(), ex.cookie.is_some()]
                .iter()
                .filter(|s| **s)
                .count();
            if sources != 1 {
                report.error(
                    &path,
                    At::Value,
                    format!(
                        "setup[{i}].extract.{name}: {sources} sources given: expected exactly one of json (a JSON pointer), header or cookie"
                    ),
                );
            }
            if defined.contains(&name.as_str()) {
                report.error(
                    &path,
                    At::Key,
                    format!("setup[{i}].extract.{name}: already extracted by an earlier setup request: expected unique names"),
                );
            }
            defined.push(name);
        }
    }
    let mut texts: Vec<(YamlPath, &str)> = vec![(root.key("url"), t.url.0.as_str())];
    if let Some(c) = &t.connect {
        texts.extend(
            c.headers
                .iter()
                .map(|(k, v)| (root.key("connect").key("headers").key(k), v.as_str())),
        );
        texts.extend(
            c.cookies
                .iter()
                .map(|(k, v)| (root.key("connect").key("cookies").key(k), v.as_str())),
        );
    }
    if let Some(m) = t.auth.as_ref().and_then(|a| a.first_message.as_deref()) {
        texts.push((root.key("auth").key("first_message"), m));
    }
    if let Some(m) = &t.messages {
        texts.extend(
            m.valid
                .iter()
                .enumerate()
                .map(|(i, v)| (root.key("messages").key("valid").index(i), v.as_str())),
        );
    }
    check_setup_refs(&texts, &defined, report);
}

/// Reports every `{{setup.NAME}}` in `texts` that no setup request extracts (before it).
fn check_setup_refs(texts: &[(YamlPath, &str)], defined: &[&str], report: &mut Report<'_>) {
    for (path, text) in texts {
        for name in setup_refs(text) {
            if !defined.contains(&name.as_str()) {
                let known = if defined.is_empty() {
                    "no setup request extracts anything before it".to_string()
                } else {
                    format!("expected one of {}", defined.join(", "))
                };
                report.error(
                    path,
                    At::Value,
                    format!(
                        "{path}: {{{{setup.{name}}}}} is not extracted by a setup request: {known}"
                    ),
                );
            }
        }
    }
}

/// `text` with percent-encoded braces decoded: a URL parser encodes the `{{setup.NAME}}` of a
/// path as `%7B%7Bsetup.NAME%7D%7D`.
fn decode_braces(text: &str) -> String {
    text.replace("%7B", "{")
        .replace("%7D", "}")
        .replace("%7b", "{")
        .replace("%7d", "}")
}

/// A URL as parsed, ready for rendering: with its `{{setup.NAME}}` placeholders decoded back
/// when it has any (a URL parser percent-encodes the braces of a path), as it is otherwise.
pub fn url_template(url: &str) -> std::borrow::Cow<'_, str> {
    if setup_refs(url).is_empty() {
        std::borrow::Cow::Borrowed(url)
    } else {
        std::borrow::Cow::Owned(decode_braces(url))
    }
}

/// The names of the `{{setup.NAME}}` placeholders in `text` (also percent-encoded, as a URL
/// path writes them).
pub fn setup_refs(text: &str) -> Vec<String> {
    let decoded = decode_braces(text);
    let mut out = Vec::new();
    let mut rest = decoded.as_str();
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        if let Some(name) = after[..end].trim().strip_prefix("setup.") {
            out.push(name.trim().to_string());
        }
        rest = &after[end + 2..];
    }
    out
}

/// Checks that the target's messages fit its dialect: an authentication payload that the
/// protocol merges into its own message must be a JSON object, and business payloads it
/// embeds in JSON must be JSON.
fn validate_dialect(t: &Target, report: &mut Report<'_>) {
    let root = YamlPath::root();
    let d = &t.dialect;
    if d.is_raw() {
        return;
    }
    let name = d.name();
    if let Some(m) = t.auth.as_ref().and_then(|a| a.first_message.as_deref()) {
        let parsed = serde_json::from_str::<serde_json::Value>(&placeholders_as_zero(m));
        let fits = match (&parsed, d) {
            (Ok(serde_json::Value::Object(o)), crate::dialect::Dialect::SignalrJson { .. }) => {
                o.get("target").is_some_and(serde_json::Value::is_string)
                    && o.get("arguments").is_none_or(serde_json::Value::is_array)
            }
            (Ok(serde_json::Value::Object(o)), crate::dialect::Dialect::Stomp { .. }) => {
                o.values().all(|v| !v.is_object() && !v.is_array())
            }
            (Ok(serde_json::Value::Object(_)), _) => true,
            _ => false,
        };
        if !fits {
            report.error(
                &root.key("auth").key("first_message"),
                At::Value,
                format!(
                    "auth.first_message: dialect {name} carries the authentication payload in {}: expected that, not {}",
                    d.auth_carrier(),
                    match &parsed {
                        Ok(v) => format!("`{v}`"),
                        Err(e) => format!("text that is not JSON ({e})"),
                    }
                ),
            );
        }
    }
    let embeds_json = !matches!(d, crate::dialect::Dialect::Stomp { .. });
    if let (true, Some(m)) = (embeds_json, &t.messages) {
        for (i, text) in m.valid.iter().enumerate() {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&placeholders_as_zero(text)) {
                report.error(
                    &root.key("messages").key("valid").index(i),
                    At::Value,
                    format!(
                        "messages.valid[{i}]: dialect {name} embeds the business payload in its JSON envelope, and this is not JSON ({e}): expected a JSON value (the payload alone, without the envelope)"
                    ),
                );
            }
        }
    }
}

/// `text` with every `{{...}}` placeholder replaced by `0`, so JSON around placeholders can be
/// checked (`{"n": {{seq}}}` is JSON once filled).
fn placeholders_as_zero(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        out.push('0');
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Replaces `${VAR}` in every string scalar with the environment's value, registering each
/// value as a secret; a missing variable or a malformed reference is a located error.
fn expand_env(
    value: &mut Value,
    path: &YamlPath,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
    report: &mut Report<'_>,
) {
    match value {
        Value::String(s) if s.contains("${") => match interpolate(s, env) {
            Ok((expanded, used)) => {
                for v in used {
                    secrets.register(v);
                }
                *s = expanded;
            }
            Err(msg) => {
                let shown = if path.is_root() {
                    String::new()
                } else {
                    format!("{path}: ")
                };
                report.error(path, At::Value, format!("{shown}{msg}"));
            }
        },
        Value::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                expand_env(v, &path.index(i), env, secrets, report);
            }
        }
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                let key = super::deser::key_text(k).unwrap_or_default();
                expand_env(v, &path.key(key), env, secrets, report);
            }
        }
        Value::Tagged(t) => expand_env(&mut t.value, path, env, secrets, report),
        _ => {}
    }
}

/// Expands `${NAME}` references (`$${` writes a literal `${`); returns the text and the values used.
pub fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(text.len());
    let mut used = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let Some(end) = tail.find('}') else {
                return Err(format!(
                    "unterminated ${{ in \"{text}\": expected ${{NAME}} with a closing brace"
                ));
            };
            let name = &tail[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "invalid variable name `{name}`: expected ${{NAME}} with letters, digits and _"
                ));
            }
            match env(name) {
                Some(v) => {
                    out.push_str(&v);
                    used.push(v);
                }
                None => {
                    return Err(format!(
                        "environment variable `{name}` is not set: expected it to hold the value for ${{{name}}}"
                    ));
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok((out, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_escapes() {
        let env = |n: &str| (n == "T").then(|| "secret".to_string());
        assert_eq!(
            interpolate("Bearer ${T}!", &env).map(|r| r.0),
            Ok("Bearer secret!".to_string())
        );
        assert_eq!(
            interpolate("$${T} $5", &env).map(|r| r.0),
            Ok("${T} $5".to_string())
        );
        assert!(interpolate("${MISSING}", &env).is_err());
        assert!(interpolate("${T", &env).is_err());
        assert!(interpolate("${1A}", &env).is_err());
    }

    #[test]
    fn plaintext_url_is_derived() {
        let t: Target = serde_yaml::from_str("target: t\nurl: wss://h:8443/ws\n").expect("target");
        assert_eq!(t.plaintext_url().as_str(), "ws://h:8443/ws");
        let t: Target = serde_yaml::from_str("target: t\nurl: wss://h/ws\n").expect("target");
        assert_eq!(t.plaintext_url().as_str(), "ws://h/ws");
    }
}
