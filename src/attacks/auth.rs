//! Authentication (ticket and unauthenticated families): `fetch_ticket`, `authenticate` with a
//! fresh, reused, expired, forged, foreign or shared ticket, the legitimate `login` (also used by
//! the health check and the live fuzzer), and `authenticated` over several connections (races).

use base64::Engine;
use rand::Rng;
use tokio::time::Instant;

use super::channel::Kind;
use super::legitimate::{client_values, fetch, first_message, log_in, logged_in_channel};
use super::runtime::TargetRuntime;
use super::session::{LastSent, Session};
use super::{Judge, Judgement, Perform, StepError, StepResult};
use crate::plan::expect::{Authenticated, RefusalsAlike, TicketFlow};
use crate::plan::step::{
    Authenticate, FetchTicket, Login, SessionChoice, TicketChoice, TicketTamper,
};

impl Perform for FetchTicket {
    /// `fetch_ticket`: the target's ticket request, for its own identity or its second one.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let second = s
            .rt()
            .target
            .auth
            .as_ref()
            .and_then(|a| a.second_identity.clone());
        let identity = match self.session {
            SessionChoice::Own => None,
            SessionChoice::Other => Some(second.ok_or_else(|| {
                StepError::NotApplicable(
                    "the target declares no second identity (auth.second_identity): a ticket \
                     from another session is only meaningful between two identities"
                        .into(),
                )
            })?),
        };
        let ticket = fetch(s.rt(), s.log(), identity.as_ref()).await?;
        let tickets = s.tickets();
        match self.session {
            SessionChoice::Own => {
                tickets.last_fetched = Some(ticket.value().to_string());
                tickets.own = Some(ticket);
            }
            SessionChoice::Other => tickets.other = Some(ticket),
        }
        Ok(())
    }
}

/// A fresh ticket of this session's own, fetched now unless one is waiting, and taken: it is
/// about to be redeemed (or tampered with) and must not be offered twice.
async fn take_own_ticket(s: &mut Session) -> Result<String, StepError> {
    if s.tickets().own.is_none() {
        FetchTicket::default().perform(s).await?;
    }
    Ok(s.tickets()
        .own
        .take()
        .map(|t| t.value().to_string())
        .ok_or("no ticket was fetched")?)
}

impl Perform for Authenticate {
    /// `authenticate`: the target's first message with the chosen ticket.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let ticket = match self.ticket {
            TicketChoice::Fresh => {
                let t = take_own_ticket(s).await?;
                if let Some(link) = s.current() {
                    link.fresh_auth_pending = true;
                }
                t
            }
            TicketChoice::Reused => s
                .tickets()
                .used
                .clone()
                .ok_or("no ticket was used before in this case")?,
            TicketChoice::Expired => s
                .tickets()
                .own
                .as_ref()
                .map(|t| t.value().to_string())
                .ok_or("no ticket was fetched before the wait")?,
            TicketChoice::OtherSession => s
                .tickets()
                .other
                .as_ref()
                .map(|t| t.value().to_string())
                .ok_or("no ticket was fetched for another session")?,
            TicketChoice::Fetched => s
                .tickets()
                .last_fetched
                .clone()
                .ok_or("no ticket was fetched before this step")?,
            TicketChoice::Tampered => {
                let kind = self
                    .tamper
                    .ok_or("authenticate: { ticket: tampered } needs `tamper`")?;
                let fresh = take_own_ticket(s).await?;
                let forged = tamper(&fresh, kind).map_err(StepError::NotApplicable)?;
                s.log().note(format!(
                    "a fresh, unused ticket tampered with: {}",
                    kind.name()
                ));
                forged
            }
            TicketChoice::Forged => {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            }
        };
        s.tickets().used = Some(ticket.clone());
        let setup = s.setup().await?;
        let message = first_message(s.rt(), &ticket, Some(&setup))?;
        let log = s.log().clone();
        let Some(channel) = s.channel() else {
            log.note("no connection (the handshake was refused): nothing to authenticate");
            return Ok(());
        };
        channel.add_secret(&ticket);
        log.sent(format!("first message with a {:?} ticket", self.ticket).to_lowercase());
        channel
            .send_auth(&message)
            .await
            .map_err(|e| format!("cannot send the first message: {e}"))?;
        if let Some(link) = s.current() {
            link.last_sent = LastSent::Auth;
        }
        Ok(())
    }
}

