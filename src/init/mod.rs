//! `wsaudit init URL`: probes an endpoint ([`probe`]) and writes a commented starter target
//! file with the dialect it detected, what it saw, and the questions no probe can answer (where
//! the credential comes from, what a valid business message is). The file is valid as written
//! (`wsaudit check` accepts it); the answers go into commented blocks ready to uncomment.

pub mod probe;

use std::fmt::Write as _;
use std::time::Duration;

use url::Url;

use crate::client::{ClientError, TlsClient};
use crate::dialect::DialectName;

/// What the probes could tell about the credential a legitimate client presents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credential {
    /// Nothing seen either way.
    #[default]
    Unknown,
    /// The protocol's opening was accepted without any credential.
    NoneAsked,
    /// The upgrade itself was refused (401/403): a header, cookie or URL token is expected.
    OnHandshake {
        /// The status.
        status: u16,
        /// The `WWW-Authenticate` scheme, when the server named one.
        scheme: Option<String>,
    },
    /// The protocol's opening was refused for want of a credential.
    InProtocol {
        /// What was seen, in a sentence.
        how: String,
    },
}

/// Everything the probes learnt.
#[derive(Debug, Clone)]
pub struct Findings {
    /// The URL the target should use (Engine.IO's path when that is where it answered).
    pub url: Url,
    /// The Origin the probes sent.
    pub origin: String,
    /// The dialect, when a probe identified it.
    pub dialect: Option<DialectName>,
    /// The STOMP subprotocol the server chose.
    pub subprotocol: Option<String>,
    /// The credential question.
    pub credential: Credential,
    /// What each probe saw, one line each.
    pub facts: Vec<String>,
    /// Why nothing could be reached, when nothing could.
    pub unreachable: Option<String>,
}

impl Findings {
    fn new(url: Url, origin: String) -> Self {
        Self {
            url,
            origin,
            dialect: None,
            subprotocol: None,
            credential: Credential::Unknown,
            facts: Vec::new(),
            unreachable: None,
        }
    }

    fn fact(&mut self, line: impl Into<String>) {
        self.facts.push(line.into());
    }

    fn shown_url(&self) -> String {
        crate::client::display_url(&self.url)
    }
}

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The URL is not a WebSocket (or HTTP) URL.
    #[error("{0}")]
    Url(String),
    /// No probe got an HTTP answer.
    #[error("{url} could not be reached: {reason}")]
    Unreachable {
        /// The URL, without credentials.
        url: String,
        /// The first probe's error.
        reason: String,
    },
    /// The TLS trust could not be set up.
    #[error("{0}")]
    Tls(#[from] ClientError),
}

/// The endpoint's URL as a WebSocket URL: `http`/`https` become `ws`/`wss`.
pub fn websocket_url(text: &str) -> Result<Url, InitError> {
    let mut url = Url::parse(text.trim())
        .map_err(|e| InitError::Url(format!("`{text}` is not a URL: {e}")))?;
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => {
            return Err(InitError::Url(format!(
                "`{text}`: expected a ws://, wss://, http:// or https:// URL, not {other}://"
            )));
        }
    };
    if url.host_str().is_none() {
        return Err(InitError::Url(format!("`{text}` names no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InitError::Url(format!(
            "`{}`: credentials in the URL would be written into the target file; describe them \
             there as ${{VAR}} values instead",
            crate::client::display_url(&url)
        )));
    }
    let port = url.port();
    url.set_scheme(scheme)
        .map_err(|()| InitError::Url(format!("`{text}`: cannot use it as {scheme}://")))?;
    // `set_scheme` keeps an explicit port; a default port of the old scheme stays implicit.
    let _ = url.set_port(port);
    Ok(url)
}

/// The Origin of the site serving `url` (`https://host[:port]` for `wss`), the default Origin.
pub fn own_origin(url: &Url) -> String {
    crate::client::http_url(url)
        .map_or_else(|| url.origin(), |u| u.origin())
        .ascii_serialization()
}

/// What the user told `init` besides the URL.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// The Origin legitimate clients send, when given.
    pub origin: Option<String>,
    /// The extra CA file trusted for the endpoint, when given (written as `tls.ca_file`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// Probes `url` and returns the starter target file.
pub async fn init(
    url: &Url,
    given: &Given,
    tls: TlsClient,
    timeout: Duration,
) -> Result<String, InitError> {
    let prober = probe::Prober {
        url: url.clone(),
        origin: given.origin.clone().unwrap_or_else(|| own_origin(url)),
        tls,
        timeout,
    };
    let findings = prober.run().await;
    if findings.dialect.is_none()
        && let Some(reason) = &findings.unreachable
    {
        return Err(InitError::Unreachable {
            url: crate::client::display_url(url),
            reason: reason.clone(),
        });
    }
    Ok(render(&findings, given))
}

