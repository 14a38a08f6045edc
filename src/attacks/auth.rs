//! Authentication (ticket and unauthenticated families): `fetch_ticket`, `authenticate` with a
//! fresh, reused, expired, forged or foreign ticket, and the legitimate `login`.

use base64::Engine;
use rand::Rng;
use tokio::time::Instant;

use super::session::{LastSent, Session, StepResult};
use crate::client::Event;
use crate::plan::step::{Authenticate, FetchTicket, SessionChoice, TicketChoice};

impl Session {
    /// `fetch_ticket`: the target's ticket request; ticket and cookies become secrets.
    pub(super) async fn fetch_ticket(&mut self, f: &FetchTicket) -> StepResult {
        let (spec, pointer) = self
            .rt
            .ticket_request()
            .ok_or("the target describes no ticket flow (auth.ticket)")?;
        self.ev.sent(format!("{spec:?}"));
        let ticket = self
            .rt
            .http
            .fetch_ticket(&spec, &pointer, self.rt.target.limits.connect_timeout)
            .await
            .map_err(|e| format!("the ticket request failed: {e}"))?;
        self.rt.register_secret(ticket.value());
        for c in &ticket.set_cookies {
            self.rt.register_secret(c.value());
        }
        let cookies: Vec<String> = ticket.set_cookies.iter().map(|c| c.describe()).collect();
        self.ev.saw(format!(
            "HTTP {}: ticket *** (cookies: {})",
            ticket.status,
            cookies.join(", ")
        ));
        match f.session {
            SessionChoice::Own => self.own_ticket = Some(ticket),
            SessionChoice::Other => self.other_ticket = Some(ticket),
        }
        Ok(())
    }

    /// `authenticate`: the target's first message with the chosen ticket.
    pub(super) async fn authenticate(&mut self, a: &Authenticate) -> StepResult {
        let template = self
            .rt
            .target
            .auth
            .as_ref()
            .and_then(|a| a.first_message.clone())
            .ok_or("the target describes no first message (auth.first_message)")?;
        let ticket = match a.ticket {
            TicketChoice::Fresh => {
                if self.own_ticket.is_none() {
                    self.fetch_ticket(&FetchTicket::default()).await?;
                }
                let t = self
                    .own_ticket
                    .take()
                    .map(|t| t.value().to_string())
                    .unwrap_or_default();
                self.fresh_auth_pending = true;
                t
            }
            TicketChoice::Reused => self
                .used_ticket
                .clone()
                .ok_or("no ticket was used before in this case")?,
            TicketChoice::Expired => self
                .own_ticket
                .as_ref()
                .map(|t| t.value().to_string())
                .ok_or("no ticket was fetched before the wait")?,
            TicketChoice::OtherSession => self
                .other_ticket
                .as_ref()
                .map(|t| t.value().to_string())
                .ok_or("no ticket was fetched for another session")?,
            TicketChoice::Forged => {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            }
        };
        self.used_ticket = Some(ticket.clone());
        let Some(conn) = &self.conn else {
            self.ev
                .note("no connection (the handshake was refused): nothing to authenticate");
            return Ok(());
        };
        conn.add_secret(&ticket);
        let message = template.replace("{{ticket}}", &ticket);
        self.ev
            .sent(format!("first message with a {:?} ticket", a.ticket).to_lowercase());
        conn.send_text(&message)
            .await
            .map_err(|e| format!("cannot send the first message: {e}"))?;
        self.last_sent = LastSent::Auth;
        Ok(())
    }

    /// Before a fresh ticket's connection is replaced: the server must have accepted it, or a
    /// replay of that ticket proves nothing.
    pub(super) async fn confirm_fresh_auth(&mut self) -> StepResult {
        if !std::mem::take(&mut self.fresh_auth_pending) || self.conn.is_none() {
            return Ok(());
        }
        let Some(matcher) = self
            .rt
            .target
            .auth
            .as_ref()
            .and_then(|a| a.accepted_when.clone())
        else {
            return Ok(());
        };
        let deadline = Instant::now() + self.rt.reply_wait;
        loop {
            match self.next_event(deadline).await {
                Event::Text(t) if matcher.matches(&t) => {
                    self.ev
                        .note("the fresh ticket was accepted on the first connection");
                    return Ok(());
                }
                Event::Ping(_)
                | Event::Pong(_)
                | Event::Text(_)
                | Event::Binary(_)
                | Event::Skipped { .. } => {}
                other => {
                    return Err(format!(
                        "the fresh ticket was not accepted on the first connection ({}), so reusing it proves nothing",
                        other.describe(&self.rt.secrets())
                    ).into());
                }
            }
        }
    }

    /// `login`: the legitimate authentication, whatever the target's flow is.
    pub(super) async fn login(&mut self) -> StepResult {
        let auth = self.rt.target.auth.clone();
        let Some(auth) = auth else {
            self.ev
                .note("the target has no authentication: nothing to do");
            return Ok(());
        };
        if self.conn.is_none() {
            return Err("no connection is open: the handshake was refused".into());
        }
        if auth.ticket.is_some() && auth.first_message.is_some() {
            self.fetch_ticket(&FetchTicket::default()).await?;
            self.authenticate(&Authenticate {
                ticket: TicketChoice::Fresh,
            })
            .await?;
            self.fresh_auth_pending = false;
        }
        let Some(matcher) = auth.accepted_when else {
            self.last_sent = LastSent::Nothing;
            return Ok(());
        };
        let deadline = Instant::now() + self.rt.reply_wait;
        loop {
            match self.next_event(deadline).await {
                Event::Text(t) if matcher.matches(&t) => {
                    self.ev.note("logged in");
                    self.last_sent = LastSent::Nothing;
                    return Ok(());
                }
                Event::Ping(_) | Event::Pong(_) | Event::Skipped { .. } => {}
                Event::Text(_) | Event::Binary(_) => {}
                other => {
                    return Err(format!(
                        "the legitimate login was not accepted: {}",
                        other.describe(&self.rt.secrets())
                    )
                    .into());
                }
            }
        }
    }
}
