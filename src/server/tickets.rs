//! Short-lived, single-use, random tickets issued by `POST /ws/ticket` and redeemed by the first
//! WebSocket message. Replay, expiry, validation and session binding are separate weaken switches.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::Rng;

use super::flaw::{Flaw, Flaws};
use super::weaken::{Defence, Weakened};

/// Upper bound on tickets kept, so a client minting tickets in a loop cannot exhaust memory.
const MAX_TICKETS: usize = 100_000;

/// Why a ticket did not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRefusal {
    /// Never issued (forged, garbage, or from another server).
    Unknown,
    /// Already redeemed once.
    Replayed,
    /// Older than the TTL.
    Expired,
    /// Issued to a different session than the connection's cookie names.
    WrongSession,
}

impl TicketRefusal {
    /// Short reason for the log and the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            TicketRefusal::Unknown => "ticket_unknown",
            TicketRefusal::Replayed => "ticket_replayed",
            TicketRefusal::Expired => "ticket_expired",
            TicketRefusal::WrongSession => "ticket_wrong_session",
        }
    }
}

struct Issued {
    at: Instant,
    used: bool,
    session: String,
}

/// Issued tickets and sessions.
pub struct TicketStore {
    ttl: Duration,
    single_use: bool,
    tickets: Mutex<HashMap<String, Issued>>,
    sessions: Mutex<HashMap<String, Instant>>,
    /// Ticket flaws in force (`ticket-ttl-loose`, `ticket-prefix`, `ticket-jwt-unverified`).
    flaws: Flaws,
    /// The key JWT tickets are signed with (flaw `ticket-jwt-unverified`).
    jwt_key: [u8; 32],
}

/// 128 random bits or more, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes.max(16)];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl TicketStore {
    /// A store issuing tickets valid for `ttl`.
    pub fn new(ttl: Duration, single_use: bool) -> Self {
        Self {
            ttl,
            single_use,
            tickets: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            flaws: Flaws::none(),
            jwt_key: rand::random(),
        }
    }

    /// This store with the ticket flaws of `flaws` in force.
    pub fn with_flaws(mut self, flaws: &Flaws) -> Self {
        self.flaws = flaws.clone();
        self
    }

    /// The TTL tickets are issued with.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session (the cookie's value) or keeps a known one.
    pub fn session(&self, presented: Option<&str>) -> String {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = presented.filter(|s| sessions.contains_key(*s)) {
            return s.to_string();
        }
        if sessions.len() >= MAX_TICKETS {
            sessions.clear();
        }
        let id = random_token(16);
        sessions.insert(id.clone(), Instant::now());
        id
    }

    /// Whether a cookie value names a session this server started.
    pub fn is_session(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
    }

    /// Issues a new ticket bound to `session` (a JWT carrying its id under flaw
    /// `ticket-jwt-unverified`).
    pub fn issue(&self, session: &str) -> String {
        let ticket = random_token(32);
        let handed_out = if self.flaws.is(Flaw::TicketJwtUnverified) {
            self.jwt(&ticket, session)
        } else {
            ticket.clone()
        };
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        if tickets.len() >= MAX_TICKETS {
            // Expired and used tickets go first; a full store of live ones is cleared outright.
            let ttl = self.ttl;
            tickets.retain(|_, t| !t.used && t.at.elapsed() <= ttl);
            if tickets.len() >= MAX_TICKETS {
                tickets.clear();
            }
        }
        tickets.insert(
            ticket.clone(),
            Issued {
                at: Instant::now(),
                used: false,
                session: session.to_string(),
            },
        );
        handed_out
    }

    /// A signed HS256 JWT carrying a ticket id (`jti`), its session and expiry.
    fn jwt(&self, id: &str, session: &str) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + self.ttl.as_secs().max(1);
        let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = b64(serde_json::json!({ "jti": id, "sid": session, "exp": exp })
            .to_string()
            .as_bytes());
        let signing = format!("{header}.{claims}");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.jwt_key);
        let sig = ring::hmac::sign(&key, signing.as_bytes());
        format!("{signing}.{}", b64(sig.as_ref()))
    }

    /// The stored ticket a presented one names, as this store's flaws read it; with flaw
    /// `ticket-jwt-unverified` also its own (unverified) expiry claim.
    fn resolve(
        &self,
        presented: &str,
        tickets: &HashMap<String, Issued>,
    ) -> Option<(String, Option<u64>)> {
        if self.flaws.is(Flaw::TicketJwtUnverified) {
            // The claims are decoded and trusted; the signature is never checked.
            let payload = presented.split('.').nth(1)?;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .ok()?;
            let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            let jti = claims.get("jti")?.as_str()?.to_string();
            let exp = claims.get("exp").and_then(serde_json::Value::as_u64);
            return tickets.contains_key(&jti).then_some((jti, exp));
        }
        if tickets.contains_key(presented) {
            return Some((presented.to_string(), None));
        }
        if self.flaws.is(Flaw::TicketPrefix) && presented.len() >= 8 {
            // A lookup by prefix (`LIKE 'ticket%'`): a truncated ticket finds the real one.
            return tickets
                .keys()
                .find(|k| k.starts_with(presented))
                .map(|k| (k.clone(), None));
        }
        None
    }

    /// Every ticket and session id this store still holds (issued and not yet evicted), so a
    /// test can check that none of them reaches any output of a run against this server.
    pub fn issued(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        all.extend(
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned(),
        );
        all
    }

    /// Redeems a ticket for a connection whose cookie named `session` (if any): checks it and
    /// marks it used in one step, under one lock.
    pub fn redeem(
        &self,
        ticket: &str,
        session: Option<&str>,
        weakened: &Weakened,
    ) -> Result<(), TicketRefusal> {
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        let key = self.check_locked(&tickets, ticket, session, weakened)?;
        if let Some(issued) = key.and_then(|k| tickets.get_mut(&k)) {
            issued.used = true;
        }
        Ok(())
    }

    /// Checks a ticket without marking it used; `Ok` holds the stored ticket to mark with
    /// [`TicketStore::mark_used`] (`None` when nothing is stored: validation weakened). Only
    /// flaw `ticket-race` splits the two steps.
    pub fn check(
        &self,
        ticket: &str,
        session: Option<&str>,
        weakened: &Weakened,
    ) -> Result<Option<String>, TicketRefusal> {
        let tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        self.check_locked(&tickets, ticket, session, weakened)
    }

    /// Marks a checked ticket used.
    pub fn mark_used(&self, key: &str) {
        if let Some(t) = self
            .tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(key)
        {
            t.used = true;
        }
    }

    fn check_locked(
        &self,
        tickets: &HashMap<String, Issued>,
        ticket: &str,
        session: Option<&str>,
        weakened: &Weakened,
    ) -> Result<Option<String>, TicketRefusal> {
        if weakened.is(Defence::TicketValidation) {
            // A careless server that trusts whatever the client calls a ticket.
            return if ticket.is_empty() {
                Err(TicketRefusal::Unknown)
            } else {
                Ok(None)
            };
        }
        let (key, claimed_exp) = self
            .resolve(ticket, tickets)
            .ok_or(TicketRefusal::Unknown)?;
        let issued = tickets.get(&key).ok_or(TicketRefusal::Unknown)?;
        if issued.used && self.single_use && !weakened.is(Defence::TicketReplay) {
            return Err(TicketRefusal::Replayed);
        }
        let expired = match claimed_exp {
            // Flaw `ticket-jwt-unverified`: the token's own (unverified) claim decides.
            Some(exp) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                now > exp
            }
            None => {
                let ttl = if self.flaws.is(Flaw::TicketTtlLoose) {
                    self.ttl * 3
                } else {
                    self.ttl
                };
                issued.at.elapsed() > ttl
            }
        };
        if expired && !weakened.is(Defence::TicketExpiry) {
            return Err(TicketRefusal::Expired);
        }
        if let Some(s) = session
            && s != issued.session
            && !weakened.is(Defence::TicketBinding)
        {
            return Err(TicketRefusal::WrongSession);
        }
        Ok(Some(key))
    }
}

