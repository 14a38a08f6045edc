//! Reference server benchmark (issue 2): prints each figure beside its goal. A missed goal is
//! printed, never asserted; only a real error (set-up failure, unexpected reply, a server that
//! drops idle connections) makes the bench exit non-zero.
//!
//! 1. Echo throughput of the full reference server (in-process) against a bare tokio-tungstenite
//!    TLS echo server, with the same client in the same run.
//! 2. Peak RSS of a `wsaudit serve` process while 50 connections each declare a 100 MiB frame,
//!    and, for contrast, of a server started with `--weaken max-size`.
//! 3. Memory per idle authenticated connection of a `wsaudit serve` process at 2,000 connections.
//!
//! Everything stays on 127.0.0.1 and every network step has a deadline.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};
use tokio_rustls::{TlsAcceptor, TlsConnector, client::TlsStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use wsaudit::config::policy::TlsVersion;
use wsaudit::config::{LoadedPolicy, SourceFile};
use wsaudit::server::{self, ServerOptions, Weakened};
use wsaudit::wire::{Control, Data, FrameReader, OpCode, header, parse_close};

/// The valid business message of the emitted target (`messages.valid`).
const PAYMENT: &str =
    r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;
/// Deadline of any single network step: connect, TLS, upgrade, ticket request, auth reply.
const STEP: Duration = Duration::from_secs(10);

/// Connections, and messages in flight on each: 128 outstanding messages keep a one-thread
/// server busy while replies travel back; the same shape for both servers.
const THROUGHPUT_CONNS: usize = 4;
const WINDOW: usize = 32;
/// Unmeasured lead-in (TLS session keys, allocator and TCP windows warm up), then the window.
const WARMUP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_millis(1500);
/// Rounds, each measuring the full then the bare server: 5 x 2 x 2 s.
const ROUNDS: usize = 5;
const RATIO_GOAL: f64 = 0.85;

const GIANT_CONNS: usize = 50;
/// Declared payload of each giant frame: the seed's "100MB message".
const GIANT_FRAME: u64 = 100 * 1024 * 1024;
/// The weakened server buffers each giant frame in full; 5 x 100 MiB shows that at a sane size.
const WEAK_GIANT_CONNS: usize = 5;
/// Payload is streamed from one reused buffer of this size per connection.
const CHUNK: usize = 64 * 1024;
/// A hardened server closes within about a second; the weakened one must read 100 MiB each.
const GIANT_DEADLINE: Duration = Duration::from_secs(60);
/// How often `/proc/<pid>/status` is sampled for the peak (VmHWM catches what falls between).
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// Any mask works: the payload's value is irrelevant, only its declared length matters.
const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x9e];
const GIANT_GOAL_MIB: f64 = 16.0;

const IDLE_CONNS: usize = 2000;
/// Connections set up concurrently, each opener with its own keep-alive ticket connection.
const OPENERS: usize = 16;
/// Pause before sampling so the server finishes the handshakes' bookkeeping and frees buffers.
const SETTLE: Duration = Duration::from_secs(1);
const IDLE_GOAL_KIB: f64 = 64.0;

type Tls = TlsStream<TcpStream>;
type Ws = WebSocketStream<Tls>;
/// One measurement, returning its table rows.
type Phase = fn(&Bench) -> Result<Vec<Row>>;

fn main() -> Result<()> {
    wsaudit::crypto::install_crypto_provider();
    let started = Instant::now();
    raise_fd_limit()?;
    let bench = Bench::new()?;
    let mut rows = Vec::new();
    let mut failed = false;
    let phases: [(&str, Phase); 3] = [
        ("echo throughput", throughput_phase),
        ("peak RSS, giant frames", giant_phase),
        ("memory per idle connection", idle_phase),
    ];
    for (name, phase) in phases {
        let t = Instant::now();
        println!("== {name}");
        match phase(&bench) {
            Ok(r) => rows.extend(r),
            Err(e) => {
                failed = true;
                println!("   error: {e:#}");
                rows.push(Row::new(name, "error", "", "not measured"));
            }
        }
        println!("   ({:.1} s)", t.elapsed().as_secs_f64());
    }
    print_table(&rows);
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    if failed {
        bail!("some figures could not be measured (see the errors above)");
    }
    Ok(())
}

/// What every measurement shares: the client runtime and the bench policy.
struct Bench {
    /// The client runs on the main thread; each in-process server gets its own one-thread
    /// runtime, so on 2 cores the full and the bare server get the same CPU budget.
    client_rt: Runtime,
    policy_text: String,
    /// The policy written out for `wsaudit serve`, in a directory removed at the end.
    policy_file: PathBuf,
    dir: tempfile::TempDir,
    /// The origin legitimate clients send (the policy's first allowed origin).
    origin: String,
}

