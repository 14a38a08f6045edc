//! The session cookie set by the ticket endpoint: `Secure; HttpOnly; SameSite=Strict` so a
//! cross-site page can neither read it nor make the browser send it on a hijacking handshake.

use crate::config::policy::SameSite;

use super::weaken::{Defence, Weakened};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "wsaudit_session";

/// The `Set-Cookie` value for a session.
pub fn set_cookie(session: &str, samesite: SameSite, weakened: &Weakened) -> String {
    let mut value = format!("{SESSION_COOKIE}={session}; Path=/; Secure; HttpOnly");
    if !weakened.is(Defence::CookieSamesite) {
        value.push_str(match samesite {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
        });
    }
    value
}

/// The session named by a request's `Cookie` headers, if any.
pub fn session_from_cookies<'a>(headers: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    headers
        .filter_map(|h| std::str::from_utf8(h).ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, v)| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes_follow_the_policy() {
        let strict = set_cookie("abc", SameSite::Strict, &Weakened::none());
        assert!(
            strict.contains("Secure")
                && strict.contains("HttpOnly")
                && strict.ends_with("SameSite=Strict")
        );
        let weak = set_cookie(
            "abc",
            SameSite::Strict,
            &Weakened::of([Defence::CookieSamesite]),
        );
        assert!(!weak.contains("SameSite"));
        let headers: [&[u8]; 1] = [b"a=1; wsaudit_session=xyz"];
        assert_eq!(
            session_from_cookies(headers.into_iter()),
            Some("xyz".into())
        );
    }
}
