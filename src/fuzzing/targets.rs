//! The harnesses of the cargo-fuzz targets in `fuzz/`, one function per target.
//!
//! Each takes arbitrary bytes, drives one part of wsaudit without sockets, and panics when its
//! invariant breaks; that panic is the fuzzer's finding. Every target also runs under
//! [`super::alloc::CappedAlloc`], so "no unbounded allocation" holds for all of them: nothing
//! may allocate what an input merely claims. `cargo test` replays the committed seeds through
//! [`TARGETS`] and proptest drives the same functions, so the invariants are checked on every run.
//!
//! | target | drives | invariant besides no panic |
//! |---|---|---|
//! | `config_load` | policy, target and suite loaders | every error names the file and a line inside it; a `${VAR}` value read from the environment never appears in an error |
//! | `plan_compile` | the compiler, on policies built by `arbitrary` | a policy that loads compiles or fails with located errors; case IDs are unique and name a control of the policy; the plan never prints the target's secret |
//! | `server_handshake` | origin check, URL credentials, session cookie, ticket redemption | an accepted origin is byte-equal to an allowed one; a URL never authenticates unless `url-token` is weakened; a ticket authenticates only if issued, unexpired (tickets issued with a zero TTL never do unless `ticket-expiry` is weakened), unused (single use) and bound to the session |
//! | `server_frames` | the server's frame source (protocol strictness, size decisions, bounded inflation) | a frame breaking RFC 6455 closes 1002 before its payload is read; an over-limit frame closes 1009; no message exceeds the limit; progress on every call |
//! | `server_messages` | decode, first-message auth, schema judge, rate limiter | an acknowledged message is valid UTF-8 JSON satisfying the schema; non-text closes 1003, bad UTF-8 1007; replies are bounded JSON; the limiter warns at most once and never allows more than its quota |
//! | `harness_parse` | HTTP response heads, `Set-Cookie`, close payloads, frame headers, JSON reply matchers, evidence previews | parse results agree with the bytes; a reply matches `{"/type":"ack"}` only if it is JSON with that member; previews are bounded and printable |
//! | `harness_frames` | the client handshake and connection read loop on any server bytes | the handshake returns; an upgraded connection ends with a close or drop event (never a hang) |

use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Value, json};

use crate::client::handshake::parse_response_head;
use crate::client::http::{parse_set_cookie, set_cookies};
use crate::client::{Connection, Deadline, UpgradeRequest, handshake};
use crate::config::check::FileKind;
use crate::config::policy::{
    AttestationParams, CheckParams, Control, CookieParams, DeflatePolicy, HeartbeatParams,
    MaxSizeParams, MissingOrigin, OriginParams, Policy, ProtocolParams, RateLimitParams, SameSite,
    SchemaParams, Severity, SuiteClass, TicketParams, TlsParams, TlsVersion, UnauthParams,
    UrlTokenParams,
};
use crate::config::target::Matcher;
use crate::config::values::{ByteSize, Origin};
use crate::config::{ConfigError, LoadedPolicy, LoadedSuite, LoadedTarget, SourceFile, SuiteSet};
use crate::server::auth::{self, FirstMessage, UrlCredential};
use crate::server::cookies::{SESSION_COOKIE, session_from_cookies};
use crate::server::inbound::{FrameSource, Inbound, Next, Received};
use crate::server::rate_limit::{ConnectionRate, RateDecision};
use crate::server::schema::{self, Decision};
use crate::server::tickets::TicketStore;
use crate::server::{Defence, Weakened, max_size, origin};
use crate::wire::{FrameReader, parse_close, parse_header};