impl Bench {
    fn new() -> Result<Self> {
        let client_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let policy_text = bench_policy_text()?;
        let (_, origin) = parse_policy(&policy_text)?;
        let dir = tempfile::tempdir()?;
        let policy_file = dir.path().join("bench-policy.yaml");
        std::fs::write(&policy_file, &policy_text)?;
        Ok(Self {
            client_rt,
            policy_text,
            policy_file,
            dir,
            origin,
        })
    }

    /// Starts `wsaudit serve` with the bench policy and `--weaken weaken` (none when empty).
    fn spawn_server(&self, weaken: &str) -> Result<(ServerProcess, Client)> {
        ServerProcess::spawn(self.dir.path(), &self.policy_file, weaken, &self.origin)
    }
}

/// `policies/reference-fast.yaml` with what would throttle or cut a benchmark lifted.
fn bench_policy_text() -> Result<String> {
    let mut text = include_str!("../policies/reference-fast.yaml").to_string();
    for (from, to) in [
        // The client sends as fast as the server answers; 50 messages/s would close it at once.
        // 1,000,000/s is the policy bound and far above what one connection reaches here.
        ("max_per_second: 50", "max_per_second: 1000000"),
        // Tickets are used right after issue, but 2,000 set-ups on a shared machine can lag.
        ("ttl_max: 1s", "ttl_max: 60s"),
        // Only the giant-frame connections stay unauthenticated; they must not be cut by this.
        ("{ timeout: 1s }", "{ timeout: 60s }"),
        // fintech.yaml's heartbeat: a realistic per-connection timer; idle clients answer pings.
        (
            "interval_max: 500ms, missed_max: 2",
            "interval_max: 30s, missed_max: 3",
        ),
    ] {
        if !text.contains(from) {
            bail!("policies/reference-fast.yaml no longer contains `{from}`: update the bench");
        }
        text = text.replace(from, to);
    }
    Ok(text)
}

/// Parses the bench policy and returns it with the origin legitimate clients send.
fn parse_policy(text: &str) -> Result<(LoadedPolicy, String)> {
    let policy = LoadedPolicy::parse(SourceFile::from_text("bench-policy.yaml", text))
        .map_err(|e| anyhow!("{e}"))?;
    let origin = policy
        .origin()
        .and_then(|o| o.allowed.first())
        .context("the bench policy has no allowed origin")?
        .to_string();
    Ok((policy, origin))
}

/// 2,000 connections need about as many descriptors in the bench and in the server child,
/// which inherits this limit; the usual soft limit is 1,024.
fn raise_fd_limit() -> Result<()> {
    let want = (3 * IDLE_CONNS) as libc::rlim_t;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct passed by reference.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
        }
        if lim.rlim_cur >= want {
            return Ok(());
        }
        if lim.rlim_max < want {
            bail!(
                "the open-file hard limit is {}, the bench needs {want}: raise it (ulimit -Hn)",
                lim.rlim_max
            );
        }
        lim.rlim_cur = want;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Client side, shared by every measurement.

/// How the bench reaches one server: TLS trusting its CA, the origin its policy allows.
struct Client {
    addr: SocketAddr,
    tls: TlsConnector,
    origin: String,
    api_token: String,
}

impl Client {
    fn new(addr: SocketAddr, ca_pem: &str, origin: String, api_token: String) -> Result<Self> {
        let roots = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("invalid CA PEM")?;
        let config = wsaudit::crypto::client_config_with_roots(&roots)?;
        Ok(Self {
            addr,
            tls: TlsConnector::from(Arc::new(config)),
            origin,
            api_token,
        })
    }

    async fn tls(&self) -> Result<Tls> {
        let connect = async {
            let tcp = TcpStream::connect(self.addr).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::IpAddress(self.addr.ip().into());
            self.tls.connect(name, tcp).await
        };
        Ok(timeout(STEP, connect)
            .await
            .context("TLS connect timed out")??)
    }

    /// A WebSocket connection from the allowed origin, not yet authenticated.
    async fn ws(&self, config: Option<WebSocketConfig>) -> Result<Ws> {
        let tls = self.tls().await?;
        let mut request = format!("wss://{}/ws", self.addr).into_client_request()?;
        request.headers_mut().insert("Origin", self.origin.parse()?);
        let upgrade = tokio_tungstenite::client_async_with_config(request, tls, config);
        let (ws, _) = timeout(STEP, upgrade)
            .await
            .context("WebSocket upgrade timed out")??;
        Ok(ws)
    }

