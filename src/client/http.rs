//! HTTP requests for tickets and cookies, with reqwest over the same rustls configuration as
//! the WebSocket client: deadlines, a redirect limit (a loop ends with a clear error), bounded
//! bodies, and errors that never carry the Authorization value, a cookie or a ticket.

use std::fmt;
use std::time::Duration;

use super::evidence::preview;
use super::tls::TlsClient;
use super::{ClientError, Deadline, Phase, display_url};
use crate::config::Secrets;

/// How an [`HttpClient`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// Most body bytes kept.
    pub body_limit: usize,
    /// Whether a redirect to another origin is followed (without the request's credential
    /// headers). Off for every request of an audit: its ticket, login and setup requests carry
    /// credentials, which go only to the origins the target file names.
    pub cross_origin_redirects: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_redirects: 5,
            body_limit: 1024 * 1024,
            cross_origin_redirects: false,
        }
    }
}

/// A redirect an [`HttpClient`] followed, for evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The redirect's status (301, 302, 303, 307, 308).
    pub status: u16,
    /// Where the request went, query hidden.
    pub from: String,
    /// Where it was sent on to, query hidden.
    pub to: String,
}

impl fmt::Display for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} from {} to {}", self.status, self.from, self.to)
    }
}

/// Header names whose values are always secret.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];
/// Body characters shown in errors.
const ERROR_BODY_CHARS: usize = 200;

/// One HTTP request, as a target file describes the ticket endpoint.
#[derive(Clone)]
pub struct HttpRequestSpec {
    /// Method (`GET`, `POST`...).
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<String>,
    redactor: Secrets,
}

impl fmt::Debug for HttpRequestSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = url::Url::parse(&self.url)
            .map_or_else(|_| "<invalid url>".to_string(), |u| display_url(&u));
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        write!(
            f,
            "HttpRequestSpec({} {url}, headers {names:?})",
            self.method
        )
    }
}

impl HttpRequestSpec {
    /// A request with no headers or body.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            redactor: Secrets::new(),
        }
    }

    /// Adds a header; values of Authorization, Cookie and API-key headers become secrets
    /// (the credential after `Bearer ` too).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if SECRET_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            self.redactor.register(value);
            if let Some((_, credential)) = value.split_once(' ') {
                self.redactor.register(credential.trim());
            }
        }
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_string());
        self
    }

    /// Marks a value as secret (a `${VAR}` the target interpolated).
    pub fn secret(mut self, secret: &str) -> Self {
        self.redactor.register(secret);
        self
    }

    /// The redactor holding this request's secrets.
    pub fn redactor(&self) -> &Secrets {
        &self.redactor
    }
}

/// One `Set-Cookie` header, parsed into the attributes the cookie controls judge.
#[derive(Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// Cookie name.
    pub name: String,
    value: String,
    /// `Secure` attribute present.
    pub secure: bool,
    /// `HttpOnly` attribute present.
    pub http_only: bool,
    /// `SameSite` value as sent (`Strict`, `Lax`, `None`), if any.
    pub same_site: Option<String>,
    /// `Path` attribute.
    pub path: Option<String>,
    /// `Domain` attribute.
    pub domain: Option<String>,
    /// `Max-Age` attribute.
    pub max_age: Option<String>,
    /// `Expires` attribute.
    pub expires: Option<String>,
}

impl fmt::Debug for SetCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetCookie")
            .field("name", &self.name)
            .field("value", &"***")
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("max_age", &self.max_age)
            .field("expires", &self.expires)
            .finish()
    }
}

impl SetCookie {
    /// The cookie's value (a session id: a secret, never print it).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// `name=value`, for a `Cookie` request header.
    pub fn pair(&self) -> String {
        format!("{}={}", self.name, self.value)
    }

    /// A redacted description of the attributes, for evidence.
    pub fn describe(&self) -> String {
        let mut s = format!("{}=***", self.name);
        for (on, name) in [(self.secure, "Secure"), (self.http_only, "HttpOnly")] {
            if on {
                s.push_str("; ");
                s.push_str(name);
            }
        }
        if let Some(v) = &self.same_site {
            s.push_str(&format!("; SameSite={v}"));
        }
        s
    }
}

