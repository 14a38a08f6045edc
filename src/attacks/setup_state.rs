//! What a case's setup requests produced: the values they extracted (`{{setup.NAME}}`) and the
//! cookie jar their responses filled, sent on the upgrade where RFC 6265 says they belong.
//! Apart from running the requests (`setup.rs`), so that the connect profile can read it.

use std::collections::BTreeMap;

use url::Url;

use crate::client::HttpResponse;

/// What one case's setup requests produced.
#[derive(Debug, Default)]
pub struct SetupState {
    pub(super) values: BTreeMap<String, String>,
    jar: cookie_store::CookieStore,
    /// The last response, carrying every `Set-Cookie` of the whole setup.
    pub(super) cookies_response: Option<HttpResponse>,
}

impl SetupState {
    /// The value extracted as `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The jar's cookies that belong on a request to `url` (a `ws`/`wss` URL is matched as the
    /// `http`/`https` URL of the same host and path), as name and value.
    pub fn cookies_for(&self, url: &Url) -> Vec<(String, String)> {
        let Some(http) = crate::client::http_url(url) else {
            return Vec::new();
        };
        self.jar
            .get_request_values(&http)
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// The setup's last response with the `Set-Cookie` headers of all its responses: what the
    /// cookie check judges when the session cookie comes from a login rather than a ticket
    /// endpoint.
    pub fn cookies_response(&self) -> Option<&HttpResponse> {
        self.cookies_response.as_ref()
    }

    /// Whether the jar holds any cookie.
    pub fn has_cookies(&self) -> bool {
        self.jar.iter_unexpired().next().is_some()
    }

    /// Keeps the cookies a response from `url` set.
    pub(super) fn store(&mut self, url: &Url, set_cookie: &[&str]) {
        let cookies = set_cookie
            .iter()
            .filter_map(|h| cookie_store::RawCookie::parse(h.to_string()).ok());
        self.jar.store_response_cookies(cookies, url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_sends_cookies_only_where_they_belong() {
        let mut s = SetupState::default();
        let login = Url::parse("https://app.example.com/login").expect("url");
        s.store(
            &login,
            &[
                "session=abc; Path=/; Secure; HttpOnly",
                "scoped=1; Path=/api",
                "wide=2; Domain=example.com; Path=/",
            ],
        );
        let on = |u: &str| {
            let mut c = s.cookies_for(&Url::parse(u).expect("url"));
            c.sort();
            c.into_iter().map(|(n, _)| n).collect::<Vec<_>>()
        };
        assert_eq!(on("wss://app.example.com/ws"), vec!["session", "wide"]);
        // Secure cookies never travel in plaintext; other hosts get only domain cookies.
        assert_eq!(on("ws://app.example.com/ws"), vec!["wide"]);
        assert_eq!(on("wss://evil.example/ws"), Vec::<String>::new());
        assert_eq!(on("wss://other.example.com/ws"), vec!["wide"]);
        assert!(s.has_cookies());
    }
}
