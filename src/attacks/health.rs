//! `healthy`: after an attack, a fresh legitimate client still logs in and gets a valid message
//! acknowledged, so one bad client cannot take the service down for others. The same
//! legitimate client serves the live fuzzer.

use std::sync::Arc;

use tokio::time::Instant;

use super::auth::log_in;
use super::channel::{Channel, Kind};
use super::profile::Variation;
use super::runtime::TargetRuntime;
use super::session::Session;
use super::{Judge, Judgement};
use crate::plan::expect::Healthy;
use crate::report::CaseLog;

/// A fresh connection of the legitimate client (the target's profile, unchanged), logged in
/// the legitimate way; its evidence goes to `log`. `Err` is the judgement of a target that no
/// longer lets a legitimate client in (or of a target that cannot be tried at all).
pub async fn logged_in_channel(
    rt: &Arc<TargetRuntime>,
    log: &CaseLog,
) -> Result<Channel, Judgement> {
    let opened = match rt.open(&Variation::legitimate()).await {
        Ok(o) => o,
        Err(crate::client::ClientError::InvalidUrl { url, reason }) => {
            return Err(Judgement::Inconclusive(format!(
                "invalid URL `{url}`: {reason}"
            )));
        }
        Err(e) => {
            return Err(Judgement::Broken(format!(
                "a fresh client cannot connect any more: {e}"
            )));
        }
    };
    let status = opened.response.status;
    let Some(mut channel) = opened.channel else {
        return Err(Judgement::Broken(format!(
            "a fresh client's handshake is refused (HTTP {status})"
        )));
    };
    let result = log_in(rt, log, &mut channel).await;
    if let Some(fault) = channel.take_fault() {
        return Err(Judgement::Inconclusive(format!("harness fault: {fault}")));
    }
    match result {
        Ok(()) => Ok(channel),
        Err(e) => {
            log_transcript(log, &channel);
            Err(Judgement::Broken(format!(
                "a fresh client cannot log in any more: {e}"
            )))
        }
    }
}

/// Whether a fresh legitimate client still logs in and gets a valid message acknowledged.
pub async fn healthy(rt: &Arc<TargetRuntime>, log: &CaseLog) -> Judgement {
    let Some(valid) = rt.target.valid_message().map(str::to_string) else {
        return Judgement::Inconclusive("the target lists no valid message".into());
    };
    let mut channel = match logged_in_channel(rt, log).await {
        Ok(c) => c,
        Err(j) => return j,
    };
    let message = match (super::values::Values {
        credential: rt.credential_ref(),
        seq: Some(&rt.seq),
        ticket: None,
    })
    .render(&valid)
    {
        Ok(m) => m,
        Err(e) => return Judgement::Inconclusive(e.to_string()),
    };
    if let Err(e) = channel.send_message(&message).await {
        log_transcript(log, &channel);
        return Judgement::Broken(format!("a fresh client cannot send: {e}"));
    }
    let has_matcher = rt.classifier.ack.is_some();
    let deadline = Instant::now() + rt.reply_wait;
    let verdict = loop {
        let r = channel.next(deadline).await;
        match r.kind {
            Kind::Ack => {
                break Judgement::Holds(
                    "a fresh client still gets a valid message acknowledged".into(),
                );
            }
            // Without `messages.accepted_when`, any reply shows the service still serves.
            Kind::Other | Kind::AuthAccepted | Kind::Rejection if !has_matcher => {
                break Judgement::Holds("a fresh client still gets a reply".into());
            }
            Kind::Timeout => {
                break Judgement::Broken(
                    "a fresh client's valid message is not acknowledged".into(),
                );
            }
            Kind::Fault => {
                break Judgement::Inconclusive(format!(
                    "harness fault: {}",
                    r.describe(&rt.secrets())
                ));
            }
            _ if r.is_end() => {
                let shown = r.describe(&rt.secrets());
                break Judgement::Broken(format!("a fresh client is cut off: {shown}"));
            }
            _ => {}
        }
    };
    log_transcript(log, &channel);
    verdict
}

/// Keeps a side connection's transcript in the case evidence.
fn log_transcript(log: &CaseLog, channel: &Channel) {
    log.note("fresh client transcript (times from its handshake):");
    let t = channel.transcript();
    for entry in t.entries() {
        log.note(format!("+{}ms {}", entry.at.as_millis(), entry.what));
    }
}

impl Judge for Healthy {
    /// `healthy`: a new connection of the legitimate client, login, one valid message; the
    /// case's own connections stay as they are.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let rt = s.rt().clone();
        let log = s.log().clone();
        healthy(&rt, &log).await
    }
}
