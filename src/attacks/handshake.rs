//! Handshakes (transport, origin and URL-token families): `connect`, the legitimate handshake
//! with any Origin, query, header, cookie or extension changed, the `handshake_refused` /
//! `handshake_upgraded` judgements, and `url_without_params` (the target's own URL).

use std::collections::BTreeSet;

use super::profile::{OriginChoice, Variation};
use super::session::{DEFAULT_CONNECTION, HandshakeSeen, LastSent, Link, Session};
use super::{Judge, Judgement, Perform, StepError, StepResult};
use crate::client::ClientError;
use crate::client::extension_names;
use crate::plan::expect::{HandshakeRefused, HandshakeUpgraded, UrlWithoutParams};
use crate::plan::step::{Connect, CookieChoice};

impl Perform for Connect {
    /// `connect`: the legitimate handshake varied as the step says; a refusal is a result,
    /// only an unreachable TLS endpoint is not.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_CONNECTION.to_string());
        // Replacing a connection whose fresh ticket awaits confirmation: confirm it first, or a
        // replay of that ticket proves nothing.
        if s.link(&name).is_some() {
            s.select(&name);
            super::auth::confirm_fresh_auth(s).await?;
        }
        let mut v = Variation {
            origin: match &self.origin {
                Some(o) => OriginChoice::Exactly(s.render(o)?.into_bytes()),
                None => OriginChoice::Omitted,
            },
            plaintext: self.plaintext,
            strip_query: self.strip_query,
            credentials: self.credentials,
            ..Variation::legitimate()
        };
        for (k, val) in &self.query {
            v.query.push((s.render(k)?, s.render(val)?));
        }
        for (k, val) in &self.headers {
            v.headers.push((k.clone(), s.render(val)?));
        }
        if self.cookie != CookieChoice::None {
            let tickets = s.tickets();
            let cookie = match self.cookie {
                CookieChoice::None => None,
                CookieChoice::Session => tickets.own.as_ref().and_then(|t| t.cookie_header()),
                CookieChoice::OtherSession => {
                    tickets.other.as_ref().and_then(|t| t.cookie_header())
                }
            };
            match cookie {
                Some(c) => v.cookie = Some(c),
                None => {
                    return Err(StepError::NotApplicable(
                        "the case needs a session cookie, but the ticket endpoint set none".into(),
                    ));
                }
            }
        }
        if !self.extensions.is_empty() {
            v.extensions = Some(self.extensions.clone());
        }
        if let Some(suffix) = &self.path_suffix {
            v.path_suffix = Some(s.render(suffix)?);
        }
        if let Some(protocols) = &self.subprotocols {
            let mut rendered = Vec::new();
            for p in protocols {
                rendered.push(s.render(p)?);
            }
            v.subprotocols = Some(rendered);
        }
        let rt = s.rt().clone();
        let log = s.log().clone();
        let setup = s.setup().await?;
        if self.cookies_only {
            v.cookies_only = true;
            v.cookie = self.session_cookies(s, &setup).await?;
        }
        let link = |handshake, channel| Link {
            name: name.clone(),
            handshake,
            channel,
            last_sent: LastSent::Nothing,
            fresh_auth_pending: false,
            pings_off_at: None,
            valid_confirmed: false,
            mutated: false,
        };
        let opened = rt.connect(&v, Some(&setup), &log).await;
        match opened {
            Ok(opened) => {
                let status = opened.response.status;
                let extensions = opened
                    .response
                    .header("sec-websocket-extensions")
                    .map(str::to_string);
                log.saw(format!(
                    "{} {}",
                    opened.response.status_line(),
                    opened.response.body_preview()
                ));
                let seen = match &opened.channel {
                    Some(_) => HandshakeSeen::Upgraded { extensions },
                    None => HandshakeSeen::Refused { status },
                };
                s.add_link(link(seen, opened.channel));
                Ok(())
            }
            // Nothing listening, or something that is not HTTP, at the plaintext URL is the
            // secure outcome of a plaintext probe; on the TLS URL it leaves nothing to judge.
            Err(e) if self.plaintext && plaintext_absent(&e) => {
                log.saw(format!("no WebSocket at the plaintext URL: {e}"));
                s.add_link(link(HandshakeSeen::NoWebSocket(e.to_string()), None));
                Ok(())
            }
            Err(e) => {
                if let ClientError::Violation(v) = &e {
                    s.note_violation(v.clone());
                }
                Err(format!("the handshake failed: {e}").into())
            }
        }
    }
}

