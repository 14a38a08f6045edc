//! Handshakes (transport, origin and URL-token families): `connect` with any Origin, query,
//! cookie or extension, the `handshake_refused` / `handshake_upgraded` judgements, and
//! `url_without_params` (the target's own URL).

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::session::{HandshakeSeen, Judgement, LastSent, Session, StepResult};
use crate::client::{ClientError, UpgradeRequest, connect};
use crate::plan::expect::{HandshakeRefused, HandshakeUpgraded, UrlWithoutParams};
use crate::plan::step::{Connect, CookieChoice};

impl Session {
    /// `connect`: a handshake; a refusal is a result, only an unreachable TLS endpoint is not.
    pub(super) async fn connect(&mut self, c: &Connect) -> StepResult {
        self.confirm_fresh_auth().await?;
        self.close_connection();
        self.last_sent = LastSent::Nothing;
        let target = &self.rt.target;
        let mut url = if c.plaintext {
            target.plaintext_url().0
        } else {
            target.url.0.clone()
        };
        if c.strip_query {
            url.set_query(None);
        }
        let mut req = UpgradeRequest::new(url.as_str()).map_err(|e| e.to_string())?;
        for s in self.rt.secrets().values() {
            req = req.secret(s);
        }
        req = match &c.origin {
            Some(o) => req.origin(self.fill(o)?.into_bytes()),
            None => req.without_origin(),
        };
        for (k, v) in &c.query {
            req = req.query_param(&self.fill(k)?, &self.fill(v)?);
        }
        for (k, v) in &c.headers {
            req = req.header(k, self.fill(v)?.into_bytes());
        }
        let cookie = match c.cookie {
            CookieChoice::None => None,
            CookieChoice::Session => self.own_ticket.as_ref().and_then(|t| t.cookie_header()),
            CookieChoice::OtherSession => {
                self.other_ticket.as_ref().and_then(|t| t.cookie_header())
            }
        };
        if c.cookie != CookieChoice::None {
            match &cookie {
                Some(v) => req = req.cookie(v),
                None => {
                    return Err(
                        "the case needs a session cookie, but the ticket endpoint set none".into(),
                    );
                }
            }
        }
        if !c.extensions.is_empty() {
            req = req.extensions(&c.extensions.join(", "));
        }
        self.ev.sent(req.summary());
        match connect(&req, &self.rt.tls, self.rt.target.limits.connect_timeout).await {
            Ok(h) => {
                let status = h.response.status;
                let extensions = h
                    .response
                    .header("sec-websocket-extensions")
                    .map(str::to_string);
                self.ev.saw(format!(
                    "{} {}",
                    h.response.status_line(),
                    h.response.body_preview()
                ));
                match h.connection {
                    Some(conn) => {
                        self.conn = Some(conn);
                        self.opened_at = Some(Instant::now());
                        self.handshake = Some(HandshakeSeen::Upgraded { extensions });
                    }
                    None => self.handshake = Some(HandshakeSeen::Refused { status }),
                }
                Ok(())
            }
            // Nothing listening, or something that is not HTTP, at the plaintext URL is the
            // secure outcome of a plaintext probe; on the TLS URL it leaves nothing to judge.
            Err(e) if c.plaintext && plaintext_absent(&e) => {
                self.ev
                    .saw(format!("no WebSocket at the plaintext URL: {e}"));
                self.handshake = Some(HandshakeSeen::NoWebSocket(e.to_string()));
                Ok(())
            }
            Err(e) => Err(format!("the handshake failed: {e}").into()),
        }
    }

    /// `handshake_refused`.
    pub(super) fn judge_refused(&self, h: &HandshakeRefused) -> Judgement {
        match &self.handshake {
            None => Judgement::Inconclusive("no handshake was attempted".into()),
            Some(HandshakeSeen::Upgraded { .. }) => Judgement::Broken(
                "the server upgraded the connection (101 Switching Protocols)".into(),
            ),
            Some(HandshakeSeen::NoWebSocket(why)) => {
                Judgement::Holds(format!("nothing upgrades there: {why}"))
            }
            Some(HandshakeSeen::Refused { status }) => match h.status {
                Some(want) if want != *status => Judgement::Broken(format!(
                    "refused with HTTP {status}, but the policy requires exactly {want}"
                )),
                _ => Judgement::Holds(format!("refused with HTTP {status} before the upgrade")),
            },
        }
    }

    /// `handshake_upgraded`.
    pub(super) fn judge_upgraded(&self, h: &HandshakeUpgraded) -> Judgement {
        match &self.handshake {
            None => Judgement::Inconclusive("no handshake was attempted".into()),
            Some(HandshakeSeen::Refused { status }) => {
                Judgement::Broken(format!("refused with HTTP {status}"))
            }
            Some(HandshakeSeen::NoWebSocket(why)) => {
                Judgement::Broken(format!("no WebSocket answered: {why}"))
            }
            Some(HandshakeSeen::Upgraded { extensions }) => match &h.extensions {
                Some(want) => judge_extensions(want, extensions.as_deref()),
                None => Judgement::Holds("upgraded (101 Switching Protocols)".into()),
            },
        }
    }

    /// `url_without_params`: the target's own URLs carry no credential parameter. A target whose
    /// legitimate flow puts a token in the URL authenticates exactly the way the control forbids.
    pub(super) fn judge_url_params(&self, u: &UrlWithoutParams) -> Judgement {
        let target = &self.rt.target;
        let urls = [
            ("url", Some(&target.url.0)),
            ("plaintext_url", target.plaintext_url.as_ref().map(|p| &p.0)),
        ];
        let mut found = Vec::new();
        for (key, url) in urls {
            let Some(url) = url else { continue };
            for (name, _) in url.query_pairs() {
                if u.params.iter().any(|p| p.eq_ignore_ascii_case(&name)) {
                    found.push(format!("?{name}= in its {key}"));
                }
            }
        }
        if found.is_empty() {
            return Judgement::Holds(format!(
                "the target's URL carries none of {}",
                u.params.join(", ")
            ));
        }
        Judgement::Broken(format!(
            "the target authenticates with a credential in the URL ({}; value not shown): \
             the query string leaks into logs, proxies and browser history",
            found.join(", ")
        ))
    }
}

impl HandshakeSeen {
    /// Whether the handshake upgraded with extension `name` negotiated.
    pub(super) fn negotiated(&self, name: &str) -> bool {
        match self {
            HandshakeSeen::Upgraded { extensions } => extension_names(extensions.as_deref())
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name)),
            HandshakeSeen::Refused { .. } | HandshakeSeen::NoWebSocket(_) => false,
        }
    }
}

/// The extension names a `Sec-WebSocket-Extensions` response header negotiates, lower-cased,
/// without their parameters (`permessage-deflate; client_no_context_takeover` is
/// `permessage-deflate`). No header, or an empty one, negotiates nothing.
pub(super) fn extension_names(header: Option<&str>) -> Vec<String> {
    header
        .unwrap_or_default()
        .split(',')
        .filter_map(|ext| ext.split(';').next())
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
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
