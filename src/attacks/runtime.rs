//! What every case of a run shares: the target, its TLS and HTTP clients, and the one secret
//! registry (which grows as tickets and session cookies are obtained).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::channel::Classifier;
use super::profile::{ConnectProfile, Opened, Variation};
use super::setup_state::SetupState;
use crate::client::{
    CertCheck, ClientError, HttpClient, HttpOptions, HttpRequestSpec, SetCookie, TlsClient,
    TlsOptions, TlsVersions,
};
use crate::config::Secrets;
use crate::config::target::{LoadedTarget, Target};
use crate::report::CaseLog;

/// How long the harness waits for a reply when the policy states no bound; stated in evidence.
pub const DEFAULT_REPLY_WAIT: Duration = Duration::from_secs(3);

/// The target of a run, ready to be attacked.
pub struct TargetRuntime {
    /// The target as loaded (secrets interpolated).
    pub target: Target,
    /// Trust and versions of a legitimate client: certificates are enforced.
    pub tls: TlsClient,
    /// The same trust, for building probes with other versions or record-only checks.
    tls_options: TlsOptions,
    /// HTTP client for tickets and cookies, over the same TLS configuration.
    pub http: HttpClient,
    /// Every secret of the run: the target's, plus tickets and cookies seen at run time.
    pub secrets: Arc<Mutex<Secrets>>,
    /// How long to wait for a reply without a policy bound.
    pub reply_wait: Duration,
    /// The legitimate client's handshake.
    pub profile: ConnectProfile,
    /// How the target's replies are recognised.
    pub classifier: Arc<Classifier>,
    /// The counter behind `{{seq}}`, run-wide so every message of the run is unique.
    pub seq: AtomicU64,
    /// The API credential (see [`TargetRuntime::credential`]).
    credential: Option<String>,
}

impl TargetRuntime {
    /// Builds the clients from a loaded target (its CA file, if any, is read here).
    pub fn new(loaded: &LoadedTarget) -> Result<Self, ClientError> {
        let mut tls_options = TlsOptions::default();
        if let Some(ca) = loaded.ca_path() {
            tls_options = tls_options.with_ca_file(&ca)?;
        }
        let tls = TlsClient::new(&tls_options)?;
        let http = HttpClient::new(&tls, HttpOptions::default())?;
        Ok(Self {
            target: loaded.target.clone(),
            tls,
            tls_options,
            http,
            secrets: Arc::new(Mutex::new(loaded.secrets.clone())),
            reply_wait: DEFAULT_REPLY_WAIT,
            profile: ConnectProfile::of(&loaded.target),
            classifier: Arc::new(Classifier::of(&loaded.target)),
            seq: AtomicU64::new(0),
            credential: api_credential(&loaded.target),
        })
    }

    /// A TLS client with other versions, recording (not enforcing) certificate problems.
    pub fn probe_client(&self, versions: TlsVersions) -> Result<TlsClient, ClientError> {
        TlsClient::new(
            &self
                .tls_options
                .clone()
                .versions(versions)
                .cert_check(CertCheck::RecordOnly),
        )
    }

    /// Registers a value (ticket, cookie) as secret for every output of the run.
    pub fn register_secret(&self, value: &str) {
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(value);
    }

    /// Registers the values of cookies a response set as secrets, and describes them
    /// (values hidden) for evidence.
    pub fn register_cookies(&self, cookies: &[SetCookie]) -> Vec<String> {
        cookies
            .iter()
            .map(|c| {
                self.register_secret(c.value());
                c.describe()
            })
            .collect()
    }

    /// Sends one HTTP request a case makes (a setup request, a negotiation, the ticket request
    /// whose cookies are judged) under the connect deadline, with every known secret redacted
    /// from what the log and errors show; the cookies it sets become secrets. `label` prefixes
    /// the log lines. Returns the response and the description of its cookies.
    pub async fn send_logged(
        &self,
        mut spec: HttpRequestSpec,
        label: &str,
        log: &CaseLog,
    ) -> Result<(crate::client::HttpResponse, Vec<String>), String> {
        for s in self.secrets().values() {
            spec = spec.secret(s);
        }
        log.sent(format!("{label}{spec:?}"));
        let response = self
            .http
            .send(&spec, self.connect_timeout())
            .await
            .map_err(|e| format!("{label}the request failed: {e}"))?;
        let cookies = self.register_cookies(&response.set_cookies);
        log_redirects(log, label, &response.redirects);
        log.saw(format!(
            "{label}HTTP {} (cookies: {})",
            response.status,
            if cookies.is_empty() {
                "none".to_string()
            } else {
                cookies.join(" | ")
            }
        ));
        Ok((response, cookies))
    }

