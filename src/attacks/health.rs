//! `healthy`: after an attack, a fresh legitimate client still logs in and gets a valid message
//! acknowledged, so one bad client cannot take the service down for others.

use tokio::time::Instant;

use std::sync::Arc;

use super::runtime::TargetRuntime;
use super::session::{Judgement, Session};
use crate::client::{Event, UpgradeRequest, connect};
use crate::run::Transcript;

impl Session {
    /// A separate session on a fresh connection with the target's origin, logged in the
    /// legitimate way; its evidence goes to `ev`. `Err` is the judgement of a target that no
    /// longer lets a legitimate client in (or of a target that cannot be tried at all).
    pub async fn fresh_login(rt: Arc<TargetRuntime>, ev: Transcript) -> Result<Session, Judgement> {
        let mut probe = super::session::Session::probe(rt.clone(), ev);
        let mut req = match UpgradeRequest::new(rt.target.url.0.as_str()) {
            Ok(r) => r,
            Err(e) => return Err(Judgement::Inconclusive(e.to_string())),
        };
        if let Some(o) = &rt.target.origin {
            req = req.origin(o.to_string().into_bytes());
        }
        for s in rt.secrets().values() {
            req = req.secret(s);
        }
        let handshake = match connect(&req, &rt.tls, rt.target.limits.connect_timeout).await {
            Ok(h) => h,
            Err(e) => {
                return Err(Judgement::Broken(format!(
                    "a fresh client cannot connect any more: {e}"
                )));
            }
        };
        let status = handshake.response.status;
        let Some(conn) = handshake.connection else {
            return Err(Judgement::Broken(format!(
                "a fresh client's handshake is refused (HTTP {status})"
            )));
        };
        probe.conn = Some(conn);
        probe.opened_at = Some(Instant::now());
        if let Err(e) = probe.login().await {
            probe.close_connection();
            if let Some(fault) = probe.harness_fault.take() {
                return Err(Judgement::Inconclusive(format!("harness fault: {fault}")));
            }
            return Err(Judgement::Broken(format!(
                "a fresh client cannot log in any more: {e}"
            )));
        }
        Ok(probe)
    }

    /// `healthy`: a new connection with the target's origin, login, one valid message.
    pub async fn judge_healthy(&mut self) -> Judgement {
        let Some(valid) = self.rt.target.valid_message().map(str::to_string) else {
            return Judgement::Inconclusive("the target lists no valid message".into());
        };
        // A separate session, so the case's own connection and evidence stay as they are.
        let mut probe = match Self::fresh_login(self.rt.clone(), self.ev.clone()).await {
            Ok(p) => p,
            Err(j) => return j,
        };
        let sent = match probe.conn.as_ref() {
            Some(c) => c.send_text(&valid).await,
            None => return Judgement::Broken("the fresh connection went away".into()),
        };
        if let Err(e) = sent {
            probe.close_connection();
            return Judgement::Broken(format!("a fresh client cannot send: {e}"));
        }
        let matcher = self
            .rt
            .target
            .messages
            .as_ref()
            .and_then(|m| m.accepted_when.clone());
        let deadline = Instant::now() + self.rt.reply_wait;
        let verdict = loop {
            match probe.next_event(deadline).await {
                Event::Text(t) if matcher.as_ref().is_none_or(|m| m.matches(&t)) => {
                    break Judgement::Holds(
                        "a fresh client still gets a valid message acknowledged".into(),
                    );
                }
                Event::Timeout => {
                    break Judgement::Broken(
                        "a fresh client's valid message is not acknowledged".into(),
                    );
                }
                Event::ReaderFailed { error } => {
                    break Judgement::Inconclusive(format!("harness fault: {error}"));
                }
                e if e.is_end() => {
                    let shown = e.describe(&self.rt.secrets());
                    break Judgement::Broken(format!("a fresh client is cut off: {shown}"));
                }
                _ => {}
            }
        };
        probe.close_connection();
        verdict
    }
}