/// Whether `ticket` is a JWT: three dot-separated parts, the first two base64url JSON objects,
/// the header naming an `alg`.
fn jwt_parts(ticket: &str) -> Option<(serde_json::Value, serde_json::Value, String)> {
    let mut parts = ticket.split('.');
    let (h, p, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decode = |b: &str| -> Option<serde_json::Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .filter(serde_json::Value::is_object)
    };
    let header = decode(h)?;
    header.get("alg")?;
    Some((header, decode(p)?, sig.to_string()))
}

/// A forgery built from a real, unused ticket; `Err` says why the kind does not apply to this
/// form of ticket (a JWT kind on an opaque ticket, or the other way round).
pub(super) fn tamper(ticket: &str, kind: TicketTamper) -> Result<String, String> {
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    match (jwt_parts(ticket), kind.for_jwt()) {
        (Some((mut header, mut claims, sig)), true) => {
            let (h, p) = ticket
                .split_once('.')
                .map(|(h, rest)| {
                    (
                        h.to_string(),
                        rest.split('.').next().unwrap_or("").to_string(),
                    )
                })
                .unwrap_or_default();
            Ok(match kind {
                TicketTamper::AlgNone => {
                    header["alg"] = serde_json::json!("none");
                    format!("{}.{p}.", b64(&header))
                }
                TicketTamper::StripSignature => format!("{h}.{p}."),
                TicketTamper::AlterSignature => {
                    let mut chars: Vec<char> = sig.chars().collect();
                    let Some(first) = chars.first_mut() else {
                        return Err("the JWT has no signature to alter".into());
                    };
                    *first = if *first == 'A' { 'B' } else { 'A' };
                    format!("{h}.{p}.{}", chars.into_iter().collect::<String>())
                }
                TicketTamper::ChangeClaims => {
                    claims["sub"] = serde_json::json!("wsaudit-forged-subject");
                    format!("{h}.{}.{sig}", b64(&claims))
                }
                _ => {
                    let exp = claims
                        .get("exp")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0);
                    let later = exp.max(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs()),
                    ) + 86_400;
                    claims["exp"] = serde_json::json!(later);
                    format!("{h}.{}.{sig}", b64(&claims))
                }
            })
        }
        (Some(_), false) => Err(format!(
            "the ticket is a JWT; `{}` forges opaque tickets (the JWT forgeries apply)",
            kind.name()
        )),
        (None, true) => Err(format!(
            "the ticket is opaque, not a JWT; `{}` forges JWTs (the character-level forgeries apply)",
            kind.name()
        )),
        (None, false) => {
            let mut chars: Vec<char> = ticket.chars().collect();
            let forged = match kind {
                TicketTamper::FlipChar => {
                    let Some(last) = chars.last_mut() else {
                        return Err("the ticket is empty".into());
                    };
                    *last = match *last {
                        'a' => 'b',
                        'A' => 'B',
                        '0' => '1',
                        _ => 'a',
                    };
                    chars.into_iter().collect()
                }
                TicketTamper::Truncate => {
                    chars.pop();
                    chars.into_iter().collect()
                }
                _ => ticket
                    .chars()
                    .map(|c| {
                        if c.is_ascii_lowercase() {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect::<String>(),
            };
            if forged == ticket || forged.is_empty() {
                return Err(format!(
                    "`{}` leaves this ticket as it is (or empty)",
                    kind.name()
                ));
            }
            Ok(forged)
        }
    }
}

/// Before a fresh ticket's connection is replaced: the server must have accepted it, or a
/// replay of that ticket proves nothing.
pub(super) async fn confirm_fresh_auth(s: &mut Session) -> StepResult {
    let pending = s
        .current()
        .is_some_and(|l| std::mem::take(&mut l.fresh_auth_pending));
    if !pending || s.channel().is_none() || s.rt().classifier.auth_ok.is_none() {
        return Ok(());
    }
    let deadline = Instant::now() + s.rt().reply_wait;
    loop {
        let r = s.next_reply(deadline).await;
        match r.kind {
            Kind::AuthAccepted => {
                s.log()
                    .note("the fresh ticket was accepted on the first connection");
                return Ok(());
            }
            Kind::Control | Kind::Ack | Kind::Other => {}
            _ => {
                let shown = r.describe(&s.rt().secrets());
                return Err(format!(
                    "the fresh ticket was not accepted on the first connection ({shown}), so \
                     reusing it proves nothing"
                )
                .into());
            }
        }
    }
}

impl Perform for Login {
    /// `login`: the legitimate authentication on the current connection.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let rt = s.rt().clone();
        let log = s.log().clone();
        if rt.target.auth.is_none() {
            log.note("the target has no authentication: nothing to do");
            return Ok(());
        }
        let setup = s.setup().await?;
        let Some(channel) = s.channel() else {
            return Err("no connection is open: the handshake was refused".into());
        };
        let result = log_in(&rt, &log, channel, Some(&setup)).await;
        if let Some(f) = channel.take_fault() {
            s.note_fault(f);
        }
        result?;
        if let Some(link) = s.current() {
            link.last_sent = LastSent::Nothing;
            link.fresh_auth_pending = false;
        }
        Ok(())
    }
}

