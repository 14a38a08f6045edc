//! Properties: any policy the model can express serialises and loads back to the same
//! parameters and the same plan; no input string panics the loaders.

use std::time::Duration;

use proptest::prelude::*;
use wsaudit::config::check::load_suites;
use wsaudit::config::policy::*;
use wsaudit::config::suite::SuiteSet;
use wsaudit::config::values::{ByteSize, Origin};
use wsaudit::config::{LoadedTarget, SourceFile};
use wsaudit::plan::compile;

fn target() -> LoadedTarget {
    LoadedTarget::parse(
        SourceFile::from_text("target.yaml", include_str!("compile_data/target.yaml")),
        &|_| Some("tok".to_string()),
    )
    .expect("target loads")
}

fn suites() -> SuiteSet {
    load_suites(&[]).expect("suites load")
}

fn duration() -> impl Strategy<Value = Duration> {
    (1u64..200_000).prop_map(Duration::from_millis)
}

fn origin() -> impl Strategy<Value = Origin> {
    (
        prop_oneof![Just("http"), Just("https")],
        "[a-z]{1,8}\\.example",
        prop::option::of(1024u16..65000),
    )
        .prop_map(|(scheme, host, port)| {
            let text = match port {
                Some(p) => format!("{scheme}://{host}:{p}"),
                None => format!("{scheme}://{host}"),
            };
            text.parse().expect("generated origin is valid")
        })
}

fn params() -> impl Strategy<Value = (String, CheckParams)> {
    let schema: serde_json::Value = serde_json::json!({
        "type": "object", "required": ["type", "amount"],
        "properties": { "type": { "const": "payment" }, "amount": { "type": "number", "maximum": 10 } }
    });
    prop_oneof![
        (
            prop_oneof![Just(TlsVersion::V1_2), Just(TlsVersion::V1_3)],
            prop::sample::subsequence(SuiteClass::all(), 0..=6),
            0u32..400,
        )
            .prop_map(|(v, forbidden_suites, cert_min_days)| (
                "transport.tls",
                CheckParams::Tls(TlsParams {
                    min_version: v,
                    forbidden_suites,
                    cert_min_days,
                })
            )),
        (
            prop::collection::btree_set(origin(), 1..4),
            prop_oneof![Just(MissingOrigin::Reject), Just(MissingOrigin::Allow)],
            prop::option::of(prop_oneof![Just(401u16), Just(403u16), Just(404u16)]),
        )
            .prop_map(|(allowed, missing_origin, status)| (
                "origin.allowlist",
                CheckParams::Origin(OriginParams {
                    allowed: allowed.into_iter().collect(),
                    missing_origin,
                    status
                })
            )),
        (duration(), any::<bool>()).prop_map(|(ttl_max, single_use)| (
            "auth.ticket",
            CheckParams::Ticket(TicketParams {
                ttl_max,
                single_use
            })
        )),
        prop::collection::btree_set("[a-z_]{1,10}", 1..5).prop_map(|p| (
            "auth.no_url_tokens",
            CheckParams::UrlTokens(UrlTokenParams {
                params: p.into_iter().collect()
            })
        )),
        duration().prop_map(|timeout| (
            "auth.unauthenticated_timeout",
            CheckParams::Unauthenticated(UnauthParams { timeout })
        )),
        Just((
            "messages.schema",
            CheckParams::Schema(SchemaParams { schema })
        )),
        (
            1u64..(64 << 20),
            prop_oneof![Just(DeflatePolicy::Refuse), Just(DeflatePolicy::Allow)]
        )
            .prop_map(|(limit, deflate)| (
                "messages.max_size",
                CheckParams::MaxSize(MaxSizeParams {
                    limit: ByteSize(limit),
                    deflate,
                    drop_counts: false,
                })
            )),
        (1u32..10_000, any::<bool>()).prop_map(|(max_per_second, warn_first)| (
            "messages.rate_limit",
            CheckParams::RateLimit(RateLimitParams {
                max_per_second,
                warn_first
            })
        )),
        (duration(), 1u32..10).prop_map(|(interval_max, missed_max)| (
            "heartbeat",
            CheckParams::Heartbeat(HeartbeatParams {
                interval_max,
                missed_max
            })
        )),
        (
            prop_oneof![Just(SameSite::Strict), Just(SameSite::Lax)],
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(samesite, secure, http_only)| (
                "cookies.samesite",
                CheckParams::Cookies(CookieParams {
                    samesite,
                    names: Vec::new(),
                    secure,
                    http_only,
                    required: false,
                })
            )),
        Just((
            "protocol.rfc6455",
            CheckParams::Protocol(ProtocolParams::default())
        )),
        "[a-zA-Z0-9 :#'\"-]{1,40}".prop_map(|evidence| (
            "attestation",
            CheckParams::Attestation(AttestationParams { evidence })
        )),
    ]
    .prop_map(|(check, p)| (check.to_string(), p))
}