/// A fuzz target: its name (the file under `fuzz/fuzz_targets/` and the seed folder under
/// `fuzz/seeds/`) and its harness.
pub type Target = (&'static str, fn(&[u8]));

/// Every cargo-fuzz target, by name.
pub const TARGETS: &[Target] = &[
    ("config_load", config_load),
    ("plan_compile", plan_compile),
    ("server_handshake", server_handshake),
    ("server_frames", server_frames),
    ("server_messages", server_messages),
    ("harness_parse", harness_parse),
    ("harness_frames", harness_frames),
];

/// The file name fuzzed sources pretend to come from.
const FUZZ_FILE: &str = "fuzz.yaml";
/// The value every `${VAR}` of a fuzzed target reads: it must never be printed.
const FUZZ_SECRET: &str = "s3cr3t-fuzz-value";

/// Panics unless every diagnostic names the file and points inside the text.
fn assert_located(e: &ConfigError, text: &str) {
    let rendered = e.to_string();
    assert!(
        rendered.starts_with(&format!("error: {}", e.path.display())),
        "{rendered}"
    );
    // YAML breaks lines at CR, LF and CRLF (a lone CR too, unlike `str::lines`).
    let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
    for d in &e.diagnostics {
        if let Some(l) = d.location {
            assert!(
                l.line >= 1 && l.line <= lines + 1 && l.column >= 1,
                "{rendered}"
            );
        }
    }
}

/// `config_load`: the policy, target and suite loaders on any text.
pub fn config_load(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let src = || SourceFile::from_text(FUZZ_FILE, text.as_ref());
    if let Err(e) = FileKind::detect(&src()) {
        assert_located(&e, &text);
    }
    if let Err(e) = LoadedPolicy::parse(src()) {
        assert_located(&e, &text);
    }
    if let Err(e) = LoadedTarget::parse(src(), &|_| Some(FUZZ_SECRET.to_string())) {
        assert_located(&e, &text);
        // A value the file itself spells out is shown in its line anyway; one read from the
        // environment must never be.
        let rendered = e.to_string();
        assert!(
            text.contains(FUZZ_SECRET) || !rendered.contains(FUZZ_SECRET),
            "a secret leaked into an error: {rendered}"
        );
    }
    match LoadedSuite::parse(src(), false) {
        Err(e) => assert_located(&e, &text),
        Ok(suite) => {
            // A suite that parses is expanded with example values, placeholders and all.
            let mut set = SuiteSet::default();
            if set.add(suite).is_ok()
                && let Err(e) = set.validate()
            {
                for err in &e.errors {
                    assert_located(err, &text);
                }
            }
        }
    }
}

/// The shipped suites, loaded once per process.
fn builtin_suites() -> Option<&'static SuiteSet> {
    static SUITES: OnceLock<Option<SuiteSet>> = OnceLock::new();
    SUITES.get_or_init(|| SuiteSet::builtin().ok()).as_ref()
}

/// The compiler's sample target (its API token is a registered secret).
fn sample_target() -> Option<&'static LoadedTarget> {
    static TARGET: OnceLock<Option<LoadedTarget>> = OnceLock::new();
    TARGET
        .get_or_init(|| crate::plan::sample_target().ok())
        .as_ref()
}

fn arb_text(u: &mut Unstructured<'_>, alphabet: &[u8], max: usize) -> arbitrary::Result<String> {
    let len = u.int_in_range(0..=max)?;
    (0..len)
        .map(|_| u.choose(alphabet).map(|&b| b as char))
        .collect()
}