impl Judge for Authenticated {
    /// `authenticated`: how many of the connections authenticated, each read for its
    /// authentication reply (or, where the target has no `auth.accepted_when`, for the
    /// acknowledgement of a valid message sent now). None authenticating proves nothing.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let rt = s.rt().clone();
        let valid = rt.target.valid_message().map(str::to_string);
        let wanted =
            |name: &str| self.connections.is_empty() || self.connections.iter().any(|c| c == name);
        let judged: Vec<&mut super::session::Link> =
            s.links().iter_mut().filter(|l| wanted(&l.name)).collect();
        if judged.is_empty() {
            return Judgement::Inconclusive("no connection to judge".into());
        }
        let futures = judged.into_iter().map(|link| {
            let rt = rt.clone();
            let valid = valid.clone();
            async move {
                (
                    link.name.clone(),
                    authenticated(&rt, link, valid.as_deref()).await,
                )
            }
        });
        let results = futures_util::future::join_all(futures).await;
        let yes: Vec<&str> = results
            .iter()
            .filter(|(_, r)| r.0)
            .map(|(n, _)| n.as_str())
            .collect();
        let detail: Vec<String> = results
            .iter()
            .map(|(n, (_, why))| format!("{n}: {why}"))
            .collect();
        let total = results.len();
        if yes.len() as u32 > self.at_most {
            Judgement::Broken(format!(
                "{} of {total} connections authenticated (at most {} may): {}",
                yes.len(),
                self.at_most,
                detail.join("; ")
            ))
        } else if yes.is_empty() {
            Judgement::Inconclusive(format!(
                "none of {total} connections authenticated, so the race shows nothing: {}",
                detail.join("; ")
            ))
        } else {
            Judgement::Holds(format!(
                "{} of {total} connections authenticated: {}",
                yes.len(),
                detail.join("; ")
            ))
        }
    }
}

/// Whether one connection authenticated, and the evidence in a few words.
async fn authenticated(
    rt: &TargetRuntime,
    link: &mut super::session::Link,
    valid: Option<&str>,
) -> (bool, String) {
    let secrets = rt.secrets();
    let Some(channel) = link.channel.as_mut() else {
        return (false, "its handshake was refused".into());
    };
    let by_data = rt.classifier.auth_ok.is_none();
    if by_data {
        let Some(valid) = valid else {
            return (false, "the target lists no valid message to try".into());
        };
        if let Err(e) = channel.send_message(valid).await {
            return (false, format!("a valid message could not be sent ({e})"));
        }
    }
    let deadline = Instant::now() + rt.reply_wait;
    loop {
        let r = channel.next(deadline).await;
        match r.kind {
            Kind::AuthAccepted => return (true, "authentication accepted".into()),
            Kind::Ack if by_data => return (true, "a valid message acknowledged".into()),
            Kind::Rejection | Kind::Closed | Kind::Dropped | Kind::Fault => {
                return (false, format!("refused: {}", r.describe(&secrets)));
            }
            Kind::Timeout => return (false, "no acceptance before the deadline".into()),
            Kind::Ack | Kind::Other | Kind::Warning | Kind::Control => {}
        }
    }
}

