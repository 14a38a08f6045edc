//! The tables of the weaken and flaw matrices (tests/attack_matrix.rs runs them on the raw
//! reference server, tests/dialect_matrix.rs in every dialect), and what both need to read
//! a report.
#![allow(dead_code)]

use std::collections::BTreeMap;

use wsaudit::config::{LoadedPolicy, SourceFile};
use wsaudit::report::{CaseResult, Role, RunReport, Verdict};

/// Every control of reference-fast.
pub const CONTROLS: &[&str] = &[
    "WS-TLS-01",
    "WS-ORIGIN-01",
    "WS-AUTH-01",
    "WS-AUTH-02",
    "WS-AUTH-03",
    "WS-MSG-01",
    "WS-MSG-02",
    "WS-MSG-03",
    "WS-HB-01",
    "WS-COOKIE-01",
    "WS-PROTO-01",
];

/// The policy a row runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Policy {
    /// `policies/reference-fast.yaml` as shipped (`deflate: allow`).
    Fast,
    /// reference-fast with `deflate: refuse`: SIZE-DEFLATE-DECLINED replaces the deflate bomb.
    DeflateRefused,
}

pub use Policy::{DeflateRefused, Fast};

/// Switch, policy, controls that must fail, controls that must be inconclusive (with why).
pub const MATRIX: &[(&str, Policy, &[&str], Inconclusive)] = &[
    ("tls", Fast, &["WS-TLS-01"], Inconclusive::None),
    ("tls-version", Fast, &["WS-TLS-01"], Inconclusive::None),
    // A certificate that does not verify stops every other case: the harness does not send
    // credentials to a server it cannot authenticate.
    ("tls-cert", Fast, &["WS-TLS-01"], Inconclusive::AllOthers),
    ("origin", Fast, &["WS-ORIGIN-01"], Inconclusive::None),
    ("url-token", Fast, &["WS-AUTH-02"], Inconclusive::None),
    ("ticket-replay", Fast, &["WS-AUTH-01"], Inconclusive::None),
    ("ticket-expiry", Fast, &["WS-AUTH-01"], Inconclusive::None),
    (
        "ticket-validation",
        Fast,
        &["WS-AUTH-01"],
        Inconclusive::None,
    ),
    ("ticket-binding", Fast, &["WS-AUTH-01"], Inconclusive::None),
    // A server that needs no credential cannot show whether a URL credential authenticates:
    // the URL-token baseline fails (the control fails on it, its other cases are inconclusive)
    // and WS-AUTH-03 reports the missing authentication.
    (
        "auth-required",
        Fast,
        &["WS-AUTH-02", "WS-AUTH-03"],
        Inconclusive::None,
    ),
    ("cookie-auth", Fast, &["WS-AUTH-03"], Inconclusive::None),
    // The classic CSWSH server: the session cookie authenticates the socket and no Origin is
    // checked, so a foreign page's socket carrying the victim's cookie is served.
    (
        "origin,cookie-auth",
        Fast,
        &["WS-ORIGIN-01", "WS-AUTH-03"],
        Inconclusive::None,
    ),
    ("unauth-timeout", Fast, &["WS-AUTH-03"], Inconclusive::None),
    ("schema", Fast, &["WS-MSG-01"], Inconclusive::None),
    ("rate-limit", Fast, &["WS-MSG-02"], Inconclusive::None),
    ("max-size", Fast, &["WS-MSG-03"], Inconclusive::None),
    // Negotiating compression the policy refuses: only a `deflate: refuse` policy can tell.
    (
        "deflate",
        DeflateRefused,
        &["WS-MSG-03"],
        Inconclusive::None,
    ),
    ("heartbeat", Fast, &["WS-HB-01"], Inconclusive::None),
    (
        "cookie-samesite",
        Fast,
        &["WS-COOKIE-01"],
        Inconclusive::None,
    ),
    (
        "protocol-strict",
        Fast,
        &["WS-PROTO-01"],
        Inconclusive::None,
    ),
];

