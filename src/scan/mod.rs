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

pub mod extract;
pub mod fetch;
pub mod js;
pub mod probe;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;
use url::Url;

use crate::client::{
    ClientError, Deadline, HttpClient, HttpOptions, TlsClient, TlsOptions, display_url,
};
use crate::config::{Secrets, Severity};
use crate::report::{CaseResult, ControlResult, Evidence, Redacted, Role, RunReport, Verdict};
use extract::{Hints, Reference, Transport, find_references};
use fetch::{Collected, Fetched, Fetcher, Source, label};

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
    /// Trust roots (webpki roots plus a `--ca-file`).
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
            |_| crate::client::evidence::preview(text.as_bytes(), 80),
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
        origin: crate::client::evidence::preview(origin.as_bytes(), 80),
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
            ..HttpOptions::default()
        },
    )?;
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let t0 = Instant::now();
    let deadline = Deadline::after(opts.bounds.total_time);
    let collected = Fetcher::new(&http, &opts.bounds, deadline, t0)
        .collect(&opts.url)
        .await;
    let fetched_in = t0.elapsed();
    let mut cases = source_cases(&collected, &opts.bounds, fetched_in);
    let (references, capped) = gather_references(&collected);
    cases.extend(plaintext_cases(
        &collected,
        &references,
        &capped,
        &opts.bounds,
        fetched_in,
    ));
    cases.extend(cswsh_cases(opts, &collected, &references, &tls, &deadline, t0).await);
    let mut report = RunReport {
        wsaudit_version: env!("CARGO_PKG_VERSION").to_string(),
        policy: "page-scan".into(),
        policy_file: String::new(),
        target: display_url(&opts.url),
        target_url: display_url(&opts.url),
        started_at,
        wall_time: t0.elapsed(),
        controls: controls(),
        cases,
        summary: Default::default(),
        not_run: Vec::new(),
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

/// Builds one case of a scan control.
struct CaseBuilder {
    control: &'static str,
    ids: HashSet<String>,
}

impl CaseBuilder {
    fn new(control: &'static str) -> Self {
        Self {
            control,
            ids: HashSet::new(),
        }
    }

    /// A case; an ID already used gets a `#n` suffix so IDs stay unique.
    #[allow(clippy::too_many_arguments)]
    fn case(
        &mut self,
        id: &str,
        name: String,
        role: Role,
        (verdict, reason): (Verdict, String),
        evidence: Evidence,
        started: Duration,
        duration: Duration,
    ) -> CaseResult {
        let base = format!("{}/{id}", self.control);
        let mut case_id = base.clone();
        let mut n = 1;
        while !self.ids.insert(case_id.clone()) {
            n += 1;
            case_id = format!("{base}#{n}");
        }
        CaseResult {
            control_id: self.control.into(),
            case_id,
            family: FAMILY.into(),
            name,
            role,
            verdict,
            reason,
            evidence,
            started,
            duration,
        }
    }
}

fn size(bytes: usize) -> String {
    bytesize::ByteSize::b(bytes as u64).to_string()
}

/// One `SCAN-SOURCES` case per resource, plus one per bound that left scripts unread.
fn source_cases(c: &Collected, bounds: &Bounds, took: Duration) -> Vec<CaseResult> {
    let mut b = CaseBuilder::new(SOURCES);
    let page_url = c.context.as_ref().map_or(&c.page.url, |p| &p.location);
    let mut out = Vec::new();
    for (i, s) in std::iter::once(&c.page).chain(&c.scripts).enumerate() {
        let is_page = i == 0;
        let shown = label(&s.url, page_url);
        let mut ev = Evidence::default();
        if let Some(from) = &s.found_in {
            ev.note(format!("loaded by {from}"));
        }
        ev.sent(format!("GET {}", display_url(&s.url)));
        let verdict = source_verdict(s, bounds, &mut ev);
        if is_page {
            page_notes(c, &mut ev);
        }
        let (id, name) = if is_page {
            (format!("PAGE[{shown}]"), format!("read the page {shown}"))
        } else {
            (
                format!("SCRIPT[{shown}]"),
                format!("read the script {shown}"),
            )
        };
        out.push(b.case(&id, name, Role::Positive, verdict, ev, s.started, s.took));
    }
    let unread = [
        (
            &c.over_count,
            "MAX-SCRIPTS",
            format!(
                "same-origin scripts beyond --max-scripts {} were not read, so they were not scanned",
                bounds.max_scripts
            ),
        ),
        (
            &c.out_of_time,
            "TIME-BUDGET",
            format!(
                "same-origin scripts were not read before the scan's time budget ({}) ran out",
                humantime::format_duration(bounds.total_time)
            ),
        ),
    ];
    for (list, id, reason) in unread {
        if list.is_empty() {
            continue;
        }
        let mut ev = Evidence::default();
        for (url, from) in list.iter().take(MAX_LISTED) {
            ev.note(format!(
                "not read: {} (loaded by {from})",
                label(url, page_url)
            ));
        }
        if list.len() > MAX_LISTED {
            ev.note(format!("... and {} more", list.len() - MAX_LISTED));
        }
        out.push(b.case(
            id,
            format!("{} same-origin scripts left unread", list.len()),
            Role::Positive,
            (Verdict::Error, reason),
            ev,
            took,
            Duration::ZERO,
        ));
    }
    out
}

fn source_verdict(s: &Source, bounds: &Bounds, ev: &mut Evidence) -> (Verdict, String) {
    match &s.fetched {
        Fetched::Read {
            status,
            bytes,
            truncated,
            final_url,
            ..
        } => {
            if *final_url != s.url {
                ev.note(format!("redirected to {}", display_url(final_url)));
            }
            ev.saw(format!(
                "HTTP {status}, {} read{}",
                size(*bytes),
                if *truncated { " (truncated)" } else { "" }
            ));
            if *truncated {
                (
                    Verdict::Error,
                    format!(
                        "truncated: only the first {} were read (--max-script-bytes); the rest was not scanned",
                        size(bounds.max_bytes)
                    ),
                )
            } else {
                (Verdict::Pass, format!("read completely ({})", size(*bytes)))
            }
        }
        Fetched::Status(status) => {
            ev.saw(format!("HTTP {status}"));
            (
                Verdict::Error,
                format!("answered HTTP {status}, so it could not be scanned"),
            )
        }
        Fetched::OffOrigin(to) => {
            ev.saw(format!("redirected to {}", display_url(to)));
            (
                Verdict::Skipped,
                "redirected to another origin: not the site's own script, not scanned".into(),
            )
        }
        Fetched::Failed(e) => {
            ev.saw(e.clone());
            (Verdict::Error, format!("could not be read: {e}"))
        }
    }
}

fn page_notes(c: &Collected, ev: &mut Evidence) {
    if let Some(ctx) = &c.context
        && ctx.base != ctx.location
    {
        ev.note(format!("document base URL {}", display_url(&ctx.base)));
    }
    if c.context.is_some() {
        ev.note(format!(
            "{} same-origin scripts read, {} of other origins not fetched",
            c.scripts.len(),
            c.cross_origin.len()
        ));
    }
    for (url, from) in c.cross_origin.iter().take(MAX_LISTED) {
        ev.note(format!(
            "other origin, not fetched: {} (loaded by {from})",
            display_url(url)
        ));
    }
}

/// A reference with the source it was found in.
struct Located {
    file: String,
    reference: Reference,
}

impl Located {
    fn at(&self) -> String {
        format!(
            "{}:{}:{}",
            self.file, self.reference.line, self.reference.column
        )
    }
}

/// Every reference of every source read, in source order, and the sources with more matches
/// than [`MAX_PER_SOURCE`] (how many were not examined).
fn gather_references(c: &Collected) -> (Vec<Located>, Vec<(String, usize)>) {
    let mut capped = Vec::new();
    let Some(ctx) = &c.context else {
        return (Vec::new(), capped);
    };
    let sources: Vec<&Source> = std::iter::once(&c.page).chain(&c.scripts).collect();
    let hints = Hints::from_texts(sources.iter().filter_map(|s| s.text()));
    let mut out = Vec::new();
    for s in sources {
        let Some(text) = s.text() else { continue };
        let file = label(&s.url, &ctx.location);
        let (refs, extra) = find_references(text, ctx, hints, MAX_PER_SOURCE);
        if extra > 0 {
            capped.push((file.clone(), extra));
        }
        out.extend(refs.into_iter().map(|reference| Located {
            file: file.clone(),
            reference,
        }));
    }
    (out, capped)
}

fn reference_evidence(r: &Located) -> Evidence {
    let mut ev = Evidence::default();
    ev.note(format!(
        "{} at {} ({})",
        r.reference.written,
        r.at(),
        r.reference.pattern.label()
    ));
    ev.saw(&r.reference.snippet);
    if let Some(u) = &r.reference.url {
        ev.note(format!("connects to {}", display_url(u)));
    }
    for n in &r.reference.notes {
        ev.note(n);
    }
    ev
}

/// One `SCAN-PLAINTEXT` case per reference (up to the bound; the rest summed up per kind).
fn plaintext_cases(
    c: &Collected,
    refs: &[Located],
    capped: &[(String, usize)],
    bounds: &Bounds,
    took: Duration,
) -> Vec<CaseResult> {
    let mut b = CaseBuilder::new(PLAINTEXT);
    let mut out = Vec::new();
    if c.context.is_none() {
        out.push(b.case(
            "NOTHING-READ",
            "scan the page for WebSocket references".into(),
            Role::Attack,
            (
                Verdict::Error,
                "the page could not be read, so nothing was scanned".into(),
            ),
            Evidence::default(),
            took,
            Duration::ZERO,
        ));
        return out;
    }
    for (file, extra) in capped {
        out.push(b.case(
            &format!("UNEXAMINED[{file}]"),
            format!("references in {file} beyond the per-source cap"),
            Role::Attack,
            (
                Verdict::Error,
                format!(
                    "{file} has at least {extra} more candidate references than the {MAX_PER_SOURCE} examined per source; they were not judged"
                ),
            ),
            Evidence::default(),
            took,
            Duration::ZERO,
        ));
    }
    if refs.is_empty() && capped.is_empty() {
        let read = 1 + c.scripts.iter().filter(|s| s.text().is_some()).count();
        out.push(b.case(
            "NONE",
            "no WebSocket reference in the page or its scripts".into(),
            Role::Attack,
            (
                Verdict::Pass,
                format!("no ws:// or wss:// reference and no WebSocket client pattern in the {read} sources read"),
            ),
            Evidence::default(),
            took,
            Duration::ZERO,
        ));
        return out;
    }
    for r in refs.iter().take(bounds.max_references) {
        let (id, name, verdict) = reference_case(r);
        out.push(b.case(
            &id,
            name,
            Role::Attack,
            verdict,
            reference_evidence(r),
            took,
            Duration::ZERO,
        ));
    }
    let rest = refs.get(bounds.max_references..).unwrap_or_default();
    for (transport, id, verdict, what) in [
        (
            Transport::Plaintext,
            "MORE-WS",
            Verdict::Fail,
            "plaintext ws://",
        ),
        (Transport::Tls, "MORE-WSS", Verdict::Pass, "wss://"),
        (
            Transport::Unknown,
            "MORE-DYNAMIC",
            Verdict::Skipped,
            "run-time",
        ),
    ] {
        let group: Vec<&Located> = rest
            .iter()
            .filter(|r| r.reference.transport == transport)
            .collect();
        if group.is_empty() {
            continue;
        }
        let mut ev = Evidence::default();
        for r in group.iter().take(MAX_LISTED) {
            ev.note(format!("{} at {}", r.reference.written, r.at()));
        }
        out.push(b.case(
            id,
            format!("{} further {what} references", group.len()),
            Role::Attack,
            (
                verdict,
                format!(
                    "{} more {what} references beyond --max-references {} (listed in the evidence)",
                    group.len(),
                    bounds.max_references
                ),
            ),
            ev,
            took,
            Duration::ZERO,
        ));
    }
    out
}

fn reference_case(r: &Located) -> (String, String, (Verdict, String)) {
    let at = r.at();
    let written = &r.reference.written;
    match r.reference.transport {
        Transport::Plaintext => (
            format!("WS[{at}]"),
            format!("plaintext WebSocket reference at {at}"),
            (
                Verdict::Fail,
                format!(
                    "`{written}`{} is plaintext ws://: anyone on the network path can read and alter every frame",
                    connects_to(r)
                ),
            ),
        ),
        Transport::Tls => (
            format!("WSS[{at}]"),
            format!("TLS WebSocket reference at {at}"),
            (
                Verdict::Pass,
                format!("`{written}`{} uses TLS (wss://)", connects_to(r)),
            ),
        ),
        Transport::Unknown => (
            format!("DYNAMIC[{at}]"),
            format!("WebSocket URL computed at run time at {at}"),
            (
                Verdict::Skipped,
                format!(
                    "`{written}` is computed at run time; its scheme cannot be read from the source"
                ),
            ),
        ),
    }
}

/// ` (ws://host/path)` when the URL connected to differs from the text as written.
fn connects_to(r: &Located) -> String {
    match &r.reference.url {
        Some(u) if display_url(u) != r.reference.written => format!(" ({})", display_url(u)),
        _ => String::new(),
    }
}

/// A discovered `wss://` endpoint with where it was referenced.
struct Endpoint {
    url: Url,
    found_at: Vec<String>,
}

fn endpoints(refs: &[Located]) -> (Vec<Endpoint>, Vec<&Located>) {
    let mut found: Vec<Endpoint> = Vec::new();
    let mut unresolved: Vec<&Located> = Vec::new();
    for r in refs {
        match &r.reference.url {
            Some(u) if u.scheme() == "wss" => match found.iter_mut().find(|e| e.url == *u) {
                Some(e) => e.found_at.push(r.at()),
                None => found.push(Endpoint {
                    url: u.clone(),
                    found_at: vec![r.at()],
                }),
            },
            // A bare `wss://` is the scheme half of a run-time choice, not an endpoint.
            None if r.reference.transport == Transport::Tls
                && !r.reference.written.to_ascii_lowercase().ends_with("://")
                && !unresolved
                    .iter()
                    .any(|o| o.reference.written == r.reference.written) =>
            {
                unresolved.push(r);
            }
            _ => {}
        }
    }
    (found, unresolved)
}

/// Per endpoint, the page-origin positive control and the foreign-origin attack, gated.
async fn cswsh_cases(
    opts: &ScanOptions,
    c: &Collected,
    refs: &[Located],
    tls: &TlsClient,
    deadline: &Deadline,
    t0: Instant,
) -> Vec<CaseResult> {
    let mut b = CaseBuilder::new(CSWSH);
    let mut out = Vec::new();
    let Some(ctx) = &c.context else {
        out.push(b.case(
            "NOTHING-READ",
            "probe the page's wss:// endpoints".into(),
            Role::Attack,
            (
                Verdict::Error,
                "the page could not be read, so no endpoint was discovered".into(),
            ),
            Evidence::default(),
            Duration::ZERO,
            t0.elapsed(),
        ));
        return out;
    };
    let (endpoints, unresolved) = endpoints(refs);
    let page_origin = opts
        .origin
        .clone()
        .unwrap_or_else(|| ctx.location.origin().ascii_serialization());
    let (probed, beyond) = endpoints.split_at(endpoints.len().min(opts.bounds.max_endpoints));
    if opts.probe {
        let pairs = join_all(probed.iter().map(|e| {
            probe_endpoint(
                e,
                &page_origin,
                &opts.foreign_origin,
                tls,
                deadline,
                &opts.bounds,
                t0,
            )
        }))
        .await;
        for (e, (positive, attack)) in probed.iter().zip(pairs) {
            let shown = display_url(&e.url);
            let mut pair = [
                b.case(
                    &format!("PAGE-ORIGIN[{shown}]"),
                    format!("{shown} accepts the page's origin {page_origin}"),
                    Role::Positive,
                    positive.0,
                    positive.1,
                    positive.2,
                    positive.3,
                ),
                b.case(
                    &format!("FOREIGN-ORIGIN[{shown}]"),
                    format!("{shown} refuses the foreign origin {}", opts.foreign_origin),
                    Role::Attack,
                    attack.0,
                    attack.1,
                    attack.2,
                    attack.3,
                ),
            ];
            // Gated per endpoint: another endpoint's refusal says nothing about this one.
            crate::run::gate::gate_on_positive_controls(&mut pair);
            out.extend(pair);
        }
    } else {
        for e in probed {
            let shown = display_url(&e.url);
            out.push(b.case(
                &format!("FOREIGN-ORIGIN[{shown}]"),
                format!("{shown} refuses the foreign origin {}", opts.foreign_origin),
                Role::Attack,
                (Verdict::Skipped, "probing disabled (--no-probe)".into()),
                found_at_evidence(e),
                Duration::ZERO,
                Duration::ZERO,
            ));
        }
    }
    if !beyond.is_empty() {
        let mut ev = Evidence::default();
        for e in beyond.iter().take(MAX_LISTED) {
            ev.note(format!("not probed: {}", display_url(&e.url)));
        }
        out.push(b.case(
            "MAX-ENDPOINTS",
            format!("{} further wss:// endpoints", beyond.len()),
            Role::Attack,
            (
                if opts.probe {
                    Verdict::Error
                } else {
                    Verdict::Skipped
                },
                format!(
                    "{} endpoints beyond --max-endpoints {} were not probed",
                    beyond.len(),
                    opts.bounds.max_endpoints
                ),
            ),
            ev,
            Duration::ZERO,
            Duration::ZERO,
        ));
    }
    for r in unresolved.iter().take(MAX_LISTED) {
        out.push(b.case(
            &format!("UNRESOLVED[{}]", r.at()),
            format!("wss:// endpoint built at run time at {}", r.at()),
            Role::Attack,
            (
                Verdict::Skipped,
                format!(
                    "`{}` is computed at run time, so it cannot be probed",
                    r.reference.written
                ),
            ),
            reference_evidence(r),
            Duration::ZERO,
            Duration::ZERO,
        ));
    }
    if out.is_empty() {
        out.push(b.case(
            "NONE",
            "probe the page's wss:// endpoints".into(),
            Role::Attack,
            (
                Verdict::Skipped,
                "no wss:// endpoint was discovered, so there is nothing to probe".into(),
            ),
            Evidence::default(),
            Duration::ZERO,
            t0.elapsed(),
        ));
    }
    out
}

fn found_at_evidence(e: &Endpoint) -> Evidence {
    let mut ev = Evidence::default();
    for at in e.found_at.iter().take(MAX_LISTED) {
        ev.note(format!("referenced at {at}"));
    }
    ev
}

/// A case's verdict, evidence, start and duration.
type Probed = ((Verdict, String), Evidence, Duration, Duration);

async fn probe_endpoint(
    e: &Endpoint,
    page_origin: &str,
    foreign_origin: &str,
    tls: &TlsClient,
    deadline: &Deadline,
    bounds: &Bounds,
    t0: Instant,
) -> (Probed, Probed) {
    let run = |origin: String, judge: fn(&probe::Seen, &Url, &str) -> (Verdict, String)| async move {
        let started = t0.elapsed();
        let at = Instant::now();
        let mut ev = found_at_evidence(e);
        let timeout = deadline.remaining().min(bounds.request_timeout);
        let seen = probe::handshake(&e.url, &origin, tls, timeout, &mut ev).await;
        (judge(&seen, &e.url, &origin), ev, started, at.elapsed())
    };
    let positive = run(page_origin.to_string(), probe::judge_positive).await;
    let attack = run(foreign_origin.to_string(), probe::judge_foreign).await;
    (positive, attack)
}

/// Where the machine-readable reports go; shared by every command that writes a report.
#[derive(Debug, Clone, Default)]
pub struct ReportFiles {
    /// JUnit XML.
    pub junit: Option<PathBuf>,
    /// JSON.
    pub json: Option<PathBuf>,
    /// SARIF 2.1.0.
    pub sarif: Option<PathBuf>,
}

impl ReportFiles {
    /// Renders and writes each requested report; the first failure names its file.
    pub fn write(&self, report: &Redacted) -> Result<(), String> {
        use crate::report::{json, junit, sarif};
        type Render = fn(&Redacted) -> String;
        let renderers: [(&Option<PathBuf>, Render); 3] = [
            (&self.junit, junit::render),
            (&self.json, json::render),
            (&self.sarif, sarif::render),
        ];
        for (path, render) in renderers {
            if let Some(path) = path {
                std::fs::write(path, render(report))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
        }
        Ok(())
    }
}
