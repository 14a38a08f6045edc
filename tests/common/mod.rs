//! Test support: start the reference server in-process on 127.0.0.1:0 and talk to it from the
//! outside with plain clients (tokio-tungstenite, reqwest, and a raw-frame client written here on
//! tungstenite's `FrameHeader`), never through the server's own code.
#![allow(dead_code)]

#[path = "../fixtures/closed_port.rs"]
pub mod closed_port;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::{Message, http};

use wsaudit::config::{LoadedPolicy, SourceFile};
use wsaudit::server::{self, EventLog, ServerHandle, ServerOptions, Weakened};

/// Guard for every network step in tests: generous, since CI machines are shared.
pub const STEP: Duration = Duration::from_secs(10);

pub const VALID_PAYMENT: &str =
    r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;

pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// A log sink the test can read back.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }

    /// Every logged event, parsed: each line must be one JSON object.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    /// Whether some event of kind `event` has every given field equal to the given value.
    pub fn has(&self, event: &str, fields: &[(&str, serde_json::Value)]) -> bool {
        self.events()
            .iter()
            .any(|e| e["event"] == event && fields.iter().all(|(k, v)| &e[*k] == v))
    }

    /// Asserts some event of kind `event` has every given field equal to the given value.
    #[track_caller]
    pub fn assert_has(&self, event: &str, fields: &[(&str, serde_json::Value)]) {
        assert!(
            self.has(event, fields),
            "no {event} event with {fields:?} in the log:\n{}",
            self.text()
        );
    }

    /// Waits (bounded by [`STEP`]) until `n` events of kind `event` are logged; false if not.
    pub async fn wait_for(&self, event: &str, n: usize) -> bool {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            if self.events().iter().filter(|e| e["event"] == event).count() >= n {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn policy(name: &str) -> LoadedPolicy {
    let path = format!("{}/policies/{name}", env!("CARGO_MANIFEST_DIR"));
    LoadedPolicy::load(std::path::Path::new(&path)).expect("shipped policy loads")
}

pub fn policy_from(text: &str) -> LoadedPolicy {
    LoadedPolicy::parse(SourceFile::from_text("test.yaml", text)).expect("test policy loads")
}

/// A self-signed certificate for 127.0.0.1 written as PEM files, for `--cert/--key`.
pub struct GivenCert {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub der: CertificateDer<'static>,
}

pub fn write_self_signed(dir: &std::path::Path) -> GivenCert {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    GivenCert {
        cert,
        key,
        der: generated.cert.der().clone(),
    }
}

/// A running server with what a client needs to reach it.
pub struct Srv {
    pub handle: ServerHandle,
    pub roots: Vec<CertificateDer<'static>>,
    pub log: Captured,
}

/// A timing of reference-fast that a test is about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// `auth.ticket` `ttl_max: 1s`.
    TicketTtl,
    /// `auth.unauthenticated_timeout` `timeout: 1s`.
    UnauthTimeout,
    /// `heartbeat` `interval_max: 500ms, missed_max: 2`.
    Heartbeat,
}

/// How long the timings a test is not about last: a loaded CI machine never reaches them.
pub const RELAXED: &str = "10m";

/// reference-fast with every timing but `keep` made [`RELAXED`], so a slow ticket fetch,
/// handshake or authentication cannot trip a deadline the test does not check.
pub fn fast_policy_keeping(keep: &[Timing]) -> LoadedPolicy {
    policy_from(&fast_policy_text(keep))
}

/// The text of [`fast_policy_keeping`], for tests that change more.
pub fn fast_policy_text(keep: &[Timing]) -> String {
    let path = format!(
        "{}/policies/reference-fast.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut text = std::fs::read_to_string(path).expect("reference-fast.yaml");
    for (timing, fast, relaxed) in [
        (
            Timing::TicketTtl,
            "{ ttl_max: 1s, single_use: true }",
            format!("{{ ttl_max: {RELAXED}, single_use: true }}"),
        ),
        (
            Timing::UnauthTimeout,
            "{ timeout: 1s }",
            format!("{{ timeout: {RELAXED} }}"),
        ),
        (
            Timing::Heartbeat,
            "{ interval_max: 500ms, missed_max: 2 }",
            format!("{{ interval_max: {RELAXED}, missed_max: 2 }}"),
        ),
    ] {
        assert_eq!(text.matches(fast).count(), 1, "reference-fast has {fast}");
        if !keep.contains(&timing) {
            text = text.replace(fast, &relaxed);
        }
    }
    text
}

/// The server for tests that check no timing: reference-fast with relaxed timings.
pub async fn start(weaken: &str) -> Srv {
    start_with(fast_policy_keeping(&[]), weaken).await
}

/// The server for tests about some of reference-fast's timings; the others are relaxed.
pub async fn start_keeping(keep: &[Timing], weaken: &str) -> Srv {
    start_with(fast_policy_keeping(keep), weaken).await
}

pub async fn start_with(policy: LoadedPolicy, weaken: &str) -> Srv {
    wsaudit::crypto::install_crypto_provider();
    let log = Captured::default();
    let mut opts = ServerOptions::local(policy);
    opts.weakened = weaken.parse::<Weakened>().expect("weaken list");
    opts.log = EventLog::to(Box::new(log.clone()));
    let handle = server::start(opts).await.expect("server starts");
    let roots = roots_from_pem(&handle.ca_pem.clone().expect("generated CA"));
    Srv { handle, roots, log }
}

/// A rustls client trusting only `roots`, offering `versions`.
pub fn client_config_trusting(
    roots: &[CertificateDer<'static>],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).expect("root");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth()
}

/// The certificates of a PEM bundle.
pub fn roots_from_pem(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("CA PEM parses")
}

/// TLS to `addr`, checking the certificate names 127.0.0.1.
pub async fn tls_connect(
    addr: SocketAddr,
    config: rustls::ClientConfig,
) -> Result<TlsStream<TcpStream>, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    tokio::time::timeout(
        STEP,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// A WebSocket handshake on `tls` for `url` with the given Origin (None: no header) and
/// extra headers.
pub async fn ws_handshake(
    tls: TlsStream<TcpStream>,
    url: &str,
    origin: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = url.into_client_request()?;
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", o.parse().expect("header"));
    }
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::client_async(req, tls))
        .await
        .map_err(|_| {
            tokio_tungstenite::tungstenite::Error::Io(std::io::Error::other("handshake timed out"))
        })??;
    Ok(ws)
}

impl Srv {
    pub fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        client_config_trusting(&self.roots, versions)
    }

    pub async fn tls(&self) -> Result<TlsStream<TcpStream>, std::io::Error> {
        self.tls_with(self.client_config(rustls::ALL_VERSIONS))
            .await
    }

    pub async fn tls_with(
        &self,
        config: rustls::ClientConfig,
    ) -> Result<TlsStream<TcpStream>, std::io::Error> {
        tls_connect(self.handle.addr, config).await
    }

    pub fn origin(&self) -> String {
        self.handle.origin.clone().expect("policy has an allowlist")
    }

    /// A WebSocket handshake with the given Origin (None: no header) and extra headers.
    pub async fn ws(
        &self,
        path_and_query: &str,
        origin: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let url = format!(
            "wss://127.0.0.1:{}{}",
            self.handle.addr.port(),
            path_and_query
        );
        ws_handshake(self.tls().await?, &url, origin, headers).await
    }

    /// Handshake with the allowed origin.
    pub async fn ws_ok(&self) -> Ws {
        self.ws("/ws", Some(&self.origin()), &[])
            .await
            .expect("handshake accepted")
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.client_config(rustls::ALL_VERSIONS))
            .timeout(STEP)
            .build()
            .expect("reqwest client")
    }

    /// The ticket endpoint's response to a request with the right API token.
    pub async fn ticket_response(&self) -> reqwest::Response {
        self.http()
            .post(self.handle.ticket_url())
            .bearer_auth(&self.handle.api_token)
            .send()
            .await
            .expect("ticket request")
    }

    /// Fetches a ticket; returns it with the session cookie value.
    pub async fn ticket(&self) -> (String, String) {
        let resp = self.ticket_response().await;
        assert_eq!(resp.status(), 200);
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_string())
            .expect("session cookie");
        let body: serde_json::Value = resp.json().await.expect("json body");
        (
            body["ticket"].as_str().expect("ticket field").to_string(),
            cookie,
        )
    }

    /// An authenticated connection.
    pub async fn authed(&self) -> Ws {
        let (ticket, _) = self.ticket().await;
        let mut ws = self.ws_ok().await;
        send_text(&mut ws, &auth_message(&ticket)).await;
        assert_eq!(next_json(&mut ws).await["type"], "auth_ok");
        ws
    }
}