/// Parses one `Set-Cookie` value; `None` when it has no `name=value` pair.
pub fn parse_set_cookie(header: &str) -> Option<SetCookie> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut cookie = SetCookie {
        name: name.to_string(),
        value: value.trim().to_string(),
        secure: false,
        http_only: false,
        same_site: None,
        path: None,
        domain: None,
        max_age: None,
        expires: None,
    };
    for attr in parts {
        let (key, val) = match attr.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
            None => (attr.trim(), None),
        };
        match key.to_ascii_lowercase().as_str() {
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => cookie.same_site = val,
            "path" => cookie.path = val,
            "domain" => cookie.domain = val,
            "max-age" => cookie.max_age = val,
            "expires" => cookie.expires = val,
            _ => {}
        }
    }
    Some(cookie)
}

/// Every `Set-Cookie` header of a header list (names in any case), parsed.
pub fn set_cookies(headers: &[(String, String)]) -> Vec<SetCookie> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| parse_set_cookie(v))
        .collect()
}

/// An HTTP response with its body bounded.
#[derive(Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, values lossily decoded.
    pub headers: Vec<(String, String)>,
    /// The body, at most [`HttpOptions::body_limit`] bytes.
    pub body: Vec<u8>,
    /// Whether the body went past the limit (and was cut).
    pub body_truncated: bool,
    /// The parsed `Set-Cookie` headers.
    pub set_cookies: Vec<SetCookie>,
    /// The URL the response came from, after redirects (a page scan resolves against it).
    pub url: url::Url,
    /// The redirects followed on the way, in order.
    pub redirects: Vec<Redirect>,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may hold a ticket: only its size is shown.
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("body_truncated", &self.body_truncated)
            .field("set_cookies", &self.set_cookies)
            .finish_non_exhaustive()
    }
}

/// A ticket from the ticket endpoint, with the cookies that came with it.
#[derive(Clone)]
pub struct Ticket {
    value: String,
    /// The response status.
    pub status: u16,
    /// The `Set-Cookie` headers of the response.
    pub set_cookies: Vec<SetCookie>,
    /// The redirects followed to get it.
    pub redirects: Vec<Redirect>,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("value", &"***")
            .field("status", &self.status)
            .field("set_cookies", &self.set_cookies)
            .field("redirects", &self.redirects)
            .finish()
    }
}

