//! The hardened reference server: a real TLS WebSocket server that enforces a policy.
//!
//! One module per defence, each honouring its `--weaken` switch ([`weaken::Defence`]):
//! [`transport`] (tls, tls-version, tls-cert), [`origin`], [`auth`] (url-token, auth-required,
//! cookie-auth, unauth-timeout), [`tickets`] (ticket-replay, ticket-expiry, ticket-validation,
//! ticket-binding), [`cookies`] (cookie-samesite), [`schema`], [`rate_limit`],
//! [`max_size`] (max-size, deflate), [`heartbeat`], [`protocol`] (protocol-strict). [`http`]
//! and [`connection`] wire them together.

pub mod auth;
pub mod connection;
pub mod cookies;
pub mod dialect;
pub mod flaw;
pub mod heartbeat;
pub mod http;
pub mod inbound;
pub mod log;
pub mod max_size;
pub mod origin;
pub mod protocol;
pub mod rate_limit;
pub mod schema;
pub mod tickets;
pub mod transport;
pub mod variant;
pub mod weaken;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::policy::{
    CheckParams, DeflatePolicy, HeartbeatParams, OriginParams, RateLimitParams, SameSite,
    TicketParams, TlsVersion, UrlTokenParams,
};
use crate::config::{ConfigError, LoadedPolicy};
use crate::dialect::DialectName;
pub use log::EventLog;
pub use weaken::{Defence, Weakened};

/// Message size limit when the policy has no `messages.max_size` control.
pub const DEFAULT_MAX_SIZE: usize = 1024 * 1024;

/// The policy resolved into what the server enforces.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lowest TLS version offered.
    pub min_tls: TlsVersion,
    /// Origin allowlist; `None` accepts any origin.
    pub origin: Option<OriginParams>,
    /// Ticket rules; `Some` means connections must authenticate.
    pub ticket: Option<TicketParams>,
    /// How long a connection may stay unauthenticated.
    pub unauth_timeout: Option<Duration>,
    /// JSON Schema for business messages.
    pub schema: Option<serde_json::Value>,
    /// Largest message accepted.
    pub max_size: usize,
    /// Whether permessage-deflate may be negotiated.
    pub deflate: DeflatePolicy,
    /// Per-connection rate limit.
    pub rate: Option<RateLimitParams>,
    /// Ping interval and missed-pong budget.
    pub heartbeat: Option<HeartbeatParams>,
    /// SameSite value of the session cookie.
    pub samesite: SameSite,
    /// Query parameters a `url-token`-weakened server reads credentials from (and the hardened
    /// one logs as ignored): the policy's `auth.no_url_tokens` params, else the common names.
    pub url_params: Vec<String>,
}

impl Settings {
    /// Reads every control the server can enforce from a policy.
    ///
    /// Two controls of one enforced check are an error located at the second: the server holds
    /// one value per check, and silently enforcing either would leave the other untested.
    pub fn from_policy(policy: &LoadedPolicy) -> Result<Self, ConfigError> {
        let mut s = Settings {
            min_tls: TlsVersion::V1_2,
            origin: None,
            ticket: None,
            unauth_timeout: None,
            schema: None,
            max_size: DEFAULT_MAX_SIZE,
            deflate: DeflatePolicy::Refuse,
            rate: None,
            heartbeat: None,
            samesite: SameSite::Strict,
            url_params: UrlTokenParams {
                params: UrlTokenParams::default_params(),
            }
            .tried(),
        };
        let mut first_of: std::collections::HashMap<&str, usize> = Default::default();
        let mut diagnostics = Vec::new();
        for (i, (control, p)) in policy
            .policy
            .controls
            .iter()
            .zip(&policy.params)
            .enumerate()
        {
            if enforced(p) {
                if let Some(&first) = first_of.get(control.check.as_str()) {
                    diagnostics.push(duplicate_control(policy, first, i));
                    continue;
                }
                first_of.insert(control.check.as_str(), i);
            }
            match p {
                CheckParams::Tls(t) => s.min_tls = t.min_version,
                CheckParams::Origin(o) => s.origin = Some(o.clone()),
                CheckParams::Ticket(t) => s.ticket = Some(t.clone()),
                CheckParams::Unauthenticated(u) => s.unauth_timeout = Some(u.timeout),
                CheckParams::Schema(sc) => s.schema = Some(sc.schema.clone()),
                CheckParams::MaxSize(m) => {
                    s.max_size = m.limit.as_usize();
                    s.deflate = m.deflate;
                }
                CheckParams::RateLimit(r) => s.rate = Some(r.clone()),
                CheckParams::Heartbeat(h) => s.heartbeat = Some(h.clone()),
                CheckParams::Cookies(c) => s.samesite = c.samesite,
                // A careless server (weakened) reads the policy's names and the common ones.
                CheckParams::UrlTokens(u) => s.url_params = u.tried(),
                CheckParams::Protocol(_) | CheckParams::Attestation(_) | CheckParams::Custom(_) => {
                }
            }
        }
        if diagnostics.is_empty() {
            Ok(s)
        } else {
            Err(ConfigError::new(&policy.source, diagnostics))
        }
    }
}

