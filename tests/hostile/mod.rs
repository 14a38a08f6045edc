//! Hostile in-process targets for the robustness tests (issue 8), and the one helper that runs a
//! full wsaudit audit against a target: target file, plan, runtime, run under a guard.
//!
//! Every server here listens on 127.0.0.1:0, serves each connection under [`CONN_CAP`], stops a
//! connection when the client goes away (a failed write or read), and is torn down with its
//! [`Hostile`] handle: nothing runs forever.
#![allow(dead_code)]

#[path = "../fixtures/closed_port.rs"]
pub mod closed_port;

#[path = "../common/deflate_bomb.rs"]
mod deflate_bomb;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use wsaudit::attacks::TargetRuntime;
use wsaudit::config::check::load_suites;
use wsaudit::config::target::LoadedTarget;
use wsaudit::config::{LoadedPolicy, Secrets, SourceFile};
use wsaudit::plan::Plan;
use wsaudit::report::{CaseResult, RunReport, Verdict};
use wsaudit::run::progress::Progress;
use wsaudit::run::{RunOptions, run};
use wsaudit::wire::{FrameReader, OpCode, close_payload, encode_frame, header};

/// Longest any hostile connection is served: a stop for every loop below.
pub const CONN_CAP: Duration = Duration::from_secs(30);

/// The `limits` of a hostile target: short, so deadlines are reached quickly.
pub const LIMITS: &str = "{ connect_timeout: 5s, case_timeout: 15s, max_parallel: 64 }";

/// The `limits` for a ticket endpoint that redirects forever or sends a body past the client's
/// 1 MiB cap. The client's redirect limit ends the loop after six sequential TLS requests, and
/// the body cap after a mebibyte of TLS records, each inside one `connect_timeout`; with every
/// scenario running at once on a loaded 2-core CI machine, 5 s was seen to run out first (a
/// timeout instead of the limit's error). Those scenarios are about the limit, not the deadline.
pub const SLOW_TICKET_LIMITS: &str =
    "{ connect_timeout: 20s, case_timeout: 25s, max_parallel: 64 }";
/// The environment variable the targets read the API token from (`${...}` marks it secret).
pub const TOKEN_VAR: &str = "WSAUDIT_HOSTILE_TOKEN";
/// The API token, as the environment would hold it.
pub const TOKEN: &str = "hostile-api-token-Zq7Rw2Lk9Xv4Bn6Mt8Pc3Hd5";
/// The origin of legitimate clients.
pub const ORIGIN: &str = "https://app.example.com";
/// A name under `.invalid`, which never resolves (RFC 6761).
pub const UNRESOLVABLE: &str = "wsaudit-hostile.invalid";
/// Slack on top of the bound derived from the plan: gating, report assembly, a loaded CI box.
pub const MARGIN: Duration = Duration::from_secs(5);
/// A payment the reference-fast policy's message schema accepts.
const VALID_PAYMENT: &str =
    r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;

/// What a hostile server does with a TCP connection before any HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Accepts and never answers; reads and drops whatever comes until the client leaves.
    Silent,
    /// Answers the ClientHello with a fatal `protocol_version` alert: how a TLS 1.0-only server
    /// (which rustls cannot be) answers a client offering TLS 1.2 and 1.3.
    VersionAlert,
    /// Speaks plaintext HTTP on the TLS port: a 400 to whatever arrives.
    Plaintext,
    /// TLS 1.3 with this certificate, then HTTP.
    Tls(Cert),
    /// HTTP without TLS (`ws://`, `http://`): for floods, whose cost would otherwise be the
    /// debug build's TLS rather than the harness.
    Http,
}

/// The certificate a TLS server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cert {
    /// Signed by a CA the target trusts, for 127.0.0.1.
    Valid,
    /// Signed by the trusted CA, for another host name only.
    WrongHost,
    /// Signed by the trusted CA, for 127.0.0.1, expired in 2021.
    Expired,
    /// Self-signed for 127.0.0.1; the target names no trust root.
    SelfSigned,
}

/// The answer to a WebSocket upgrade request (`GET /ws`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// 403, short body.
    Refuse,
    /// A correct 101, one byte every 100 ms.
    Slowloris,
    /// 101 with a wrong `Sec-WebSocket-Accept`, then silence.
    WrongAccept,
    /// 403 declaring a 1 GB body, streamed until the client leaves.
    HugeBody,
    /// `101` and then header lines forever.
    EndlessHeaders,
    /// A correct 101, then this.
    Accept(After),
    /// The permissive echoing app of [`After::App`], breaking one rule of RFC 6455 a browser
    /// enforces.
    Breaks(Break),
}

/// A rule of RFC 6455 (or RFC 7692) a server breaks, client-side checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// A 101 without `Upgrade: websocket`.
    NoUpgradeHeader,
    /// A 101 with `Connection: keep-alive` instead of `Upgrade`.
    NoConnectionHeader,
    /// A 101 choosing subprotocol `chat`, which nobody offered.
    UnofferedSubprotocol,
    /// A 101 naming extension `x-webkit-deflate-frame`, which nobody offered.
    UnofferedExtension,
    /// A second HTTP response right after the 101 (read as a frame: RSV1, opcode close).
    HttpAfter101,
    /// Every frame masked.
    MaskedFrames,
    /// RSV1 on every text frame, no extension negotiated.
    Rsv1Frames,
    /// After `auth_ok`, a ping with a 200-byte payload.
    OversizedPing,
    /// After `auth_ok`, a ping without FIN.
    FragmentedPing,
    /// Every close it sends carries the reserved code 1005.
    CloseCode1005,
    /// Every text frame ends with a byte that is not UTF-8.
    InvalidUtf8,
    /// A text frame after each close frame it sends (noted, not fatal).
    DataAfterClose,
}