/// A YAML single-quoted scalar.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The commented starter target file of `f`.
pub fn render(f: &Findings, given: &Given) -> String {
    let dialect = f.dialect.unwrap_or_default();
    let mut out = String::new();
    let url = crate::client::display_url(&f.url);
    let _ = writeln!(
        out,
        "# Starter target for {url}, written by `wsaudit init`.\n# What the probes saw:"
    );
    for fact in &f.facts {
        let _ = writeln!(out, "#   - {}", one_line(fact));
    }
    if f.facts.is_empty() {
        out.push_str("#   (nothing)\n");
    }
    out.push_str(
        "# Lines marked QUESTION are what no probe can tell: answer them (uncomment the block\n\
         # below each), then `wsaudit check` this file and `wsaudit run` it with a policy.\n\n",
    );
    let host = f.url.host_str().unwrap_or("target");
    let _ = writeln!(out, "target: {}", quoted(host));
    let _ = writeln!(out, "url: {}", quoted(url.as_str()));
    if given.origin.is_none() {
        out.push_str(
            "# QUESTION: the Origin your legitimate (browser) clients send; the endpoint's own\n\
             # site is assumed. Every cross-site check compares foreign Origins against it.\n",
        );
    }
    let _ = writeln!(out, "origin: {}", quoted(&f.origin));
    if let Some(ca) = &given.ca_file {
        // Absolute, so the file may be moved: a relative path is read from the file's folder.
        let ca = std::path::absolute(ca).unwrap_or_else(|_| ca.clone());
        let _ = writeln!(
            out,
            "tls: {{ ca_file: {} }}",
            quoted(&ca.display().to_string())
        );
    }
    out.push_str(&dialect_block(f, dialect));
    out.push_str(&credential_block(f, dialect));
    out.push_str(&messages_block(dialect));
    out.push_str("limits: { connect_timeout: 10s, case_timeout: 60s }\n");
    out
}

/// A probe's line as one comment line (what a target sent may hold line breaks).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn dialect_block(f: &Findings, dialect: DialectName) -> String {
    match dialect {
        DialectName::Raw => {
            if f.dialect.is_none() {
                "# QUESTION: no probe recognised a protocol (the upgrade was not accepted); \
                 raw is assumed.\n# dialect: raw | socketio | graphql-transport-ws | stomp | \
                 signalr-json (docs/dialects.md)\n"
                    .into()
            } else {
                "dialect: raw\n".into()
            }
        }
        DialectName::Socketio => "dialect:\n  name: socketio\n  \
             # QUESTION: the event a business message is emitted as: socket.emit(EVENT, payload, ack)\n  \
             event: message\n"
            .into(),
        DialectName::GraphqlTransportWs => "dialect:\n  name: graphql-transport-ws\n  \
             # QUESTION: the operation that carries a business message (its payload becomes the\n  \
             # variable below); __typename is answered by every GraphQL server.\n  \
             query: 'query { __typename }'\n  variable: input\n"
            .into(),
        DialectName::Stomp => {
            let mut s = String::from(
                "dialect:\n  name: stomp\n  \
                 # QUESTION: where business messages are SENT, and where replies arrive\n  \
                 destination: /app/message\n  # subscribe: /user/queue/replies\n",
            );
            if let Some(p) = &f.subprotocol {
                let _ = writeln!(s, "# (the server chose the subprotocol {p})");
            }
            s
        }
        DialectName::SignalrJson => "dialect:\n  name: signalr-json\n  \
             # QUESTION: the hub method a business message is the argument of\n  \
             method: SendMessage\n"
            .into(),
    }
}