impl Connect {
    /// The session cookies a browser would carry to the target's socket from another site:
    /// the target's own cookies (`connect.cookies`), the cookie jar's (its setup requests) and
    /// the one its ticket endpoint sets (a ticket is fetched for it when none was). Returns
    /// the ticket endpoint's cookie, for the handshake to add; not applicable when the
    /// legitimate client holds no session cookie at all.
    async fn session_cookies(
        &self,
        s: &mut Session,
        setup: &super::setup_state::SetupState,
    ) -> Result<Option<String>, StepError> {
        let has_ticket_flow = s
            .rt()
            .target
            .auth
            .as_ref()
            .is_some_and(|a| a.ticket.is_some());
        if has_ticket_flow && s.tickets().own.is_none() {
            crate::plan::step::FetchTicket::default().perform(s).await?;
        }
        let ticket_cookie = s.tickets().own.as_ref().and_then(|t| t.cookie_header());
        let own = !s.rt().profile.cookies.is_empty();
        if ticket_cookie.is_none() && !own && !setup.has_cookies() {
            return Err(StepError::NotApplicable(
                "the legitimate client holds no session cookie (no connect.cookies, none set by                  the setup requests or the ticket endpoint): a cross-site page has nothing to                  ride on"
                    .into(),
            ));
        }
        Ok(ticket_cookie)
    }
}

/// What the current connection's handshake got.
fn seen(s: &mut Session) -> Option<HandshakeSeen> {
    s.current().map(|l| l.handshake.clone())
}

impl Judge for HandshakeRefused {
    /// `handshake_refused`.
    async fn judge(&self, s: &mut Session) -> Judgement {
        match seen(s) {
            None => Judgement::Inconclusive("no handshake was attempted".into()),
            Some(HandshakeSeen::Upgraded { .. }) => Judgement::Broken(
                "the server upgraded the connection (101 Switching Protocols)".into(),
            ),
            Some(HandshakeSeen::NoWebSocket(why)) => {
                Judgement::Holds(format!("nothing upgrades there: {why}"))
            }
            Some(HandshakeSeen::Refused { status }) => match self.status {
                Some(want) if want != status => Judgement::Broken(format!(
                    "refused with HTTP {status}, but the policy requires exactly {want}"
                )),
                _ => Judgement::Holds(format!("refused with HTTP {status} before the upgrade")),
            },
        }
    }
}

impl Judge for HandshakeUpgraded {
    /// `handshake_upgraded`.
    async fn judge(&self, s: &mut Session) -> Judgement {
        match seen(s) {
            None => Judgement::Inconclusive("no handshake was attempted".into()),
            Some(HandshakeSeen::Refused { status }) => {
                Judgement::Broken(format!("refused with HTTP {status}"))
            }
            Some(HandshakeSeen::NoWebSocket(why)) => {
                Judgement::Broken(format!("no WebSocket answered: {why}"))
            }
            Some(HandshakeSeen::Upgraded { extensions }) => match &self.extensions {
                Some(want) => judge_extensions(want, extensions.as_deref()),
                None => Judgement::Holds("upgraded (101 Switching Protocols)".into()),
            },
        }
    }
}