/// Whether the server reads a value from this control (so a second one would conflict).
fn enforced(p: &CheckParams) -> bool {
    !matches!(
        p,
        CheckParams::Protocol(_) | CheckParams::Attestation(_) | CheckParams::Custom(_)
    )
}

/// The error for control `second` repeating the check of control `first`, at its `check:`.
fn duplicate_control(
    policy: &LoadedPolicy,
    first: usize,
    second: usize,
) -> crate::config::Diagnostic {
    let controls = &policy.policy.controls;
    let (a, b) = (&controls[first], &controls[second]);
    let check_at = |i| {
        policy
            .control_key_location(i, "check")
            .unwrap_or(crate::config::Location { line: 1, column: 1 })
    };
    let (first_at, second_at) = (check_at(first), check_at(second));
    policy.source.error_at(
        second_at.line,
        second_at.column,
        format!(
            "control {} repeats check `{}` of control {} (line {}): the reference server \
             enforces one control per check; merge them into one",
            b.id, b.check, a.id, first_at.line
        ),
    )
}

/// State shared by every connection of one server.
pub struct Shared {
    /// What is enforced.
    pub settings: Settings,
    /// What is switched off.
    pub weakened: Weakened,
    /// Issued tickets and sessions.
    pub tickets: tickets::TicketStore,
    /// Bearer token the ticket endpoint requires.
    pub api_token: String,
    /// The second user's bearer token (a second identity for cross-session cases).
    pub second_api_token: String,
    /// Secure variations in force.
    pub variants: variant::Variants,
    /// Defences made subtly wrong.
    pub flaws: flaw::Flaws,
    /// Lifecycle event log.
    pub log: EventLog,
    /// The policy's schema, compiled once.
    pub validator: Option<Arc<jsonschema::Validator>>,
    /// Next connection/request id for log correlation.
    pub next_conn: AtomicU64,
    /// Upgraded connections currently open.
    pub active: AtomicUsize,
    /// The TLS port, for redirects from the plaintext listener.
    pub tls_port: u16,
    /// The application protocol spoken.
    pub dialect: DialectName,
    /// SignalR connection tokens issued by negotiation and not used yet.
    pub negotiations: tickets::Negotiations,
}

impl Shared {
    /// The close code for a refusal: a standard one (below 4000) as the variants map it, an
    /// application code the dialect chose as it is.
    pub fn close_code(&self, code: u16, kind: variant::Refusal) -> u16 {
        if code >= 4000 {
            code
        } else {
            self.variants.close_code(code, kind)
        }
    }
}

/// How to start a server.
pub struct ServerOptions {
    /// The policy to enforce.
    pub policy: LoadedPolicy,
    /// TLS listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Optional plaintext listen address.
    pub plain_listen: Option<SocketAddr>,
    /// Certificate chain and key PEM files; generated when absent.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// Defences switched off.
    pub weakened: Weakened,
    /// Bearer token for the ticket endpoint; random when absent.
    pub api_token: Option<String>,
    /// A second user's bearer token; random when absent.
    pub second_api_token: Option<String>,
    /// Secure variations of the reference behaviour.
    pub variants: variant::Variants,
    /// Defences made subtly wrong.
    pub flaws: flaw::Flaws,
    /// Where lifecycle events go.
    pub log: EventLog,
    /// The application protocol spoken.
    pub dialect: DialectName,
}