fn arb_origin(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<Origin>> {
    let scheme = *u.choose(&["http", "https"])?;
    let host = arb_text(u, b"abcxyz.-0", 12)?;
    let port: Option<u16> = u.arbitrary()?;
    let text = match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    Ok(text.parse().ok())
}

/// A JSON Schema-shaped value, up to `depth` levels of sub-schemas.
fn arb_schema(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let mut m = serde_json::Map::new();
    let types = [
        "object", "string", "number", "integer", "boolean", "array", "null",
    ];
    if u.arbitrary()? {
        m.insert("type".into(), json!(*u.choose(&types)?));
    }
    for (key, kind) in [
        ("minimum", 0u8),
        ("maximum", 0),
        ("exclusiveMinimum", 0),
        ("minLength", 1),
        ("maxLength", 1),
        ("pattern", 2),
        ("enum", 3),
        ("const", 4),
        ("additionalProperties", 5),
    ] {
        if !u.ratio(1, 5)? {
            continue;
        }
        let v = match kind {
            0 => json!(u.arbitrary::<i32>()?),
            1 => json!(u.int_in_range(0u32..=64)?),
            2 => json!(u.choose(&["^TX-[0-9]{6}$", "^[a-z]+$", "a|b", "(", ".*", "\\d"])?),
            3 => json!([arb_text(u, b"ABCabc01", 4)?, u.arbitrary::<i16>()?]),
            4 => json!(arb_text(u, b"xyz", 3)?),
            _ => json!(u.arbitrary::<bool>()?),
        };
        m.insert(key.into(), v);
    }
    if depth > 0 && u.arbitrary()? {
        let mut props = serde_json::Map::new();
        let mut required = Vec::new();
        for _ in 0..u.int_in_range(0..=4)? {
            let name = arb_text(u, b"abcdt_", 8)?;
            if u.arbitrary()? {
                required.push(json!(name.clone()));
            }
            props.insert(name, arb_schema(u, depth - 1)?);
        }
        m.insert("properties".into(), Value::Object(props));
        m.insert("required".into(), Value::Array(required));
    }
    if depth > 0 && u.ratio(1, 4)? {
        m.insert("items".into(), arb_schema(u, depth - 1)?);
    }
    Ok(Value::Object(m))
}

fn arb_duration(u: &mut Unstructured<'_>) -> arbitrary::Result<Duration> {
    Ok(Duration::from_millis(u.int_in_range(0..=600_000)?))
}

/// One control's check and typed parameters, including checks no suite knows.
fn arb_params(u: &mut Unstructured<'_>) -> arbitrary::Result<(String, CheckParams)> {
    let p = match u.int_in_range(0..=12)? {
        0 => CheckParams::Tls(TlsParams {
            min_version: *u.choose(&[TlsVersion::V1_2, TlsVersion::V1_3])?,
            forbidden_suites: SuiteClass::all()
                .into_iter()
                .filter(|_| u.arbitrary().unwrap_or(true))
                .collect(),
            cert_min_days: u.int_in_range(0..=400)?,
        }),
        1 => {
            let mut allowed = Vec::new();
            for _ in 0..u.int_in_range(0..=4)? {
                if let Some(o) = arb_origin(u)? {
                    allowed.push(o);
                }
            }
            CheckParams::Origin(OriginParams {
                allowed,
                missing_origin: *u.choose(&[MissingOrigin::Reject, MissingOrigin::Allow])?,
                status: u.arbitrary()?,
            })
        }
        2 => CheckParams::Ticket(TicketParams {
            ttl_max: arb_duration(u)?,
            single_use: u.arbitrary()?,
        }),
        3 => {
            let mut params = Vec::new();
            for _ in 0..u.int_in_range(0..=5)? {
                params.push(arb_text(u, b"abc_tokenj", 10)?);
            }
            CheckParams::UrlTokens(UrlTokenParams { params })
        }
        4 => CheckParams::Unauthenticated(UnauthParams {
            timeout: arb_duration(u)?,
        }),
        5 => CheckParams::Schema(SchemaParams {
            schema: arb_schema(u, 3)?,
        }),
        6 => CheckParams::MaxSize(MaxSizeParams {
            limit: ByteSize(u.int_in_range(0..=(200u64 << 20))?),
            deflate: *u.choose(&[DeflatePolicy::Refuse, DeflatePolicy::Allow])?,
            drop_counts: u.arbitrary()?,
        }),
        7 => CheckParams::RateLimit(RateLimitParams {
            max_per_second: u.int_in_range(0..=100_000)?,
            warn_first: u.arbitrary()?,
        }),
        8 => CheckParams::Heartbeat(HeartbeatParams {
            interval_max: arb_duration(u)?,
            missed_max: u.int_in_range(0..=10)?,
        }),
        9 => CheckParams::Cookies(CookieParams {
            samesite: *u.choose(&[SameSite::Strict, SameSite::Lax])?,
            names: Vec::new(),
            secure: u.arbitrary()?,
            http_only: u.arbitrary()?,
            required: u.arbitrary()?,
        }),
        10 => CheckParams::Protocol(ProtocolParams {
            drop_counts: u.arbitrary()?,
        }),
        11 => CheckParams::Attestation(AttestationParams {
            evidence: arb_text(u, b"abc {}$\n", 20)?,
        }),
        _ => {
            let check = arb_text(u, b"abcxyz.", 12)?;
            return Ok((check, CheckParams::Custom(serde_yaml::Value::Null)));
        }
    };
    let check = p.check();
    Ok((check.to_string(), p))
}

/// A whole policy built from arbitrary bytes (typed parameters, so most of them load).
pub fn arb_policy(u: &mut Unstructured<'_>) -> arbitrary::Result<Policy> {
    let mut controls = Vec::new();
    for i in 0..u.int_in_range(0..=8)? {
        let (check, params) = arb_params(u)?;
        let id = if u.ratio(1, 16)? {
            arb_text(u, b"WS-1 ", 4)?
        } else {
            format!("WS-{i}")
        };
        controls.push(Control {
            id,
            title: u.arbitrary::<Option<String>>()?,
            check,
            with: params.to_value(),
            severity: *u.choose(&[
                Severity::Low,
                Severity::Medium,
                Severity::High,
                Severity::Critical,
            ])?,
            refs: vec![],
        });
    }
    Ok(Policy {
        policy: arb_text(u, b"abc-", 10)?,
        version: if u.ratio(1, 16)? { 2 } else { 1 },
        description: None,
        controls,
    })
}

/// `plan_compile`: arbitrary structured policies through the loader and the compiler.
pub fn plan_compile(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(policy) = arb_policy(&mut u) else {
        return;
    };
    let (Some(suites), Some(target)) = (builtin_suites(), sample_target()) else {
        panic!("the shipped suites or the sample target do not load");
    };
    let Ok(text) = serde_yaml::to_string(&policy) else {
        return;
    };
    let loaded = match LoadedPolicy::parse_with_checks(
        SourceFile::from_text(FUZZ_FILE, text.as_str()),
        &suites.checks(),
    ) {
        Ok(p) => p,
        Err(e) => return assert_located(&e, &text),
    };
    match crate::plan::compile(&loaded, target, suites) {
        Err(e) => {
            for err in &e.errors {
                let rendered = err.to_string();
                assert!(rendered.starts_with("error: "), "{rendered}");
            }
        }
        Ok(plan) => {
            let mut ids = std::collections::HashSet::new();
            for case in &plan.cases {
                assert!(ids.insert(&case.case_id), "duplicate case {}", case.case_id);
                assert!(
                    loaded
                        .policy
                        .controls
                        .iter()
                        .any(|c| c.id == case.control_id),
                    "case {} names no control",
                    case.case_id
                );
                assert!(
                    !case.expect.is_empty(),
                    "case {} expects nothing",
                    case.case_id
                );
            }
            let yaml = plan.to_yaml();
            for secret in target.secrets.values() {
                assert!(!yaml.contains(secret), "the plan prints a secret");
            }
        }
    }
}

/// How the fuzzed Origin header is made.
#[derive(Debug, Arbitrary)]
enum OriginHeader {
    Missing,
    Raw(Vec<u8>),
    Allowed(u8),
    Mutated(u8, u8, Vec<u8>),
}

/// What the first message carries as its ticket.
#[derive(Debug, Arbitrary)]
enum TicketRef {
    Issued(u8),
    Raw(String),
    NotAString(i64),
    Missing,
}

#[derive(Debug, Arbitrary)]
struct HandshakeInput {
    weakened: u8,
    missing_allow: bool,
    header: OriginHeader,
    query: Vec<(u8, TicketRef)>,
    query_raw: Option<String>,
    cookies: Vec<Vec<u8>>,
    /// How many tickets to issue (low two bits) and, bit 7, whether the store issues them with
    /// a zero TTL, so every ticket has expired by the time it is presented (a bit of an
    /// existing field, so the committed seeds keep their meaning).
    tickets: u8,
    sessions: u8,
    messages: Vec<(TicketRef, u8, bool)>,
}

/// The defences the handshake target may weaken, one bit each.
const HANDSHAKE_DEFENCES: [Defence; 6] = [
    Defence::Origin,
    Defence::UrlToken,
    Defence::TicketValidation,
    Defence::TicketReplay,
    Defence::TicketBinding,
    Defence::TicketExpiry,
];

/// `server_handshake`: the pre-upgrade and authentication decisions of the reference server.
pub fn server_handshake(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(input) = HandshakeInput::arbitrary(&mut u) {
        handshake(&input);
    }
}

/// The `server_handshake` checks of one input; returns how many first messages authenticated
/// with an expired ticket (only ever with `ticket-expiry` weakened), so a test can see expiry
/// is really reached.
fn handshake(input: &HandshakeInput) -> usize {
    let mut expired_accepted = 0;
    let weakened = Weakened::of(
        HANDSHAKE_DEFENCES
            .iter()
            .enumerate()
            .filter(|(i, _)| input.weakened & (1 << i) != 0)
            .map(|(_, d)| *d),
    );
    let allowed: Vec<Origin> = [
        "https://app.example.com",
        "http://localhost:8080",
        "https://b.example:8443",
    ]
    .iter()
    .filter_map(|o| o.parse().ok())
    .collect();
    let params = OriginParams {
        allowed: allowed.clone(),
        missing_origin: if input.missing_allow {
            MissingOrigin::Allow
        } else {
            MissingOrigin::Reject
        },
        status: None,
    };
    let serialised: Vec<String> = allowed.iter().map(ToString::to_string).collect();
    let header: Option<Vec<u8>> = match &input.header {
        OriginHeader::Missing => None,
        OriginHeader::Raw(b) => Some(b.clone()),
        OriginHeader::Allowed(i) => serialised
            .get(*i as usize % serialised.len().max(1))
            .map(|s| s.clone().into_bytes()),
        OriginHeader::Mutated(i, how, extra) => {
            let mut s = serialised
                .get(*i as usize % serialised.len().max(1))
                .cloned()
                .unwrap_or_default()
                .into_bytes();
            let at = if s.is_empty() {
                0
            } else {
                *how as usize % s.len()
            };
            match how % 4 {
                0 => s.extend_from_slice(extra),
                1 => {
                    s.splice(0..0, extra.iter().copied());
                }
                2 => {
                    s.splice(at..at, extra.iter().copied());
                }
                _ => {
                    if let Some(b) = s.get_mut(at) {
                        *b ^= extra.first().copied().unwrap_or(0x20);
                    }
                }
            }
            Some(s)
        }
    };
    let verdict = origin::check(header.as_deref(), Some(&params), &weakened);
    if verdict.is_ok() && !weakened.is(Defence::Origin) {
        match &header {
            None => assert!(input.missing_allow, "a missing Origin was accepted"),
            Some(h) => assert!(
                serialised.iter().any(|s| s.as_bytes() == h.as_slice()),
                "origin {:?} accepted but not byte-equal to an allowed one",
                String::from_utf8_lossy(h)
            ),
        }
    }

    // Tickets and sessions, with a model of what the store must answer. Expiry is exercised
    // without a clock: a zero TTL has passed at any later instant (the monotonic clock counts
    // nanoseconds, and issuing and presenting a ticket are far apart), an hour never within
    // one input.
    let expired = input.tickets & 0x80 != 0;
    let ttl = if expired {
        Duration::ZERO
    } else {
        Duration::from_secs(3600)
    };
    let store = TicketStore::new(ttl, true);
    let sessions: Vec<String> = (0..=input.sessions % 3)
        .map(|_| store.session(None))
        .collect();
    let mut issued: Vec<(String, usize)> = Vec::new();
    for i in 0..input.tickets % 4 {
        let s = i as usize % sessions.len();
        issued.push((store.issue(&sessions[s]), s));
    }
    let mut used: HashMap<String, bool> = issued.iter().map(|(t, _)| (t.clone(), false)).collect();
    let ticket_text = |r: &TicketRef| -> Option<String> {
        match r {
            TicketRef::Issued(i) if !issued.is_empty() => {
                Some(issued[*i as usize % issued.len()].0.clone())
            }
            TicketRef::Issued(_) | TicketRef::Missing | TicketRef::NotAString(_) => None,
            TicketRef::Raw(s) => Some(s.clone()),
        }
    };

    // URL credentials never authenticate unless weakened, and then only a real one.
    let api_token = "api-token-for-fuzzing";
    let mut query: String = input
        .query
        .iter()
        .map(|(name, r)| {
            let names = crate::config::policy::UrlTokenParams::DEFAULT_PARAMS;
            let n = names
                .get(*name as usize % (names.len() + 1))
                .unwrap_or(&"x");
            let v = match r {
                TicketRef::Missing => api_token.to_string(),
                other => ticket_text(other).unwrap_or_default(),
            };
            format!(
                "{n}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    if let Some(raw) = &input.query_raw {
        query.push('&');
        query.push_str(raw);
    }
    let cred = auth::url_credential(
        Some(&query),
        crate::config::policy::UrlTokenParams::DEFAULT_PARAMS,
        &store,
        api_token,
        &weakened,
    );
    if cred == UrlCredential::Accepted {
        assert!(
            weakened.is(Defence::UrlToken),
            "a URL credential authenticated: {query}"
        );
        // The first credential parameter that is the API token or an unused, unexpired ticket
        // wins (a URL is never allowed past expiry), and a ticket redeemed that way is used up.
        let winner = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| {
                crate::config::policy::UrlTokenParams::DEFAULT_PARAMS.contains(&k.as_ref())
            })
            .find(|(_, v)| v == api_token || (!expired && used.get(v.as_ref()) == Some(&false)));
        let Some((_, v)) = winner else {
            panic!("a URL credential authenticated without a valid token or ticket: {query}");
        };
        if let Some(u) = used.get_mut(v.as_ref()) {
            *u = true;
        }
    }

    // The session cookie is taken from a `wsaudit_session=` pair, never invented.
    let presented = session_from_cookies(input.cookies.iter().map(Vec::as_slice));
    if let Some(s) = &presented {
        let needle = format!("{SESSION_COOKIE}=");
        assert!(
            input
                .cookies
                .iter()
                .filter_map(|c| std::str::from_utf8(c).ok())
                .any(|c| c.contains(&needle) && c.contains(s.as_str())),
            "session {s:?} read from cookies that do not carry it"
        );
    }

    for (r, session_pick, extra) in &input.messages {
        let ticket = ticket_text(r);
        let mut msg = json!({"type": "auth"});
        match (r, &ticket) {
            (TicketRef::NotAString(n), _) => msg["ticket"] = json!(n),
            (_, Some(t)) => msg["ticket"] = json!(t),
            _ => {}
        }
        if *extra {
            msg["extra"] = json!(true);
        }
        let session = match session_pick % 4 {
            0 => None,
            n => sessions.get(n as usize - 1).cloned(),
        };
        let outcome = auth::first_message(&msg.to_string(), &store, session.as_deref(), &weakened);
        if outcome != FirstMessage::Authenticated {
            continue;
        }
        if weakened.is(Defence::TicketValidation) {
            assert!(ticket.as_deref().is_some_and(|t| !t.is_empty()));
            continue;
        }
        let t = ticket.unwrap_or_default();
        let Some((_, owner)) = issued.iter().find(|(i, _)| *i == t) else {
            panic!("a ticket that was never issued authenticated");
        };
        assert!(
            !expired || weakened.is(Defence::TicketExpiry),
            "an expired ticket authenticated"
        );
        expired_accepted += usize::from(expired);
        if let Some(s) = &session {
            assert!(
                weakened.is(Defence::TicketBinding) || *s == sessions[*owner],
                "a ticket authenticated another session's connection"
            );
        }
        let was_used = used.insert(t, true).unwrap_or(false);
        assert!(
            !was_used || weakened.is(Defence::TicketReplay),
            "a single-use ticket authenticated twice"
        );
    }
    expired_accepted
}

/// Polls a future once; `None` if it is not ready (our in-memory readers always are).
fn poll_once<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// The message size limits the frame target chooses from.
const LIMITS: [usize; 4] = [125, 1024, 64 * 1024, 1024 * 1024];

/// `server_frames`: the reference server's frame source on any client bytes.
///
/// The first byte configures it: bit 0 lax (`protocol-strict` weakened), bit 1 deflate
/// negotiated, bits 2-3 the size limit.
pub fn server_frames(data: &[u8]) {
    let Some((&cfg, stream)) = data.split_first() else {
        return;
    };
    let strict = cfg & 1 == 0;
    let deflate = cfg & 2 != 0;
    let limit = LIMITS[usize::from(cfg >> 2) & 3];
    let mut source = FrameSource::new(
        FrameReader::new(stream),
        Inbound::new(strict, limit, deflate),
    );
    let first = parse_header(stream);
    let mut calls = 0usize;
    loop {
        let Some(next) = poll_once(source.next()) else {
            panic!("the frame source waited on an in-memory reader");
        };
        calls += 1;
        assert!(
            calls <= stream.len() + 2,
            "the frame source made no progress"
        );
        if calls == 1
            && strict
            && let Some(h) = &first
        {
            let hd = &h.header;
            let is_control = h.opcode_bits & 8 != 0;
            let violation = hd.mask.is_none()
                || hd.rsv2
                || hd.rsv3
                || h.is_reserved_opcode()
                || (hd.rsv1 && !(deflate && matches!(h.opcode_bits, 1 | 2)))
                || (is_control && (!hd.is_final || h.length > 125))
                || h.opcode_bits == 0
                || h.length >> 63 != 0;
            if violation {
                assert!(
                    matches!(next, Next::Violation(1002, _)),
                    "a frame breaking RFC 6455 ({h:?}) got {next:?}"
                );
            } else if h.length > limit as u64 {
                assert!(
                    matches!(next, Next::Violation(1009, _)),
                    "a frame over the limit ({} > {limit}) got {next:?}",
                    h.length
                );
            }
        }
        match next {
            Next::End => break,
            Next::Violation(code, _) => {
                assert!(matches!(code, 1002 | 1007 | 1009), "close code {code}");
                break;
            }
            Next::Received(Received::Message { data, .. }) => {
                assert!(
                    data.len() <= limit,
                    "a {} B message passed the {limit} B limit",
                    data.len()
                );
            }
            Next::Received(_) => {}
        }
    }
    if let Ok(out) = max_size::inflate_bounded(stream, limit) {
        assert!(out.len() <= limit, "inflated past the limit");
    }
}

/// The reference policy's message schema, compiled once.
fn reference_validator() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let policy = LoadedPolicy::parse(SourceFile::from_text(
            "reference-fast.yaml",
            include_str!("../../policies/reference-fast.yaml"),
        ))
        .ok()?;
        policy.params.iter().find_map(|p| match p {
            CheckParams::Schema(s) => jsonschema::validator_for(&s.schema).ok(),
            _ => None,
        })
    })
    .as_ref()
}

