//! Handshakes (transport, origin and URL-token families): `connect` with any Origin, query,
//! cookie or extension, and the `handshake_refused` / `handshake_upgraded` judgements.

use tokio::time::Instant;

use super::session::{HandshakeSeen, Judgement, LastSent, Session, StepResult};
use crate::client::{ClientError, UpgradeRequest, connect};
use crate::plan::expect::{HandshakeRefused, HandshakeUpgraded};
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
            Some(o) => req.origin(self.fill(o).into_bytes()),
            None => req.without_origin(),
        };
        for (k, v) in &c.query {
            req = req.query_param(&self.fill(k), &self.fill(v));
        }
        for (k, v) in &c.headers {
            req = req.header(k, self.fill(v).into_bytes());
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
                Some(want) => {
                    let got = extensions.clone().unwrap_or_default().to_ascii_lowercase();
                    match want.iter().find(|w| !got.contains(&w.to_ascii_lowercase())) {
                        Some(missing) => {
                            Judgement::Broken(format!("upgraded without negotiating {missing}"))
                        }
                        None => Judgement::Holds(format!("upgraded with extensions `{got}`")),
                    }
                }
                None => Judgement::Holds("upgraded (101 Switching Protocols)".into()),
            },
        }
    }
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