impl ServerOptions {
    /// Hardened server on 127.0.0.1 with a free port, generated certificate and plaintext listener.
    pub fn local(policy: LoadedPolicy) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            policy,
            listen: any,
            plain_listen: Some(any),
            cert: None,
            weakened: Weakened::none(),
            api_token: None,
            second_api_token: None,
            variants: variant::Variants::none(),
            flaws: flaw::Flaws::none(),
            log: EventLog::discard(),
            dialect: DialectName::Raw,
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Certificate or TLS set-up failed.
    #[error(transparent)]
    Tls(#[from] crate::crypto::TlsError),
    /// The policy's schema does not compile.
    #[error("the policy's messages.schema is not a valid JSON Schema: {0}")]
    Schema(String),
    /// The policy cannot be enforced as written (e.g. two controls of one check).
    #[error("{0}")]
    Policy(ConfigError),
    /// `tls-cert` weakening replaces the certificate, so a given one would be silently unused.
    #[error(
        "--weaken tls-cert serves a generated certificate for another host, so it cannot be \
         combined with --cert/--key (the given certificate would be ignored): drop one of them"
    )]
    TlsCertWithGivenCert,
    /// Writing the emitted target failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A running server; dropping it stops accepting connections.
pub struct ServerHandle {
    /// TLS address actually bound.
    pub addr: SocketAddr,
    /// Plaintext address actually bound.
    pub plain_addr: Option<SocketAddr>,
    /// Bearer token of the ticket endpoint.
    pub api_token: String,
    /// PEM of the CA that signed the server certificate (when generated).
    pub ca_pem: Option<String>,
    /// First allowed origin, what a legitimate client sends.
    pub origin: Option<String>,
    /// State shared with connections (for tests and benchmarks).
    pub shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds the listeners and starts serving.
pub async fn start(opts: ServerOptions) -> Result<ServerHandle, ServerError> {
    crate::crypto::install_crypto_provider();
    if opts.cert.is_some() && opts.weakened.is(Defence::TlsCert) {
        return Err(ServerError::TlsCertWithGivenCert);
    }
    let settings = Settings::from_policy(&opts.policy).map_err(ServerError::Policy)?;
    let validator = match &settings.schema {
        Some(s) => Some(Arc::new(
            jsonschema::validator_for(&schema::as_flawed(s, &opts.flaws))
                .map_err(|e| ServerError::Schema(e.to_string()))?,
        )),
        None => None,
    };
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: opts.listen,
        source,
    })?;
    let cert = match &opts.cert {
        Some((c, k)) => crate::crypto::load_cert_and_key(c, k)?,
        None => {
            let names = if opts.weakened.is(Defence::TlsCert) {
                vec!["wrong-host.invalid".to_string()]
            } else {
                let mut n = vec![addr.ip().to_string(), "localhost".to_string()];
                if addr.ip().is_unspecified() {
                    n.push("127.0.0.1".into());
                }
                n
            };
            crate::crypto::generate_ca_and_leaf(&names)?
        }
    };
    let ca_pem = cert.ca_pem.clone();
    let tls = transport::server_config(cert, settings.min_tls, &opts.weakened)?;
    let ttl = settings
        .ticket
        .as_ref()
        .map_or(Duration::from_secs(30), |t| t.ttl_max);
    let single_use = settings.ticket.as_ref().is_none_or(|t| t.single_use);
    let api_token = opts
        .api_token
        .clone()
        .unwrap_or_else(|| tickets::random_token(32));
    let second_api_token = opts
        .second_api_token
        .clone()
        .unwrap_or_else(|| tickets::random_token(32));
    let origin = settings
        .origin
        .as_ref()
        .and_then(|o| o.allowed.first())
        .map(|o| o.to_string());
    let shared = Arc::new(Shared {
        settings,
        weakened: opts.weakened.clone(),
        tickets: tickets::TicketStore::new(ttl, single_use).with_flaws(&opts.flaws),
        api_token: api_token.clone(),
        second_api_token,
        variants: opts.variants.clone(),
        flaws: opts.flaws.clone(),
        log: opts.log.clone(),
        validator,
        next_conn: AtomicU64::new(1),
        active: AtomicUsize::new(0),
        tls_port: addr.port(),
        dialect: opts.dialect,
        negotiations: tickets::Negotiations::default(),
    });
    let mut tasks = vec![tokio::spawn(transport::serve_tls(
        listener,
        tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        shared.clone(),
    ))];
    // A `tls`-weakened server must serve plaintext somewhere: without --plain-listen it gets a
    // listener on the TLS host with a free port, so the weakening is never silently a no-op.
    let plain_listen = opts.plain_listen.or_else(|| {
        opts.weakened
            .is(Defence::Tls)
            .then(|| SocketAddr::new(opts.listen.ip(), 0))
    });
    let plain_addr = match plain_listen {
        Some(p) => {
            let l = TcpListener::bind(p)
                .await
                .map_err(|source| ServerError::Bind { addr: p, source })?;
            let a = l
                .local_addr()
                .map_err(|source| ServerError::Bind { addr: p, source })?;
            tasks.push(tokio::spawn(transport::serve_plain(l, shared.clone())));
            Some(a)
        }
        None => None,
    };
    shared.log.event(
        "listening",
        0,
        serde_json::json!({
            "addr": addr.to_string(),
            "plain_addr": plain_addr.map(|a| a.to_string()),
            "policy": opts.policy.policy.policy,
            "weakened": opts.weakened.iter().map(Defence::name).collect::<Vec<_>>(),
            "variants": opts.variants.iter().map(variant::Variant::name).collect::<Vec<_>>(),
            "flaws": opts.flaws.iter().map(flaw::Flaw::name).collect::<Vec<_>>(),
            "dialect": opts.dialect.as_str(),
        }),
    );
    Ok(ServerHandle {
        addr,
        plain_addr,
        api_token,
        ca_pem,
        origin,
        shared,
        tasks,
    })
}