/// A store with no ticket issued, for first messages that must never authenticate.
fn empty_store() -> &'static TicketStore {
    static STORE: OnceLock<TicketStore> = OnceLock::new();
    STORE.get_or_init(|| TicketStore::new(Duration::from_secs(3600), true))
}

/// `server_messages`: one business message through the reference server's message path
/// (the message-validation target).
///
/// The first byte configures it: bit 0 binary, bit 1 `schema` weakened, bit 2 unauthenticated,
/// bits 3-5 the rate limit, bit 6 warn first, bit 7 exercise the rate limiter; the rest is the
/// payload.
pub fn server_messages(data: &[u8]) {
    let Some((&flags, payload)) = data.split_first() else {
        return;
    };
    let text = flags & 1 == 0;
    let weak = flags & 2 != 0;
    let authenticated = flags & 4 == 0;
    let weakened = if weak {
        Weakened::of([Defence::Schema])
    } else {
        Weakened::none()
    };
    let Some(validator) = reference_validator() else {
        panic!("the reference policy's schema does not compile");
    };
    match schema::decode(text, payload.to_vec(), &weakened) {
        Err((code, _)) => {
            assert!(!weak, "the lax server closed on a message");
            let expected = if text { 1007 } else { 1003 };
            assert_eq!(code, expected);
            assert!(!text || std::str::from_utf8(payload).is_err());
        }
        Ok(s) => {
            if !weak {
                assert!(
                    text && s.as_bytes() == payload,
                    "decode changed the message"
                );
            }
            if !authenticated {
                let first = auth::first_message(&s, empty_store(), None, &weakened);
                assert_ne!(
                    first,
                    FirstMessage::Authenticated,
                    "authenticated with no ticket issued"
                );
            }
            match schema::judge(&s, Some(validator), &weakened) {
                Decision::Reply(reply) => {
                    assert!(reply.len() <= 512, "ack of {} B", reply.len());
                    let ack: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
                    assert_eq!(ack.pointer("/type"), Some(&json!("ack")), "{reply}");
                    if !weak {
                        let value: Option<Value> = serde_json::from_str(&s).ok();
                        assert!(
                            value.is_some_and(|v| validator.is_valid(&v)),
                            "acknowledged an invalid message: {s:?}"
                        );
                    }
                }
                Decision::Rejected { reply, .. } => {
                    assert!(!weak, "the lax server rejected a message");
                    let err: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
                    assert_eq!(err.pointer("/type"), Some(&json!("error")), "{reply}");
                }
                Decision::Ignore => assert!(weak, "the strict server ignored a message"),
                Decision::Close(..) => {}
            }
        }
    }
    // The per-connection limiter: at most its quota (plus what refilled), one warning.
    if flags & 0x80 != 0 {
        rate_limiter(flags, payload.len().min(32));
    }
}

