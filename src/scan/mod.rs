//! The page scan (`wsaudit scan URL`, seed 001): what a site scanner's WebSocket check does,
//! reported as controls so every reporter and exit code works as for `run`.
//!
//! 1. [`fetch`] reads the page and the same-origin JavaScript it loads, within [`Bounds`].
//! 2. [`extract`] finds WebSocket references in that text (literal `ws://`/`wss://` URLs and the
//!    `new WebSocket(`, Socket.IO, SockJS and SignalR patterns), resolved against the page.
//! 3. [`probe`] tries each discovered `wss://` endpoint with a foreign Origin and with the
//!    page's own origin.
//!
//! Controls: [`SOURCES`] (everything was read, within the bounds), [`PLAINTEXT`] (one failing
//! case per `ws://` reference, at file:line; `wss://` references pass and are thereby noted) and
//! [`CSWSH`] (per endpoint: the foreign-origin attack and the page-origin positive control,
//! gated like `run` gates: a refusal proves nothing when the page's own origin is refused too).

mod cases;
pub mod extract;
pub mod fetch;
pub mod js;
pub mod probe;

use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use crate::client::{
    ClientError, Deadline, HttpClient, HttpOptions, TlsClient, TlsOptions, display_url,
};
use crate::config::{Secrets, Severity};
use crate::report::{ControlResult, RunReport, Verdict};
use fetch::Fetcher;

/// Control: the page and its same-origin scripts were read completely, within the bounds.
pub const SOURCES: &str = "SCAN-SOURCES";
/// Control: WebSocket references use TLS; every `ws://` reference fails.
pub const PLAINTEXT: &str = "SCAN-PLAINTEXT";
/// Control: discovered `wss://` endpoints refuse a foreign Origin (CSWSH).
pub const CSWSH: &str = "SCAN-CSWSH";
/// The case family every scan case belongs to.
pub const FAMILY: &str = "page-scan";
/// The foreign origin the probe sends unless told otherwise (a reserved example domain).
pub const DEFAULT_FOREIGN_ORIGIN: &str = "https://evil.example";
/// Items listed in one piece of evidence (cross-origin scripts, scripts not fetched...).
pub const MAX_LISTED: usize = 20;
/// References read per source at most, whatever `max_references` says (memory bound).
const MAX_PER_SOURCE: usize = 10_000;

/// How far a scan may go: every bound has a default a homepage fits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// Same-origin scripts fetched at most (the page not counted).
    pub max_scripts: usize,
    /// Bytes read per response (page or script); the rest is not read, and the report says so.
    pub max_bytes: usize,
    /// The whole scan's time budget: fetching and probing.
    pub total_time: Duration,
    /// One request's or one handshake's time limit (a script that never ends costs this much).
    pub request_timeout: Duration,
    /// References reported one by one; further ones are summed up per kind.
    pub max_references: usize,
    /// `wss://` endpoints probed at most.
    pub max_endpoints: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_scripts: 50,
            max_bytes: 2 * 1024 * 1024,
            total_time: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            max_references: 200,
            max_endpoints: 20,
        }
    }
}

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// The page (`http://` or `https://`).
    pub url: Url,
    /// The origin legitimate clients of the endpoints send (the positive control); the page's
    /// own origin when `None`. Needed when the page is served from another host than the
    /// app's origin, such as a staging address or a test server on 127.0.0.1.
    pub origin: Option<String>,
    /// The origin the CSWSH attack sends.
    pub foreign_origin: String,
    /// Trust roots (the OS store, or webpki roots when it is empty, plus a `--ca-file`).
    pub tls: TlsOptions,
    /// The bounds.
    pub bounds: Bounds,
    /// Whether discovered endpoints are probed at all.
    pub probe: bool,
}

impl ScanOptions {
    /// Options with the default bounds, foreign origin and trust for `url`.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            origin: None,
            foreign_origin: DEFAULT_FOREIGN_ORIGIN.into(),
            tls: TlsOptions::default(),
            bounds: Bounds::default(),
            probe: true,
        }
    }
}

