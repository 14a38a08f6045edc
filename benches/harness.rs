//! The harness benchmark of the attack-engine issue: figures printed, never asserted.
//!
//! 1. A full reference-fast audit's wall time against its longest single case (goal <= 1.3x):
//!    cases run concurrently, so an audit should take about as long as its longest case.
//!    The rate measurement (`RATE-MEASURE`, a ramp at 50/s) is reported from the same audits
//!    (goal <= 5 s).
//! 2. Peak RSS of a `wsaudit run` process across a full audit, which includes a frame declaring
//!    100 MiB (goal <= 32 MiB), read from `getrusage(RUSAGE_CHILDREN)` after it exits; and of a
//!    run against a hostile server that negotiates permessage-deflate and answers with
//!    compressed frames inflating to 512 MiB each (goal <= 32 MiB: each is cut at the 1 MiB
//!    read cap), read from `wait4`.
//! 3. Flood send rate on one loopback connection, 32-byte messages, frames pre-encoded, through
//!    the engine's own flood loop (goal >= 500k messages/s), plaintext and TLS.
//! 4. What a dialect adds to the audit: the full reference-fast audit's wall time with the
//!    reference server speaking each dialect, against raw (goal <= 1.05x, the fastest of two
//!    audits each, so that one scheduling hiccup does not decide it).
//! 5. What the TLS probes cost: the TLS control alone (every raw ClientHello probe of a version
//!    below the minimum and of a weak suite class, the rustls handshake, the upgrades) against
//!    the reference server; an upper bound on what they add to an audit (goal <= 1 s).

#[path = "../tests/common/deflate_bomb.rs"]
mod deflate_bomb;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use wsaudit::client::{TlsClient, TlsOptions, UpgradeRequest, connect};
use wsaudit::config::LoadedPolicy;
use wsaudit::dialect::DialectName;
use wsaudit::server::{ServerOptions, Weakened};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Messages per flood measurement: enough for a steady rate, a few seconds at most.
const FLOOD_MESSAGES: u32 = 2_000_000;