impl Judge for TicketFlow {
    /// `ticket_flow`: the target's legitimate client authenticates with a ticket from its
    /// ticket endpoint in its first message. A target lacking the ticket flow the policy
    /// requires fails, with what its legitimate client does instead as evidence.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let rt = s.rt().clone();
        let log = s.log().clone();
        let target = &rt.target;
        let uses_tickets = target.auth.as_ref().is_some_and(|a| {
            a.ticket.is_some()
                && a.first_message
                    .as_deref()
                    .is_some_and(|m| m.contains("{{ticket}}"))
        });
        if uses_tickets {
            return Judgement::Holds(
                "the target authenticates with a ticket from its ticket endpoint in the first message"
                    .into(),
            );
        }
        let connect = target.connect.as_ref();
        let how = if target.url.0.query().is_some() {
            "with a credential in its URL"
        } else if connect.is_some_and(|c| !c.headers.is_empty() || !c.cookies.is_empty()) {
            "with long-lived credentials on the handshake (headers or cookies)"
        } else if target
            .auth
            .as_ref()
            .is_some_and(|a| a.first_message.is_some())
        {
            "with a first message that carries no ticket"
        } else {
            "without any credential"
        };
        let evidence = match rt.target.valid_message() {
            None => "it lists no valid message to show what a client gets".to_string(),
            Some(valid) => match logged_in_channel(&rt, &log).await {
                Err(Judgement::Broken(why) | Judgement::Inconclusive(why)) => {
                    format!("its legitimate client could not be tried: {why}")
                }
                Err(other) => format!("its legitimate client could not be tried: {other:?}"),
                Ok((mut channel, setup)) => {
                    let message = client_values(&rt, Some(&setup), None)
                        .render(valid)
                        .unwrap_or_else(|_| valid.to_string());
                    match channel.send_message(&message).await {
                        Err(e) => {
                            format!("connected, but a business message could not be sent: {e}")
                        }
                        Ok(()) => {
                            let deadline = Instant::now() + rt.reply_wait;
                            let mut r = channel.next(deadline).await;
                            while r.kind == Kind::Control {
                                r = channel.next(deadline).await;
                            }
                            format!(
                                "connected, sent a business message with no ticket, and got {}",
                                r.describe(&rt.secrets())
                            )
                        }
                    }
                }
            },
        };
        Judgement::Broken(format!(
            "the policy requires short-lived, single-use tickets, but the target authenticates \
             {how}: {evidence}"
        ))
    }
}

impl Judge for RefusalsAlike {
    /// `refusals_alike`: each named connection's refusal (its error reply, or its close code
    /// and reason, or how its handshake ended), compared: a difference tells a thief whether a
    /// stolen ticket was genuine (used, expired) or never existed.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let rt = s.rt().clone();
        let secrets = rt.secrets();
        let mut seen: Vec<(String, String)> = Vec::new();
        for name in &self.connections {
            let Some(link) = s.link(name) else {
                return Judgement::Inconclusive(format!("no connection named `{name}`"));
            };
            let refusal = match link.channel.as_mut() {
                None => match &link.handshake {
                    super::session::HandshakeSeen::Refused { status } => {
                        format!("handshake refused with HTTP {status}")
                    }
                    other => format!("no connection ({other:?})"),
                },
                Some(channel) => {
                    let deadline = Instant::now() + rt.reply_wait;
                    loop {
                        let r = channel.next(deadline).await;
                        match r.kind {
                            Kind::Control | Kind::Other | Kind::Warning => continue,
                            Kind::Ack | Kind::AuthAccepted => {
                                return Judgement::Inconclusive(format!(
                                    "`{name}` was accepted ({}): the other cases of the control judge that",
                                    r.describe(&secrets)
                                ));
                            }
                            Kind::Rejection => {
                                break format!("error reply {}", r.text().unwrap_or_default());
                            }
                            Kind::Closed => match &r.event {
                                crate::client::Event::Close { code, reason } => {
                                    break format!("close {code:?} `{reason}`");
                                }
                                _ => break "close".to_string(),
                            },
                            Kind::Dropped => break "dropped without a close frame".into(),
                            Kind::Timeout => break "no answer".into(),
                            Kind::Fault => {
                                return Judgement::Inconclusive(r.describe(&secrets));
                            }
                        }
                    }
                }
            };
            seen.push((name.clone(), secrets.redact(&refusal)));
        }
        let shown: Vec<String> = seen.iter().map(|(n, r)| format!("{n}: {r}")).collect();
        let first = seen.first().map(|(_, r)| r.clone()).unwrap_or_default();
        if seen.iter().all(|(_, r)| *r == first) {
            Judgement::Holds(format!("refused alike: {}", shown.join("; ")))
        } else {
            Judgement::Broken(format!(
                "the refusals differ, telling a thief whether a stolen ticket was genuine: {}",
                shown.join("; ")
            ))
        }
    }
}