pub fn auth_message(ticket: &str) -> String {
    format!(r#"{{"type":"auth","ticket":"{ticket}"}}"#)
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    tokio::time::timeout(STEP, ws.send(Message::text(text)))
        .await
        .expect("send in time")
        .expect("send");
}

pub async fn send_binary(ws: &mut Ws, data: &[u8]) {
    tokio::time::timeout(STEP, ws.send(Message::binary(data.to_vec())))
        .await
        .expect("send in time")
        .expect("send");
}

/// The status line a plaintext listener at `addr` answers a WebSocket upgrade with.
pub async fn plaintext_upgrade_status(addr: SocketAddr, origin: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(STEP, tcp.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// What a client observes next (pings are answered by tungstenite and skipped).
#[derive(Debug, PartialEq)]
pub enum Seen {
    Json(serde_json::Value),
    Close(Option<u16>),
    Ended,
    Silence,
}

pub async fn next_seen(ws: &mut Ws, wait: Duration) -> Seen {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Seen::Silence,
            Ok(None) => return Seen::Ended,
            Ok(Some(Err(_))) => return Seen::Ended,
            Ok(Some(Ok(Message::Text(t)))) => {
                return Seen::Json(
                    serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t.to_string())),
                );
            }
            Ok(Some(Ok(Message::Close(c)))) => return Seen::Close(c.map(|c| u16::from(c.code))),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

pub async fn next_json(ws: &mut Ws) -> serde_json::Value {
    match next_seen(ws, STEP).await {
        Seen::Json(v) => v,
        other => panic!("expected a JSON reply, saw {other:?}"),
    }
}

/// Asserts the server closes with `code`.
pub async fn expect_close(ws: &mut Ws, code: u16) {
    match next_seen(ws, STEP).await {
        Seen::Close(Some(c)) => assert_eq!(c, code, "close code"),
        other => panic!("expected close {code}, saw {other:?}"),
    }
}

/// Sends a valid payment and asserts it is acknowledged.
pub async fn expect_ack(ws: &mut Ws) {
    send_text(ws, VALID_PAYMENT).await;
    let reply = next_json(ws).await;
    assert_eq!(reply["type"], "ack", "reply {reply}");
}

/// A frame as raw bytes, masked with a fixed mask unless `masked` is false.
pub fn raw_frame(first_byte: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::Data(Data::Binary),
        mask: masked.then_some(mask),
    };
    header
        .format(payload.len() as u64, &mut out)
        .expect("format");
    out[0] = first_byte;
    let start = out.len();
    out.extend_from_slice(payload);
    if masked {
        for (i, b) in out[start..].iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    out
}

/// A client speaking raw bytes after a hand-written handshake: for what tungstenite refuses
/// to send (bad frames, huge declared lengths) and for not answering pings.
pub struct Raw {
    pub io: TlsStream<TcpStream>,
    buf: Vec<u8>,
    /// Pings skipped (unanswered) while authenticating.
    pub pings_while_authenticating: usize,
}

pub enum RawEvent {
    Frame { opcode: u8, payload: Vec<u8> },
    Ended,
    Silence,
}

impl Raw {
    pub async fn connect(srv: &Srv, extra_headers: &str) -> (Raw, String) {
        let mut io = srv.tls().await.expect("tls");
        let req = format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {}\r\n{}\r\n",
            srv.origin(),
            extra_headers
        );
        io.write_all(req.as_bytes()).await.expect("write handshake");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = tokio::time::timeout(STEP, io.read(&mut chunk))
                .await
                .expect("head in time")
                .expect("read");
            assert!(n > 0, "server closed during handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        (
            Raw {
                io,
                buf: buf[head_end..].to_vec(),
                pings_while_authenticating: 0,
            },
            head,
        )
    }

    /// Connects and authenticates with a fresh ticket.
    pub async fn authed(srv: &Srv) -> Raw {
        let (ticket, _) = srv.ticket().await;
        let (mut raw, _) = Raw::connect(srv, "").await;
        raw.send(&raw_frame(0x81, auth_message(&ticket).as_bytes(), true))
            .await;
        loop {
            match raw.next(STEP).await {
                RawEvent::Frame { opcode: 1, payload } => {
                    assert!(String::from_utf8_lossy(&payload).contains("auth_ok"));
                    return raw;
                }
                // The server pings from the first moment; this client never answers.
                RawEvent::Frame { opcode: 9, .. } => raw.pings_while_authenticating += 1,
                _ => panic!("no auth_ok"),
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        tokio::time::timeout(STEP, self.io.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    /// Next frame (pings included, never answered), end of stream, or silence.
    pub async fn next(&mut self, wait: Duration) -> RawEvent {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut cursor = std::io::Cursor::new(&self.buf[..]);
            if let Ok(Some((h, len))) = FrameHeader::parse(&mut cursor) {
                let start = cursor.position() as usize;
                let len = len as usize;
                if self.buf.len() >= start + len {
                    let payload = self.buf[start..start + len].to_vec();
                    self.buf.drain(..start + len);
                    let opcode = u8::from(h.opcode);
                    return RawEvent::Frame { opcode, payload };
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.io.read(&mut chunk)).await {
                Err(_) => return RawEvent::Silence,
                Ok(Ok(0)) | Ok(Err(_)) => return RawEvent::Ended,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Skips pings and returns the close code the server sends (None if it just drops).
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        loop {
            match self.next(wait).await {
                RawEvent::Frame { opcode: 8, payload } if payload.len() >= 2 => {
                    return Some(u16::from_be_bytes([payload[0], payload[1]]));
                }
                RawEvent::Frame { opcode: 8, .. } => return Some(1005),
                RawEvent::Frame { .. } => continue,
                RawEvent::Ended | RawEvent::Silence => return None,
            }
        }
    }

    /// Sends a valid payment and returns the first text reply (skipping pings), if any.
    pub async fn payment_reply(&mut self, wait: Duration) -> Option<serde_json::Value> {
        self.send(&raw_frame(0x81, VALID_PAYMENT.as_bytes(), true))
            .await;
        loop {
            match self.next(wait).await {
                RawEvent::Frame { opcode: 1, payload } => {
                    return serde_json::from_slice(&payload).ok();
                }
                RawEvent::Frame { opcode: 9, .. } | RawEvent::Frame { opcode: 10, .. } => continue,
                _ => return None,
            }
        }
    }
}

pub fn ping_opcode() -> u8 {
    u8::from(OpCode::Control(Control::Ping))
}
