//! The low-level client every attack family uses: TLS with recorded facts ([`tls`]), hand-built
//! upgrade requests ([`handshake`]), raw frames over an upgraded connection ([`conn`]), HTTP
//! requests for tickets and cookies ([`http`]) and bounded, redacted evidence ([`evidence`]).
//!
//! Three rules hold everywhere: every network step runs under a [`Deadline`] and a timeout names
//! the [`Phase`]; no byte a target sends can panic the client; nothing a target *claims* (a frame
//! length, a Content-Length) is allocated, only what arrived, up to fixed caps.

pub mod conn;
pub mod deflate;
pub mod endpoint;
pub mod evidence;
pub mod handshake;
pub mod http;
pub mod rfc6455;
pub mod tls;
pub mod tls_hello;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

pub use conn::{Connection, Event, FrameSpec, Mask, StreamReport, StreamStop};
pub use endpoint::http_url;
pub use evidence::ConnectionLog;
pub use handshake::{Handshake, HandshakeResponse, UpgradeRequest, connect};
pub use http::{HttpClient, HttpOptions, HttpRequestSpec, HttpResponse, SetCookie, Ticket};
pub use rfc6455::{Violation, extension_names};
pub use tls::{CertCheck, TlsClient, TlsFacts, TlsOptions, TlsVersions};

/// The network phase an error or a timeout happened in; reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Resolving the target's host name.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake.
    TlsHandshake,
    /// Writing the HTTP upgrade request.
    SendRequest,
    /// Reading the HTTP response head.
    ReadResponse,
    /// Writing a frame after the upgrade.
    WriteFrame,
    /// Sending an HTTP request (ticket endpoint, cookies) and waiting for its head.
    HttpRequest,
    /// Reading an HTTP response body.
    ReadBody,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Resolve => "resolving the host name",
            Phase::Connect => "the TCP connect",
            Phase::TlsHandshake => "the TLS handshake",
            Phase::SendRequest => "sending the upgrade request",
            Phase::ReadResponse => "reading the handshake response",
            Phase::WriteFrame => "writing a frame",
            Phase::HttpRequest => "the HTTP request",
            Phase::ReadBody => "reading the HTTP response body",
        })
    }
}

/// Why a client operation failed; the text is evidence in reports and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be used (wrong scheme, no host, unparsable).
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given (query redacted).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// DNS resolution failed.
    #[error("cannot resolve host `{host}`: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// Nothing listens at the address.
    #[error("connection to {addr} refused")]
    ConnectRefused {
        /// The address tried.
        addr: String,
    },
    /// The TLS handshake failed; `reason` is rustls' error text.
    #[error("TLS handshake with `{server_name}` failed: {reason}")]
    Tls {
        /// The name the certificate was checked against.
        server_name: String,
        /// rustls' error text (for example `invalid peer certificate: UnknownIssuer`).
        reason: String,
        /// The server answered with a `protocol_version` alert: it speaks none of the versions
        /// offered (a TLS 1.0-only server answers a TLS 1.2/1.3 client so).
        version_refused: bool,
    },
    /// The TLS options cannot form a configuration (no roots, bad PEM).
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    /// A step did not finish before its deadline.
    #[error("timed out during {step} (budget {budget:?})")]
    Timeout {
        /// The step that was running.
        step: Phase,
        /// The whole budget the caller gave.
        budget: Duration,
    },
    /// An I/O error other than a refused connection.
    #[error("I/O error during {step}: {reason}")]
    Io {
        /// The step that was running.
        step: Phase,
        /// The error text.
        reason: String,
    },
    /// The peer closed the connection before the step could finish.
    #[error("the peer closed the connection during {step}")]
    ClosedEarly {
        /// The step that was running.
        step: Phase,
    },
    /// The response is not HTTP/1.x.
    #[error("malformed HTTP response: {reason}")]
    MalformedResponse {
        /// What the parser said, with the first bytes received.
        reason: String,
    },
    /// The response head did not end within the size bound.
    #[error("HTTP response head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The bound.
        limit: usize,
    },
    /// A 101 response whose `Sec-WebSocket-Accept` does not match the key sent.
    #[error("101 response with a wrong Sec-WebSocket-Accept: got {got:?}, expected {expected:?}")]
    BadAccept {
        /// The header value received, if any.
        got: Option<String>,
        /// The value RFC 6455 requires.
        expected: String,
    },
    /// The server broke a rule of RFC 6455 (or RFC 7692) a browser enforces, in its 101
    /// response: a browser fails such a connection, so nothing is judged on it.
    #[error("{}", .0.failed_connection())]
    Violation(Violation),
    /// The handshake was answered with a status other than 101.
    #[error("handshake refused with HTTP {status}: {body_prefix}")]
    Refused {
        /// The status code.
        status: u16,
        /// The first bytes of the body, lossily decoded.
        body_prefix: String,
    },
    /// An HTTP request was answered with an unsuccessful status.
    #[error("HTTP {status} from {url}: {body_prefix}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The URL (query redacted).
        url: String,
        /// The first bytes of the body, sanitised and redacted.
        body_prefix: String,
    },
    /// An HTTP request failed (connect, TLS, redirects, protocol).
    #[error("HTTP request to {url} failed: {reason}")]
    Http {
        /// The URL (query redacted).
        url: String,
        /// The error chain, redacted.
        reason: String,
    },
    /// A request was redirected to another origin, and not followed: its credentials go only
    /// to the origins the target file names.
    #[error(
        "HTTP request to {url} was redirected to another origin, not followed (a request carrying credentials goes only where the target file says): {refused}{}",
        followed(redirects)
    )]
    CrossOriginRedirect {
        /// The URL first requested (query hidden).
        url: String,
        /// Same-origin redirects followed before it.
        redirects: Vec<http::Redirect>,
        /// The redirect that was not followed.
        refused: http::Redirect,
    },
    /// The ticket endpoint answered, but no ticket was found where the target says.
    #[error("no ticket at JSON pointer `{pointer}`: {reason}")]
    TicketMissing {
        /// The JSON pointer of the target file.
        pointer: String,
        /// What the body held instead (keys only, never values).
        reason: String,
    },
}

