//! Authentication: the ticket must arrive in the first message; the URL query and the session
//! cookie never authenticate; a connection that has not authenticated in time is closed.
//! Weaken switches: `url-token`, `cookie-auth`, `auth-required`, `unauth-timeout`.

use serde_json::Value;
use subtle::ConstantTimeEq;

use super::tickets::TicketStore;
use super::weaken::{Defence, Weakened};

/// Outcome of a connection's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstMessage {
    /// A valid ticket: the connection is authenticated.
    Authenticated,
    /// An auth message that failed, with the logged reason.
    Refused(&'static str),
    /// Not an auth message at all.
    NotAuth,
}

/// Judges the first message: `{"type":"auth","ticket":"..."}`.
pub fn first_message(
    text: &str,
    store: &TicketStore,
    session: Option<&str>,
    weakened: &Weakened,
) -> FirstMessage {
    match auth_ticket(text) {
        Err(judged) => judged,
        Ok(ticket) => redeem(&ticket, store, session, weakened),
    }
}

/// Redeems a ticket, whatever carried it (a raw first message, a Socket.IO CONNECT, a STOMP
/// `passcode`...).
pub fn redeem(
    ticket: &str,
    store: &TicketStore,
    session: Option<&str>,
    weakened: &Weakened,
) -> FirstMessage {
    match store.redeem(ticket, session, weakened) {
        Ok(()) => FirstMessage::Authenticated,
        Err(r) => FirstMessage::Refused(r.reason()),
    }
}

/// The ticket of an auth message, or how a first message that carries none is judged.
pub fn auth_ticket(text: &str) -> Result<String, FirstMessage> {
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(text) else {
        return Err(FirstMessage::NotAuth);
    };
    if obj.get("type").and_then(Value::as_str) != Some("auth") {
        return Err(FirstMessage::NotAuth);
    }
    match obj.remove("ticket") {
        Some(Value::String(ticket)) => Ok(ticket),
        _ => Err(FirstMessage::Refused("auth_malformed")),
    }
}

/// [`redeem`] as a server whose single use is not atomic does it (flaw `ticket-race`): the
/// ticket is checked, and marked used only a moment later, so a concurrent redemption of the
/// same ticket passes the check too.
pub async fn redeem_racy(
    ticket: &str,
    store: &TicketStore,
    session: Option<&str>,
    weakened: &Weakened,
) -> FirstMessage {
    match store.check(ticket, session, weakened) {
        Ok(key) => {
            // The "database round trip" between the read and the write.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if let Some(k) = key {
                store.mark_used(&k);
            }
            FirstMessage::Authenticated
        }
        Err(r) => FirstMessage::Refused(r.reason()),
    }
}

/// What the handshake URL's query carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlCredential {
    /// No credential-looking parameter.
    None,
    /// A credential parameter that was (correctly) ignored.
    Ignored,
    /// A credential that authenticated (only with `url-token` weakened).
    Accepted,
}

/// Compares secrets in constant time.
pub fn secret_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Looks at the query string of the handshake URL for the given credential parameters (the
/// policy's `auth.no_url_tokens` params), so a policy's own names can be shown to be read.
pub fn url_credential<S: AsRef<str>>(
    query: Option<&str>,
    params: &[S],
    store: &TicketStore,
    api_token: &str,
    weakened: &Weakened,
) -> UrlCredential {
    let Some(query) = query else {
        return UrlCredential::None;
    };
    let mut seen = false;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if !params.iter().any(|p| p.as_ref() == k) {
            continue;
        }
        seen = true;
        if weakened.is(Defence::UrlToken)
            && (secret_eq(&v, api_token) || store.redeem(&v, None, &Weakened::none()).is_ok())
        {
            return UrlCredential::Accepted;
        }
    }
    if seen {
        UrlCredential::Ignored
    } else {
        UrlCredential::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const DEFAULTS: &[&str] = crate::config::policy::UrlTokenParams::DEFAULT_PARAMS;

    #[test]
    fn only_the_first_message_authenticates() {
        let store = TicketStore::new(Duration::from_secs(30), true);
        let w = Weakened::none();
        let s = store.session(None);
        let t = store.issue(&s);
        let q = format!("ticket={t}");
        assert_eq!(
            url_credential(Some(&q), DEFAULTS, &store, "api", &w),
            UrlCredential::Ignored
        );
        let msg = format!(r#"{{"type":"auth","ticket":"{t}"}}"#);
        assert_eq!(
            first_message(&msg, &store, None, &w),
            FirstMessage::Authenticated
        );
        assert_eq!(
            first_message(&msg, &store, None, &w),
            FirstMessage::Refused("ticket_replayed")
        );
        assert_eq!(
            first_message(r#"{"type":"payment"}"#, &store, None, &w),
            FirstMessage::NotAuth
        );
        let weak = Weakened::of([Defence::UrlToken]);
        assert_eq!(
            url_credential(Some("access_token=api"), DEFAULTS, &store, "api", &weak),
            UrlCredential::Accepted
        );
    }

    #[test]
    fn the_given_parameter_names_are_the_ones_read() {
        let store = TicketStore::new(Duration::from_secs(30), true);
        let weak = Weakened::of([Defence::UrlToken]);
        let custom = ["sid".to_string()];
        assert_eq!(
            url_credential(Some("sid=api"), &custom, &store, "api", &weak),
            UrlCredential::Accepted
        );
        assert_eq!(
            url_credential(Some("token=api"), &custom, &store, "api", &weak),
            UrlCredential::None
        );
        assert_eq!(
            url_credential(Some("sid=api"), &custom, &store, "api", &Weakened::none()),
            UrlCredential::Ignored
        );
    }
}
