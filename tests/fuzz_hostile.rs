//! `wsaudit fuzz` against small hostile targets, in-process on 127.0.0.1 port 0: one that dies
//! on a particular mutation (every connection dropped, new ones dropped at once), one that
//! stalls on it (never reads again, so the ping fence goes unanswered) and one that streams
//! frames without pause. The findings must name a seed that regenerates the very bytes the
//! target choked on, and show those bytes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use wsaudit::attacks::TargetRuntime;
use wsaudit::config::{LoadedTarget, SourceFile};
use wsaudit::fuzzing::mutate::{FuzzCase, Mutator, hex};
use wsaudit::fuzzing::rng::Rng;
use wsaudit::fuzzing::{FuzzOptions, run};
use wsaudit::report::{CaseResult, RunReport, Verdict};

/// The target's one valid message.
const VALID: &str = r#"{"type":"payment","amount":12.5,"reference":"TX-123456"}"#;
/// Guard on every reply the fuzzer waits for besides the hang bound: generous, since CI
/// machines are shared.
const GUARD: Duration = Duration::from_secs(10);

/// What the streaming target sends without pause: acknowledgements (padded), so the fuzzer
/// counts each one it reads between cases.
fn streamed_ack() -> String {
    format!("{{\"type\":\"ack\",\"pad\":\"{}\"}}", "x".repeat(4000))
}

/// What the target does with a text message that is not JSON (its weak spot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Weakness {
    /// Dies: drops every connection and every later one.
    Dies,
    /// Stops reading that connection for good (pings included), keeping it open.
    Stalls,
    /// No weak spot, but it streams acknowledgements to every connection without pause.
    Streams,
}

/// A running hostile target.
struct Target {
    url: String,
    /// The first non-JSON text message received: what it choked on.
    choked_on: Arc<Mutex<Option<Vec<u8>>>>,
}

async fn start(weakness: Weakness) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/ws", listener.local_addr().expect("addr"));
    let choked_on = Arc::new(Mutex::new(None));
    let (dead_tx, dead_rx) = watch::channel(false);
    let dead_tx = Arc::new(dead_tx);
    let record = choked_on.clone();
    tokio::spawn(async move {
        // The listener stays bound when the target dies, so its port is never reused.
        while let Ok((sock, _)) = listener.accept().await {
            if *dead_rx.borrow() {
                drop(sock);
                continue;
            }
            tokio::spawn(serve(
                sock,
                weakness,
                record.clone(),
                dead_tx.clone(),
                dead_rx.clone(),
            ));
        }
    });
    Target { url, choked_on }
}