/// ", after following ..." for the redirects followed before an error, if any.
fn followed(redirects: &[http::Redirect]) -> String {
    if redirects.is_empty() {
        return String::new();
    }
    let list: Vec<String> = redirects.iter().map(ToString::to_string).collect();
    format!(" (after following {})", list.join(", "))
}

/// A point in time every step of one operation must finish by, with the budget it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When the time runs out.
    pub at: Instant,
    /// The budget the deadline was made from (reported in timeouts).
    pub budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The earlier of this deadline and `limit` from now (keeps this deadline's budget).
    pub fn capped(&self, limit: Duration) -> Self {
        Self {
            at: self.at.min(Instant::now() + limit),
            budget: self.budget,
        }
    }

    /// Runs `fut` until the deadline; past it, the error is a timeout naming `step`.
    pub async fn run<T>(
        &self,
        step: Phase,
        fut: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout_at(self.at, fut)
            .await
            .unwrap_or(Err(ClientError::Timeout {
                step,
                budget: self.budget,
            }))
    }
}

/// Maps an I/O error of `step` to a typed error.
pub(crate) fn io_error(step: Phase, e: &std::io::Error) -> ClientError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            if step != Phase::Connect =>
        {
            ClientError::ClosedEarly { step }
        }
        _ => ClientError::Io {
            step,
            reason: e.to_string(),
        },
    }
}

/// A URL for messages: scheme, host, port and path, with any query replaced by `?…` (it may
/// carry a token).
pub fn display_url(url: &url::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    if url.query().is_some() {
        shown.push_str("?…");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_query() {
        let u = url::Url::parse("wss://h.example:8443/ws?token=s3cret").expect("valid url");
        assert_eq!(display_url(&u), "wss://h.example:8443/ws?…");
    }

    #[tokio::test]
    async fn deadlines_name_the_step() {
        let d = Deadline::after(Duration::from_millis(10));
        let r: Result<(), _> = d.run(Phase::ReadResponse, std::future::pending()).await;
        assert!(matches!(
            r,
            Err(ClientError::Timeout {
                step: Phase::ReadResponse,
                ..
            })
        ));
        let msg = r.expect_err("timeout").to_string();
        assert!(msg.contains("reading the handshake response"), "{msg}");
    }
}