    /// A copy of the secret registry.
    pub fn secrets(&self) -> Secrets {
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The target's ticket request as a client request, or `None` without a ticket flow.
    pub fn ticket_request(&self) -> Option<(HttpRequestSpec, String)> {
        self.ticket_request_as(None)
    }

    /// The ticket request of `identity` (its headers replacing the same-named ones), or of the
    /// target's own identity; `None` without a ticket flow.
    pub fn ticket_request_as(
        &self,
        identity: Option<&crate::config::target::Identity>,
    ) -> Option<(HttpRequestSpec, String)> {
        let flow = self.target.auth.as_ref()?.ticket.as_ref()?;
        let mut spec =
            HttpRequestSpec::new(flow.request.method.as_str(), flow.request.url.0.as_str());
        if let Some(body) = &flow.request.body {
            spec = spec.body(body);
        }
        let replaced = |name: &str| {
            identity.is_some_and(|i| i.headers.keys().any(|k| k.eq_ignore_ascii_case(name)))
        };
        for (name, value) in &flow.request.headers {
            if !replaced(name) {
                spec = spec.header(name, value);
            }
        }
        for (name, value) in identity.iter().flat_map(|i| &i.headers) {
            spec = spec.header(name, value);
        }
        for s in self.secrets().values() {
            spec = spec.secret(s);
        }
        Some((spec, flow.extract.to_string()))
    }

    /// The API credential: the target's ticket request `Authorization` value without its
    /// scheme.
    pub fn credential(&self) -> Option<String> {
        self.credential.clone()
    }

    /// [`TargetRuntime::credential`], borrowed.
    pub fn credential_ref(&self) -> Option<&str> {
        self.credential.as_deref()
    }

    /// The connect timeout of the target.
    pub fn connect_timeout(&self) -> Duration {
        self.target.limits.connect_timeout
    }

    /// Opens a connection the way the target's legitimate client does, varied by `v`: the
    /// handshake (with `setup`'s values and cookies), the dialect's negotiation before it and
    /// its opening after it. What was sent and seen goes to `log`; the protocol's opening
    /// failing is noted there, and what the server sent is left for the judgements.
    pub async fn connect(
        &self,
        v: &Variation,
        setup: Option<&SetupState>,
        log: &CaseLog,
    ) -> Result<Opened, ClientError> {
        let mut req = self.profile.request(v, &self.secrets(), setup)?;
        if matches!(
            self.profile.dialect,
            crate::dialect::Dialect::SignalrJson {
                negotiate: true,
                ..
            }
        ) {
            match self.negotiate(&req, log).await {
                Ok(token) => req = req.query_param("id", &token),
                Err(why) => log.note(format!(
                    "SignalR negotiation failed ({why}): connecting without a connection token"
                )),
            }
        }
        log.sent(req.summary());
        let mut opened = self
            .profile
            .open_request(
                &req,
                &self.tls,
                self.connect_timeout(),
                self.classifier.clone(),
            )
            .await?;
        if let Some(channel) = opened.channel.as_mut() {
            channel.set_reply_wait(self.reply_wait);
            let deadline = tokio::time::Instant::now() + self.connect_timeout();
            if let Err(why) = channel.open_dialect(deadline).await {
                log.note(format!("the protocol's opening: {why}"));
            }
        }
        Ok(opened)
    }

    /// SignalR's negotiation for an upgrade request: `POST <hub>/negotiate?negotiateVersion=1`
    /// with the same credentials and Origin, giving the connection token.
    async fn negotiate(
        &self,
        req: &crate::client::UpgradeRequest,
        log: &CaseLog,
    ) -> Result<String, String> {
        // The hub's URL as the upgrade request names it (its query included), over HTTP.
        let (path, query) = req
            .target
            .split_once('?')
            .map_or((req.target.as_str(), None), |(p, q)| (p, Some(q)));
        let mut hub = crate::client::http_url(req.url())
            .ok_or_else(|| format!("{} is not a WebSocket URL", req.url().scheme()))?;
        hub.set_path(path);
        hub.set_query(query);
        let url = crate::dialect::signalr::negotiate_url(&hub);
        let mut spec = HttpRequestSpec::new("POST", url.as_str());
        for (name, value) in &req.headers {
            let lower = name.to_ascii_lowercase();
            let websocket_only = lower.starts_with("sec-websocket")
                || ["host", "upgrade", "connection", "user-agent"].contains(&lower.as_str());
            if !websocket_only {
                spec = spec.header(name, &String::from_utf8_lossy(value));
            }
        }
        let (response, _) = self.send_logged(spec, "negotiate: ", log).await?;
        if !(200..300).contains(&response.status) {
            return Err(format!("HTTP {}", response.status));
        }
        crate::dialect::signalr::negotiated_token(&String::from_utf8_lossy(&response.body))
    }
}

/// The API credential of a target: the `Authorization` value (without its scheme) of its
/// ticket request, else of its handshake (`connect.headers`).
fn api_credential(target: &Target) -> Option<String> {
    let ticket = target
        .auth
        .as_ref()
        .and_then(|a| a.ticket.as_ref())
        .map(|f| &f.request.headers);
    let handshake = target.connect.as_ref().map(|c| &c.headers);
    ticket
        .into_iter()
        .chain(handshake)
        .flatten()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| {
            v.split_once(' ')
                .map_or(v.as_str(), |(_, c)| c.trim())
                .to_string()
        })
}

/// Puts the redirects a request followed (same origin only: see the client) in a case's
/// evidence, each under `label`.
pub(super) fn log_redirects(
    log: &CaseLog,
    label: &str,
    redirects: &[crate::client::http::Redirect],
) {
    for r in redirects {
        log.saw(format!("{label}redirect followed (same origin): {r}"));
    }
}