/// Takes `messages` tokens from a limiter configured by `flags` and checks its decisions.
fn rate_limiter(flags: u8, messages: usize) {
    let max = 1 + u32::from((flags >> 3) & 7);
    let warn_first = flags & 0x40 != 0;
    let mut rate = ConnectionRate::new(&RateLimitParams {
        max_per_second: max,
        warn_first,
    });
    let started = Instant::now();
    let (mut allowed, mut warned) = (0u64, 0u32);
    for _ in 0..messages {
        match rate.on_message() {
            RateDecision::Allow => allowed += 1,
            RateDecision::Warn => {
                assert!(warn_first, "warned although the policy says not to");
                warned += 1;
                assert!(warned <= 1, "warned twice");
            }
            RateDecision::Close => {
                assert!(
                    !warn_first || warned == 1,
                    "closed without the warning first"
                );
                break;
            }
        }
    }
    let refilled = (started.elapsed().as_secs_f64() * f64::from(max)).ceil() as u64;
    assert!(
        allowed <= u64::from(max) + refilled + 1,
        "{allowed} messages allowed under a quota of {max}/s"
    );
}

/// The matcher of an acknowledgement, as targets write it.
fn ack_matcher() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| Matcher {
        json: [(
            "/type"
                .parse()
                .unwrap_or_else(|_| unreachable!("a constant JSON pointer")),
            json!("ack"),
        )]
        .into_iter()
        .collect(),
        contains: None,
    })
}

