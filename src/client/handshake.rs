//! The WebSocket opening handshake, built by hand so any header can be present, absent or
//! malformed (Origin of any bytes or none, cookies, subprotocols, extensions, query strings),
//! over TCP (`ws://`) or TLS (`wss://`). The response head is read under a deadline and a size
//! bound and parsed with httparse; a refusal keeps its status, headers and a body prefix.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use url::Url;

use super::conn::{BoxStream, Connection, Stream};
use super::endpoint::{Endpoint, parse_url};
use super::evidence::{ConnectionLog, Direction, PREVIEW_CHARS};
use super::rfc6455::{Offered, check_upgrade_response, extension_names};
use super::tls::{TlsClient, TlsFacts};
use super::{ClientError, Deadline, Phase, display_url, io_error};
use crate::config::Secrets;

/// Largest response head read; a longer one is an error, never a bigger buffer.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most headers parsed in a response head.
pub const MAX_HEADERS: usize = 100;
/// Most body bytes kept from a refused handshake.
pub const BODY_PREFIX: usize = 2 * 1024;
/// Longest wait for a refusal's body once its head arrived (the body is only evidence).
const BODY_GRACE: Duration = Duration::from_secs(1);

/// Opens TCP, then TLS for `wss`/`https`; returns the stream and, for TLS, the handshake facts.
pub async fn open_stream(
    url: &Url,
    tls: &TlsClient,
    deadline: &Deadline,
) -> Result<(BoxStream, Option<TlsFacts>), ClientError> {
    let endpoint = Endpoint::of(url)?;
    let tcp = endpoint.connect_tcp(deadline).await?;
    if !endpoint.tls {
        return Ok((Box::new(tcp), None));
    }
    let name = endpoint.server_name()?;
    let stream = tls.handshake(tcp, name.clone(), false, deadline).await?;
    let facts = tls.facts(stream.get_ref().1, &name);
    Ok((Box::new(stream), Some(facts)))
}

/// An upgrade request under construction: the request target and an ordered header list that
/// may hold anything, including headers a conforming client would never send.
#[derive(Clone)]
pub struct UpgradeRequest {
    url: Url,
    /// The request target sent on the request line (path and query by default).
    pub target: String,
    /// Headers in the order sent; values are raw bytes (CR/LF included, if a case wants them).
    pub headers: Vec<(String, Vec<u8>)>,
    redactor: Secrets,
}

impl fmt::Debug for UpgradeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UpgradeRequest({})", self.summary())
    }
}

/// Header names whose values are always shown redacted.
const SECRET_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// A fresh random `Sec-WebSocket-Key` (16 random bytes, base64).
pub fn random_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

