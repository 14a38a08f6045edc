//! What every case of a run shares: the target, its TLS and HTTP clients, and the one secret
//! registry (which grows as tickets and session cookies are obtained).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::channel::Classifier;
use super::profile::{ConnectProfile, Opened, Variation};
use crate::client::{
    CertCheck, ClientError, HttpClient, HttpOptions, HttpRequestSpec, SetCookie, TlsClient,
    TlsOptions, TlsVersions,
};
use crate::config::Secrets;
use crate::config::target::{LoadedTarget, Target};

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
        let method = match flow.request.method {
            crate::config::target::HttpMethod::Get => "GET",
            crate::config::target::HttpMethod::Post => "POST",
        };
        let mut spec = HttpRequestSpec::new(method, flow.request.url.0.as_str());
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

    /// Opens a connection with the legitimate profile varied by `v`.
    pub async fn open(&self, v: &Variation) -> Result<Opened, ClientError> {
        self.profile
            .open(
                v,
                &self.secrets(),
                &self.tls,
                self.connect_timeout(),
                self.classifier.clone(),
            )
            .await
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