/// What an upgraded hostile connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// A frame declaring 2^63 - 1 bytes (the most RFC 6455 allows), 1 MiB of it, then silence.
    HugeFrame,
    /// After the client's first frame (its login), `auth_ok` and then text frames of 1000 KiB
    /// (just under the client's 1 MiB read cap, so each is kept), as fast as the client reads.
    EndlessFrames,
    /// After the client's first two frames (login, one message), half a frame, then the TCP
    /// connection closes.
    CloseMidFrame,
    /// permessage-deflate accepted in the 101 when the client offers it, and then after the
    /// client's first frame (its login), compressed text frames of about 512 KiB each
    /// inflating to 512 MiB of spaces, as fast as the client reads (a client that offers
    /// nothing gets the permissive app of [`After::App`]).
    CompressedBombs,
    /// A permissive app that answers auth and payments and echoes what it got (tickets,
    /// cookies, URLs) back in replies and close reasons; optionally pinging ~2000 times a second.
    App {
        /// Sends 20 pings every 10 ms besides.
        ping_flood: bool,
    },
}

/// The answer of the ticket endpoint (`POST /ws/ticket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketReply {
    /// A fresh ticket and session cookie, echoing the Authorization header in the body.
    Issue,
    /// 500 with a short body.
    Status500,
    /// 200 with an HTML page.
    Html,
    /// 200 declaring a 1 GB body, streamed until the client leaves.
    HugeBody,
    /// 302 to itself, forever.
    RedirectLoop,
    /// 307 to `/ws/ticket/issued` on the same origin, which issues.
    RedirectSameOrigin,
    /// 307 to `https://localhost:PORT/ws/ticket`: another origin (another host name, and
    /// another server on this port).
    RedirectElsewhere(u16),
    /// A correct answer, one byte every 100 ms.
    Slowloris,
    /// `200` and then header lines forever.
    EndlessHeaders,
}

/// A hostile server's whole behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// Below HTTP.
    pub layer: Layer,
    /// The WebSocket endpoint.
    pub upgrade: Upgrade,
    /// The ticket endpoint.
    pub ticket: TicketReply,
}

impl Behaviour {
    /// A valid TLS server with these HTTP behaviours.
    pub fn tls(upgrade: Upgrade, ticket: TicketReply) -> Self {
        Self {
            layer: Layer::Tls(Cert::Valid),
            upgrade,
            ticket,
        }
    }

    /// Only this layer (HTTP never happens).
    pub fn layer(layer: Layer) -> Self {
        Self {
            layer,
            upgrade: Upgrade::Refuse,
            ticket: TicketReply::Status500,
        }
    }
}

/// What a hostile server saw and handed out.
#[derive(Default)]
pub struct Record {
    /// TCP connections accepted.
    pub accepted: AtomicUsize,
    /// Tickets and session cookie values issued (secrets the harness must redact).
    pub issued: Mutex<Vec<String>>,
    /// Tickets already used to authenticate.
    used: Mutex<HashSet<String>>,
    /// Replies and close reasons that carried a secret back (proof the echo test is not vacuous).
    pub echoed: AtomicUsize,
    /// Compressed bombs written (each one the client read, but for what TCP buffers).
    pub bombs: AtomicUsize,
    /// The record of the server a redirect points to, where a scenario has one.
    pub elsewhere: std::sync::OnceLock<Arc<Record>>,
    /// Requests that carried a `Referer` header.
    pub referers: AtomicUsize,
}

impl Record {
    /// A copy of what was issued so far.
    pub fn issued_now(&self) -> Vec<String> {
        self.issued.lock().expect("record lock").clone()
    }
}

/// A running hostile server; dropping it stops the listener and every connection.
pub struct Hostile {
    /// Where it listens.
    pub addr: SocketAddr,
    /// PEM of the CA a client should trust (none for a self-signed or non-TLS server).
    pub ca_pem: Option<String>,
    /// What it saw.
    pub record: Arc<Record>,
    /// Whether it speaks HTTP without TLS.
    plain: bool,
    /// How its ticket endpoint answers (a redirect loop or a huge body needs longer limits).
    ticket: TicketReply,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        // The accept loop owns the JoinSet of connections: aborting it aborts them all.
        self.task.abort();
    }
}

/// A TLS or TCP stream.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
type Io = Box<dyn Stream>;