impl ServerHandle {
    fn host(&self) -> String {
        match self.addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        }
    }

    /// The WebSocket path clients of the dialect use: `/socket.io/` for Socket.IO, `/ws`
    /// otherwise.
    fn ws_path(&self) -> &'static str {
        match self.shared.dialect {
            DialectName::Socketio => http::SOCKETIO_PATH,
            _ => http::WS_PATH,
        }
    }

    /// `wss://host:port/ws` (`/socket.io/` in that dialect).
    pub fn ws_url(&self) -> String {
        format!(
            "wss://{}:{}{}",
            self.host(),
            self.addr.port(),
            self.ws_path()
        )
    }

    /// `https://host:port/ws/ticket`
    pub fn ticket_url(&self) -> String {
        format!(
            "https://{}:{}{}",
            self.host(),
            self.addr.port(),
            http::TICKET_PATH
        )
    }

    /// `ws://host:plainport/ws`, when a plaintext listener runs.
    pub fn plain_ws_url(&self) -> Option<String> {
        self.plain_addr
            .map(|a| format!("ws://{}:{}{}", self.host(), a.port(), self.ws_path()))
    }

    /// A target file (SPEC format) describing this server; `ca_file` is relative to the target.
    pub fn target_yaml(&self, name: &str, ca_file: Option<&str>) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut y = format!("target: {}\nurl: {}\n", q(name), q(&self.ws_url()));
        if let Some(p) = self.plain_ws_url() {
            y += &format!("plaintext_url: {}\n", q(&p));
        }
        if let Some(ca) = ca_file {
            y += &format!("tls: {{ ca_file: {} }}\n", q(ca));
        }
        if let Some(o) = &self.origin {
            y += &format!("origin: {}\n", q(o));
        }
        let dialect = self.dialect_description();
        if let Some(d) = &dialect.spec {
            y += &format!("dialect: {d}\n");
        }
        if self.shared.settings.ticket.is_some() {
            y += &format!(
                "auth:\n  ticket:\n    request:\n      method: POST\n      url: {}\n      headers: {{ Authorization: {} }}\n    extract: /ticket\n  first_message: {}\n",
                q(&self.ticket_url()),
                q(&format!("Bearer {}", self.api_token)),
                q(dialect.first_message),
            );
            if let Some(m) = dialect.auth_ok {
                y += &format!("  accepted_when: {m}\n");
            }
            // A second user, for cases between two identities; with user-bound tickets a
            // ticket is its own identity, and those cases have nothing to show.
            if !self.shared.variants.is(variant::Variant::UserBoundTickets) {
                y += &format!(
                    "  second_identity: {{ headers: {{ Authorization: {} }} }}\n",
                    q(&format!("Bearer {}", self.shared.second_api_token)),
                );
            }
        }
        y += "messages:\n  valid: ['{\"type\":\"payment\",\"amount\":12.5,\"reference\":\"TX-123456\",\"currency\":\"USD\"}']\n";
        y += &format!("  accepted_when: {}\n", dialect.ack);
        if let Some(r) = dialect.rejected {
            y += &format!("  rejected_when: {r}\n");
        }
        y += &format!("  warning_when: {}\n", dialect.warning);
        if self.shared.variants.is(variant::Variant::AppCloseCodes) {
            use variant::app_codes::*;
            y += &format!(
                "close_codes: {{ {INVALID_MESSAGE}: invalid_message, {UNAUTHORIZED}: unauthorized, {TIMEOUT}: timeout, {RATE_LIMITED}: rate_limited }}\n"
            );
        }
        y += "limits: { connect_timeout: 5s, case_timeout: 30s, max_parallel: 8 }\n";
        y
    }

    /// How the emitted target describes the server's dialect: the `dialect:` value, where the
    /// ticket goes, and how acknowledgements, errors and warnings look in it.
    fn dialect_description(&self) -> DialectDescription {
        let interval = self
            .shared
            .settings
            .heartbeat
            .as_ref()
            .map_or(10_000, |h| h.interval_max.as_millis());
        match self.shared.dialect {
            DialectName::Raw => DialectDescription {
                spec: None,
                first_message: r#"{"type":"auth","ticket":"{{ticket}}"}"#,
                auth_ok: Some(r#"{ json: { "/type": "auth_ok" } }"#),
                ack: r#"{ json: { "/type": "ack" } }"#,
                rejected: Some(r#"{ json: { "/type": "error" } }"#),
                warning: r#"{ json: { "/type": "warning" } }"#.to_string(),
            },
            DialectName::Socketio => DialectDescription {
                spec: Some("{ name: socketio, event: pay }".into()),
                first_message: r#"{"ticket":"{{ticket}}"}"#,
                auth_ok: None,
                ack: r#"{ json: { "/0/type": "ack" } }"#,
                rejected: Some(r#"{ json: { "/0/type": "error" } }"#),
                warning: r#"{ json: { "/0": "warning" } }"#.to_string(),
            },
            DialectName::GraphqlTransportWs => DialectDescription {
                spec: Some(
                    "{ name: graphql-transport-ws, query: 'mutation Pay($input: PaymentInput!) { pay(input: $input) { type reference } }', variable: input }".into(),
                ),
                first_message: r#"{"ticket":"{{ticket}}"}"#,
                auth_ok: None,
                ack: r#"{ json: { "/payload/data/pay/type": "ack" } }"#,
                rejected: None,
                warning: r#"{ json: { "/payload/0/extensions/code": "RATE_LIMITED" } }"#
                    .to_string(),
            },
            DialectName::Stomp => DialectDescription {
                spec: Some(format!(
                    "{{ name: stomp, destination: /app/pay, subscribe: {}, heart_beat: '{interval},{interval}' }}",
                    dialect::STOMP_REPLIES
                )),
                first_message: r#"{"passcode":"{{ticket}}"}"#,
                auth_ok: None,
                ack: r#"{ json: { "/type": "ack" } }"#,
                rejected: Some(r#"{ json: { "/type": "error" } }"#),
                warning: r#"{ json: { "/type": "warning" } }"#.to_string(),
            },
            DialectName::SignalrJson => DialectDescription {
                spec: Some("{ name: signalr-json, method: Pay }".into()),
                first_message: r#"{"target":"Authenticate","arguments":["{{ticket}}"]}"#,
                auth_ok: None,
                ack: r#"{ json: { "/result/type": "ack" } }"#,
                rejected: None,
                warning: r#"{ json: { "/target": "warning" } }"#.to_string(),
            },
        }
    }

    /// Writes the target file and the CA certificate beside it (`<stem>-ca.pem`), owner-only.
    pub fn write_target(&self, path: &Path) -> Result<(), ServerError> {
        let werr = |path: &Path, source| ServerError::Write {
            path: path.to_path_buf(),
            source,
        };
        let ca_name = match &self.ca_pem {
            Some(pem) => {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("target");
                let name = format!("{stem}-ca.pem");
                let ca_path = path.with_file_name(&name);
                std::fs::write(&ca_path, pem).map_err(|e| werr(&ca_path, e))?;
                Some(name)
            }
            None => None,
        };
        let name = format!("wsaudit-reference-{}", self.addr.port());
        write_private(path, &self.target_yaml(&name, ca_name.as_deref())).map_err(|e| werr(path, e))
    }
}

/// The dialect-specific parts of an emitted target file.
struct DialectDescription {
    /// The `dialect:` value (none for raw).
    spec: Option<String>,
    /// `auth.first_message`.
    first_message: &'static str,
    /// `auth.accepted_when`, where the protocol does not answer itself.
    auth_ok: Option<&'static str>,
    /// `messages.accepted_when`.
    ack: &'static str,
    /// `messages.rejected_when`, where the protocol has no error of its own.
    rejected: Option<&'static str>,
    /// `messages.warning_when`.
    warning: String,
}

/// Writes a file readable only by its owner: it holds the API token.
///
/// The text goes to a new owner-only temporary file beside `path`, which then replaces it: an
/// existing file keeps its mode when merely truncated, so writing in place could leave the token
/// in a world-readable file.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // tempfile creates with mode 0600 on Unix.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
