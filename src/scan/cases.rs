//! Turning what a scan fetched, found and probed into the cases of its three controls: one
//! case per resource read, per reference found and per endpoint probed, each with its evidence,
//! and the summaries that keep a bound from hiding anything.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;
use url::Url;

use super::extract::{Hints, Reference, Transport, find_references};
use super::fetch::{Collected, Fetched, Source, label};
use super::{
    Bounds, CSWSH, FAMILY, MAX_LISTED, MAX_PER_SOURCE, PLAINTEXT, SOURCES, ScanOptions, probe,
};
use crate::client::{Deadline, TlsClient, display_url};
use crate::report::{CaseResult, Evidence, Role, Verdict};

/// Every case of a scan: the sources read, the references found in them, and the probes of
/// the endpoints they name (run here, within what is left of `deadline`).
pub(super) async fn all(
    opts: &ScanOptions,
    collected: &Collected,
    tls: &TlsClient,
    deadline: &Deadline,
    t0: Instant,
) -> Vec<CaseResult> {
    let fetched_in = t0.elapsed();
    let mut cases = source_cases(collected, &opts.bounds, fetched_in);
    let (references, capped) = gather_references(collected);
    cases.extend(plaintext_cases(
        collected,
        &references,
        &capped,
        &opts.bounds,
        fetched_in,
    ));
    cases.extend(cswsh_cases(opts, collected, &references, tls, deadline, t0).await);
    cases
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