/// Why a scan cannot start (an invalid invocation: exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The page URL is not an absolute http(s) URL with a host.
    #[error("invalid page URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as shown (query hidden).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// An origin option is not `scheme://host[:port]`.
    #[error("invalid origin `{origin}`: {reason}")]
    InvalidOrigin {
        /// The value given.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The TLS or HTTP client could not be built (unreadable CA file...).
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Parses a page URL argument: absolute, `http` or `https`, with a host.
pub fn parse_page_url(text: &str) -> Result<Url, ScanError> {
    let invalid = |reason: &str| ScanError::InvalidUrl {
        url: Url::parse(text).map_or_else(
            |_| crate::config::secrets::preview(text.as_bytes(), 80),
            |u| display_url(&u),
        ),
        reason: reason.into(),
    };
    let url = Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("a page URL must use http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(url)
}

/// Checks an origin option: `scheme://host[:port]` with nothing after it, as browsers send it,
/// or the opaque origin `null` (sandboxed frames).
pub fn check_origin(origin: &str) -> Result<(), ScanError> {
    if origin == "null" {
        return Ok(());
    }
    let invalid = |reason: &str| ScanError::InvalidOrigin {
        origin: crate::config::secrets::preview(origin.as_bytes(), 80),
        reason: reason.into(),
    };
    let url = Url::parse(origin).map_err(|e| invalid(&e.to_string()))?;
    if url.host_str().is_none() {
        return Err(invalid("no host"));
    }
    if url.origin().ascii_serialization() != origin.trim_end_matches('/') {
        return Err(invalid(
            "expected scheme://host[:port] with no path, query or credentials",
        ));
    }
    Ok(())
}

/// The values of a page URL that must never reach a report: its password and query values
/// (a page link may carry a token).
pub fn secrets(url: &Url) -> Secrets {
    let mut s = Secrets::new();
    if let Some(p) = url.password() {
        s.register(p);
    }
    for (_, v) in url.query_pairs() {
        if v.len() >= 4 {
            s.register(v.into_owned());
        }
    }
    s
}

/// Runs the scan; the report is not redacted yet (see [`secrets`]). Only invalid options are
/// errors: an unreachable page is an inconclusive report, as in `run`.
pub async fn scan(opts: &ScanOptions) -> Result<RunReport, ScanError> {
    parse_page_url(opts.url.as_str())?;
    for o in opts.origin.iter().chain([&opts.foreign_origin]) {
        check_origin(o)?;
    }
    let tls = TlsClient::new(&opts.tls)?;
    let http = HttpClient::new(
        &tls,
        HttpOptions {
            body_limit: opts.bounds.max_bytes,
            // A page scan sends no credential, and a site often redirects its page to its
            // canonical origin (http to https): followed, and judged off-origin by the fetcher.
            cross_origin_redirects: true,
            ..HttpOptions::default()
        },
    )?;
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let t0 = Instant::now();
    let deadline = Deadline::after(opts.bounds.total_time);
    let collected = Fetcher::new(&http, &opts.bounds, deadline, t0)
        .collect(&opts.url)
        .await;
    let cases = cases::all(opts, &collected, &tls, &deadline, t0).await;
    let mut report = RunReport {
        wsaudit_version: env!("CARGO_PKG_VERSION").to_string(),
        policy: "page-scan".into(),
        // No policy file: SARIF locates the findings at the scanned page instead.
        policy_file: display_url(&opts.url),
        target: display_url(&opts.url),
        target_url: display_url(&opts.url),
        started_at,
        wall_time: t0.elapsed(),
        controls: controls(),
        cases,
        summary: Default::default(),
        not_run: Vec::new(),
        target_down_after: None,
    };
    report.finish();
    Ok(report)
}

/// The three controls of a scan, with their references to the seed's standards.
pub fn controls() -> Vec<ControlResult> {
    let control = |id: &str, title: &str, check: &str, severity, refs: &[&str]| ControlResult {
        id: id.into(),
        title: title.into(),
        check: check.into(),
        severity,
        refs: refs.iter().map(|r| r.to_string()).collect(),
        line: None,
        verdict: Verdict::Skipped,
    };
    vec![
        control(
            SOURCES,
            "The page and the same-origin scripts it loads were read completely, within the scan's bounds",
            "scan.sources",
            Severity::Low,
            &[],
        ),
        control(
            PLAINTEXT,
            "WebSocket references in the page and its scripts use TLS (wss://), never plaintext ws://",
            "scan.plaintext",
            Severity::Critical,
            &["pci-dss-4.0:4.2.1", "asvs-5.0:4.4.1", "cwe:319"],
        ),
        control(
            CSWSH,
            "Discovered wss:// endpoints refuse a handshake from a foreign Origin (CSWSH)",
            "scan.cswsh",
            Severity::High,
            &["asvs-5.0:4.4.2", "cwe:1385", "pci-dss-4.0:6.2.4"],
        ),
    ]
}