impl UpgradeRequest {
    /// A conforming upgrade request for a `ws://` or `wss://` URL: Host, Upgrade, Connection,
    /// a random key and version 13, and no Origin (set one with [`UpgradeRequest::origin`]).
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let url = parse_url(url)?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(ClientError::InvalidUrl {
                url: display_url(&url),
                reason: "a WebSocket URL must use ws:// or wss://".into(),
            });
        }
        let mut host = url.host_str().unwrap_or_default().to_string();
        if let Some(port) = url.port() {
            host.push_str(&format!(":{port}"));
        }
        let target = url[url::Position::BeforePath..url::Position::AfterQuery].to_string();
        let headers = vec![
            ("Host".to_string(), host.into_bytes()),
            ("Upgrade".into(), b"websocket".to_vec()),
            ("Connection".into(), b"Upgrade".to_vec()),
            ("Sec-WebSocket-Key".into(), random_key().into_bytes()),
            ("Sec-WebSocket-Version".into(), b"13".to_vec()),
            (
                "User-Agent".into(),
                concat!("wsaudit/", env!("CARGO_PKG_VERSION"))
                    .as_bytes()
                    .to_vec(),
            ),
        ];
        Ok(Self {
            url,
            target,
            headers,
            redactor: Secrets::new(),
        })
    }

    /// The URL the request is for.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Appends a header (even if one of that name exists).
    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Replaces every header of that name (case-insensitive) by one with `value`.
    pub fn set_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        let value = value.into();
        match self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.headers[i].1 = value;
                let mut seen = 0;
                self.headers.retain(|(n, _)| {
                    let same = n.eq_ignore_ascii_case(name);
                    seen += usize::from(same);
                    !same || seen == 1
                });
            }
            None => self.headers.push((name.to_string(), value)),
        }
        self
    }

    /// Removes every header of that name (case-insensitive).
    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Sets the Origin header to any bytes (`null`, a look-alike, invalid UTF-8...).
    pub fn origin(self, origin: impl Into<Vec<u8>>) -> Self {
        self.set_header("Origin", origin)
    }

    /// Sends no Origin header, like a non-browser client.
    pub fn without_origin(self) -> Self {
        self.without_header("Origin")
    }

    /// Sets the Cookie header; its value is treated as a secret in evidence.
    pub fn cookie(mut self, cookie: &str) -> Self {
        for pair in cookie.split(';') {
            if let Some((_, v)) = pair.split_once('=') {
                self.redactor.register(v.trim());
            }
        }
        self.set_header("Cookie", cookie)
    }

    /// Offers subprotocols in `Sec-WebSocket-Protocol`.
    pub fn protocols(self, protocols: &[&str]) -> Self {
        self.set_header("Sec-WebSocket-Protocol", protocols.join(", "))
    }

    /// Offers extensions in `Sec-WebSocket-Extensions` (e.g. `permessage-deflate`).
    pub fn extensions(self, extensions: &str) -> Self {
        self.set_header("Sec-WebSocket-Extensions", extensions)
    }

    /// Appends a query parameter (form-encoded) to the request target.
    pub fn query_param(mut self, name: &str, value: &str) -> Self {
        let pair = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish();
        self.target
            .push(if self.target.contains('?') { '&' } else { '?' });
        self.target.push_str(&pair);
        self
    }

    /// Replaces the request target (path and query) with any text.
    pub fn request_target(mut self, target: &str) -> Self {
        self.target = target.to_string();
        self
    }

    /// Marks a value (ticket, token in the query) as secret: evidence shows `***` instead.
    pub fn secret(mut self, secret: &str) -> Self {
        self.redactor.register(secret);
        self
    }

    /// The redactor holding this request's secrets.
    pub fn redactor(&self) -> &Secrets {
        &self.redactor
    }

    /// The first value of a header, if present.
    pub fn header_value(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The request bytes: request line, headers as given, blank line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// A one-line, redacted description for evidence.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "GET {} HTTP/1.1",
            self.redactor.preview(self.target.as_bytes(), PREVIEW_CHARS)
        );
        for (name, value) in &self.headers {
            let shown = if SECRET_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                crate::config::secrets::REDACTED.to_string()
            } else {
                self.redactor.preview(value, 80)
            };
            s.push_str(&format!("; {name}: {shown}"));
        }
        s
    }
}

/// The parsed head of an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers with lower-cased names and lossily decoded values, in order.
    pub headers: Vec<(String, String)>,
    /// Bytes the head took, blank line included.
    pub len: usize,
}

/// Parses a response head from `buf`; `Ok(None)` means more bytes are needed.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, ClientError> {
    parse_head(buf, &Secrets::new())
}

/// [`parse_response_head`], redacting `redactor`'s secrets from the bytes an error quotes
/// (before they are cut, so no part of a secret the peer echoed shows).
fn parse_head(buf: &[u8], redactor: &Secrets) -> Result<Option<ResponseHead>, ClientError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) => Ok(Some(ResponseHead {
            status: resp.code.unwrap_or(0),
            reason: resp.reason.unwrap_or("").to_string(),
            headers: resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            len,
        })),
        Err(e) => Err(ClientError::MalformedResponse {
            reason: match e {
                httparse::Error::TooManyHeaders => format!("more than {MAX_HEADERS} headers"),
                e => format!("{e}; response began with `{}`", redactor.preview(buf, 60)),
            },
        }),
    }
}

/// Reads and parses a response head within `deadline` and [`MAX_HEAD`] bytes; returns it and
/// the bytes read past it.
pub async fn read_response_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: &Deadline,
) -> Result<(ResponseHead, Vec<u8>), ClientError> {
    read_head(stream, deadline, &Secrets::new()).await
}