impl Hostile {
    /// Starts a server with `behaviour` on 127.0.0.1.
    pub async fn start(behaviour: Behaviour) -> Self {
        wsaudit::crypto::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (acceptor, ca_pem) = match behaviour.layer {
            Layer::Tls(cert) => {
                let (chain, key, ca) = certificate(cert);
                let mut config =
                    rustls::ServerConfig::builder_with_provider(wsaudit::crypto::provider())
                        .with_protocol_versions(&[&rustls::version::TLS13])
                        .expect("TLS 1.3")
                        .with_no_client_auth()
                        .with_single_cert(chain, key)
                        .expect("server certificate");
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                (Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))), ca)
            }
            _ => (None, None),
        };
        let record = Arc::new(Record::default());
        let rec = record.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                rec.accepted.fetch_add(1, Ordering::Relaxed);
                let acceptor = acceptor.clone();
                let rec = rec.clone();
                conns.spawn(async move {
                    let _ =
                        tokio::time::timeout(CONN_CAP, serve(tcp, behaviour, acceptor, rec)).await;
                });
                // Reap finished connections so the set stays small.
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            ca_pem,
            record,
            plain: behaviour.layer == Layer::Http,
            ticket: behaviour.ticket,
            task,
        }
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        let scheme = if self.plain { "ws" } else { "wss" };
        format!("{scheme}://{}/ws", self.addr)
    }

    /// The ticket endpoint URL.
    pub fn ticket_url(&self) -> String {
        let scheme = if self.plain { "http" } else { "https" };
        format!("{scheme}://{}/ws/ticket", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.record.accepted.load(Ordering::Relaxed)
    }

    /// A target file for this server, the CA written beside it; returns the target's path.
    pub fn write_target(&self, dir: &Path) -> PathBuf {
        let limits = if matches!(
            self.ticket,
            TicketReply::RedirectLoop | TicketReply::HugeBody
        ) {
            SLOW_TICKET_LIMITS
        } else {
            LIMITS
        };
        write_target(
            dir,
            &self.ws_url(),
            &self.ticket_url(),
            self.ca_pem.as_deref(),
            limits,
        )
    }
}

/// Writes `target.yaml` (and `ca.pem` when given) into `dir`, describing a target the way the
/// reference server's emitted target does, with the API token read from [`TOKEN_VAR`] and the
/// given `limits` (normally [`LIMITS`]); returns the target's path.
pub fn write_target(
    dir: &Path,
    ws_url: &str,
    ticket_url: &str,
    ca_pem: Option<&str>,
    limits: &str,
) -> PathBuf {
    let tls = match ca_pem {
        Some(pem) => {
            std::fs::write(dir.join("ca.pem"), pem).expect("write CA");
            "tls: { ca_file: ca.pem }\n"
        }
        None => "",
    };
    let yaml = format!(
        "target: hostile\nurl: '{ws_url}'\n{tls}origin: '{ORIGIN}'\n\
         auth:\n  ticket:\n    request:\n      method: POST\n      url: '{ticket_url}'\n      \
         headers: {{ Authorization: 'Bearer ${{{TOKEN_VAR}}}' }}\n    extract: /ticket\n  \
         first_message: '{{\"type\":\"auth\",\"ticket\":\"{{{{ticket}}}}\"}}'\n  \
         accepted_when: {{ json: {{ \"/type\": \"auth_ok\" }} }}\n\
         messages:\n  valid: ['{VALID_PAYMENT}']\n  \
         accepted_when: {{ json: {{ \"/type\": \"ack\" }} }}\n  \
         rejected_when: {{ json: {{ \"/type\": \"error\" }} }}\n\
         limits: {limits}\n"
    );
    let path = dir.join("target.yaml");
    std::fs::write(&path, yaml).expect("write target");
    path
}

/// Certificate chain, key and the CA PEM a client should trust, for each kind.
fn certificate(
    kind: Cert,
) -> (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Option<String>,
) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let generated = |names: &[&str]| {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let ck = wsaudit::crypto::generate_ca_and_leaf(&names).expect("certificates");
        (ck.chain, ck.key, ck.ca_pem)
    };
    let key_der = |k: &KeyPair| PrivateKeyDer::try_from(k.serialize_der()).expect("key DER");
    match kind {
        Cert::Valid => generated(&["127.0.0.1"]),
        Cert::WrongHost => generated(&["wrong-host.example"]),
        Cert::Expired => {
            let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca_key = KeyPair::generate().expect("CA key");
            let ca_cert = ca.self_signed(&ca_key).expect("CA");
            let issuer = Issuer::new(ca, ca_key);
            let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
            leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
            leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
            let leaf_key = KeyPair::generate().expect("leaf key");
            let cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
            (
                vec![cert.der().clone(), ca_cert.der().clone()],
                key_der(&leaf_key),
                Some(ca_cert.pem()),
            )
        }
        Cert::SelfSigned => {
            let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
            let key = KeyPair::generate().expect("key");
            let cert = params.self_signed(&key).expect("self-signed");
            (vec![cert.der().clone()], key_der(&key), None)
        }
    }
}

/// Serves one TCP connection.
async fn serve(
    mut tcp: TcpStream,
    b: Behaviour,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    rec: Arc<Record>,
) {
    match b.layer {
        Layer::Silent => {
            let _ = drain(&mut tcp).await;
        }
        Layer::VersionAlert => {
            let mut hello = [0u8; 5];
            if tcp.read_exact(&mut hello).await.is_ok() && hello[0] == 0x16 {
                // alert record, TLS 1.0 record version, fatal (2), protocol_version (70)
                let _ = tcp
                    .write_all(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])
                    .await;
            }
        }
        Layer::Plaintext => {
            let mut first = [0u8; 512];
            if tcp.read(&mut first).await.is_ok_and(|n| n > 0) {
                let _ = tcp
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad request")
                    .await;
            }
        }
        Layer::Http => http(Box::new(tcp), b, &rec).await,
        Layer::Tls(_) => {
            let Some(acceptor) = acceptor else { return };
            if let Ok(tls) = acceptor.accept(tcp).await {
                http(Box::new(tls), b, &rec).await;
            }
        }
    }
}