    /// A connection authenticated with a fresh ticket: `auth` sent, `auth_ok` received.
    async fn authenticated(
        &self,
        tickets: &mut TicketSession,
        config: Option<WebSocketConfig>,
    ) -> Result<Ws> {
        let ticket = tickets.fetch().await?;
        let mut ws = self.ws(config).await?;
        let auth = serde_json::json!({ "type": "auth", "ticket": ticket }).to_string();
        ws.send(Message::text(auth)).await?;
        timeout(STEP, expect_reply(&mut ws, "auth_ok"))
            .await
            .context("no auth reply in time")??;
        Ok(ws)
    }
}

/// Waits for the next text message, skipping pings, and checks its `/type`.
async fn expect_reply<S>(stream: &mut S, reply_type: &str) -> Result<()>
where
    S: futures_util::Stream<Item = tungstenite::Result<Message>> + Unpin,
{
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => return check_type(&t, reply_type),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => bail!("expected a `{reply_type}` reply, the connection gave {other:?}"),
        }
    }
}

fn check_type(text: &str, reply_type: &str) -> Result<()> {
    let v: Value =
        serde_json::from_str(text).with_context(|| format!("reply is not JSON: {}", clip(text)))?;
    if v["type"] != reply_type {
        bail!("expected a `{reply_type}` reply, got {}", clip(text));
    }
    Ok(())
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Small client buffers: keeps 2,000 client connections from reserving tungstenite's default
/// 128 KiB read buffer each in the bench process. Only the server's memory is measured.
fn small_buffers() -> Option<WebSocketConfig> {
    Some(
        WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(4096),
    )
}

/// A keep-alive HTTPS connection to the ticket endpoint. Raw HTTP/1.1: one request shape and a
/// bounded response reader are all the bench needs.
struct TicketSession {
    io: Tls,
    buf: Vec<u8>,
    request: Vec<u8>,
}

/// Bounds on a ticket response; the real one is a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;

impl TicketSession {
    async fn open(client: &Client) -> Result<Self> {
        let request = format!(
            "POST /ws/ticket HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
            client.addr, client.api_token
        );
        Ok(Self {
            io: client.tls().await?,
            buf: Vec::new(),
            request: request.into_bytes(),
        })
    }

    async fn fetch(&mut self) -> Result<String> {
        timeout(STEP, self.exchange())
            .await
            .context("ticket request timed out")?
    }

    async fn exchange(&mut self) -> Result<String> {
        self.io.write_all(&self.request).await?;
        self.io.flush().await?;
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                bail!("ticket response headers exceed {MAX_HEAD} bytes");
            }
            self.read_more().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let status = head.lines().next().unwrap_or_default();
        if status.split(' ').nth(1) != Some("200") {
            bail!("ticket endpoint answered `{}`", clip(status));
        }
        let len = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .filter(|n| *n <= MAX_BODY)
            .context("ticket response lacks a usable Content-Length")?;
        while self.buf.len() < head_end + len {
            self.read_more().await?;
        }
        let body: Value = serde_json::from_slice(&self.buf[head_end..head_end + len])
            .context("ticket response body is not JSON")?;
        self.buf.drain(..head_end + len);
        body["ticket"]
            .as_str()
            .map(str::to_owned)
            .context("ticket response has no string at /ticket")
    }

    async fn read_more(&mut self) -> Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.io.read(&mut chunk).await?;
        if n == 0 {
            bail!("the ticket endpoint closed the connection");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// One authenticated payment round trip, so that lazily built state (TLS and schema code paths,
/// allocator arenas) is part of the baseline rather than of the measured growth.
async fn warm_up(client: &Client) -> Result<()> {
    let mut tickets = TicketSession::open(client).await?;
    let mut ws = client.authenticated(&mut tickets, None).await?;
    ws.send(Message::text(PAYMENT)).await?;
    timeout(STEP, expect_reply(&mut ws, "ack"))
        .await
        .context("no ack in time")??;
    let _ = ws.close(None).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. Echo throughput.

/// Round trips measured against one server, with what its runtime thread did meanwhile.
#[derive(Clone, Copy, Default)]
struct Rate {
    messages: f64,
    secs: f64,
    server: ThreadStats,
}

impl Rate {
    fn per_second(&self) -> f64 {
        self.messages / self.secs
    }

    fn cpu_us_per_msg(&self) -> f64 {
        self.server.cpu * 1e6 / self.messages
    }

    fn add(&mut self, other: &Rate) {
        self.messages += other.messages;
        self.secs += other.secs;
        self.server.cpu += other.server.cpu;
        self.server.writes += other.server.writes;
    }
}

/// A server under test and how the (same) client code talks to it.
struct Subject {
    name: &'static str,
    client: Client,
    /// Fetch a ticket and authenticate before sending payments.
    authenticate: bool,
    /// `/type` of a correct reply: the full server's ack, or the echoed payment.
    reply_type: &'static str,
    /// Name of the server's runtime thread, whose CPU time is read from /proc.
    thread: &'static str,
}

fn server_runtime(name: &str) -> Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()?)
}

fn throughput_phase(bench: &Bench) -> Result<Vec<Row>> {
    let (policy, origin) = parse_policy(&bench.policy_text)?;
    let full_rt = server_runtime("srv-full")?;
    let mut opts = ServerOptions::local(policy);
    opts.plain_listen = None;
    let handle = full_rt.block_on(server::start(opts))?;
    let ca = handle
        .ca_pem
        .clone()
        .context("the server generated no CA")?;
    let bare_rt = server_runtime("srv-bare")?;
    let (bare_addr, bare_ca) = bare_rt.block_on(bare_echo_server())?;
    let subjects = [
        Subject {
            name: "full reference server",
            client: Client::new(handle.addr, &ca, origin.clone(), handle.api_token.clone())?,
            authenticate: true,
            reply_type: "ack",
            thread: "srv-full",
        },
        Subject {
            name: "bare tokio-tungstenite echo",
            client: Client::new(bare_addr, &bare_ca, origin, String::new())?,
            authenticate: false,
            reply_type: "payment",
            thread: "srv-bare",
        },
    ];
    // Alternating short rounds spread the other builders' load on this machine evenly over
    // both servers; the spread of the per-round ratios shows how noisy the run was.
    let mut totals = [Rate::default(); 2];
    let mut ratios = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let mut round = [Rate::default(); 2];
        for (rate, subject) in round.iter_mut().zip(&subjects) {
            *rate = bench.client_rt.block_on(throughput(subject))?;
        }
        for (total, rate) in totals.iter_mut().zip(&round) {
            total.add(rate);
        }
        ratios.push(round[0].per_second() / round[1].per_second());
    }
    drop(handle);
    full_rt.shutdown_timeout(Duration::from_secs(1));
    bare_rt.shutdown_timeout(Duration::from_secs(1));

    let [full, bare] = totals;
    for (subject, rate) in subjects.iter().zip(&totals) {
        println!(
            "   {}: {:.0} msg/s; its thread {:.0}% busy, {:.2} us CPU and {:.2} write calls per message",
            subject.name,
            rate.per_second(),
            rate.server.cpu / rate.secs * 100.0,
            rate.cpu_us_per_msg(),
            rate.server.writes as f64 / rate.messages,
        );
    }
    let ratio = full.per_second() / bare.per_second();
    // What the ratio would be if each server had a core to itself: on a machine shared with
    // other jobs this is steadier than the wall-clock rates.
    let cpu_ratio = bare.cpu_us_per_msg() / full.cpu_us_per_msg();
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    println!("   ratio per round {lo:.2}x..{hi:.2}x");
    Ok(vec![
        Row::new(
            "echo throughput, full server",
            &format!("{:.0} msg/s", full.per_second()),
            "",
            "",
        ),
        Row::new(
            "echo throughput, bare tokio-tungstenite",
            &format!("{:.0} msg/s", bare.per_second()),
            "",
            "",
        ),
        Row::judged(
            "throughput ratio full/bare",
            &format!("{ratio:.2}x"),
            ">= 0.85x",
            ratio >= RATIO_GOAL,
        ),
        Row::judged(
            "  same, from server CPU per message",
            &format!("{cpu_ratio:.2}x"),
            ">= 0.85x",
            cpu_ratio >= RATIO_GOAL,
        ),
    ])
}