/// [`read_response_head`], redacting `redactor`'s secrets from what errors quote.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: &Deadline,
    redactor: &Secrets,
) -> Result<(ResponseHead, Vec<u8>), ClientError> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    loop {
        if let Some(head) = parse_head(&buf[..filled], redactor)? {
            let rest = buf[head.len..filled].to_vec();
            return Ok((head, rest));
        }
        if filled == MAX_HEAD {
            return Err(ClientError::HeadTooLarge { limit: MAX_HEAD });
        }
        let n = deadline
            .run(Phase::ReadResponse, async {
                stream
                    .read(&mut buf[filled..])
                    .await
                    .map_err(|e| io_error(Phase::ReadResponse, &e))
            })
            .await?;
        if n == 0 {
            return Err(if filled == 0 {
                ClientError::ClosedEarly {
                    step: Phase::ReadResponse,
                }
            } else {
                ClientError::MalformedResponse {
                    reason: format!(
                        "connection closed inside the response head after {filled} bytes: `{}`",
                        redactor.preview(&buf[..filled], 60)
                    ),
                }
            });
        }
        filled += n;
    }
}

/// Reads at most [`BODY_PREFIX`] body bytes (fewer if Content-Length says so), waiting at most
/// [`BODY_GRACE`]; whatever arrived is kept, errors included: the body is only evidence.
async fn read_body_prefix<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut body: Vec<u8>,
    head: &ResponseHead,
    deadline: &Deadline,
) -> Vec<u8> {
    let declared = head
        .headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    let want = declared.map_or(BODY_PREFIX, |n| {
        usize::try_from(n).unwrap_or(BODY_PREFIX).min(BODY_PREFIX)
    });
    body.truncate(want);
    let grace = deadline.capped(BODY_GRACE);
    let mut filled = body.len();
    body.resize(want, 0);
    while filled < want {
        match tokio::time::timeout_at(grace.at, stream.read(&mut body[filled..])).await {
            Ok(Ok(n)) if n > 0 => filled += n,
            _ => break,
        }
    }
    body.truncate(filled);
    body
}

/// The response to an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// Status code (101 when upgraded).
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The first body bytes of a refusal (at most [`BODY_PREFIX`]).
    pub body_prefix: Vec<u8>,
    /// TLS facts for `wss://`.
    pub tls: Option<TlsFacts>,
    /// The request's secrets, redacted from previews of what the server sent back.
    redactor: Secrets,
}

impl HandshakeResponse {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `HTTP 403 Forbidden`, for evidence: the reason phrase cut to 60 characters, the request's
    /// secrets redacted first.
    pub fn status_line(&self) -> String {
        format!(
            "HTTP {} {}",
            self.status,
            self.redactor.preview(self.reason.as_bytes(), 60)
        )
    }

    /// The body prefix, lossily decoded and cut for evidence, the request's secrets redacted
    /// first (a server may echo them, and a cut must not leave half of one).
    pub fn body_preview(&self) -> String {
        self.redactor.preview(&self.body_prefix, PREVIEW_CHARS)
    }
}

/// The outcome of an upgrade attempt that got an HTTP answer.
#[derive(Debug)]
pub struct Handshake {
    /// What the server answered.
    pub response: HandshakeResponse,
    /// The upgraded connection, when the status was 101 with a valid accept key.
    pub connection: Option<Connection>,
}

impl Handshake {
    /// The upgraded connection, or [`ClientError::Refused`] with the status and body.
    pub fn into_connection(self) -> Result<Connection, ClientError> {
        match self.connection {
            Some(c) => Ok(c),
            None => Err(ClientError::Refused {
                status: self.response.status,
                body_prefix: self.response.body_preview(),
            }),
        }
    }
}

/// Connects to the request's URL and performs the handshake, all within `timeout`.
///
/// Refusals (any status but 101) are `Ok` with no connection: they are results, not errors.
/// A 101 whose `Sec-WebSocket-Accept` does not match the key sent is [`ClientError::BadAccept`]
/// (unchecked only when the request deliberately carries no key).
pub async fn connect(
    req: &UpgradeRequest,
    tls: &TlsClient,
    timeout: Duration,
) -> Result<Handshake, ClientError> {
    let deadline = Deadline::after(timeout);
    let (stream, facts) = open_stream(req.url(), tls, &deadline).await?;
    handshake_on(stream, req, facts, &deadline).await
}