/// `harness_parse`: every sans-IO parser of what a target sends, on the same bytes.
pub fn harness_parse(data: &[u8]) {
    match parse_response_head(data) {
        Ok(Some(head)) => {
            assert!(head.len <= data.len(), "head longer than the input");
            for (name, _) in &head.headers {
                assert_eq!(name, &name.to_ascii_lowercase());
            }
            for c in set_cookies(&head.headers) {
                assert!(!c.name.is_empty() && c.name == c.name.trim());
            }
        }
        Ok(None) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Some(c) = parse_set_cookie(&text) {
        assert!(!c.name.is_empty() && c.name == c.name.trim());
        let _ = (c.describe(), c.pair());
    }
    let close = parse_close(data);
    match data {
        [] => assert!(close.code.is_none() && !close.malformed),
        [_] => assert!(close.code.is_none() && close.malformed),
        [a, b, rest @ ..] => {
            assert_eq!(close.code, Some(u16::from_be_bytes([*a, *b])));
            assert_eq!(close.malformed, std::str::from_utf8(rest).is_err());
        }
    }
    match parse_header(data) {
        Some(h) => {
            assert!(h.header_len <= 14 && h.header_len <= data.len());
            assert_eq!(h.opcode_bits, data[0] & 0x0F);
            assert_eq!(h.header.is_final, data[0] & 0x80 != 0);
            assert_eq!(
                h.header.mask.is_some(),
                data.get(1).is_some_and(|b| b & 0x80 != 0)
            );
        }
        None => assert!(data.len() < 14, "a complete frame header was not parsed"),
    }
    harness_rules(data);
    if ack_matcher().matches(&text) {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(v.pointer("/type"), Some(&json!("ack")), "matched a non-ack");
    }
    let shown = crate::config::secrets::preview(data, 40);
    assert!(shown.chars().count() <= 41 * 6, "preview not bounded");
    assert!(
        !shown.chars().any(char::is_control),
        "preview not printable"
    );
}

/// The client's RFC 6455 rules and its ClientHello answer parser on the same bytes: a close
/// payload is accepted exactly when RFC 6455 allows it, a header by the rules names its rule,
/// a 101 head is checked without panic, and the first-flight parser never panics and only
/// reports a ServerHello or alert from a TLS record.
fn harness_rules(data: &[u8]) {
    use crate::client::rfc6455::{FrameRules, Offered, check_close, check_upgrade_response};
    use crate::client::tls_hello::{FirstFlight, parse_first_flight};
    let close = parse_close(data);
    let valid_close = match close.code {
        None => !close.malformed,
        Some(code) => crate::wire::close_code_allowed(code) && !close.malformed,
    };
    assert_eq!(
        check_close(data).is_ok(),
        valid_close,
        "close payload judged wrongly"
    );
    if let Some(h) = parse_header(data) {
        for deflate in [false, true] {
            if let Err(v) = FrameRules::new(deflate).check_header(&h) {
                assert!(v.rule.starts_with("RFC ") && v.fatal && !v.what.is_empty());
            }
        }
    }
    if let Ok(Some(head)) = parse_response_head(data) {
        let offered = Offered::from_request(Some("a, b"), Some("permessage-deflate"));
        if let Err(v) = check_upgrade_response(&head.headers, &offered) {
            assert!(v.rule.starts_with("RFC ") && v.fatal);
        }
    }
    match parse_first_flight(data) {
        Ok(Some(FirstFlight::ServerHello { .. } | FirstFlight::Alert { .. })) => {
            assert!(matches!(data.first(), Some(21 | 22)), "not a TLS record");
        }
        Ok(Some(FirstFlight::NotTls { preview })) => assert!(preview.len() <= 40),
        Ok(Some(FirstFlight::Closed)) => panic!("the parser reported a close"),
        Ok(None) | Err(_) => {}
    }
}

/// The `Sec-WebSocket-Key` of fuzzed handshakes (RFC 6455's example), so seeds can carry the
/// matching `Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
pub const FUZZ_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// `harness_frames`: the client's handshake and read loop on any bytes a server sends.
pub fn harness_frames(data: &[u8]) {
    thread_local! {
        static RT: Option<tokio::runtime::Runtime> = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok();
    }
    RT.with(|rt| {
        let Some(rt) = rt else {
            panic!("no tokio runtime");
        };
        rt.block_on(frames_session(data));
    });
}

async fn frames_session(data: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let Ok(req) = UpgradeRequest::new("ws://fuzz.invalid/ws") else {
        panic!("a constant URL does not parse");
    };
    let req = req.set_header("Sec-WebSocket-Key", FUZZ_KEY);
    let (client, mut server) = tokio::io::duplex(data.len() + 4096);
    // The whole answer is buffered and the server's write side closed before the handshake
    // starts, so every read ends in data or EOF and no step waits on a timer.
    let _ = server.write_all(data).await;
    let _ = server.shutdown().await;
    let deadline = Deadline::after(Duration::from_secs(30));
    let result = handshake::handshake_on(client, &req, None, &deadline).await;
    drop(server);
    if let Ok(h) = result
        && let Some(mut conn) = h.connection
    {
        let observed = conn.wait_for_close(Duration::from_secs(30)).await;
        assert!(
            observed.end.is_end(),
            "the connection did not end: {:?}",
            observed.end
        );
        let _ = conn.transcript().to_string();
        assert_connection_ended(&conn);
    }
}

fn assert_connection_ended(conn: &Connection) {
    assert!(conn.has_ended(), "the reader did not see the end");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_harness_presents_expired_tickets() {
        // One ticket issued already expired, presented in the first message by its session.
        let expiry_bit = 1 << 5;
        assert_eq!(HANDSHAKE_DEFENCES[5], Defence::TicketExpiry);
        for weakened in [0, expiry_bit] {
            let input = HandshakeInput {
                weakened,
                missing_allow: true,
                header: OriginHeader::Missing,
                query: Vec::new(),
                query_raw: None,
                cookies: Vec::new(),
                tickets: 0x81,
                sessions: 0,
                messages: vec![(TicketRef::Issued(0), 1, false)],
            };
            // Refused (the harness would panic otherwise) unless expiry is weakened.
            assert_eq!(handshake(&input), usize::from(weakened != 0), "{input:?}");
        }
    }
}
