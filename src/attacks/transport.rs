//! Transport (TLS) and cookies: `tls_probe` (a rustls handshake recording version and
//! certificate), `tls_hello` (a raw ClientHello offering only an old version or a class of weak
//! suites, as testssl.sh sends), the `tls` / `tls_refused` judgements, `http_request` to the
//! ticket endpoint and the `cookie` judgement.

use super::session::{HelloSeen, ProbeSeen, Session};
use super::{Judge, Judgement, Perform, StepError, StepResult};
use crate::client::http::SetCookie;
use crate::client::tls_hello::{
    FirstFlight, LegacyVersion, alert_name, client_hello, legacy_suites, suite_name,
};
use crate::client::{ClientError, TlsVersions};
use crate::config::policy::SameSite;
use crate::plan::expect::{CookieAttributes, TlsExpectation, TlsRefused};
use crate::plan::step::{HttpEndpoint, HttpRequest, TlsHello, TlsProbe};

/// The note and the error of a TLS step on a target whose URL is plaintext `ws://`.
fn no_tls_endpoint(s: &Session) -> ClientError {
    let url = crate::client::display_url(&s.rt().target.url.0);
    s.log().note(format!(
        "the target's URL {url} is plaintext (ws://): no TLS endpoint to probe"
    ));
    ClientError::InvalidUrl {
        url,
        reason: "plaintext ws://, no TLS".into(),
    }
}

impl Perform for TlsProbe {
    /// `tls_probe`: a handshake recording version and certificate facts.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let rt = s.rt().clone();
        let log = s.log().clone();
        if rt.target.url.0.scheme() == "ws" {
            // A target without TLS has failed every TLS case; nothing to probe.
            let e = no_tls_endpoint(s);
            s.set_probe(ProbeSeen {
                result: Err(e),
                plaintext: true,
            });
            return Ok(());
        }
        let client = rt
            .probe_client(TlsVersions::Default)
            .map_err(|e| e.to_string())?;
        let url = rt.target.url.0.as_str().to_string();
        log.sent(format!(
            "TLS handshake offering TLS 1.3 and 1.2 to {}",
            crate::client::display_url(&rt.target.url.0)
        ));
        let result = crate::client::tls::probe(&url, &client, rt.connect_timeout()).await;
        match &result {
            Ok(f) => log.saw(format!(
                "TLS {} ({}), certificate: {} (trusting {}); {}",
                f.version,
                f.cipher_suite,
                match &f.verified {
                    Ok(()) => "valid".to_string(),
                    Err(e) => format!("invalid: {e}"),
                },
                f.trust,
                match &f.leaf {
                    Ok(c) => c.summary(),
                    Err(e) => format!("leaf certificate unreadable: {e}"),
                }
            )),
            Err(e) => log.saw(format!("handshake failed: {e}")),
        }
        s.set_probe(ProbeSeen {
            result,
            plaintext: false,
        });
        Ok(())
    }
}

impl Perform for TlsHello {
    /// `tls_hello`: a hand-built ClientHello offering only `version` (with the suites its
    /// clients offered, or only a class of weak suites), and the server's first flight.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let rt = s.rt().clone();
        let log = s.log().clone();
        let version = self.version;
        let suite_class = self.suites;
        if rt.target.url.0.scheme() == "ws" {
            let e = no_tls_endpoint(s);
            s.set_hello(HelloSeen {
                version,
                class: suite_class,
                result: Err(e),
                plaintext: true,
            });
            return Ok(());
        }
        let suites: Vec<u16> = match suite_class {
            Some(c) => c.suites().to_vec(),
            None => legacy_suites(version).to_vec(),
        };
        let host = rt.target.url.0.host_str().map(str::to_string);
        let hello = client_hello(version, &suites, host.as_deref(), rand::random());
        let names: Vec<String> = suites.iter().take(6).map(|&id| suite_name(id)).collect();
        log.sent(format!(
            "a {} B ClientHello offering only {}{}: {} suites ({}{}), to {}",
            hello.len(),
            version.name(),
            suite_class.map_or_else(String::new, |c| format!(" and only {} suites", c.name())),
            suites.len(),
            names.join(", "),
            if suites.len() > names.len() {
                ", …"
            } else {
                ""
            },
            crate::client::display_url(&rt.target.url.0)
        ));
        let result =
            crate::client::tls::hello_probe(rt.target.url.0.as_str(), &hello, rt.connect_timeout())
                .await;
        match &result {
            Ok(flight) => log.saw(describe(flight)),
            Err(e) => log.saw(format!("no answer to judge: {e}")),
        }
        s.set_hello(HelloSeen {
            version,
            class: suite_class,
            result,
            plaintext: false,
        });
        Ok(())
    }
}