/// The authentication part: what was seen, the question, and commented answers to pick from.
fn credential_block(f: &Findings, dialect: DialectName) -> String {
    let mut s = String::from("\n");
    let in_message = match dialect {
        DialectName::Raw => "the first text message",
        DialectName::Socketio => "the CONNECT packet's auth object (40{...})",
        DialectName::GraphqlTransportWs => "the connection_init payload",
        DialectName::Stomp => "CONNECT headers, as a JSON object",
        DialectName::SignalrJson => {
            "an authentication invocation {\"target\":...,\"arguments\":[...]}"
        }
    };
    let example = match dialect {
        DialectName::Stomp => r#"'{"passcode":"{{ticket}}"}'"#,
        DialectName::SignalrJson => r#"'{"target":"Authenticate","arguments":["{{ticket}}"]}'"#,
        DialectName::Raw => r#"'{"type":"auth","ticket":"{{ticket}}"}'"#,
        _ => r#"'{"token":"{{ticket}}"}'"#,
    };
    match &f.credential {
        Credential::NoneAsked => s.push_str(
            "# Seen: the protocol's opening was accepted without any credential. If the service\n\
             # has no authentication, leave `auth` out; otherwise:\n",
        ),
        Credential::OnHandshake { status, scheme } => {
            let _ = writeln!(
                s,
                "# Seen: the upgrade without credentials was refused with HTTP {status}{}: the\n\
                 # credential travels on the handshake (a header, a cookie, or a URL token).",
                scheme
                    .as_deref()
                    .filter(|x| !x.is_empty())
                    .map(|x| format!(" (WWW-Authenticate: {x})"))
                    .unwrap_or_default()
            );
        }
        Credential::InProtocol { how } => {
            let _ = writeln!(s, "# Seen: {}.", one_line(how));
        }
        Credential::Unknown => {
            s.push_str("# Seen: nothing that tells whether a credential is needed.\n")
        }
    }
    s.push_str(
        "# QUESTION: how does a legitimate client authenticate? Uncomment what applies\n\
         # (secrets as ${VAR} from the environment; they never reach a report).\n",
    );
    s.push_str("# A bearer token on the upgrade request:\n");
    s.push_str("# connect:\n#   headers: { Authorization: \"Bearer ${API_TOKEN}\" }\n");
    s.push_str("# A session cookie from a login request (its cookies fill the jar):\n");
    let login = {
        let mut u = crate::client::http_url(&f.url).unwrap_or_else(|| f.url.clone());
        u.set_path("/login");
        u.set_query(None);
        u
    };
    let _ = writeln!(
        s,
        "# setup:\n#   - request: {{ method: POST, url: '{}', headers: {{ Content-Type: application/json }},\n\
         #                body: '{{\"user\":\"${{USER}}\",\"password\":\"${{PASSWORD}}\"}}' }}",
        login
    );
    let _ = writeln!(
        s,
        "# A credential in {in_message}, from a ticket endpoint or static:"
    );
    let ticket = {
        let mut u = login.clone();
        u.set_path("/ws/ticket");
        u
    };
    let _ = writeln!(
        s,
        "# auth:\n#   ticket:\n#     request: {{ method: POST, url: '{ticket}', headers: {{ Authorization: \"Bearer ${{API_TOKEN}}\" }} }}\n\
         #     extract: /ticket\n#   first_message: {example}\n#   # first_message alone, with \"${{API_TOKEN}}\" in place of {{{{ticket}}}}: a static token"
    );
    if dialect == DialectName::Raw {
        s.push_str("#   # how the server says the authentication succeeded:\n#   accepted_when: { json: { \"/type\": \"auth_ok\" } }\n");
    }
    s.push('\n');
    s
}

fn messages_block(dialect: DialectName) -> String {
    let view = match dialect {
        DialectName::Socketio => ("/0/type", "the ack's arguments, [ {...} ]"),
        DialectName::GraphqlTransportWs => ("/payload/data/pay/type", "the whole next message"),
        DialectName::SignalrJson => ("/result/type", "the whole completion record"),
        DialectName::Stomp => ("/type", "the MESSAGE frame's body"),
        DialectName::Raw => ("/type", "the reply"),
    };
    format!(
        "# QUESTION: what is a valid business message (the payload the policy's schema\n\
         # describes; the dialect wraps it), and how does the server answer it? Matchers read\n\
         # {}. A policy with message checks needs it before `wsaudit run`.\n\
         # messages:\n\
         #   valid: ['{{\"type\":\"payment\",\"amount\":12.5,\"reference\":\"TX-123456\",\"currency\":\"USD\"}}']\n\
         #   accepted_when: {{ json: {{ \"{}\": \"ack\" }} }}\n\
         #   rejected_when: {{ json: {{ \"{}\": \"error\" }} }}\n\n",
        view.1, view.0, view.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_become_websocket_urls_and_credentials_are_refused() {
        assert_eq!(
            websocket_url("https://h.example:8443/hub")
                .map(|u| u.to_string())
                .ok(),
            Some("wss://h.example:8443/hub".into())
        );
        assert_eq!(
            websocket_url("http://h.example/ws")
                .map(|u| u.to_string())
                .ok(),
            Some("ws://h.example/ws".into())
        );
        assert!(websocket_url("ftp://h.example/").is_err());
        let e = websocket_url("wss://u:secretpw@h.example/")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| !e.contains("secretpw")),
            "{e:?}"
        );
    }

    #[test]
    fn a_rendered_file_keeps_target_text_on_comment_lines() {
        let mut f = Findings::new(
            Url::parse("ws://127.0.0.1:9/ws").expect("url"),
            "http://127.0.0.1:9".into(),
        );
        f.dialect = Some(DialectName::Raw);
        f.fact("the server spoke first: line\nurl: wss://evil.example/");
        let text = render(&f, &Given::default());
        assert!(
            text.lines()
                .filter(|l| l.contains("evil.example"))
                .all(|l| l.starts_with('#')),
            "{text}"
        );
        let v: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        assert_eq!(v["url"].as_str(), Some("ws://127.0.0.1:9/ws"));
        assert_eq!(v["dialect"].as_str(), Some("raw"));
    }
}