/// A bare tokio-tungstenite TLS echo server: the yardstick for the full server.
async fn bare_echo_server() -> Result<(SocketAddr, String)> {
    let cert = wsaudit::crypto::generate_ca_and_leaf(&["127.0.0.1".to_string()])?;
    let ca = cert.ca_pem.clone().context("no CA generated")?;
    // The full server's own rustls configuration (TLS 1.3, as the policy requires), so the
    // comparison isolates what the server does above TLS.
    let config = server::transport::server_config(cert, TlsVersion::V1_3, &Weakened::none())?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                // tokio-tungstenite's own echo example: `forward` feeds replies while messages
                // are ready and flushes when the input is pending, the same coalescing the full
                // server does, so neither side wins by syscall count alone.
                let (write, read) = ws.split();
                let _ = read
                    .try_filter(|m| std::future::ready(m.is_text() || m.is_binary()))
                    .forward(write)
                    .await;
            });
        }
    });
    Ok((addr, ca))
}

/// Round trips per second over `THROUGHPUT_CONNS` connections with `WINDOW` messages in flight.
async fn throughput(subject: &Subject) -> Result<Rate> {
    let client = &subject.client;
    let mut conns = Vec::with_capacity(THROUGHPUT_CONNS);
    for _ in 0..THROUGHPUT_CONNS {
        conns.push(if subject.authenticate {
            let mut tickets = TicketSession::open(client).await?;
            client.authenticated(&mut tickets, None).await?
        } else {
            client.ws(None).await?
        });
    }
    let replies = AtomicU64::new(0);
    let pumps = futures_util::future::try_join_all(
        conns
            .into_iter()
            .map(|ws| pump(ws, subject.reply_type, &replies)),
    );
    let window = async {
        sleep(WARMUP).await;
        let (n0, stats0, t0) = (
            replies.load(Ordering::Relaxed),
            ThreadStats::of(subject.thread)?,
            Instant::now(),
        );
        sleep(MEASURE).await;
        let messages = (replies.load(Ordering::Relaxed) - n0) as f64;
        let server = ThreadStats::of(subject.thread)?.since(stats0);
        let secs = t0.elapsed().as_secs_f64();
        if messages == 0.0 {
            bail!("no reply arrived during the measured window");
        }
        Ok(Rate {
            messages,
            secs,
            server,
        })
    };
    tokio::select! {
        r = pumps => match r {
            Err(e) => Err(e),
            Ok(_) => Err(anyhow!("the connections ended")),
        },
        r = window => r,
    }
}