/// A version as written on the wire, by name.
fn version_name(wire: u16) -> String {
    match (LegacyVersion::from_wire(wire), wire) {
        (Some(v), _) => v.name().to_string(),
        (None, 0x0304) => "TLS 1.3".to_string(),
        (None, w) => format!("version 0x{w:04X}"),
    }
}

/// The server's first flight, for evidence.
fn describe(flight: &FirstFlight) -> String {
    match flight {
        FirstFlight::ServerHello { version, suite } => format!(
            "ServerHello: {} with {}",
            version_name(*version),
            suite_name(*suite)
        ),
        FirstFlight::Alert { level, description } => format!(
            "{} alert: {} ({description})",
            if *level == 2 { "fatal" } else { "warning" },
            alert_name(*description)
        ),
        FirstFlight::Closed => "the connection closed without an answer".to_string(),
        FirstFlight::NotTls { preview } => format!("an answer that is not TLS: `{preview}`"),
    }
}

impl Judge for TlsExpectation {
    /// `tls`: negotiated version, certificate validity and time left.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let t = self;
        if let Some(no_tls) = plaintext_target(s) {
            return no_tls;
        }
        match s.probe().map(|p| &p.result) {
            None => Judgement::Inconclusive("no TLS probe was made".into()),
            // A probe offering 1.3 and 1.2 (all rustls speaks, and every allowed minimum)
            // refused by version: the server speaks no version the policy allows.
            Some(Err(
                e @ ClientError::Tls {
                    version_refused: true,
                    ..
                },
            )) if t.min_version.is_some() => Judgement::Broken(format!(
                "the server refuses TLS 1.3 and 1.2 alike (protocol_version alert), so it speaks no version the policy allows: {e}"
            )),
            Some(Err(e)) => Judgement::Inconclusive(format!("the TLS handshake failed: {e}")),
            Some(Ok(f)) => {
                if let Some(min) = t.min_version
                    && !f.version_at_least(min)
                {
                    return Judgement::Broken(format!(
                        "negotiated TLS {}, below the required {min:?}",
                        f.version
                    ));
                }
                if t.certificate_valid
                    && let Err(e) = &f.verified
                {
                    return Judgement::Broken(format!(
                        "the certificate is not valid: {e} (trusting {})",
                        f.trust
                    ));
                }
                let leaf = match &f.leaf {
                    Ok(c) => c,
                    Err(e) if t.min_days_left > 0 => {
                        return Judgement::Inconclusive(format!(
                            "the certificate's expiry cannot be read: {e}"
                        ));
                    }
                    Err(_) => {
                        return Judgement::Holds(format!(
                            "TLS {} with a valid certificate",
                            f.version
                        ));
                    }
                };
                let left = leaf.days_left();
                if left < i64::from(t.min_days_left) {
                    return Judgement::Broken(format!(
                        "the certificate expires {} ({left} days left), within the policy's {} days",
                        leaf.not_after, t.min_days_left
                    ));
                }
                Judgement::Holds(format!(
                    "TLS {} ({}) with a valid certificate: {}",
                    f.version,
                    f.cipher_suite,
                    leaf.summary()
                ))
            }
        }
    }
}

impl Judge for TlsRefused {
    /// `tls_refused`: the server did not accept the old version or weak suites the last
    /// `tls_hello` offered.
    async fn judge(&self, s: &mut Session) -> Judgement {
        if let Some(no_tls) = plaintext_target(s) {
            return no_tls;
        }
        let Some(h) = s.hello() else {
            return Judgement::Inconclusive("no ClientHello was sent".into());
        };
        let offered = match h.class {
            Some(c) => format!("only {} suites ({})", c.name(), h.version.name()),
            None => format!("only {}", h.version.name()),
        };
        match &h.result {
            Err(e) => {
                Judgement::Inconclusive(format!("the ClientHello got no answer to judge: {e}"))
            }
            Ok(FirstFlight::ServerHello { version, suite }) => {
                let chosen = version_name(*version);
                let suite_named = suite_name(*suite);
                match h.class {
                    Some(c) if c.suites().contains(suite) => Judgement::Broken(format!(
                        "accepted the {} suite {suite_named} ({chosen}) offered alone",
                        c.name()
                    )),
                    Some(_) => Judgement::Inconclusive(format!(
                        "answered a hello offering {offered} with {suite_named}, which was not offered"
                    )),
                    // Any version up to the one offered is accepted: old servers answer a
                    // newer hello with the newest version they have.
                    None if *version <= h.version.wire() => Judgement::Broken(format!(
                        "accepted {chosen} (suite {suite_named}) in answer to a hello offering {offered}"
                    )),
                    None => Judgement::Holds(format!(
                        "did not accept {}: answered {chosen}, which was not offered (such a client aborts)",
                        h.version.name()
                    )),
                }
            }
            Ok(f @ (FirstFlight::Alert { .. } | FirstFlight::Closed)) => Judgement::Holds(format!(
                "refused a hello offering {offered}: {}",
                describe(f)
            )),
            Ok(f @ FirstFlight::NotTls { .. }) => Judgement::Inconclusive(format!(
                "the endpoint did not answer in TLS: {}",
                describe(f)
            )),
        }
    }
}