/// Performs the handshake over an already open stream (used by [`connect`] and by tests).
pub async fn handshake_on<S: Stream>(
    mut stream: S,
    req: &UpgradeRequest,
    tls: Option<TlsFacts>,
    deadline: &Deadline,
) -> Result<Handshake, ClientError> {
    let mut transcript = ConnectionLog::new();
    transcript.redactor_mut().extend(req.redactor());
    transcript.push(Direction::Sent, req.summary());
    let bytes = req.to_bytes();
    deadline
        .run(Phase::SendRequest, async {
            stream
                .write_all(&bytes)
                .await
                .map_err(|e| io_error(Phase::SendRequest, &e))?;
            stream
                .flush()
                .await
                .map_err(|e| io_error(Phase::SendRequest, &e))
        })
        .await?;
    let (head, rest) = read_head(&mut stream, deadline, req.redactor()).await?;
    let reason = transcript.redactor().preview(head.reason.as_bytes(), 60);
    transcript.push(
        Direction::Received,
        format!("HTTP {} {reason}", head.status),
    );
    if head.status != 101 {
        let body_prefix = read_body_prefix(&mut stream, rest, &head, deadline).await;
        return Ok(Handshake {
            response: HandshakeResponse {
                status: head.status,
                reason: head.reason,
                headers: head.headers,
                body_prefix,
                tls,
                redactor: req.redactor().clone(),
            },
            connection: None,
        });
    }
    if let Some(key) = req.header_value("sec-websocket-key") {
        let expected = tungstenite::handshake::derive_accept_key(key);
        let got = head
            .headers
            .iter()
            .find(|(n, _)| n == "sec-websocket-accept")
            .map(|(_, v)| v.trim().to_string());
        if got.as_deref() != Some(expected.as_str()) {
            return Err(ClientError::BadAccept { got, expected });
        }
    }
    let header = |name: &str| {
        req.header_value(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let offered = Offered::from_request(
        header("sec-websocket-protocol").as_deref(),
        header("sec-websocket-extensions").as_deref(),
    );
    if let Err(v) = check_upgrade_response(&head.headers, &offered) {
        return Err(ClientError::Violation(v));
    }
    // RFC 7692: the extension is in force when the server's answer names it.
    let deflate = head
        .headers
        .iter()
        .filter(|(n, _)| n == "sec-websocket-extensions")
        .any(|(_, v)| {
            extension_names(Some(v))
                .iter()
                .any(|e| e == "permessage-deflate")
        });
    let connection = Connection::with_transcript(stream, &rest, transcript, tls.clone(), deflate);
    Ok(Handshake {
        response: HandshakeResponse {
            status: head.status,
            reason: head.reason,
            headers: head.headers,
            body_prefix: Vec::new(),
            tls,
            redactor: req.redactor().clone(),
        },
        connection: Some(connection),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(req: &UpgradeRequest) -> String {
        String::from_utf8(req.to_bytes()).expect("ascii request")
    }

    #[test]
    fn default_request_is_conforming_and_has_no_origin() {
        let req = UpgradeRequest::new("wss://h.example:8443/ws?a=1").expect("url");
        let t = text(&req);
        assert!(
            t.starts_with("GET /ws?a=1 HTTP/1.1\r\nHost: h.example:8443\r\n"),
            "{t}"
        );
        assert!(t.contains("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"));
        assert!(t.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(t.ends_with("\r\n\r\n"));
        assert!(!t.to_ascii_lowercase().contains("origin"));
        let key = req.header_value("sec-websocket-key").expect("key");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(key)
            .expect("base64");
        assert_eq!(decoded.len(), 16);
        let default_port = UpgradeRequest::new("ws://h.example/").expect("url");
        assert!(text(&default_port).contains("Host: h.example\r\n"));
    }

    #[test]
    fn any_header_can_be_set_replaced_malformed_or_removed() {
        let req = UpgradeRequest::new("ws://127.0.0.1:1/ws")
            .expect("url")
            .origin("https://a.example")
            .origin(b"\xff\xfe null".to_vec())
            .cookie("s=SESSION")
            .protocols(&["v1", "v2"])
            .extensions("permessage-deflate; client_max_window_bits")
            .header("X-Dup", "1")
            .header("x-dup", "2")
            .without_header("User-Agent")
            .query_param("ticket", "a b&c")
            .secret("a b&c");
        let bytes = req.to_bytes();
        let t = String::from_utf8_lossy(&bytes);
        assert_eq!(t.matches("Origin:").count(), 1);
        assert!(bytes.windows(12).any(|w| w == b"Origin: \xff\xfe n"));
        assert!(t.contains("Sec-WebSocket-Protocol: v1, v2\r\n"));
        assert!(t.contains("X-Dup: 1\r\nx-dup: 2\r\n"));
        assert!(!t.contains("User-Agent"));
        assert!(t.starts_with("GET /ws?ticket=a+b%26c HTTP/1.1"), "{t}");
        let summary = req.summary();
        assert!(summary.contains("Cookie: ***"), "{summary}");
        assert!(!summary.contains("SESSION"), "{summary}");
        let set = req.set_header("X-DUP", "3");
        assert_eq!(
            set.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("x-dup"))
                .count(),
            1
        );
        assert_eq!(set.header_value("x-dup"), Some(&b"3"[..]));
        let raw = set.without_origin().request_target("*");
        assert!(text(&raw).starts_with("GET * HTTP/1.1"));
        assert!(raw.header_value("origin").is_none());
    }

    #[test]
    fn only_websocket_urls_are_accepted() {
        assert!(matches!(
            UpgradeRequest::new("https://h.example/ws"),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert!(UpgradeRequest::new("ftp://h.example/").is_err());
        assert!(UpgradeRequest::new("not a url").is_err());
        let e = Endpoint::of(&parse_url("wss://[::1]/ws").expect("url")).expect("endpoint");
        assert_eq!((e.port, e.tls), (443, true));
        assert!(e.server_name().is_ok());
    }

    #[test]
    fn response_heads_parse_partially_and_fail_typed() {
        let full = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc";
        assert_eq!(parse_response_head(&full[..20]).expect("partial"), None);
        let head = parse_response_head(full).expect("ok").expect("complete");
        assert_eq!(head.status, 403);
        assert_eq!(head.headers[0], ("content-length".into(), "3".into()));
        assert_eq!(&full[head.len..], b"abc");
        assert!(matches!(
            parse_response_head(b"\x00\x01garbage\r\n\r\n"),
            Err(ClientError::MalformedResponse { .. })
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..MAX_HEADERS + 1 {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let err = parse_response_head(&many).expect_err("too many");
        assert!(err.to_string().contains("more than"), "{err}");
    }

    #[tokio::test]
    async fn head_reading_is_bounded_and_keeps_the_bytes_after_it() {
        let d = Deadline::after(Duration::from_secs(5));
        let mut endless = std::io::Cursor::new(
            b"HTTP/1.1 101 X\r\n"
                .iter()
                .copied()
                .chain(std::iter::repeat_n(b'a', MAX_HEAD * 2))
                .collect::<Vec<u8>>(),
        );
        assert_eq!(
            read_response_head(&mut endless, &d).await,
            Err(ClientError::HeadTooLarge { limit: MAX_HEAD })
        );
        let mut ok = std::io::Cursor::new(b"HTTP/1.1 101 S\r\nA: b\r\n\r\n\x81\x02hi".to_vec());
        let (head, rest) = read_response_head(&mut ok, &d).await.expect("head");
        assert_eq!(head.status, 101);
        assert_eq!(rest, b"\x81\x02hi");
        let mut cut = std::io::Cursor::new(b"HTTP/1.1 101".to_vec());
        assert!(matches!(
            read_response_head(&mut cut, &d).await,
            Err(ClientError::MalformedResponse { .. })
        ));
        let mut empty = std::io::Cursor::new(Vec::new());
        assert_eq!(
            read_response_head(&mut empty, &d).await,
            Err(ClientError::ClosedEarly {
                step: Phase::ReadResponse
            })
        );
    }

    #[tokio::test]
    async fn body_prefix_never_exceeds_the_bound_whatever_content_length_says() {
        let d = Deadline::after(Duration::from_secs(5));
        let head = parse_response_head(b"HTTP/1.1 403 F\r\nContent-Length: 1000000000\r\n\r\n")
            .expect("ok")
            .expect("complete");
        let mut body = std::io::Cursor::new(vec![b'x'; BODY_PREFIX * 3]);
        let got = read_body_prefix(&mut body, b"yy".to_vec(), &head, &d).await;
        assert_eq!(got.len(), BODY_PREFIX);
        assert!(got.starts_with(b"yyx"));
    }

    proptest::proptest! {
        #[test]
        fn head_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_response_head(&bytes);
            let mut with_prefix = b"HTTP/1.1 101 OK\r\n".to_vec();
            with_prefix.extend_from_slice(&bytes);
            let _ = parse_response_head(&with_prefix);
        }
    }
}