impl Judge for UrlWithoutParams {
    /// `url_without_params`: the target's own URLs carry no credential parameter. A target
    /// whose legitimate flow puts a token in the URL authenticates exactly the way the control
    /// forbids.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let target = &s.rt().target;
        let urls = [
            ("url", Some(&target.url.0)),
            ("plaintext_url", target.plaintext_url.as_ref().map(|p| &p.0)),
        ];
        let mut found = Vec::new();
        for (key, url) in urls {
            let Some(url) = url else { continue };
            for (name, _) in url.query_pairs() {
                if self.params.iter().any(|p| p.eq_ignore_ascii_case(&name)) {
                    found.push(format!("?{name}= in its {key}"));
                }
            }
        }
        if found.is_empty() {
            return Judgement::Holds(format!(
                "the target's URL carries none of {}",
                self.params.join(", ")
            ));
        }
        Judgement::Broken(format!(
            "the target authenticates with a credential in the URL ({}; value not shown): \
             the query string leaks into logs, proxies and browser history",
            found.join(", ")
        ))
    }
}

/// `handshake_upgraded.extensions`: the negotiated set must be exactly `want` (names compared
/// case-insensitively, order and parameters ignored), so an empty list requires that nothing
/// was negotiated.
fn judge_extensions(want: &[String], header: Option<&str>) -> Judgement {
    let got: BTreeSet<String> = extension_names(header).into_iter().collect();
    let want: BTreeSet<String> = want.iter().map(|w| w.trim().to_ascii_lowercase()).collect();
    let shown = header.unwrap_or_default().trim();
    if got == want {
        return Judgement::Holds(if want.is_empty() {
            "upgraded without negotiating any extension (no Sec-WebSocket-Extensions)".into()
        } else {
            format!("upgraded with extensions `{shown}`")
        });
    }
    let missing: Vec<&str> = want.difference(&got).map(String::as_str).collect();
    let extra: Vec<&str> = got.difference(&want).map(String::as_str).collect();
    let mut why = Vec::new();
    if !extra.is_empty() {
        why.push(format!("negotiated {}", extra.join(", ")));
    }
    if !missing.is_empty() {
        why.push(format!("did not negotiate {}", missing.join(", ")));
    }
    Judgement::Broken(format!(
        "the server {} (Sec-WebSocket-Extensions: `{shown}`), but exactly [{}] was expected",
        why.join(" and "),
        want.iter().cloned().collect::<Vec<_>>().join(", ")
    ))
}

/// Errors meaning no WebSocket server answers plaintext at that address.
fn plaintext_absent(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::ConnectRefused { .. }
            | ClientError::MalformedResponse { .. }
            | ClientError::ClosedEarly { .. }
            | ClientError::Io { .. }
            | ClientError::HeadTooLarge { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_empty_list_requires_that_nothing_was_negotiated() {
        assert!(matches!(judge_extensions(&[], None), Judgement::Holds(_)));
        assert!(matches!(
            judge_extensions(&[], Some(" ")),
            Judgement::Holds(_)
        ));
        let deflate = Some("permessage-deflate; server_no_context_takeover");
        match judge_extensions(&[], deflate) {
            Judgement::Broken(why) => {
                assert!(why.contains("negotiated permessage-deflate"), "{why}")
            }
            other => panic!("deflate negotiated against an empty list: {other:?}"),
        }
    }

    #[test]
    fn a_list_is_the_exact_set_of_names() {
        let want = list(&["PerMessage-Deflate"]);
        let header = Some("permessage-deflate; client_no_context_takeover");
        assert!(matches!(
            judge_extensions(&want, header),
            Judgement::Holds(_)
        ));
        assert!(matches!(
            judge_extensions(&want, None),
            Judgement::Broken(_)
        ));
        let two = Some("permessage-deflate, x-webkit-deflate-frame");
        match judge_extensions(&want, two) {
            Judgement::Broken(why) => assert!(why.contains("x-webkit-deflate-frame"), "{why}"),
            other => panic!("an extra extension was accepted: {other:?}"),
        }
        assert_eq!(
            extension_names(Some("a; x=1 ,B")),
            ["a".to_string(), "b".to_string()]
        );
    }
}