/// The judgement of every TLS case on a target without TLS: a failure, saying so.
fn plaintext_target(s: &Session) -> Option<Judgement> {
    let plaintext =
        s.probe().is_some_and(|p| p.plaintext) || s.hello().is_some_and(|h| h.plaintext);
    plaintext.then(|| {
        Judgement::Broken(format!(
            "the target has no TLS: its URL {} is plaintext ws://, so its WebSocket traffic \
             (credentials and payments included) crosses the network unencrypted",
            crate::client::display_url(&s.rt().target.url.0)
        ))
    })
}

impl Perform for HttpRequest {
    /// `http_request`: the target's ticket request (or, without one, its setup requests), for
    /// their `Set-Cookie`.
    async fn perform(&self, s: &mut Session) -> StepResult {
        match self.endpoint {
            HttpEndpoint::Ticket => {}
        }
        let rt = s.rt().clone();
        let log = s.log().clone();
        let Some((spec, _)) = rt.ticket_request() else {
            // No ticket endpoint: the session cookie comes from the setup requests (a login).
            if rt.target.setup.is_empty() {
                return Err(StepError::NotApplicable(
                    "the target names no session or ticket endpoint (auth.ticket.request) and \
                     no setup request whose cookies could be judged"
                        .into(),
                ));
            }
            let state = super::setup::run(&rt, &log)
                .await
                .map_err(|e| format!("the setup requests failed: {e}"))?;
            let response = state
                .cookies_response()
                .cloned()
                .ok_or("the setup requests produced no response")?;
            s.set_http(Ok(response));
            return Ok(());
        };
        let (response, _) = rt.send_logged(spec, "", &log).await?;
        s.set_http(Ok(response));
        Ok(())
    }
}

impl Judge for CookieAttributes {
    /// `cookie`: the session cookie(s) carry the required attributes.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let Some(Ok(response)) = s.http() else {
            return Judgement::Inconclusive("no HTTP request was made".into());
        };
        judge_set_cookies(response.status, &response.set_cookies, self)
    }
}