/// Flaw, the control it must fail, and a case that must fail with it (the variant a careful
/// tester tries for that flaw).
pub const FLAW_MATRIX: &[(&str, &str, &str)] = &[
    (
        "plain-no-origin",
        "WS-TLS-01",
        "WS-TLS-01/TLS-PLAINTEXT-UPGRADE-NO-ORIGIN",
    ),
    (
        "origin-substring",
        "WS-ORIGIN-01",
        "WS-ORIGIN-01/ORIGIN-TRUNCATION[https://app.example.co]",
    ),
    (
        "origin-any-header",
        "WS-ORIGIN-01",
        "WS-ORIGIN-01/ORIGIN-DUPLICATE-HEADERS[https://app.example.com]",
    ),
    (
        "origin-host-only",
        "WS-ORIGIN-01",
        "WS-ORIGIN-01/ORIGIN-SCHEME[http://app.example.com]",
    ),
    (
        "url-api-key",
        "WS-AUTH-02",
        "WS-AUTH-02/URLTOKEN-CREDENTIAL[api_key]",
    ),
    (
        "url-subprotocol",
        "WS-AUTH-02",
        "WS-AUTH-02/URLTOKEN-SUBPROTOCOL-TICKET",
    ),
    (
        "ticket-jwt-unverified",
        "WS-AUTH-01",
        "WS-AUTH-01/TICKET-TAMPER[alg_none]",
    ),
    ("ticket-race", "WS-AUTH-01", "WS-AUTH-01/TICKET-RACE"),
    (
        "ticket-verbose",
        "WS-AUTH-01",
        "WS-AUTH-01/TICKET-UNIFORM-REFUSAL",
    ),
    (
        "ticket-ttl-loose",
        "WS-AUTH-01",
        "WS-AUTH-01/TICKET-EXPIRED",
    ),
    (
        "ticket-prefix",
        "WS-AUTH-01",
        "WS-AUTH-01/TICKET-TAMPER[truncate]",
    ),
    (
        "unauth-idle-timer",
        "WS-AUTH-03",
        "WS-AUTH-03/UNAUTH-BUSY-PINGS",
    ),
    (
        "unauth-silent",
        "WS-AUTH-03",
        "WS-AUTH-03/UNAUTH-MESSAGE-BEFORE-AUTH",
    ),
    (
        "schema-bool-number",
        "WS-MSG-01",
        "WS-MSG-01/MSG-SCHEMA[bool-amount]",
    ),
    (
        "schema-unanchored",
        "WS-MSG-01",
        "WS-MSG-01/MSG-SCHEMA[pattern-trailing-reference]",
    ),
    (
        "rate-after-validation",
        "WS-MSG-02",
        "WS-MSG-02/RATE-FLOOD-INVALID",
    ),
    ("rate-loose", "WS-MSG-02", "WS-MSG-02/RATE-SUSTAINED"),
    (
        "rate-fixed-window",
        "WS-MSG-02",
        "WS-MSG-02/RATE-WINDOW-STRADDLE",
    ),
    ("rate-pings-free", "WS-MSG-02", "WS-MSG-02/RATE-PING-FLOOD"),
    ("size-per-frame", "WS-MSG-03", "WS-MSG-03/SIZE-FRAGMENTED"),
    (
        "size-inflated-unchecked",
        "WS-MSG-03",
        "WS-MSG-03/SIZE-DEFLATE-BOMB",
    ),
    (
        "heartbeat-no-terminate",
        "WS-HB-01",
        "WS-HB-01/HB-STALE-CLOSED",
    ),
    ("heartbeat-slow", "WS-HB-01", "WS-HB-01/HB-STALE-CLOSED"),
    (
        "cookie-lax",
        "WS-COOKIE-01",
        "WS-COOKIE-01/COOKIE-ATTRIBUTES",
    ),
    (
        "protocol-close-codes",
        "WS-PROTO-01",
        "WS-PROTO-01/PROTO-CLOSE-CODE-999",
    ),
    (
        "protocol-subprotocol-copy",
        "WS-PROTO-01",
        "WS-PROTO-01/PROTO-SERVER-HANDSHAKE",
    ),
    (
        "protocol-data-after-close",
        "WS-PROTO-01",
        "WS-PROTO-01/PROTO-SERVER-FRAMES",
    ),
];

