//! The legitimate client: how a real client of the target obtains its ticket, opens its
//! connection with the target's profile and logs in. The `login` step, the health check, the
//! live fuzzer and the ticket-flow judgement all act through it.

use std::sync::Arc;

use tokio::time::Instant;

use super::channel::{Channel, Kind};
use super::profile::Variation;
use super::runtime::TargetRuntime;
use super::setup_state::SetupState;
use super::values::Values;
use super::{Judgement, StepError};
use crate::client::Ticket;
use crate::report::CaseLog;

/// Fetches a ticket as the target describes, for its own identity or `identity`; the ticket
/// and its cookies become secrets. Without a ticket flow the step does not apply (the
/// control's TICKET-FLOW case reports how the target authenticates instead).
pub(super) async fn fetch(
    rt: &TargetRuntime,
    log: &CaseLog,
    identity: Option<&crate::config::target::Identity>,
) -> Result<Ticket, StepError> {
    let Some((spec, pointer)) = rt.ticket_request_as(identity) else {
        return Err(StepError::NotApplicable(
            "the target describes no ticket flow (auth.ticket)".into(),
        ));
    };
    log.sent(format!("{spec:?}"));
    let ticket = rt
        .http
        .fetch_ticket(&spec, &pointer, rt.connect_timeout())
        .await
        .map_err(|e| format!("the ticket request failed: {e}"))?;
    rt.register_secret(ticket.value());
    let cookies = rt.register_cookies(&ticket.set_cookies);
    super::runtime::log_redirects(log, "", &ticket.redirects);
    log.saw(format!(
        "HTTP {}: ticket *** (cookies: {})",
        ticket.status,
        cookies.join(", ")
    ));
    Ok(ticket)
}

/// The values the legitimate client fills run-time placeholders from: the case's setup
/// values, the target's credential, `ticket` where one is at hand.
pub fn client_values<'a>(
    rt: &'a TargetRuntime,
    setup: Option<&'a SetupState>,
    ticket: Option<&'a str>,
) -> Values<'a> {
    Values {
        ticket,
        credential: rt.credential_ref(),
        seq: Some(&rt.seq),
        setup,
    }
}

/// Runs the target's setup requests for a fresh legitimate client (see [`super::setup`]).
pub async fn setup(rt: &TargetRuntime, log: &CaseLog) -> Result<Arc<SetupState>, String> {
    super::setup::run(rt, log).await.map(Arc::new)
}

/// The target's first message carrying `ticket`, its run-time placeholders filled.
pub(super) fn first_message(
    rt: &TargetRuntime,
    ticket: &str,
    setup: Option<&SetupState>,
) -> Result<String, StepError> {
    let template = rt
        .target
        .auth
        .as_ref()
        .and_then(|a| a.first_message.clone())
        .ok_or_else(|| {
            StepError::NotApplicable(
                "the target describes no first message (auth.first_message)".into(),
            )
        })?;
    client_values(rt, setup, Some(ticket)).render(&template)
}

/// The target's legitimate authentication on `channel`, whatever its flow is (a ticket flow,
/// a token in the URL, or nothing): fetches a ticket and sends the first message where the
/// target has a ticket flow, then waits for `auth.accepted_when` where the target defines it.
pub async fn log_in(
    rt: &Arc<TargetRuntime>,
    log: &CaseLog,
    channel: &mut Channel,
    setup: Option<&SetupState>,
) -> Result<(), String> {
    let Some(auth) = rt.target.auth.clone() else {
        log.note("the target has no authentication: nothing to do");
        return Ok(());
    };
    if auth.ticket.is_some() && auth.first_message.is_some() {
        let ticket = fetch(rt, log, None).await.map_err(|e| e.to_string())?;
        channel.add_secret(ticket.value());
        let message = first_message(rt, ticket.value(), setup).map_err(|e| e.to_string())?;
        log.sent("first message with a fresh ticket");
        channel
            .send_auth(&message)
            .await
            .map_err(|e| format!("cannot send the first message: {e}"))?;
    } else if let Some(template) = &auth.first_message {
        // A credential in the first message without any ticket endpoint (a static token).
        let message = client_values(rt, setup, None)
            .render(template)
            .map_err(|e| e.to_string())?;
        log.sent("first message (the target's credential, no ticket)");
        channel
            .send_auth(&message)
            .await
            .map_err(|e| format!("cannot send the first message: {e}"))?;
    }
    // Wait for the answer where the target names it, or where the protocol gives one to
    // whatever carried the authentication.
    if auth.accepted_when.is_none() && !(channel.answers_auth() && auth.first_message.is_some()) {
        return Ok(());
    }
    let deadline = Instant::now() + rt.reply_wait;
    loop {
        let r = channel.next(deadline).await;
        match r.kind {
            Kind::AuthAccepted => {
                log.note("logged in");
                return Ok(());
            }
            // Other traffic before the welcome (an unsolicited update, an error reply before
            // the close) is not the answer; the end or the deadline is.
            Kind::Control | Kind::Ack | Kind::Other | Kind::Rejection => {}
            _ => {
                return Err(format!(
                    "the legitimate login was not accepted: {}",
                    r.describe(&rt.secrets())
                ));
            }
        }
    }
}

/// A fresh connection of the legitimate client (the target's profile, unchanged), logged in
/// the legitimate way; its evidence goes to `log`. `Err` is the judgement of a target that no
/// longer lets a legitimate client in (or of a target that cannot be tried at all).
pub async fn logged_in_channel(
    rt: &Arc<TargetRuntime>,
    log: &CaseLog,
) -> Result<(Channel, Arc<SetupState>), Judgement> {
    let setup = match setup(rt, log).await {
        Ok(s) => s,
        Err(why) => {
            return Err(Judgement::Broken(format!(
                "a fresh client cannot get through the target's setup requests: {why}"
            )));
        }
    };
    let opened = match rt
        .connect(&Variation::legitimate(), Some(&setup), log)
        .await
    {
        Ok(o) => o,
        Err(crate::client::ClientError::InvalidUrl { url, reason }) => {
            return Err(Judgement::Inconclusive(format!(
                "invalid URL `{url}`: {reason}"
            )));
        }
        // Not a crash: the server's handshake is one a browser fails.
        Err(crate::client::ClientError::Violation(v)) => {
            return Err(Judgement::Inconclusive(v.failed_connection()));
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
    let result = log_in(rt, log, &mut channel, Some(&setup)).await;
    if let Some(fault) = channel.take_fault() {
        return Err(Judgement::Inconclusive(format!("harness fault: {fault}")));
    }
    if let Some(v) = channel.violations().into_iter().find(|v| v.fatal) {
        log_transcript(log, &channel);
        return Err(Judgement::Inconclusive(v.failed_connection()));
    }
    match result {
        Ok(()) => Ok((channel, setup)),
        Err(e) => {
            log_transcript(log, &channel);
            Err(Judgement::Broken(format!(
                "a fresh client cannot log in any more: {e}"
            )))
        }
    }
}

/// Keeps a side connection's transcript in the case evidence.
pub(super) fn log_transcript(log: &CaseLog, channel: &Channel) {
    log.note("fresh client transcript (times from its handshake):");
    let t = channel.transcript();
    for entry in t.entries() {
        log.note(format!("+{}ms {}", entry.at.as_millis(), entry.what));
    }
}