/// The `cookie` judgement on one response: the cookies `want.names` names (every cookie when
/// it names none) must be set, each with the required attributes; other cookies are ignored.
fn judge_set_cookies(status: u16, set: &[SetCookie], want: &CookieAttributes) -> Judgement {
    // A service that sets no session cookie has nothing for SameSite to protect, unless the
    // policy requires one.
    // Naming the session cookies says they exist.
    let required = want.required || !want.names.is_empty();
    let no_cookie = |why: String| {
        if required {
            Judgement::Broken(format!("{why}, and the policy requires a session cookie"))
        } else {
            Judgement::NotApplicable(format!(
                "{why}: there is no session cookie for these attributes to protect (the policy \
                 does not require one)"
            ))
        }
    };
    if !(200..300).contains(&status) {
        // The legitimate request itself fails: the positive control (which asks no attribute)
        // says so; the attributes of a cookie never set cannot be judged either way.
        let asks_attributes =
            want.secure == Some(true) || want.http_only == Some(true) || want.samesite.is_some();
        let why = format!("the ticket endpoint answered HTTP {status}");
        return if asks_attributes {
            Judgement::Inconclusive(format!("{why}: no cookie to judge"))
        } else {
            Judgement::Broken(why)
        };
    }
    if set.is_empty() {
        return no_cookie("the response sets no cookie".into());
    }
    let judged: Vec<&SetCookie> = if want.names.is_empty() {
        set.iter().collect()
    } else {
        let missing: Vec<&str> = want
            .names
            .iter()
            .filter(|n| !set.iter().any(|c| &c.name == *n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let sent: Vec<&str> = set.iter().map(|c| c.name.as_str()).collect();
            return no_cookie(format!(
                "the response does not set the session cookie {} (it sets {})",
                missing.join(", "),
                sent.join(", ")
            ));
        }
        set.iter()
            .filter(|c| want.names.contains(&c.name))
            .collect()
    };
    for c in &judged {
        let shown = c.describe();
        if want.secure == Some(true) && !c.secure {
            return Judgement::Broken(format!("`{shown}` lacks Secure"));
        }
        if want.http_only == Some(true) && !c.http_only {
            return Judgement::Broken(format!("`{shown}` lacks HttpOnly"));
        }
        if let Some(min) = want.samesite
            && !samesite_satisfies(c.same_site.as_deref(), min)
        {
            return Judgement::Broken(format!("`{shown}` is not SameSite={min:?} or stricter"));
        }
    }
    let all: Vec<String> = judged.iter().map(|c| c.describe()).collect();
    let ignored = set.len() - judged.len();
    Judgement::Holds(if ignored == 0 {
        all.join(" | ")
    } else {
        format!("{} ({ignored} other cookie(s) not judged)", all.join(" | "))
    })
}

/// Whether a cookie's `SameSite` value meets the policy's minimum: `Strict` meets `Strict` and
/// `Lax`, `Lax` only `Lax`; `None`, an unknown value or no attribute meets neither.
fn samesite_satisfies(sent: Option<&str>, min: SameSite) -> bool {
    let rank = |s: SameSite| match s {
        SameSite::Lax => 1,
        SameSite::Strict => 2,
    };
    let sent = match sent.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("strict") => SameSite::Strict,
        Some("lax") => SameSite::Lax,
        _ => return false,
    };
    rank(sent) >= rank(min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::http::parse_set_cookie;
    use crate::client::tls_hello::SuiteClass;
    use crate::report::CaseLog;
    use std::sync::Arc;

    fn session() -> Session {
        crate::crypto::install_crypto_provider();
        let target = crate::plan::sample_target().expect("sample target");
        let rt = Arc::new(super::super::TargetRuntime::new(&target).expect("runtime"));
        Session::new(rt, CaseLog::default())
    }

    /// The facts of a TLS 1.3 handshake with a valid certificate expiring in `days`.
    fn facts(days: i64) -> crate::client::TlsFacts {
        let ck = crate::crypto::generate_ca_and_leaf(&["127.0.0.1".into()]).expect("certificate");
        let mut leaf = crate::client::tls::certificate_facts(&ck.chain[0]).expect("facts");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        leaf.not_after_unix = now + days * 86_400 + 3_600;
        crate::client::TlsFacts {
            server_name: "127.0.0.1".into(),
            version: "1.3".into(),
            cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
            alpn: None,
            chain_len: 2,
            leaf: Ok(leaf),
            verified: Ok(()),
            trust: "the target's CA".into(),
        }
    }

    #[tokio::test]
    async fn a_certificate_expiring_within_the_policys_days_fails_with_its_facts() {
        let mut s = session();
        let expect = TlsExpectation {
            min_version: Some(crate::config::policy::TlsVersion::V1_2),
            certificate_valid: true,
            min_days_left: 30,
        };
        s.set_probe(ProbeSeen {
            result: Ok(facts(10)),
            plaintext: false,
        });
        match expect.judge(&mut s).await {
            Judgement::Broken(why) => {
                assert!(
                    why.contains("(10 days left), within the policy's 30 days"),
                    "{why}"
                )
            }
            other => panic!("a certificate with 10 days left was judged {other:?}"),
        }
        s.set_probe(ProbeSeen {
            result: Ok(facts(90)),
            plaintext: false,
        });
        match expect.judge(&mut s).await {
            Judgement::Holds(why) => {
                assert!(
                    why.contains("EC 256 bits") && why.contains("90 days left"),
                    "{why}"
                )
            }
            other => panic!("a certificate with 90 days left was judged {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_hello_is_refused_by_an_alert_or_a_newer_version_and_accepted_by_its_own() {
        let mut s = session();
        let mut judged = |version, class, flight| {
            s.set_hello(HelloSeen {
                version,
                class,
                result: Ok(flight),
                plaintext: false,
            });
            futures_util::FutureExt::now_or_never(TlsRefused.judge(&mut s)).expect("no waiting")
        };
        let hello = |version, suite| FirstFlight::ServerHello { version, suite };
        match judged(LegacyVersion::Tls11, None, hello(0x0301, 0x002F)) {
            Judgement::Broken(why) => assert!(
                why.contains("accepted TLS 1.0 (suite TLS_RSA_WITH_AES_128_CBC_SHA)")
                    && why.contains("offering only TLS 1.1"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judged(LegacyVersion::Tls10, None, hello(0x0303, 0xC02F)),
            Judgement::Holds(_)
        ));
        assert!(matches!(
            judged(
                LegacyVersion::Tls10,
                None,
                FirstFlight::Alert {
                    level: 2,
                    description: 70
                }
            ),
            Judgement::Holds(why) if why.contains("protocol_version")
        ));
        assert!(matches!(
            judged(LegacyVersion::Tls12, Some(SuiteClass::Rc4), hello(0x0303, 0x0005)),
            Judgement::Broken(why) if why.contains("RC4 suite TLS_RSA_WITH_RC4_128_SHA")
        ));
        assert!(matches!(
            judged(
                LegacyVersion::Tls12,
                Some(SuiteClass::Rc4),
                hello(0x0303, 0xC02F)
            ),
            Judgement::Inconclusive(_)
        ));
        assert!(matches!(
            judged(
                LegacyVersion::Tls10,
                None,
                FirstFlight::NotTls {
                    preview: "HTTP/1.1 400".into()
                }
            ),
            Judgement::Inconclusive(_)
        ));
    }

    fn cookies(headers: &[&str]) -> Vec<SetCookie> {
        headers.iter().filter_map(|h| parse_set_cookie(h)).collect()
    }

    fn want(names: &[&str], samesite: SameSite) -> CookieAttributes {
        CookieAttributes {
            names: names.iter().map(|n| n.to_string()).collect(),
            secure: Some(true),
            http_only: Some(true),
            samesite: Some(samesite),
            required: false,
        }
    }

    #[test]
    fn samesite_is_a_minimum() {
        assert!(samesite_satisfies(Some("Strict"), SameSite::Lax));
        assert!(samesite_satisfies(Some("strict"), SameSite::Strict));
        assert!(samesite_satisfies(Some("Lax"), SameSite::Lax));
        assert!(!samesite_satisfies(Some("Lax"), SameSite::Strict));
        assert!(!samesite_satisfies(Some("None"), SameSite::Lax));
        assert!(!samesite_satisfies(Some("bogus"), SameSite::Lax));
        assert!(!samesite_satisfies(None, SameSite::Lax));
    }

    #[test]
    fn no_cookie_is_not_applicable_unless_the_policy_requires_one() {
        match judge_set_cookies(200, &[], &want(&[], SameSite::Strict)) {
            Judgement::NotApplicable(why) => assert!(why.contains("sets no cookie"), "{why}"),
            other => panic!("a cookie-less service was judged {other:?}"),
        }
        let required = CookieAttributes {
            required: true,
            ..want(&[], SameSite::Strict)
        };
        match judge_set_cookies(200, &[], &required) {
            Judgement::Broken(why) => assert!(why.contains("requires a session cookie"), "{why}"),
            other => panic!("a required cookie was missing, judged {other:?}"),
        }
    }

    #[test]
    fn a_strict_cookie_satisfies_a_lax_policy() {
        let set = cookies(&["sid=s1; Secure; HttpOnly; SameSite=Strict"]);
        assert!(matches!(
            judge_set_cookies(200, &set, &want(&[], SameSite::Lax)),
            Judgement::Holds(_)
        ));
    }

    #[test]
    fn only_the_named_session_cookies_are_judged() {
        let set = cookies(&[
            "AWSALB=lb; Path=/",
            "sid=s1; Secure; HttpOnly; SameSite=Strict",
        ]);
        match judge_set_cookies(200, &set, &want(&["sid"], SameSite::Strict)) {
            Judgement::Holds(why) => assert!(why.contains("1 other cookie(s) not judged"), "{why}"),
            other => panic!("a load-balancer cookie failed the session cookie: {other:?}"),
        }
        // Without names, every cookie is judged (the documented default).
        assert!(matches!(
            judge_set_cookies(200, &set, &want(&[], SameSite::Strict)),
            Judgement::Broken(_)
        ));
        // A named cookie that is not set: the policy says it exists, so its absence fails.
        match judge_set_cookies(200, &set, &want(&["session"], SameSite::Strict)) {
            Judgement::Broken(why) => assert!(why.contains("session"), "{why}"),
            other => panic!("a missing session cookie: {other:?}"),
        }
        let weak = cookies(&["AWSALB=lb", "sid=s1; Secure; HttpOnly; SameSite=None"]);
        match judge_set_cookies(200, &weak, &want(&["sid"], SameSite::Lax)) {
            Judgement::Broken(why) => assert!(why.contains("sid=***"), "{why}"),
            other => panic!("SameSite=None passed a Lax minimum: {other:?}"),
        }
    }
}