/// Keeps `WINDOW` payments in flight on one connection, counting each correct reply.
async fn pump(ws: Ws, reply_type: &str, replies: &AtomicU64) -> Result<Infallible> {
    let (mut sink, mut stream) = ws.split();
    let credit = Semaphore::new(WINDOW);
    tokio::select! {
        r = send_loop(&mut sink, &credit) => r,
        r = receive_loop(&mut stream, &credit, reply_type, replies) => r,
    }
}

async fn send_loop(sink: &mut SplitSink<Ws, Message>, credit: &Semaphore) -> Result<Infallible> {
    loop {
        credit.acquire().await?.forget();
        sink.feed(Message::text(PAYMENT)).await?;
        // Whatever further credit the replies returned goes out in the same flush.
        while let Ok(permit) = credit.try_acquire() {
            permit.forget();
            sink.feed(Message::text(PAYMENT)).await?;
        }
        sink.flush().await?;
    }
}

async fn receive_loop(
    stream: &mut SplitStream<Ws>,
    credit: &Semaphore,
    reply_type: &str,
    replies: &AtomicU64,
) -> Result<Infallible> {
    loop {
        expect_reply(stream, reply_type).await?;
        replies.fetch_add(1, Ordering::Relaxed);
        credit.add_permits(1);
    }
}

/// Counters of this process's threads named `name`, summed.
#[derive(Clone, Copy, Default)]
struct ThreadStats {
    /// Run time in seconds (`schedstat`, kept in ns).
    cpu: f64,
    /// Write-family system calls (`io`: syscw; socket reads use recv, which `io` does not count).
    writes: u64,
}