/// SignalR connection tokens: issued by a negotiation, redeemed once by the WebSocket
/// upgrade that follows, forgotten after a minute (and never more than a bounded number held).
#[derive(Default)]
pub struct Negotiations {
    tokens: Mutex<HashMap<String, Instant>>,
}

/// How long a negotiated connection token stays valid.
const NEGOTIATION_TTL: Duration = Duration::from_secs(60);
/// Connection tokens held at most: a client negotiating in a loop cannot grow the server.
const NEGOTIATIONS_MAX: usize = 10_000;

impl Negotiations {
    /// A fresh connection token.
    pub fn issue(&self) -> String {
        let token = random_token(16);
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, at| at.elapsed() < NEGOTIATION_TTL);
        if tokens.len() >= NEGOTIATIONS_MAX
            && let Some(oldest) = tokens
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
        {
            tokens.remove(&oldest);
        }
        tokens.insert(token.clone(), Instant::now());
        token
    }

    /// Whether `token` was issued, is fresh and unused; it is used up.
    pub fn redeem(&self, token: &str) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .remove(token)
            .is_some_and(|at| at.elapsed() < NEGOTIATION_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_single_use_bound_and_expire() {
        let store = TicketStore::new(Duration::from_millis(50), true);
        let w = Weakened::none();
        let s = store.session(None);
        let t = store.issue(&s);
        assert!(t.len() >= 43, "at least 256 bits of randomness in base64");
        assert_eq!(
            store.redeem(&t, Some("other"), &w),
            Err(TicketRefusal::WrongSession)
        );
        assert_eq!(store.redeem(&t, Some(&s), &w), Ok(()));
        assert_eq!(store.redeem(&t, None, &w), Err(TicketRefusal::Replayed));
        assert_eq!(
            store.redeem(&t, None, &Weakened::of([Defence::TicketReplay])),
            Ok(())
        );
        let t2 = store.issue(&s);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(store.redeem(&t2, None, &w), Err(TicketRefusal::Expired));
        assert_eq!(
            store.redeem("forged", None, &w),
            Err(TicketRefusal::Unknown)
        );
        assert_eq!(
            store.redeem("forged", None, &Weakened::of([Defence::TicketValidation])),
            Ok(())
        );
    }
}
