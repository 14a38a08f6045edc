//! The one legitimate client: how a real client of the target opens its WebSocket (URL, Origin,
//! request headers, cookies, subprotocols, extensions), derived from the target file. Every
//! handshake the engine makes, the attacks' included, is this profile with declared
//! [`Variation`]s, built by [`ConnectProfile::request`]; the health check, the live fuzzer and the
//! page scan's probe open theirs the same way. Credential kinds on the handshake go here.

use std::sync::Arc;

use url::Url;

use super::channel::{Channel, Classifier};
use super::setup_state::SetupState;
use super::values::Values;
use crate::client::{ClientError, HandshakeResponse, TlsClient, UpgradeRequest, connect};
use crate::config::Secrets;
use crate::config::target::Target;
use crate::dialect::{ClientCodec, Dialect};

/// How the target's legitimate clients open their connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectProfile {
    /// The TLS endpoint (with its own query, which may carry a credential).
    pub url: Url,
    /// The plaintext endpoint the transport check tries.
    pub plaintext_url: Url,
    /// The Origin header legitimate clients send, if any.
    pub origin: Option<String>,
    /// Request headers legitimate clients send (credentials among them).
    pub headers: Vec<(String, String)>,
    /// Cookies legitimate clients send, as name and value.
    pub cookies: Vec<(String, String)>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`.
    pub subprotocols: Vec<String>,
    /// Extensions offered in `Sec-WebSocket-Extensions`.
    pub extensions: Vec<String>,
    /// The application protocol spoken once upgraded.
    pub dialect: Dialect,
}

/// Which Origin a handshake sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginChoice {
    /// The profile's own (none when the target names none).
    Legitimate,
    /// Exactly these bytes (a foreign origin, `null`, a look-alike).
    Exactly(Vec<u8>),
    /// No Origin header at all.
    Omitted,
}

/// A declared change to the legitimate handshake: what an attack alters, everything else as a
/// real client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variation {
    /// The Origin header.
    pub origin: OriginChoice,
    /// Use the plaintext endpoint.
    pub plaintext: bool,
    /// Drop the URL's own query (a credential in the URL).
    pub strip_query: bool,
    /// Send the profile's credentials (its headers and cookies); `false` also strips the query.
    pub credentials: bool,
    /// Send only what a browser sends on its own to another site's socket: the cookies (the
    /// profile's, the cookie jar's), no credential headers, no credential in the URL.
    pub cookies_only: bool,
    /// Query parameters added to the URL.
    pub query: Vec<(String, String)>,
    /// Headers added (a second header of a name the profile sends is added beside it).
    pub headers: Vec<(String, String)>,
    /// A `Cookie` header value sent besides the profile's cookies (a session cookie).
    pub cookie: Option<String>,
    /// Extensions offered instead of the profile's, when set.
    pub extensions: Option<Vec<String>>,
    /// Appended to the URL's path.
    pub path_suffix: Option<String>,
    /// Subprotocols offered after the legitimate ones, when set.
    pub subprotocols: Option<Vec<String>>,
}

impl Default for Variation {
    fn default() -> Self {
        Self::legitimate()
    }
}

impl Variation {
    /// No change: the legitimate handshake.
    pub fn legitimate() -> Self {
        Self {
            origin: OriginChoice::Legitimate,
            plaintext: false,
            strip_query: false,
            credentials: true,
            cookies_only: false,
            query: Vec::new(),
            headers: Vec::new(),
            cookie: None,
            extensions: None,
            path_suffix: None,
            subprotocols: None,
        }
    }
}

/// Header names whose values are credentials (dropped with `credentials: false`).
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

impl ConnectProfile {
    /// The profile of the target's legitimate clients.
    pub fn of(target: &Target) -> Self {
        let connect = target.connect.clone().unwrap_or_default();
        Self {
            url: target.url.0.clone(),
            plaintext_url: target.plaintext_url().0,
            origin: target.origin.as_ref().map(ToString::to_string),
            headers: connect.headers.into_iter().collect(),
            cookies: connect.cookies.into_iter().collect(),
            subprotocols: connect.subprotocols,
            extensions: Vec::new(),
            dialect: target.dialect.clone(),
        }
    }

    /// A bare profile for a URL found elsewhere (a page scan): no credentials, the given Origin.
    pub fn for_url(url: &Url, origin: Option<&str>) -> Self {
        Self {
            url: url.clone(),
            plaintext_url: url.clone(),
            origin: origin.map(str::to_string),
            headers: Vec::new(),
            cookies: Vec::new(),
            subprotocols: Vec::new(),
            extensions: Vec::new(),
            dialect: Dialect::Raw,
        }
    }

    /// The upgrade request of this profile with `v` applied: the one function that builds a
    /// handshake. `secrets` are redacted from its evidence; `setup` fills `{{setup.NAME}}` and
    /// holds the cookie jar.
    pub fn request(
        &self,
        v: &Variation,
        secrets: &Secrets,
        setup: Option<&SetupState>,
    ) -> Result<UpgradeRequest, ClientError> {
        let values = Values {
            setup,
            ..Values::default()
        };
        let fill = |text: &str| {
            values.render(text).map_err(|e| ClientError::InvalidUrl {
                url: "the target's handshake".into(),
                reason: e.to_string(),
            })
        };
        let base = if v.plaintext {
            &self.plaintext_url
        } else {
            &self.url
        };
        let mut url = match crate::config::target::url_template(base.as_str()) {
            std::borrow::Cow::Borrowed(_) => base.clone(),
            std::borrow::Cow::Owned(template) => {
                Url::parse(&fill(&template)?).map_err(|e| ClientError::InvalidUrl {
                    url: "the target's URL with its setup values".into(),
                    reason: e.to_string(),
                })?
            }
        };
        let credentials = v.credentials && !v.cookies_only;
        if v.strip_query || !credentials {
            url.set_query(None);
        }
        let codec = ClientCodec::new(self.dialect.clone(), url.host_str().unwrap_or_default());
        let present: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        for (k, val) in codec.url_query(&present) {
            url.query_pairs_mut().append_pair(k, val);
        }
        if let Some(suffix) = &v.path_suffix {
            let path = format!("{}{suffix}", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        let mut req = UpgradeRequest::new(url.as_str())?;
        for s in secrets.values() {
            req = req.secret(s);
        }
        req = match &v.origin {
            OriginChoice::Legitimate => match &self.origin {
                Some(o) => req.origin(o.clone().into_bytes()),
                None => req.without_origin(),
            },
            OriginChoice::Exactly(bytes) => req.origin(bytes.clone()),
            OriginChoice::Omitted => req.without_origin(),
        };
        for (k, val) in &v.query {
            req = req.query_param(k, val);
        }
        for (name, value) in &self.headers {
            let credential = CREDENTIAL_HEADERS
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h));
            if credential && !credentials {
                continue;
            }
            let value = fill(value)?;
            if credential {
                req = req.secret(&value);
            }
            req = req.header(name, value.into_bytes());
        }
        for (name, value) in &v.headers {
            req = req.header(name, value.clone().into_bytes());
        }
        let mut cookies: Vec<String> = Vec::new();
        if v.credentials || v.cookies_only {
            for (n, val) in &self.cookies {
                cookies.push(format!("{n}={}", fill(val)?));
            }
            for (n, val) in setup.map(|s| s.cookies_for(&url)).unwrap_or_default() {
                req = req.secret(&val);
                cookies.push(format!("{n}={val}"));
            }
        }
        cookies.extend(v.cookie.iter().cloned());
        if !cookies.is_empty() {
            req = req.cookie(&cookies.join("; "));
        }
        // The legitimate subprotocols (the target's, else its protocol's), then any the
        // variation adds (a credential offered as a subprotocol, beside the real ones).
        let mut offered: Vec<&str> = if self.subprotocols.is_empty() {
            codec.subprotocols().to_vec()
        } else {
            self.subprotocols.iter().map(String::as_str).collect()
        };
        offered.extend(v.subprotocols.iter().flatten().map(String::as_str));
        if !offered.is_empty() {
            req = req.protocols(&offered);
        }
        let extensions = v.extensions.as_ref().unwrap_or(&self.extensions);
        if !extensions.is_empty() {
            req = req.extensions(&extensions.join(", "));
        }
        Ok(req)
    }

    /// Opens a connection with a request this profile built (see [`ConnectProfile::request`]).
    pub async fn open_request(
        &self,
        req: &UpgradeRequest,
        tls: &TlsClient,
        timeout: std::time::Duration,
        classifier: Arc<Classifier>,
    ) -> Result<Opened, ClientError> {
        let summary = req.summary();
        let h = connect(req, tls, timeout).await?;
        let extensions = h
            .response
            .header("sec-websocket-extensions")
            .map(str::to_string);
        let codec = ClientCodec::new(
            self.dialect.clone(),
            req.url().host_str().unwrap_or_default(),
        );
        let channel = h
            .connection
            .map(|conn| Channel::new(conn, codec, classifier, extensions));
        Ok(Opened {
            request: summary,
            response: h.response,
            channel,
        })
    }
}

/// What one handshake came to.
pub struct Opened {
    /// The request sent, one redacted line.
    pub request: String,
    /// The server's answer.
    pub response: HandshakeResponse,
    /// The upgraded channel (`None` when refused).
    pub channel: Option<Channel>,
}