impl ThreadStats {
    fn of(name: &str) -> Result<Self> {
        let mut total = Self::default();
        for task in std::fs::read_dir("/proc/self/task")? {
            let dir = task?.path();
            let read = |f: &str| std::fs::read_to_string(dir.join(f));
            // A thread may exit between listing and reading: it then no longer counts.
            let (Ok(comm), Ok(sched), Ok(io)) = (read("comm"), read("schedstat"), read("io"))
            else {
                continue;
            };
            if comm.trim_end() != name {
                continue;
            }
            let ns = sched
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .context("unreadable /proc/self/task/*/schedstat")?;
            total.cpu += ns as f64 / 1e9;
            total.writes += io
                .lines()
                .find_map(|l| l.strip_prefix("syscw:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .context("no syscw in /proc/self/task/*/io")?;
        }
        Ok(total)
    }

    fn since(self, earlier: Self) -> Self {
        Self {
            cpu: self.cpu - earlier.cpu,
            writes: self.writes - earlier.writes,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server processes and their memory.

/// A `wsaudit serve` child process; killed and reaped when dropped, error paths included.
struct ServerProcess {
    child: Child,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts `wsaudit serve` on a free loopback port, reading its URL from stdout and its CA
    /// from the emitted target.
    fn spawn(dir: &Path, policy: &Path, weaken: &str, origin: &str) -> Result<(Self, Client)> {
        use std::os::unix::process::CommandExt;
        let token = server::tickets::random_token(32);
        let stem = if weaken.is_empty() {
            "hardened"
        } else {
            weaken
        };
        let target = dir.join(format!("{stem}.yaml"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsaudit"));
        cmd.arg("serve")
            .arg("--policy")
            .arg(policy)
            .args(["--listen", "127.0.0.1:0", "--emit-target"])
            .arg(&target)
            // Through the environment, not argv, so the token never shows in `ps`.
            .env("WSAUDIT_API_TOKEN", &token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // One log line per lifecycle event: thousands here, and not what is measured.
            .stderr(Stdio::null());
        if !weaken.is_empty() {
            cmd.args(["--weaken", weaken]);
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. The server is
        // then killed even if the bench itself is killed (this main thread spawns it and lives
        // until the end, as PR_SET_PDEATHSIG follows the spawning thread).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("cannot start target/release/wsaudit")?;
        let stdout = child.stdout.take();
        let process = Self { child };
        let stdout = stdout.context("no stdout pipe")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Reads to the end so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + STEP;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .context("`wsaudit serve` did not print its URL in time")?;
            if let Some(url) = line.split("listening on ").nth(1) {
                break url.trim().to_string();
            }
        };
        let addr: SocketAddr = url
            .strip_prefix("wss://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("unexpected server URL `{url}`"))?;
        let ca = std::fs::read_to_string(dir.join(format!("{stem}-ca.pem")))
            .context("cannot read the CA written beside the emitted target")?;
        let client = Client::new(addr, &ca, origin.to_string(), token)?;
        Ok((process, client))
    }

    fn memory(&self) -> Result<Memory> {
        Memory::of(self.child.id())
    }
}

/// Resident set now and its high-water mark, in KiB.
#[derive(Clone, Copy)]
struct Memory {
    rss: u64,
    hwm: u64,
}

impl Memory {
    fn of(pid: u32) -> Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("the server process is gone")?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Self {
            rss: field("VmRSS:")?,
            hwm: field("VmHWM:")?,
        })
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// 2. Peak RSS while connections declare giant frames.

/// How a giant-frame connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ending {
    /// The server sent a close frame with this code.
    Close(Option<u16>),
    /// The connection was reset or ended without a close frame.
    Dropped,
    /// Nothing happened before the deadline.
    Silent,
}

struct GiantRun {
    baseline: Memory,
    peak_rss: u64,
    end: Memory,
    endings: Vec<Ending>,
    max_sent: u64,
}

impl GiantRun {
    /// Growth over the baseline, taking the larger of the sampled peak and the kernel's
    /// high-water mark (which also sees spikes between samples).
    fn growth_kib(&self) -> u64 {
        self.peak_rss
            .max(self.end.hwm)
            .saturating_sub(self.baseline.rss)
    }

    fn summary(&self) -> String {
        let mut kinds = self.endings.clone();
        kinds.sort();
        kinds.dedup();
        let counts: Vec<String> = kinds
            .iter()
            .map(|k| {
                let n = self.endings.iter().filter(|e| *e == k).count();
                match k {
                    Ending::Close(Some(c)) => format!("{n} x close {c}"),
                    Ending::Close(None) => format!("{n} x close without code"),
                    Ending::Dropped => format!("{n} x dropped"),
                    Ending::Silent => format!("{n} x no answer"),
                }
            })
            .collect();
        format!(
            "baseline {:.1} MiB, peak {:.1} MiB (VmHWM {:.1} MiB), growth {:.1} MiB; {}; at most {:.2} MiB of payload sent on one connection",
            mib(self.baseline.rss),
            mib(self.peak_rss),
            mib(self.end.hwm),
            mib(self.growth_kib()),
            counts.join(", "),
            self.max_sent as f64 / 1048576.0
        )
    }
}

fn giant_phase(bench: &Bench) -> Result<Vec<Row>> {
    // Each run has its own server process, so VmHWM is that run's own peak.
    let run = |weaken: &str, conns: usize| -> Result<GiantRun> {
        let (process, client) = bench.spawn_server(weaken)?;
        let r = bench
            .client_rt
            .block_on(giant_frames(&client, &process, conns))?;
        let label = if weaken.is_empty() {
            "hardened".to_string()
        } else {
            format!("--weaken {weaken}")
        };
        println!("   {label}, {conns} connections: {}", r.summary());
        Ok(r)
    };
    let hardened = run("", GIANT_CONNS)?;
    let weak = run("max-size", WEAK_GIANT_CONNS)?;
    let growth = mib(hardened.growth_kib());
    Ok(vec![
        Row::judged(
            &format!("RSS growth, {GIANT_CONNS} x 100 MiB frame declared"),
            &format!("{growth:.1} MiB"),
            "< 16 MiB",
            growth < GIANT_GOAL_MIB,
        ),
        Row::new(
            &format!("  contrast: --weaken max-size, {WEAK_GIANT_CONNS} conns"),
            &format!("{:.1} MiB", mib(weak.growth_kib())),
            "",
            "(no goal)",
        ),
    ])
}

async fn giant_frames(client: &Client, process: &ServerProcess, conns: usize) -> Result<GiantRun> {
    warm_up(client).await?;
    sleep(Duration::from_millis(200)).await;
    let baseline = process.memory()?;
    let done = AtomicBool::new(false);
    let attack = async {
        let r = futures_util::future::try_join_all((0..conns).map(|_| giant_one(client))).await;
        done.store(true, Ordering::Relaxed);
        r
    };
    let (peak_rss, outcomes) = tokio::join!(sample_peak(process, &done), attack);
    let outcomes = outcomes?;
    Ok(GiantRun {
        baseline,
        peak_rss: peak_rss?,
        end: process.memory()?,
        endings: outcomes.iter().map(|(e, _)| *e).collect(),
        max_sent: outcomes.iter().map(|(_, s)| *s).max().unwrap_or(0),
    })
}

async fn sample_peak(process: &ServerProcess, done: &AtomicBool) -> Result<u64> {
    let mut peak = 0;
    loop {
        // Checked before sampling so the last sample follows the last connection's end.
        let last = done.load(Ordering::Relaxed);
        peak = peak.max(process.memory()?.rss);
        if last {
            return Ok(peak);
        }
        sleep(SAMPLE_EVERY).await;
    }
}

/// Declares a `GIANT_FRAME` binary frame and streams its payload until the server ends the
/// connection; returns how it ended and how many payload bytes were sent.
async fn giant_one(client: &Client) -> Result<(Ending, u64)> {
    let ws = client.ws(small_buffers()).await?;
    let (rd, mut wr) = tokio::io::split(ws.into_inner());
    let mut head = Vec::with_capacity(14);
    header(OpCode::Data(Data::Binary), Some(MASK)).format(GIANT_FRAME, &mut head)?;
    wr.write_all(&head).await?;
    let sent = AtomicU64::new(0);
    let ended = AtomicBool::new(false);
    let exchange = async {
        let reader = async {
            let e = server_ending(rd).await;
            ended.store(true, Ordering::Relaxed);
            e
        };
        tokio::pin!(reader);
        tokio::select! {
            e = &mut reader => e,
            () = stream_payload(&mut wr, &sent, &ended) => {
                timeout(STEP, reader).await.unwrap_or(Ending::Silent)
            }
        }
    };
    let ending = timeout(GIANT_DEADLINE, exchange)
        .await
        .unwrap_or(Ending::Silent);
    Ok((ending, sent.load(Ordering::Relaxed)))
}

/// Streams the declared payload from one reused buffer until it is all sent, the server ended
/// the connection, or a write stalls.
async fn stream_payload<W: AsyncWrite + Unpin>(wr: &mut W, sent: &AtomicU64, ended: &AtomicBool) {
    let chunk = vec![0u8; CHUNK];
    loop {
        let done = sent.load(Ordering::Relaxed);
        if done >= GIANT_FRAME || ended.load(Ordering::Relaxed) {
            break;
        }
        let n = (GIANT_FRAME - done).min(CHUNK as u64) as usize;
        match timeout(STEP, wr.write_all(&chunk[..n])).await {
            Ok(Ok(())) => sent.fetch_add(n as u64, Ordering::Relaxed),
            _ => return,
        };
    }
    let _ = timeout(STEP, wr.flush()).await;
}

/// Reads server frames (skipping pings) until a close frame or the end of the connection.
async fn server_ending<R: AsyncRead + Unpin>(rd: R) -> Ending {
    let mut frames = FrameReader::new(rd);
    loop {
        let Ok(Some(h)) = frames.read_header().await else {
            return Ending::Dropped;
        };
        if h.header.opcode == OpCode::Control(Control::Close) {
            // A close payload is at most 125 bytes (RFC 6455 5.5); never trust more.
            let len = h.length.min(125) as usize;
            return match frames.read_payload(len, h.header.mask).await {
                Ok(p) => Ending::Close(parse_close(&p).code),
                Err(_) => Ending::Dropped,
            };
        }
        if frames.skip_payload(h.length).await.is_err() {
            return Ending::Dropped;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Memory per idle authenticated connection.

/// Aborts the idle connections' tasks when dropped, error paths included.
struct Holders(Vec<JoinHandle<()>>);

impl Drop for Holders {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

fn idle_phase(bench: &Bench) -> Result<Vec<Row>> {
    let (process, client) = bench.spawn_server("")?;
    let client = Arc::new(client);
    let samples = bench
        .client_rt
        .block_on(idle_connections(&client, &process))?;
    let [(_, base), (half_n, half), (n, full)] = samples;
    let per_conn = |rss: u64, base: u64, n: usize| rss.saturating_sub(base) as f64 / n as f64;
    let at_full = per_conn(full, base, n);
    println!(
        "   baseline {:.1} MiB; {half_n} idle: {:.1} MiB ({:.1} KiB/conn); {n} idle: {:.1} MiB ({:.1} KiB/conn); marginal {half_n}->{n}: {:.1} KiB/conn",
        mib(base),
        mib(half),
        per_conn(half, base, half_n),
        mib(full),
        at_full,
        per_conn(full, half, n - half_n),
    );
    Ok(vec![Row::judged(
        &format!("memory per idle authenticated conn @ {n}"),
        &format!("{at_full:.1} KiB"),
        "<= 64 KiB",
        at_full <= IDLE_GOAL_KIB,
    )])
}

/// Opens `IDLE_CONNS` authenticated connections in two halves and returns the server's RSS
/// (connections open, KiB) before, at half and at full count.
async fn idle_connections(
    client: &Arc<Client>,
    process: &ServerProcess,
) -> Result<[(usize, u64); 3]> {
    warm_up(client).await?;
    sleep(SETTLE).await;
    let mut samples = [(0, process.memory()?.rss); 3];
    let ended = Arc::new(AtomicUsize::new(0));
    let mut holders = Holders(Vec::with_capacity(IDLE_CONNS));
    for sample in samples.iter_mut().skip(1) {
        let batch = IDLE_CONNS / 2;
        let next = AtomicUsize::new(0);
        let opened = futures_util::future::try_join_all(
            (0..OPENERS).map(|_| open_idle(client, batch, &next, &ended)),
        )
        .await?;
        holders.0.extend(opened.into_iter().flatten());
        sleep(SETTLE).await;
        let lost = ended.load(Ordering::Relaxed);
        if lost > 0 {
            bail!("the server closed {lost} idle authenticated connections");
        }
        *sample = (holders.0.len(), process.memory()?.rss);
    }
    Ok(samples)
}

/// One opener: authenticates connections until `batch` were claimed, handing each to a task
/// that keeps it idle.
async fn open_idle(
    client: &Client,
    batch: usize,
    next: &AtomicUsize,
    ended: &Arc<AtomicUsize>,
) -> Result<Vec<JoinHandle<()>>> {
    let mut tickets = TicketSession::open(client).await?;
    let mut mine = Vec::new();
    while next.fetch_add(1, Ordering::Relaxed) < batch {
        let ws = client.authenticated(&mut tickets, small_buffers()).await?;
        mine.push(tokio::spawn(hold(ws, ended.clone())));
    }
    Ok(mine)
}

/// Keeps an authenticated connection idle; reading lets tungstenite answer the server's pings.
async fn hold(mut ws: Ws, ended: Arc<AtomicUsize>) {
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            break;
        }
    }
    ended.fetch_add(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------------
// The table.

struct Row {
    figure: String,
    value: String,
    goal: String,
    status: String,
}

impl Row {
    fn new(figure: &str, value: &str, goal: &str, status: &str) -> Self {
        Self {
            figure: figure.into(),
            value: value.into(),
            goal: goal.into(),
            status: status.into(),
        }
    }

    fn judged(figure: &str, value: &str, goal: &str, met: bool) -> Self {
        Self::new(figure, value, goal, if met { "met" } else { "NOT MET" })
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("{:<46} {:>14}  {:<10} status", "figure", "value", "goal");
    println!("{}", "-".repeat(82));
    for r in rows {
        println!(
            "{:<46} {:>14}  {:<10} {}",
            r.figure, r.value, r.goal, r.status
        );
    }
}