fn main() -> Result<()> {
    wsaudit::crypto::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows: Vec<(String, String, &str, Option<bool>)> = Vec::new();

    println!("== full audit vs its longest case (3 audits of the full reference server)");
    let policy = LoadedPolicy::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/reference-fast.yaml"
    )))?;
    let mut ratios = Vec::new();
    let mut rate_measure = Vec::new();
    for i in 1..=3 {
        let (report, _) = rt.block_on(wsaudit::demo::audit_reference(&policy, Weakened::none()))?;
        let longest = report
            .cases
            .iter()
            .map(|c| c.duration)
            .max()
            .unwrap_or_default();
        let ratio = report.wall_time.as_secs_f64() / longest.as_secs_f64().max(1e-9);
        println!(
            "   audit {i}: {} cases in {:.2}s, longest case {:.2}s, ratio {ratio:.2}x",
            report.cases.len(),
            report.wall_time.as_secs_f64(),
            longest.as_secs_f64()
        );
        let mut slowest: Vec<_> = report.cases.iter().collect();
        slowest.sort_by_key(|c| std::cmp::Reverse(c.duration));
        for c in slowest.iter().take(4) {
            println!("      {:.2}s {}", c.duration.as_secs_f64(), c.case_id);
        }
        if let Some(c) = report
            .cases
            .iter()
            .find(|c| c.case_id.ends_with("/RATE-MEASURE"))
        {
            rate_measure.push(c.duration);
        }
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[1];
    rows.push((
        "audit wall time / longest case (median of 3)".into(),
        format!("{median:.2}x"),
        "<= 1.3x",
        Some(median <= 1.3),
    ));
    rate_measure.sort();
    if let Some(longest) = rate_measure.last() {
        rows.push((
            "rate measurement (RATE-MEASURE at 50/s), slowest of 3".into(),
            format!("{:.2}s", longest.as_secs_f64()),
            "<= 5 s",
            Some(longest.as_secs_f64() <= 5.0),
        ));
    }

    println!("== peak RSS of a `wsaudit run` process");
    let peak = harness_peak_rss()?;
    rows.push((
        "harness peak RSS, full audit incl. 100 MiB declared frame".into(),
        format!("{:.1} MiB", peak as f64 / 1024.0),
        "<= 32 MiB",
        Some(peak <= 32 * 1024),
    ));

    println!("== peak RSS of a `wsaudit run` process against compressed bombs");
    let bombed = rt.block_on(bombed_peak_rss())?;
    rows.push((
        "harness peak RSS, a server sending 512 MiB deflate bombs".into(),
        format!("{:.1} MiB", bombed as f64 / 1024.0),
        "<= 32 MiB",
        Some(bombed <= 32 * 1024),
    ));

    println!("== flood send rate, one loopback connection, 32-byte messages");
    for tls in [false, true] {
        let rate = rt.block_on(flood_rate(tls))?;
        let name = if tls {
            "flood send rate (wss://, TLS 1.3)"
        } else {
            "flood send rate (ws://)"
        };
        rows.push((
            name.into(),
            format!("{:.0} msg/s", rate),
            ">= 500k/s",
            Some(rate >= 500_000.0),
        ));
    }

    println!("== audit wall time per dialect (2 audits each of the full reference server)");
    let mut raw_time = None;
    for dialect in <DialectName as strum::VariantArray>::VARIANTS {
        let mut best = f64::INFINITY;
        for _ in 0..2 {
            let mut opts = ServerOptions::local(policy.clone());
            opts.dialect = *dialect;
            let (report, _) = rt.block_on(wsaudit::demo::audit_server_only(opts, &[]))?;
            let errors = report
                .cases
                .iter()
                .filter(|c| c.verdict == wsaudit::report::Verdict::Error)
                .count();
            println!(
                "   {dialect}: {} cases in {:.2}s ({errors} in error)",
                report.cases.len(),
                report.wall_time.as_secs_f64()
            );
            best = best.min(report.wall_time.as_secs_f64());
        }
        match raw_time {
            None => raw_time = Some(best),
            Some(raw) => rows.push((
                format!("audit wall time, {dialect} / raw (best of 2)"),
                format!("{:.3}x", best / raw),
                "<= 1.05x",
                Some(best / raw <= 1.05),
            )),
        }
    }

    println!(
        "== the TLS control alone (its probes and handshakes), 3 audits of the full reference server"
    );
    let mut tls_best = f64::INFINITY;
    for _ in 0..3 {
        let opts = ServerOptions::local(policy.clone());
        let (report, _) = rt.block_on(wsaudit::demo::audit_server_only(opts, &["WS-TLS-01"]))?;
        let probes = report
            .cases
            .iter()
            .filter(|c| c.case_id.contains("TLS-VERSION") || c.case_id.contains("TLS-WEAK"))
            .count();
        let slowest = report
            .cases
            .iter()
            .map(|c| c.duration)
            .max()
            .unwrap_or_default();
        println!(
            "   {} cases ({probes} raw ClientHello probes) in {:.3}s, slowest case {:.3}s",
            report.cases.len(),
            report.wall_time.as_secs_f64(),
            slowest.as_secs_f64()
        );
        tls_best = tls_best.min(report.wall_time.as_secs_f64());
    }
    // The probes run beside every other case of an audit; even run alone after all of them,
    // they could add no more than this.
    rows.push((
        "TLS control alone, incl. every version and suite probe (best of 3)".into(),
        format!("{tls_best:.3}s"),
        "<= 1 s",
        Some(tls_best <= 1.0),
    ));

    println!("\n{:<58} {:>14}  {:<10} status", "figure", "value", "goal");
    println!("{}", "-".repeat(92));
    for (name, value, goal, met) in rows {
        let status = match met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "",
        };
        println!("{name:<58} {value:>14}  {goal:<10} {status}");
    }
    Ok(())
}