fn policy() -> impl Strategy<Value = (Policy, Vec<CheckParams>)> {
    (
        "[a-z][a-z0-9-]{0,20}",
        prop::option::of("[ -~]{0,60}"),
        prop::collection::vec(
            (
                params(),
                prop::option::of("[ -~]{0,40}"),
                prop_oneof![
                    Just(Severity::Low),
                    Just(Severity::Medium),
                    Just(Severity::High),
                    Just(Severity::Critical)
                ],
                prop::collection::vec("[a-z0-9.:-]{1,16}", 0..3),
            ),
            1..8,
        ),
    )
        .prop_map(|(name, description, controls)| {
            let mut typed = Vec::new();
            let controls = controls
                .into_iter()
                .enumerate()
                .map(|(i, ((check, p), title, severity, refs))| {
                    let with = p.to_value();
                    typed.push(p);
                    Control {
                        id: format!("C-{i:02}"),
                        title,
                        check,
                        with,
                        severity,
                        refs,
                    }
                })
                .collect();
            (
                Policy {
                    policy: name,
                    version: 1,
                    description,
                    controls,
                },
                typed,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_policy_round_trips_to_the_same_plan((policy, typed) in policy()) {
        let suites = suites();
        let target = target();
        let text = serde_yaml::to_string(&policy).expect("serialises");
        let loaded = LoadedPolicy::parse(SourceFile::from_text("p.yaml", text.clone()))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&loaded.params, &typed);
        let plan = compile(&loaded, &target, &suites)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let again_text = serde_yaml::to_string(&loaded.policy).expect("serialises");
        let again = LoadedPolicy::parse(SourceFile::from_text("p.yaml", again_text))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let plan_again = compile(&again, &target, &suites)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(plan.to_yaml(), plan_again.to_yaml());
    }

    #[test]
    fn no_string_panics_the_loaders(text in "\\PC{0,300}") {
        load_everything(&text);
    }

    #[test]
    fn no_yaml_shaped_string_panics_the_loaders(parts in prop::collection::vec(yaml_token(), 0..60)) {
        load_everything(&parts.concat());
    }

    #[test]
    fn no_edit_of_a_shipped_file_panics_the_loaders(
        which in 0usize..3,
        at in any::<prop::sample::Index>(),
        len in 0usize..40,
        insert in yaml_token(),
    ) {
        let base = [
            include_str!("../policies/fintech.yaml"),
            include_str!("compile_data/target.yaml"),
            include_str!("../suites/size.yaml"),
        ][which];
        let mut bytes = base.as_bytes().to_vec();
        let start = at.index(bytes.len());
        let end = (start + len).min(bytes.len());
        bytes.splice(start..end, insert.bytes());
        load_everything(&String::from_utf8_lossy(&bytes));
    }
}

fn yaml_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("- ".to_string()),
        Just(": ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(", ".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!tag ".to_string()),
        Just("? ".to_string()),
        Just("${X}".to_string()),
        Just("{{policy.limit}}".to_string()),
        prop::sample::select(vec![
            "policy", "version", "controls", "id", "check", "with", "target", "url", "suite",
            "cases", "steps", "expect", "auth", "ticket", "messages", "limits", "allowed",
            "ttl_max", "limit", "origin", "connect", "send", "role", "for_each", "when",
        ])
        .prop_map(str::to_string),
        "[a-z0-9./:~-]{1,12}",
    ]
}

/// Runs every loader on `text`: none may panic, and every error must name the file and point
/// inside it (the `config_load` fuzz target's invariant, shared with it).
fn load_everything(text: &str) {
    wsaudit::fuzzing::targets::config_load(text.as_bytes());
}

/// Found by `no_string_panics_the_loaders`: libyaml breaks lines at U+2028 and yaml-rust2 does
/// not, so the loaders located an error on a line the file does not have.
#[test]
fn a_yaml_1_1_line_break_is_refused_where_it_stands() {
    load_everything("Ό:\u{2028}྾");
    let text = "policy: p\nversion: 1\ncontrols:\u{2028}[]\n";
    let err = wsaudit::config::policy::LoadedPolicy::parse(wsaudit::config::SourceFile::from_text(
        "p.yaml", text,
    ))
    .expect_err("refused");
    let d = &err.diagnostics[0];
    assert_eq!(d.location.map(|l| (l.line, l.column)), Some((3, 10)));
    assert!(d.message.contains("U+2028"), "{}", d.message);
}