/// Reads and drops bytes until the peer leaves.
async fn drain(s: &mut (impl AsyncRead + Unpin)) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    while s.read(&mut buf).await? > 0 {}
    Ok(())
}

/// A request head: method, request target, headers (names lower-cased) and the raw text.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    raw: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request head (at most 64 KiB).
async fn read_request(s: &mut Io) -> Option<Request> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return None;
        }
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let raw = String::from_utf8_lossy(&head).into_owned();
    let mut lines = raw.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request {
        method,
        target,
        headers,
        raw,
    })
}

/// One HTTP request per connection: the ticket endpoint or the WebSocket endpoint.
async fn http(mut s: Io, b: Behaviour, rec: &Record) {
    let Some(req) = read_request(&mut s).await else {
        return;
    };
    if req.header("referer").is_some() {
        rec.referers.fetch_add(1, Ordering::Relaxed);
    }
    if req.target.starts_with("/ws/ticket") {
        ticket(s, &req, b.ticket, rec).await;
    } else {
        upgrade(s, &req, b.upgrade, rec).await;
    }
}

/// Writes `bytes` one at a time, 100 ms apart.
async fn slowly(s: &mut Io, bytes: &[u8]) {
    for b in bytes {
        if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One endless-headers line: 1 KiB, so the 16 KiB head bound is met before the 100-header one.
const HEADER_LINE: &[u8] = &{
    let mut line = [b'a'; 1024];
    let name = b"X-Padding: ";
    let mut i = 0;
    while i < name.len() {
        line[i] = name[i];
        i += 1;
    }
    line[1022] = b'\r';
    line[1023] = b'\n';
    line
};

/// Writes `head`, then `chunk` over and over until the client leaves.
async fn endless(s: &mut Io, head: &[u8], chunk: &[u8]) {
    if s.write_all(head).await.is_err() {
        return;
    }
    while s.write_all(chunk).await.is_ok() {}
}

/// Holds the connection, reading and dropping, until the client leaves.
async fn hold(s: &mut Io) {
    let _ = drain(s).await;
}

/// The ticket endpoint.
async fn ticket(mut s: Io, req: &Request, reply: TicketReply, rec: &Record) {
    let reply = match reply {
        TicketReply::RedirectSameOrigin if req.target.starts_with("/ws/ticket/issued") => {
            TicketReply::Issue
        }
        other => other,
    };
    match reply {
        TicketReply::RedirectSameOrigin => {
            let _ = s
                .write_all(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /ws/ticket/issued\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
        TicketReply::RedirectElsewhere(port) => {
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://localhost:{port}/ws/ticket\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
        }
        TicketReply::Issue | TicketReply::Slowloris => {
            let ticket = random_token();
            let cookie = random_token();
            rec.issued
                .lock()
                .expect("record lock")
                .extend([ticket.clone(), cookie.clone()]);
            let authorization = req.header("authorization").unwrap_or_default();
            if authorization.contains(TOKEN) {
                rec.echoed.fetch_add(1, Ordering::Relaxed);
            }
            let body =
                serde_json::json!({ "ticket": ticket, "you_sent": authorization }).to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Set-Cookie: wsaudit_session={cookie}; Secure; HttpOnly; SameSite=Strict\r\n\
                 X-Token-Echo: {}\r\nConnection: close\r\n\r\n{body}",
                body.len(),
                next_encoding(TOKEN, usize::MAX)
            );
            if reply == TicketReply::Slowloris {
                slowly(&mut s, response.as_bytes()).await;
            } else {
                let _ = s.write_all(response.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        }
        TicketReply::Status500 => {
            let _ = s
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 21\r\nConnection: close\r\n\r\nsomething broke here.")
                .await;
        }
        TicketReply::Html => {
            let page =
                "<!doctype html><html><body><h1>Welcome</h1><p>Please log in.</p></body></html>";
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                        page.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
        TicketReply::HugeBody => {
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{\"ticket\":\"";
            endless(&mut s, head, &[b'a'; 16 * 1024]).await;
        }
        TicketReply::RedirectLoop => {
            let _ = s
                .write_all(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /ws/ticket\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
        TicketReply::EndlessHeaders => {
            endless(&mut s, b"HTTP/1.1 200 OK\r\n", HEADER_LINE).await;
        }
    }
    let _ = s.shutdown().await;
}

/// 32 random bytes, URL-safe base64: a ticket or a cookie value.
fn random_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The `Sec-WebSocket-Accept` for a request.
fn accept_key(req: &Request) -> String {
    tungstenite::handshake::derive_accept_key(
        req.header("sec-websocket-key")
            .unwrap_or_default()
            .as_bytes(),
    )
}

fn switching(accept: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// The WebSocket endpoint.
async fn upgrade(mut s: Io, req: &Request, how: Upgrade, rec: &Record) {
    match how {
        Upgrade::Refuse => {
            let _ = s
                .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nConnection: close\r\n\r\nForbidden")
                .await;
        }
        Upgrade::Slowloris => slowly(&mut s, switching(&accept_key(req)).as_bytes()).await,
        Upgrade::WrongAccept => {
            if s.write_all(switching("d3JvbmcgYWNjZXB0IGtleQ==").as_bytes())
                .await
                .is_ok()
            {
                hold(&mut s).await;
            }
        }
        Upgrade::HugeBody => {
            let head = b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 1000000000\r\n\r\n";
            endless(&mut s, head, &[b'x'; 16 * 1024]).await;
        }
        Upgrade::EndlessHeaders => {
            endless(&mut s, b"HTTP/1.1 101 Switching Protocols\r\n", HEADER_LINE).await;
        }
        Upgrade::Breaks(b) => {
            if let Some(response) = app_handshake(req, rec) {
                let _ = s.write_all(&response).await;
                return;
            }
            let mut response = switching(&accept_key(req));
            let extra =
                |r: &str, line: &str| r.replacen("\r\n\r\n", &format!("\r\n{line}\r\n\r\n"), 1);
            match b {
                Break::NoUpgradeHeader => response = response.replace("Upgrade: websocket\r\n", ""),
                Break::NoConnectionHeader => {
                    response = response.replace("Connection: Upgrade", "Connection: keep-alive");
                }
                Break::UnofferedSubprotocol => {
                    response = extra(&response, "Sec-WebSocket-Protocol: chat")
                }
                Break::UnofferedExtension => {
                    response = extra(
                        &response,
                        "Sec-WebSocket-Extensions: x-webkit-deflate-frame",
                    );
                }
                Break::HttpAfter101 => {
                    response.push_str("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
                _ => {}
            }
            if s.write_all(response.as_bytes()).await.is_ok() {
                app(s, req, false, Some(b), rec).await;
            }
        }
        Upgrade::Accept(after) => {
            if let After::App { .. } = after
                && let Some(response) = app_handshake(req, rec)
            {
                let _ = s.write_all(&response).await;
                return;
            }
            let mut response = switching(&accept_key(req));
            if after == After::CompressedBombs && offers_deflate(req) {
                response = response.replacen(
                    "\r\n\r\n",
                    "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                    1,
                );
            }
            if let (After::App { .. }, Some(cookie)) = (after, req.header("cookie")) {
                response = response.replacen(
                    "\r\n\r\n",
                    &format!("\r\nX-Echo: {}\r\n\r\n", next_encoding(cookie, usize::MAX)),
                    1,
                );
                // The cookie echoed in the reason phrase, where a 60-character preview cuts it.
                response = response.replacen(
                    "Switching Protocols",
                    &format!("Switching Protocols for {cookie}"),
                    1,
                );
                rec.echoed.fetch_add(1, Ordering::Relaxed);
            }
            if s.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            upgraded(s, req, after, rec).await;
        }
    }
}

/// The app's refusals, echoing the request with whatever secret it carries where a harness
/// preview would cut it in two: foreign origins get a 403, URL credentials a 401 whose body puts
/// the credential across the 120-character body preview, and `?jwt=` a malformed status line
/// putting it across the 60-character preview of an unparsable head.
fn app_handshake(req: &Request, rec: &Record) -> Option<Vec<u8>> {
    let status = if req.header("origin") != Some(ORIGIN) {
        "403 Forbidden"
    } else if req.target.contains("jwt=") {
        rec.echoed.fetch_add(1, Ordering::Relaxed);
        return Some(format!("HTTP/1.1 4O1 you sent {}\r\n\r\n", req.target).into_bytes());
    } else if req.target.contains('?') {
        "401 Unauthorized"
    } else {
        return None;
    };
    if contains_secret(&req.raw, rec) {
        rec.echoed.fetch_add(1, Ordering::Relaxed);
    }
    let secret = rec
        .issued_now()
        .into_iter()
        .find(|v| req.raw.contains(v.as_str()))
        .unwrap_or_else(|| TOKEN.to_string());
    let body = format!(
        "{} refused{}; you sent:\n{}",
        next_encoding(&secret, usize::MAX),
        ".".repeat(62),
        req.raw
    );
    Some(
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// Whether `text` holds the API token or anything issued.
fn contains_secret(text: &str, rec: &Record) -> bool {
    text.contains(TOKEN) || rec.issued_now().iter().any(|v| text.contains(v.as_str()))
}

/// Whether the request offers permessage-deflate.
fn offers_deflate(req: &Request) -> bool {
    req.header("sec-websocket-extensions")
        .is_some_and(|e| e.contains("permessage-deflate"))
}

/// A server frame (unmasked).
fn frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    encode_frame(&mut out, &header(opcode, None), payload);
    out
}

fn text(payload: &str) -> Vec<u8> {
    frame(OpCode::Data(wsaudit::wire::Data::Text), payload.as_bytes())
}

fn close(code: u16, reason: &str) -> Vec<u8> {
    frame(
        OpCode::Control(wsaudit::wire::Control::Close),
        &close_payload(code, reason),
    )
}

/// After the 101.
async fn upgraded(mut s: Io, req: &Request, after: After, rec: &Record) {
    match after {
        After::HugeFrame => {
            // Text frame, 64-bit length 2^63 - 1.
            let mut head = vec![0x81, 0x7F];
            head.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
            let chunk = [b'a'; 16 * 1024];
            if s.write_all(&head).await.is_err() {
                return;
            }
            for _ in 0..64 {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            hold(&mut s).await;
        }
        After::EndlessFrames => {
            // Accept the login, so the harness goes on to wait and read, then never stop.
            if client_frames(&mut s, 1).await {
                // One frame for every connection: the memory measured is the harness's.
                static FRAME: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
                let f = FRAME.get_or_init(|| text(&"f".repeat(1000 * 1024)));
                let ok = text(r#"{"type":"auth_ok"}"#);
                if s.write_all(&ok).await.is_err() {
                    return;
                }
                while s.write_all(f).await.is_ok() {}
            }
        }
        After::CompressedBombs if offers_deflate(req) => {
            if client_frames(&mut s, 1).await {
                // One bomb for every connection: the memory measured is the harness's.
                static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
                let bomb = BOMB.get_or_init(|| deflate_bomb::frame(512));
                while s.write_all(bomb).await.is_ok() {
                    rec.bombs.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        After::CompressedBombs => app(s, req, false, None, rec).await,
        After::CloseMidFrame => {
            // After the login and one message, half a frame; dropping the stream then closes
            // TCP without a close frame (or a TLS close_notify).
            if client_frames(&mut s, 2).await {
                let mut half = vec![0x81, 100];
                half.extend_from_slice(b"ten bytes.");
                let _ = s.write_all(&half).await;
                let _ = s.flush().await;
            }
        }
        After::App { ping_flood } => app(s, req, ping_flood, None, rec).await,
    }
}

/// Reads `n` client frames (payloads up to 1 MiB); false when the client left first.
async fn client_frames(s: &mut Io, n: usize) -> bool {
    let mut reader = FrameReader::new(s);
    for _ in 0..n {
        let Ok(Some(h)) = reader.read_header().await else {
            return false;
        };
        if h.length > 1 << 20 || reader.skip_payload(h.length).await.is_err() {
            return false;
        }
    }
    true
}

/// The permissive, echoing app; `breaks` makes it break that rule of RFC 6455.
async fn app(s: Io, req: &Request, ping_flood: bool, breaks: Option<Break>, rec: &Record) {
    let (rd, mut wr) = tokio::io::split(s);
    let mut reader = FrameReader::new(rd);
    let mut pings = tokio::time::interval(Duration::from_millis(10));
    let cookie = req.header("cookie").unwrap_or_default().to_string();
    let mut authenticated = false;
    loop {
        let h = tokio::select! {
            h = reader.read_header() => match h {
                Ok(Some(h)) => h,
                _ => return,
            },
            _ = pings.tick(), if ping_flood => {
                let batch: Vec<u8> = (0..20u8)
                    .flat_map(|i| frame(OpCode::Control(wsaudit::wire::Control::Ping), &[i]))
                    .collect();
                if wr.write_all(&batch).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if h.length > 1 << 20 {
            let _ = wr.write_all(&close(1009, "too big")).await;
            return;
        }
        let Ok(payload) = reader.read_payload(h.length as usize, h.header.mask).await else {
            return;
        };
        let authenticated_before = authenticated;
        let reply = match h.opcode_bits {
            0x1 => {
                let msg = String::from_utf8_lossy(&payload).into_owned();
                answer(&msg, &cookie, &req.target, &mut authenticated, rec)
            }
            0x8 => {
                let _ = wr.write_all(&twist(close(1000, "bye"), breaks)).await;
                return;
            }
            0x9 => frame(OpCode::Control(wsaudit::wire::Control::Pong), &payload),
            0xA => continue,
            0x2 => close(1003, "text only"),
            _ => close(1002, "protocol error"),
        };
        if contains_secret(&String::from_utf8_lossy(&reply), rec) {
            rec.echoed.fetch_add(1, Ordering::Relaxed);
        }
        let closing = reply.first().is_some_and(|b| b & 0x0F == 0x8);
        if wr.write_all(&twist(reply, breaks)).await.is_err() || closing {
            return;
        }
        if authenticated && !authenticated_before {
            let ping = match breaks {
                Some(Break::OversizedPing) => Some(frame(
                    OpCode::Control(wsaudit::wire::Control::Ping),
                    &[b'p'; 200],
                )),
                Some(Break::FragmentedPing) => Some(vec![0x09, 0x01, b'p']),
                _ => None,
            };
            if let Some(ping) = ping
                && wr.write_all(&ping).await.is_err()
            {
                return;
            }
        }
    }
}

/// The app's answer to a text message: auth_ok, ack or error echoing secrets, or a close whose
/// reason holds the ticket or the cookie.
fn answer(
    msg: &str,
    cookie: &str,
    target: &str,
    authenticated: &mut bool,
    rec: &Record,
) -> Vec<u8> {
    let json: serde_json::Value = serde_json::from_str(msg).unwrap_or_default();
    if json["type"] == "auth" {
        let t = json["ticket"].as_str().unwrap_or_default().to_string();
        if !rec.issued_now().contains(&t) {
            return close(1008, &format!("unknown ticket {}", next_encoding(&t, 100)));
        }
        if !rec.used.lock().expect("record lock").insert(t.clone()) {
            return close(1008, &format!("ticket {t} was already used"));
        }
        *authenticated = true;
        let echo = serde_json::json!({ "type": "auth_ok", "echo": msg }).to_string();
        return text(&format!(
            r#"{{"encoded":"{}",{}"#,
            next_encoding(&t, usize::MAX),
            &echo[1..]
        ));
    }
    if !*authenticated {
        return close(1008, &format!("authenticate first ({cookie})"));
    }
    let kind = if json["type"] == "payment" {
        "ack"
    } else {
        "error"
    };
    let echo = serde_json::json!({ "type": kind, "echo": msg, "cookie": cookie, "target": target })
        .to_string();
    // The cookie and the API token, each in turn in one of its encoded forms, first (where a
    // preview shows them).
    static WHICH: AtomicUsize = AtomicUsize::new(0);
    let secret = match WHICH.fetch_add(1, Ordering::Relaxed) % 2 {
        0 if !cookie.is_empty() => cookie,
        _ => TOKEN,
    };
    text(&format!(
        r#"{{"encoded":"{}",{}"#,
        next_encoding(secret, usize::MAX),
        &echo[1..]
    ))
}

/// Every form a server may echo a secret in: base64 and base64url, padded and not, with the
/// secret at each byte alignment inside a longer blob; hex in both cases; `%XX` of every byte
/// in both cases; JSON `\uXXXX` escapes in both cases.
pub fn encodings(secret: &str) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        for before in 0..3 {
            let mut blob = b"<~~"[..before].to_vec();
            blob.extend_from_slice(secret.as_bytes());
            blob.push(b'>');
            out.push(engine.encode(&blob));
        }
    }
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let pct: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    let json_u: String = secret
        .encode_utf16()
        .map(|c| format!("\\u{c:04x}"))
        .collect();
    out.extend([
        hex.to_uppercase(),
        hex,
        pct.to_lowercase(),
        pct,
        json_u.to_uppercase().replace("\\U", "\\u"),
        json_u,
    ]);
    out
}

/// The next of `secret`'s [`encodings`] no longer than `max_len` (each comes round in turn).
fn next_encoding(secret: &str, max_len: usize) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let all: Vec<String> = encodings(secret)
        .into_iter()
        .filter(|e| e.len() <= max_len)
        .collect();
    all.get(NEXT.fetch_add(1, Ordering::Relaxed) % all.len().max(1))
        .cloned()
        .unwrap_or_default()
}

/// A server frame as the app would send it, made to break `breaks` where that rule is about
/// frames.
fn twist(frame_bytes: Vec<u8>, breaks: Option<Break>) -> Vec<u8> {
    let Some(h) = wsaudit::wire::parse_header(&frame_bytes) else {
        return frame_bytes;
    };
    let payload = &frame_bytes[h.header_len..];
    let op = h.opcode_bits;
    match breaks {
        Some(Break::MaskedFrames) => {
            let mut out = Vec::with_capacity(frame_bytes.len() + 4);
            encode_frame(
                &mut out,
                &header(OpCode::from(op), Some([1, 2, 3, 4])),
                payload,
            );
            out
        }
        Some(Break::Rsv1Frames) if op == 0x1 => {
            let mut out = frame_bytes;
            out[0] |= 0x40;
            out
        }
        Some(Break::InvalidUtf8) if op == 0x1 => {
            let mut bad = payload.to_vec();
            bad.push(0xFF);
            frame(OpCode::from(op), &bad)
        }
        Some(Break::CloseCode1005) if op == 0x8 => {
            let mut p = 1005u16.to_be_bytes().to_vec();
            p.extend_from_slice(payload.get(2..).unwrap_or_default());
            frame(OpCode::from(op), &p)
        }
        Some(Break::DataAfterClose) if op == 0x8 => {
            let mut out = frame_bytes;
            out.extend(text("late"));
            out
        }
        _ => frame_bytes,
    }
}

/// The reference-fast policy.
pub fn policy() -> LoadedPolicy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/reference-fast.yaml");
    LoadedPolicy::load(&path).expect("reference-fast loads")
}

/// The target's `${...}` lookup: only the API token exists.
pub fn env(name: &str) -> Option<String> {
    (name == TOKEN_VAR).then(|| TOKEN.to_string())
}

/// A finished audit.
pub struct Audit {
    /// Which scenario.
    pub name: String,
    /// The report, not redacted.
    pub report: RunReport,
    /// Every secret of the run (the target's and those seen at run time).
    pub secrets: Secrets,
    /// Measured wall time.
    pub elapsed: Duration,
    /// The bound derived from the plan.
    pub bound: Duration,
}

/// The guard of a run: cases run in waves of `max_parallel`, each wave ending by its longest
/// case deadline, plus [`MARGIN`].
pub fn bound_of(plan: &Plan, only: &[String], max_parallel: usize) -> Duration {
    let cases = wsaudit::run::select(plan, only, None);
    let longest = cases.iter().map(|c| c.deadline).max().unwrap_or_default();
    let waves = cases.len().div_ceil(max_parallel.max(1)) as u32;
    longest * waves + MARGIN
}

/// An audit ready to run: plan, policy and runtime built (the CPU-heavy part, done before the
/// clock of any audit starts, so concurrent audits do not delay each other's deadlines).
pub struct Prepared {
    name: String,
    policy: LoadedPolicy,
    plan: Plan,
    rt: Arc<TargetRuntime>,
    only: Vec<String>,
    /// The guard derived from the plan.
    pub bound: Duration,
}

/// Compiles the reference-fast plan (restricted to `only` controls or cases, all when empty)
/// for the target at `target_path`.
pub fn prepare(name: &str, target_path: &Path, only: &[&str]) -> Result<Prepared, String> {
    wsaudit::crypto::install_crypto_provider();
    let policy = policy();
    let source = SourceFile::read(target_path).map_err(|e| e.to_string())?;
    let target = LoadedTarget::parse(source, &env).map_err(|e| e.to_string())?;
    let suites = load_suites(&[]).map_err(|e| e.to_string())?;
    let plan = wsaudit::plan::compile(&policy, &target, &suites).map_err(|e| e.to_string())?;
    let rt = Arc::new(TargetRuntime::new(&target).map_err(|e| e.to_string())?);
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let bound = bound_of(&plan, &only, rt.target.limits.max_parallel as usize);
    Ok(Prepared {
        name: name.to_string(),
        policy,
        plan,
        rt,
        only,
        bound,
    })
}

impl Prepared {
    /// Runs the audit under its guard; an overrun is an error with the measured time.
    pub async fn run(self) -> Result<Audit, String> {
        let (_tx, cancel) = tokio::sync::watch::channel(false);
        let opts = RunOptions {
            only: self.only,
            partition: None,
            max_parallel: None,
            cancel,
            progress: Progress::Silent,
            stop_on_crash: false,
        };
        let started = Instant::now();
        let bound = self.bound;
        let report = tokio::time::timeout(bound, run(&self.plan, &self.policy, self.rt.clone(), opts))
            .await
            .map_err(|_| {
                format!(
                    "{}: the audit did not finish within its bound of {bound:?} (derived from the plan); gave up after {:?}",
                    self.name,
                    started.elapsed()
                )
            })?;
        Ok(Audit {
            name: self.name,
            report,
            secrets: self.rt.secrets(),
            elapsed: started.elapsed(),
            bound,
        })
    }
}

impl Audit {
    /// The case whose ID starts with `id` (a case ID may leave out its `[item]`).
    pub fn case(&self, id: &str) -> Result<&CaseResult, String> {
        self.report
            .cases
            .iter()
            .find(|c| c.case_id == id || c.case_id.split('[').next() == Some(id))
            .ok_or_else(|| format!("{}: no case {id} in the report", self.name))
    }

    /// Reason and evidence of a case, as one text.
    pub fn evidence(&self, id: &str) -> Result<String, String> {
        let c = self.case(id)?;
        Ok(format!(
            "{}\n{}",
            c.reason,
            c.evidence.transcript.join("\n")
        ))
    }

    /// Checks a case's verdict and that its reason or evidence says `what`.
    pub fn expect(&self, id: &str, verdict: Verdict, what: &str) -> Result<(), String> {
        let c = self.case(id)?;
        let text = self.evidence(id)?;
        if c.verdict != verdict || !text.contains(what) {
            return Err(format!(
                "{}: {id}: expected {verdict:?} with evidence naming `{what}`, got {:?}: {text}",
                self.name, c.verdict
            ));
        }
        Ok(())
    }

    /// Checks no case has `verdict`, except the listed ones.
    pub fn none(&self, verdict: Verdict, except: &[&str]) -> Result<(), String> {
        let bad: Vec<String> = self
            .report
            .cases
            .iter()
            .filter(|c| c.verdict == verdict)
            .filter(|c| {
                !except
                    .iter()
                    .any(|e| c.case_id == *e || c.case_id.split('[').next() == Some(e))
            })
            .map(|c| format!("{} ({})", c.case_id, c.reason))
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}: unexpected {verdict:?} verdicts: {}",
                self.name,
                bad.join("; ")
            ))
        }
    }

    /// Checks no case passed or failed: nothing could be judged.
    pub fn inconclusive(&self) -> Result<(), String> {
        self.none(Verdict::Pass, &[])?;
        self.none(Verdict::Fail, &[])
    }

    /// What every hostile audit must show: it finished every case (none abandoned), none
    /// panicked, and none needed the harness deadline (each step's own deadline ended it).
    pub fn sound(&self) -> Result<(), String> {
        if !self.report.not_run.is_empty() {
            return Err(format!(
                "{}: cases not run: {:?}",
                self.name, self.report.not_run
            ));
        }
        for (marker, what) in [
            ("wsaudit failed in this case", "panicked"),
            (
                "harness deadline",
                "ended only by the harness deadline (a step without its own)",
            ),
        ] {
            let hit: Vec<&str> = self
                .report
                .cases
                .iter()
                .filter(|c| c.reason.contains(marker))
                .map(|c| c.case_id.as_str())
                .collect();
            if !hit.is_empty() {
                return Err(format!("{}: cases {what}: {hit:?}", self.name));
            }
        }
        Ok(())
    }
}

/// Resident memory of this process, in bytes, from `/proc/self/status`.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Peak resident set (VmHWM): since the last [`reset_peak`], else since the process started.
    pub peak: u64,
    /// Current resident set (VmRSS).
    pub current: u64,
}

/// Reads this process's peak and current resident memory; `Err` says why no figure could be
/// read (no `/proc`, or a field missing), so a caller can fail instead of measuring zeros.
pub fn memory() -> Result<Memory, String> {
    let path = "/proc/self/status";
    let status = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| format!("{path} has no readable {name} field"))
    };
    Ok(Memory {
        peak: field("VmHWM:")?,
        current: field("VmRSS:")?,
    })
}

/// Resets the peak-RSS counter (Linux `clear_refs` 5) so a later [`memory`] shows the peak
/// since now; false when the kernel does not allow it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