/// Kills the child when dropped, so a failing bench never leaves a server behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `wsaudit serve` and then `wsaudit run` as child processes; returns the `run` process's
/// peak RSS in KiB (the server is not waited for until afterwards, so it is not counted).
fn harness_peak_rss() -> Result<u64> {
    let exe = env!("CARGO_BIN_EXE_wsaudit");
    let dir = tempfile::tempdir()?;
    let target = dir.path().join("target.yaml");
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/reference-fast.yaml");
    let mut server = Reaped(
        Command::new(exe)
            .args([
                "serve",
                "--policy",
                policy,
                "--listen",
                "127.0.0.1:0",
                "--plain-listen",
                "127.0.0.1:0",
                "--emit-target",
            ])
            .arg(&target)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    // The server prints its URL once it listens and the target file is written.
    let stdout = server.0.stdout.take().ok_or("no server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => break,
            Some(Ok(_)) => continue,
            _ => return Err("the server exited before listening".into()),
        }
    }
    let started = Instant::now();
    let status = Command::new(exe)
        .args(["run", "--policy", policy, "--target"])
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    println!(
        "   `wsaudit run` exited with {status} after {:.2}s",
        started.elapsed().as_secs_f64()
    );
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_CHILDREN with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return Err("getrusage failed".into());
    }
    println!("   peak RSS of the run process: {} KiB", usage.ru_maxrss);
    Ok(u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

/// Runs `wsaudit run` (schema and size controls) against [`bomb_server`]; returns the run
/// process's peak RSS in KiB, from `wait4` (that child alone).
async fn bombed_peak_rss() -> Result<u64> {
    let addr = bomb_server().await?;
    let dir = tempfile::tempdir()?;
    let target = dir.path().join("bombs.yaml");
    std::fs::write(
        &target,
        format!(
            "target: bombs\nurl: ws://{addr}/ws\norigin: https://app.example.com\nauth:\n  first_message: '{{\"type\":\"auth\"}}'\nmessages:\n  valid: ['{{\"type\":\"payment\",\"amount\":1,\"reference\":\"TX-123456\",\"currency\":\"USD\"}}']\nlimits: {{ connect_timeout: 5s, case_timeout: 20s, max_parallel: 8, recovery: 2s }}\n"
        ),
    )?;
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/policy.yaml");
    let exe = env!("CARGO_BIN_EXE_wsaudit");
    let started = Instant::now();
    let child = Command::new(exe)
        .args([
            "run",
            "--policy",
            policy,
            "--only",
            "WS-MSG-01,WS-MSG-03",
            "--target",
        ])
        .arg(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = i32::try_from(child.id())?;
    let usage = tokio::task::spawn_blocking(move || {
        let mut status = 0;
        // SAFETY: wait4 only writes into the two values we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a child of ours, valid pointers.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        (r == pid).then_some(usage.ru_maxrss)
    })
    .await?
    .ok_or("wait4 failed")?;
    println!(
        "   `wsaudit run` against the bomb server took {:.2}s; peak RSS {usage} KiB",
        started.elapsed().as_secs_f64()
    );
    Ok(u64::try_from(usage).unwrap_or(0))
}

/// A hostile WebSocket server on 127.0.0.1: claims permessage-deflate in every 101, then after
/// the client's first bytes sends compressed text frames inflating to 512 MiB each, without
/// pause, until the client leaves.
async fn bomb_server() -> Result<std::net::SocketAddr> {
    let frame = deflate_bomb::frame(512);
    let frame = Arc::new(frame);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let frame = frame.clone();
            tokio::spawn(async move {
                if !answer_upgrade(&mut s, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await
                {
                    return;
                }
                let mut buf = vec![0u8; 16 * 1024];
                // The client's first frame (its login), then bombs until it leaves.
                if !matches!(s.read(&mut buf).await, Ok(n) if n > 0) {
                    return;
                }
                while s.write_all(&frame).await.is_ok() {}
            });
        }
    });
    Ok(addr)
}

/// A WebSocket sink on 127.0.0.1: answers the upgrade, then reads and discards everything.
async fn sink(tls: Option<Arc<rustls::ServerConfig>>) -> Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        match tls {
            Some(cfg) => {
                if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                    drain(s).await;
                }
            }
            None => drain(tcp).await,
        }
    });
    Ok(addr)
}

/// Reads a request head and answers 101 with the right accept key and `extra` header lines;
/// false when the client left first.
async fn answer_upgrade<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    extra: &str,
) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap_or("")
        .trim()
        .to_string();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    );
    s.write_all(response.as_bytes()).await.is_ok()
}

async fn drain<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    // Answer the upgrade, then discard.
    if !answer_upgrade(&mut s, "").await {
        return;
    }
    let mut buf = vec![0u8; 256 * 1024];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// Messages per second the engine's flood loop pushes through one connection.
async fn flood_rate(tls: bool) -> Result<f64> {
    let certs = wsaudit::crypto::generate_ca_and_leaf(&["127.0.0.1".into()])?;
    let ca = certs.ca_pem.clone().ok_or("no CA")?;
    let server_cfg = rustls::ServerConfig::builder_with_provider(wsaudit::crypto::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs.chain, certs.key)?;
    let addr = sink(tls.then(|| Arc::new(server_cfg))).await?;
    let scheme = if tls { "wss" } else { "ws" };
    let req = UpgradeRequest::new(&format!("{scheme}://127.0.0.1:{}/ws", addr.port()))?;
    let client = TlsClient::new(&TlsOptions::default().with_ca_pem(&ca)?)?;
    let conn = connect(&req, &client, Duration::from_secs(5))
        .await?
        .into_connection()?;
    // Through the engine's message channel, as a case's flood goes.
    let mut channel = wsaudit::attacks::Channel::new(
        conn,
        wsaudit::dialect::ClientCodec::new(wsaudit::dialect::Dialect::Raw, "127.0.0.1"),
        Arc::default(),
        None,
    );
    let frame = channel.encode_message("0123456789abcdef0123456789abcdef");
    let started = Instant::now();
    let sent =
        wsaudit::attacks::messages::flood_unpaced(&channel, &frame, Some(FLOOD_MESSAGES), None)
            .await;
    let secs = started.elapsed().as_secs_f64();
    let rate = f64::from(sent) / secs;
    println!(
        "   {scheme}: {sent} messages ({} B frames) in {secs:.2}s: {rate:.0} msg/s",
        frame.len()
    );
    Ok(rate)
}