/// Attack cases no weakened server can make fail, because they test a defence that is subtly
/// wrong rather than missing (a JWT forgery needs a server that issues JWTs; refusals alike
/// need a server that says why): the flaw matrix proves each (a prefix matches `[item]`s).
pub const FLAW_PROVEN: &[&str] = &[
    "WS-TLS-01/TLS-PLAINTEXT-UPGRADE-NO-ORIGIN",
    "WS-AUTH-01/TICKET-TAMPER[alg_none]",
    "WS-AUTH-01/TICKET-TAMPER[strip_signature]",
    "WS-AUTH-01/TICKET-TAMPER[alter_signature]",
    "WS-AUTH-01/TICKET-TAMPER[change_claims]",
    "WS-AUTH-01/TICKET-TAMPER[extend_exp]",
    "WS-AUTH-01/TICKET-UNIFORM-REFUSAL",
    "WS-AUTH-02/URLTOKEN-SUBPROTOCOL-",
    // The server's own conformance: a server without it is a subtly wrong one, not one with a
    // defence switched off.
    "WS-PROTO-01/PROTO-SERVER-",
];

/// Attack cases the reference server cannot be made to fail, because rustls speaks neither
/// TLS 1.1 and below nor the weak suites: `tests/tls_old.rs` proves them against a Python
/// OpenSSL server that really accepts them (TLS 1.2 below a 1.3 minimum is proven here, by
/// `--weaken tls-version`).
pub const OLD_TLS_PROVEN: &[&str] = &[
    "WS-TLS-01/TLS-VERSION-BELOW-MIN[ssl3]",
    "WS-TLS-01/TLS-VERSION-BELOW-MIN[tls1.0]",
    "WS-TLS-01/TLS-VERSION-BELOW-MIN[tls1.1]",
    "WS-TLS-01/TLS-WEAK-SUITE[",
];

#[derive(Clone, Copy)]
pub enum Inconclusive {
    None,
    AllOthers,
}

/// The shipped reference-fast policy text.
pub fn fast_text() -> String {
    let path = format!(
        "{}/policies/reference-fast.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).expect("reference-fast is readable")
}

pub fn policy(which: Policy) -> LoadedPolicy {
    let text = match which {
        Fast => fast_text(),
        DeflateRefused => {
            let fast = fast_text();
            assert_eq!(
                fast.matches("deflate: allow").count(),
                1,
                "reference-fast's max_size control is expected to say `deflate: allow`"
            );
            fast.replace("deflate: allow", "deflate: refuse")
        }
    };
    let name = format!("reference-fast-{which:?}.yaml");
    LoadedPolicy::parse(SourceFile::from_text(&name, &text)).expect("test policy loads")
}

/// The verdict control `id` must get from a server on which exactly `failing` fail: the
/// lifecycle-logging attestation cannot be judged from outside, every other control passes.
pub fn expected_verdict(id: &str, failing: &[&str]) -> Verdict {
    if failing.contains(&id) {
        Verdict::Fail
    } else if id == "WS-LOG-01" {
        Verdict::Skipped
    } else {
        Verdict::Pass
    }
}

/// The verdict a case must get from the full reference server: attestations are skipped, and
/// so are the forgeries of the other form of ticket (the JWT ones on its opaque tickets).
pub fn full_server_verdict(c: &CaseResult) -> Verdict {
    if c.role == Role::Attestation
        || (c.case_id.starts_with("WS-AUTH-01/TICKET-TAMPER[") && c.reason.contains("forges JWTs"))
    {
        Verdict::Skipped
    } else {
        Verdict::Pass
    }
}

pub fn control_verdicts(r: &RunReport) -> BTreeMap<String, Verdict> {
    r.controls
        .iter()
        .map(|c| (c.id.clone(), c.verdict))
        .collect()
}

/// Failing and inconclusive cases with their reasons, for assertion messages.
pub fn troubles(r: &RunReport) -> String {
    r.cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
        .map(|c| format!("  {:?} {}: {}", c.verdict, c.case_id, c.reason))
        .collect::<Vec<_>>()
        .join("\n")
}