/// One connection: acknowledges JSON text messages, and shows its weakness on anything else.
async fn serve(
    sock: TcpStream,
    weakness: Weakness,
    choked_on: Arc<Mutex<Option<Vec<u8>>>>,
    dead_tx: Arc<watch::Sender<bool>>,
    mut dead_rx: watch::Receiver<bool>,
) {
    let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    loop {
        tokio::select! {
            _ = dead_rx.changed() => return,
            _ = tick.tick(), if weakness == Weakness::Streams => {
                // A burst per millisecond: far more than the fuzzer may read between cases.
                for _ in 0..16 {
                    if sink.feed(Message::text(streamed_ack())).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if serde_json::from_str::<serde_json::Value>(t.as_str()).is_ok() {
                        if sink.send(Message::text(r#"{"type":"ack"}"#)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    let first = {
                        let mut c = choked_on.lock().expect("record lock");
                        let first = c.is_none();
                        if first {
                            *c = Some(t.as_bytes().to_vec());
                        }
                        first
                    };
                    match weakness {
                        Weakness::Dies if first => {
                            let _ = dead_tx.send(true);
                            return;
                        }
                        Weakness::Stalls if first => {
                            // Holds the connection open and never reads (or pongs) again.
                            let _held = (sink, stream);
                            std::future::pending::<()>().await;
                            return;
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    }
}

fn runtime(url: &str) -> Arc<TargetRuntime> {
    let yaml = format!(
        "target: hostile-fuzz\nurl: {url}\nmessages:\n  valid: ['{VALID}']\n  accepted_when: {{ json: {{ \"/type\": \"ack\" }} }}\nlimits: {{ connect_timeout: 5s, case_timeout: 30s, max_parallel: 4 }}\n"
    );
    let loaded = LoadedTarget::parse(SourceFile::from_text("hostile.yaml", yaml), &|_| None)
        .expect("target loads");
    let mut rt = TargetRuntime::new(&loaded).expect("runtime");
    rt.reply_wait = GUARD;
    Arc::new(rt)
}

const SEED: u64 = 7;

fn options(hang_after: Duration) -> FuzzOptions {
    let mut o = FuzzOptions::for_policy(None, SEED, "wsaudit fuzz --target hostile.yaml".into());
    o.duration = Duration::from_secs(60);
    o.rate = 200.0;
    o.batch_size = 40;
    o.max_findings = 1;
    o.hang_after = hang_after;
    o
}

/// Fuzzes a fresh target with this weakness; returns the report and what the target choked on.
/// The generous guard turns a run that never ends (an unbounded read) into a failure.
async fn fuzz(weakness: Weakness, opts: &FuzzOptions) -> (RunReport, Option<Vec<u8>>) {
    let target = start(weakness).await;
    let report = tokio::time::timeout(
        Duration::from_secs(300),
        run(runtime(&target.url), None, opts),
    )
    .await
    .expect("the run ends")
    .expect("fuzzing runs");
    let choked_on = target.choked_on.lock().expect("record lock").clone();
    (report, choked_on)
}

fn only_finding(report: &RunReport) -> &CaseResult {
    let failed: Vec<&CaseResult> = report
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", report.cases);
    failed[0]
}

/// The case `index` of batch 0, regenerated from the seed as `--replay-batch` would.
fn regenerate(opts: &FuzzOptions, index: u64) -> FuzzCase {
    Mutator::new(&[VALID.to_string()], opts.max_len).case(&mut Rng::for_case(SEED, 0, index))
}

/// Checks that `finding` shows the seed, how to replay it, and byte for byte the frames of
/// `case`, and that those frames deliver exactly what the target choked on.
fn assert_shows_the_bytes(finding: &CaseResult, case: &FuzzCase, choked_on: &[u8]) {
    let lines = &finding.evidence.transcript;
    let all = lines.join("\n");
    assert!(all.contains(&format!("seed {SEED}, batch 0")), "{all}");
    assert!(
        all.contains(&format!("--seed {SEED} --replay-batch 0")),
        "{all}"
    );
    let mut delivered = Vec::new();
    for (n, frame) in case.frames.iter().enumerate() {
        let n = n + 1;
        // The payload's hex, as the evidence spreads it over lines.
        let prefix = format!("frame {n} payload bytes ");
        let shown: String = lines
            .iter()
            .filter_map(|l| l.split_once(&prefix))
            .filter_map(|(_, rest)| rest.split_once(": ").map(|(_, h)| h.to_string()))
            .collect();
        assert_eq!(shown, hex(&frame.payload), "frame {n} payload\n{all}");
        if matches!(frame.opcode, 0 | 1) {
            delivered.extend_from_slice(&frame.payload);
        }
    }
    assert_eq!(
        delivered, choked_on,
        "the shown frames deliver what the target choked on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_dies_on_a_mutation_is_a_crash_with_the_bytes_that_killed_it() {
    let opts = options(GUARD);
    let (report, choked_on) = fuzz(Weakness::Dies, &opts).await;
    let choked_on = choked_on.expect("the target met its weak spot");
    let finding = only_finding(&report);
    assert_eq!(finding.case_id, "FUZZ-HEALTH/fuzz-crash[b0]");
    assert!(
        finding.reason.contains("a fresh client"),
        "{}",
        finding.reason
    );
    // The last case sent is the one that killed it; the seed regenerates it exactly.
    let note = finding
        .evidence
        .transcript
        .iter()
        .find_map(|l| l.split_once("last case sent before the target went away: case "))
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| panic!("no last case in {:#?}", finding.evidence.transcript));
    let index: u64 = note
        .split(':')
        .next()
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("no index in {note}"));
    let case = regenerate(&opts, index);
    assert!(note.ends_with(&case.name), "{note} / {}", case.name);
    assert_shows_the_bytes(finding, &case, &choked_on);
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_stalls_on_a_mutation_is_a_hang_with_the_bytes_that_stalled_it() {
    let opts = options(Duration::from_secs(5));
    let (report, choked_on) = fuzz(Weakness::Stalls, &opts).await;
    let choked_on = choked_on.expect("the target met its weak spot");
    let finding = only_finding(&report);
    let index: u64 = finding
        .case_id
        .strip_prefix("FUZZ-HEALTH/fuzz-hang[b0.")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("not a hang of batch 0: {}", finding.case_id));
    let case = regenerate(&opts, index);
    assert!(
        finding
            .evidence
            .transcript
            .iter()
            .any(|l| l.ends_with(&format!("case: {}", case.name))),
        "{:#?}",
        finding.evidence.transcript
    );
    assert_shows_the_bytes(finding, &case, &choked_on);
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_streaming_without_pause_does_not_keep_the_fuzzer_draining() {
    let mut opts = options(GUARD);
    opts.duration = Duration::from_secs(2);
    opts.batch_size = 5;
    opts.max_findings = 10_000;
    let (report, _) = fuzz(Weakness::Streams, &opts).await;
    // Between two cases the fuzzer reads at most Session's inbox bound (and for at most a
    // moment), then fuzzes on: the acknowledgements it counted there are bounded by it. An
    // unbounded drain reads whatever the stream delivers before it pauses, megabytes a time.
    let per_drain = wsaudit::attacks::session::INBOX_BYTES / streamed_ack().len() + 1;
    let mut batches = 0;
    for c in &report.cases {
        let Some((_, rest)) = c.reason.split_once(" connections opened, ") else {
            continue;
        };
        batches += 1;
        let stray: usize = rest
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {}", c.reason));
        let sent: usize = c
            .reason
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {}", c.reason));
        assert!(
            stray <= (sent + 1) * per_drain,
            "{stray} acknowledgements drained around {sent} cases: {}",
            c.reason
        );
    }
    assert!(batches >= 1, "{:#?}", report.cases);
}
