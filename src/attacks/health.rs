//! `healthy`: after an attack, a fresh legitimate client still logs in and gets a valid message
//! acknowledged, so one bad client cannot take the service down for others.

use std::sync::Arc;

use tokio::time::Instant;

use super::channel::Kind;
use super::legitimate::{client_values, log_transcript, logged_in_channel};
use super::runtime::TargetRuntime;
use super::session::Session;
use super::{Judge, Judgement};
use crate::plan::expect::Healthy;
use crate::report::CaseLog;

/// Whether a fresh legitimate client still logs in and gets a valid message acknowledged.
pub async fn healthy(rt: &Arc<TargetRuntime>, log: &CaseLog) -> Judgement {
    let Some(valid) = rt.target.valid_message().map(str::to_string) else {
        return Judgement::Inconclusive("the target lists no valid message".into());
    };
    let (mut channel, setup) = match logged_in_channel(rt, log).await {
        Ok(c) => c,
        Err(j) => return j,
    };
    let message = match client_values(rt, Some(&setup), None).render(&valid) {
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

impl Judge for Healthy {
    /// `healthy`: a new connection of the legitimate client, login, one valid message; the
    /// case's own connections stay as they are.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let rt = s.rt().clone();
        let log = s.log().clone();
        healthy(&rt, &log).await
    }
}