impl Ticket {
    /// The ticket (a secret: register it with the transcript, never print it).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// A `Cookie` header value replaying every cookie received, if any.
    pub fn cookie_header(&self) -> Option<String> {
        (!self.set_cookies.is_empty()).then(|| {
            self.set_cookies
                .iter()
                .map(SetCookie::pair)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// A reqwest client sharing the WebSocket client's TLS configuration.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    options: HttpOptions,
}

impl HttpClient {
    /// Builds the client: no proxy (the WebSocket side uses none either), no `Referer` (it
    /// would carry a query credential to wherever a redirect points), and redirects followed
    /// here rather than by reqwest, so each is checked against the origin and recorded.
    pub fn new(tls: &TlsClient, options: HttpOptions) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls.rustls_config())
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .no_proxy()
            .user_agent(concat!("wsaudit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::TlsConfig(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client, options })
    }

    /// Sends a request and reads its body up to the limit, all within `timeout`. Any status is
    /// `Ok`: the caller judges it.
    pub async fn send(
        &self,
        spec: &HttpRequestSpec,
        timeout: Duration,
    ) -> Result<HttpResponse, ClientError> {
        let deadline = Deadline::after(timeout);
        let url = url::Url::parse(&spec.url).map_err(|e| ClientError::InvalidUrl {
            url: spec.redactor.preview(spec.url.as_bytes(), 80),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ClientError::InvalidUrl {
                url: display_url(&url),
                reason: "an HTTP request needs an http:// or https:// URL".into(),
            });
        }
        let shown_url = display_url(&url);
        let method = reqwest::Method::from_bytes(spec.method.as_bytes()).map_err(|_| {
            ClientError::InvalidUrl {
                url: shown_url.clone(),
                reason: format!(
                    "invalid HTTP method `{}`",
                    preview(spec.method.as_bytes(), 20)
                ),
            }
        })?;
        let failed = |e: reqwest::Error, step: Phase| {
            reqwest_error(e, step, &shown_url, &deadline, &spec.redactor)
        };
        let mut redirects = Vec::new();
        let (mut method, mut url, mut body) = (method, url, spec.body.clone());
        let mut headers: Vec<&(String, String)> = spec.headers.iter().collect();
        let mut response = loop {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .timeout(deadline.remaining());
            for (name, value) in &headers {
                request = request.header(name.as_str(), value.as_str());
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = deadline
                .run(Phase::HttpRequest, async {
                    request
                        .send()
                        .await
                        .map_err(|e| failed(e, Phase::HttpRequest))
                })
                .await?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            let next = match (status, location) {
                (301 | 302 | 303 | 307 | 308, Some(location)) => url.join(location).ok(),
                _ => None,
            };
            let Some(next) = next else { break response };
            let redirect = Redirect {
                status,
                from: display_url(&url),
                to: display_url(&next),
            };
            if redirects.len() == self.options.max_redirects {
                return Err(ClientError::Http {
                    url: shown_url.clone(),
                    reason: format!(
                        "gave up after {} redirects (a redirect loop?); the last: {redirect}",
                        redirects.len()
                    ),
                });
            }
            let same_origin = next.origin() == url.origin();
            if !same_origin && !self.options.cross_origin_redirects {
                return Err(ClientError::CrossOriginRedirect {
                    url: shown_url.clone(),
                    redirects,
                    refused: redirect,
                });
            }
            if !matches!(next.scheme(), "http" | "https") {
                return Err(ClientError::Http {
                    url: shown_url.clone(),
                    reason: format!("{redirect}: not an http(s) URL, not followed"),
                });
            }
            if !same_origin {
                // As a browser does: credentials stay with the origin they were given for.
                headers.retain(|(n, _)| !SECRET_HEADERS.iter().any(|h| n.eq_ignore_ascii_case(h)));
            }
            // RFC 9110 15.4: 303 turns any method into GET; 301 and 302 turn a POST into GET
            // (what clients do); 307 and 308 keep method and body.
            if status == 303 || (matches!(status, 301 | 302) && method == reqwest::Method::POST) {
                if method != reqwest::Method::HEAD {
                    method = reqwest::Method::GET;
                }
                body = None;
                headers.retain(|(n, _)| {
                    !n.eq_ignore_ascii_case("content-type")
                        && !n.eq_ignore_ascii_case("content-length")
                });
            }
            redirects.push(redirect);
            url = next;
        };
        let status = response.status().as_u16();
        let final_url = response.url().clone();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let limit = self.options.body_limit;
        let mut body = Vec::new();
        let mut body_truncated = false;
        deadline
            .run(Phase::ReadBody, async {
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| failed(e, Phase::ReadBody))?
                {
                    let room = limit - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        body_truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(())
            })
            .await?;
        Ok(HttpResponse {
            status,
            set_cookies: set_cookies(&headers),
            headers,
            body,
            body_truncated,
            url: final_url,
            redirects,
        })
    }

    /// Requests a ticket and extracts it at the JSON `pointer` (a string, or a number as text).
    ///
    /// A non-2xx status is [`ClientError::HttpStatus`] with a redacted body prefix; a missing
    /// ticket is [`ClientError::TicketMissing`] naming the keys present, never their values.
    pub async fn fetch_ticket(
        &self,
        spec: &HttpRequestSpec,
        pointer: &str,
        timeout: Duration,
    ) -> Result<Ticket, ClientError> {
        let response = self.send(spec, timeout).await?;
        let shown_url =
            url::Url::parse(&spec.url).map_or_else(|_| String::new(), |u| display_url(&u));
        if !(200..300).contains(&response.status) {
            return Err(ClientError::HttpStatus {
                status: response.status,
                url: shown_url,
                body_prefix: spec.redactor.preview(&response.body, ERROR_BODY_CHARS),
            });
        }
        let missing = |reason: String| ClientError::TicketMissing {
            pointer: pointer.to_string(),
            reason,
        };
        let json: serde_json::Value = serde_json::from_slice(&response.body).map_err(|e| {
            missing(format!(
                "the body is not JSON ({e}){}",
                if response.body_truncated {
                    "; it was cut at the body limit"
                } else {
                    ""
                }
            ))
        })?;
        let value = match json.pointer(pointer) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(missing(format!(
                    "the value there is {}, not a non-empty string",
                    json_kind(other)
                )));
            }
            None => {
                let keys = match &json {
                    serde_json::Value::Object(m) => {
                        let names: Vec<String> = m
                            .keys()
                            .take(20)
                            .map(|k| spec.redactor.preview(k.as_bytes(), 40))
                            .collect();
                        format!("top-level keys are [{}]", names.join(", "))
                    }
                    other => format!("the body is {}", json_kind(other)),
                };
                return Err(missing(format!("nothing there; {keys}")));
            }
        };
        Ok(Ticket {
            value,
            status: response.status,
            set_cookies: response.set_cookies,
            redirects: response.redirects,
        })
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "an empty string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A typed, redacted error from reqwest's: the URL is dropped from its text (it may hold a
/// token) and the source chain is spelled out, since the top-level text alone says little.
fn reqwest_error(
    e: reqwest::Error,
    step: Phase,
    shown_url: &str,
    deadline: &Deadline,
    redactor: &Secrets,
) -> ClientError {
    if e.is_timeout() {
        return ClientError::Timeout {
            step,
            budget: deadline.budget,
        };
    }
    let reason = {
        let e = e.without_url();
        let mut parts = vec![e.to_string()];
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            source = s.source();
        }
        redactor.redact(&parts.join(": "))
    };
    ClientError::Http {
        url: shown_url.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_attributes_are_parsed_case_insensitively() {
        let c =
            parse_set_cookie("sid=abc; Path=/; secure; HTTPONLY; SameSite=Strict").expect("cookie");
        assert_eq!((c.name.as_str(), c.value()), ("sid", "abc"));
        assert!(c.secure && c.http_only);
        assert_eq!(c.same_site.as_deref(), Some("Strict"));
        assert_eq!(c.path.as_deref(), Some("/"));
        assert!(!format!("{c:?}").contains("abc"));
        assert_eq!(c.describe(), "sid=***; Secure; HttpOnly; SameSite=Strict");
        let bare = parse_set_cookie("a=1").expect("cookie");
        assert!(!bare.secure && !bare.http_only && bare.same_site.is_none());
        assert!(parse_set_cookie("novalue").is_none());
        assert!(parse_set_cookie("=x").is_none());
        let all = set_cookies(&[
            ("Set-Cookie".into(), "a=1".into()),
            ("content-type".into(), "x".into()),
            ("set-cookie".into(), "b=2; Secure".into()),
        ]);
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn credentials_in_headers_become_secrets() {
        let spec = HttpRequestSpec::new("POST", "https://h.example/t?k=v")
            .header("Authorization", "Bearer TOKEN123")
            .header("Accept", "application/json");
        assert_eq!(spec.redactor().redact("got TOKEN123"), "got ***");
        let shown = format!("{spec:?}");
        assert!(
            !shown.contains("TOKEN123") && !shown.contains("k=v"),
            "{shown}"
        );
        let t = Ticket {
            value: "TICKET".into(),
            status: 200,
            set_cookies: vec![],
            redirects: vec![],
        };
        assert!(!format!("{t:?}").contains("TICKET"));
        assert_eq!(t.cookie_header(), None);
    }

    proptest::proptest! {
        #[test]
        fn set_cookie_parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_set_cookie(&s);
        }
    }
}
