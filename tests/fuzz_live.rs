//! `wsaudit fuzz` against the in-process reference server: the hardened server yields nothing,
//! the `schema`-weakened one yields acknowledged invalid messages, with seeds that reproduce.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wsaudit::attacks::TargetRuntime;
use wsaudit::config::{LoadedPolicy, LoadedTarget};
use wsaudit::fuzzing::{FuzzOptions, run};
use wsaudit::report::{RunReport, Verdict};
use wsaudit::server::{self, ServerHandle, ServerOptions, Weakened};

fn policy_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/reference-fast.yaml")
}

fn policy() -> LoadedPolicy {
    LoadedPolicy::load(&policy_path()).expect("shipped policy loads")
}

/// A reference server (weakened as asked) and its target file in `dir`.
async fn serve(weaken: &str, dir: &Path) -> (ServerHandle, PathBuf) {
    wsaudit::crypto::install_crypto_provider();
    let mut opts = ServerOptions::local(policy());
    opts.weakened = weaken.parse::<Weakened>().expect("weaken list");
    let handle = server::start(opts).await.expect("server starts");
    let path = dir.join("target.yaml");
    handle.write_target(&path).expect("target written");
    (handle, path)
}

/// Guard on every reply the fuzzer waits for: generous, since CI machines are shared.
const GUARD: Duration = Duration::from_secs(10);

fn runtime(target: &Path) -> Arc<TargetRuntime> {
    let loaded = LoadedTarget::load(target).expect("emitted target loads");
    let mut rt = TargetRuntime::new(&loaded).expect("runtime");
    rt.reply_wait = GUARD;
    Arc::new(rt)
}

fn options(seed: u64, duration: Duration) -> FuzzOptions {
    let mut o = FuzzOptions::for_policy(Some(&policy()), seed, "wsaudit fuzz".into());
    o.duration = duration;
    o.batch_size = 20;
    o.hang_after = GUARD;
    o
}

fn findings(r: &RunReport) -> Vec<&wsaudit::report::CaseResult> {
    r.cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_server_yields_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_srv, target) = serve("", dir.path()).await;
    let rt = runtime(&target);
    let opts = options(42, Duration::from_secs(4));
    let report = run(rt, Some(&policy()), &opts).await.expect("fuzzing runs");
    let failed: Vec<String> = findings(&report)
        .iter()
        .map(|c| {
            format!(
                "{}: {}\n{}",
                c.case_id,
                c.reason,
                c.evidence.transcript.join("\n")
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "findings on the hardened server:\n{}",
        failed.join("\n\n")
    );
    assert_eq!(report.exit_code(), 0, "{:?}", report.summary);
    let batches = report
        .cases
        .iter()
        .filter(|c| c.case_id.contains("fuzz-batch") && c.verdict == Verdict::Pass)
        .count();
    assert!(
        batches >= 1,
        "no healthy batch recorded: {:?}",
        report.cases
    );
    let ack = report
        .cases
        .iter()
        .find(|c| c.case_id.ends_with("/fuzz-ack"))
        .expect("acknowledgement summary");
    assert_eq!(ack.verdict, Verdict::Pass, "{}", ack.reason);
    // The acknowledgement control is the policy's schema control.
    assert_eq!(ack.control_id, "WS-MSG-01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_weakened_server_acks_invalid_messages_and_the_seed_reproduces_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_srv, target) = serve("schema", dir.path()).await;
    let rt = runtime(&target);
    let mut opts = options(7, Duration::from_secs(20));
    opts.max_findings = 3;
    let report = run(rt.clone(), Some(&policy()), &opts)
        .await
        .expect("fuzzing runs");
    let found = findings(&report);
    assert!(!found.is_empty(), "nothing found: {:?}", report.summary);
    assert_eq!(report.exit_code(), 1);
    let first = found[0];
    assert!(
        first.case_id.starts_with("WS-MSG-01/fuzz-ack[b"),
        "{}",
        first.case_id
    );
    let ev = first.evidence.transcript.join("\n");
    assert!(ev.contains("seed 7, batch "), "{ev}");
    assert!(ev.contains("--seed 7 --replay-batch "), "{ev}");
    assert!(ev.contains("payload bytes 0..: "), "{ev}");
    assert!(ev.contains("acknowledged: "), "{ev}");

    // Replaying the batch regenerates the same case, byte for byte.
    let batch: u64 = first
        .case_id
        .split("[b")
        .nth(1)
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .expect("batch in the case id");
    let mut replay = options(7, Duration::from_secs(0));
    replay.replay_batch = Some(batch);
    let again = run(rt, Some(&policy()), &replay)
        .await
        .expect("replay runs");
    let same = again
        .cases
        .iter()
        .find(|c| c.case_id == first.case_id)
        .unwrap_or_else(|| panic!("{} not reproduced: {:?}", first.case_id, again.cases));
    let bytes = |c: &wsaudit::report::CaseResult| -> Vec<String> {
        c.evidence
            .transcript
            .iter()
            .filter(|l| l.contains("payload bytes") || l.contains("header"))
            .cloned()
            .collect()
    };
    assert_eq!(bytes(same), bytes(first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_is_inconclusive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (srv, target) = serve("", dir.path()).await;
    drop(srv);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rt = runtime(&target);
    let report = run(rt, Some(&policy()), &options(1, Duration::from_secs(2)))
        .await
        .expect("fuzzing runs");
    assert_eq!(report.exit_code(), 3, "{:?}", report.cases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_writes_every_report_and_exits_1_on_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (srv, target) = serve("schema", dir.path()).await;
    let json = dir.path().join("fuzz.json");
    let junit = dir.path().join("fuzz.xml");
    let sarif = dir.path().join("fuzz.sarif");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_wsaudit"))
        .arg("fuzz")
        .arg("--target")
        .arg(&target)
        .arg("--policy")
        .arg(policy_path())
        .args([
            "--duration",
            "15s",
            "--seed",
            "3",
            "--max-findings",
            "1",
            "--hang-after",
            "10s",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--sarif")
        .arg(&sarif)
        .output()
        .await
        .expect("wsaudit runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid JSON");
    assert_eq!(doc["exit_code"], 1);
    assert!(
        std::fs::read_to_string(&junit)
            .expect("junit")
            .contains("fuzz-ack")
    );
    assert!(
        std::fs::read_to_string(&sarif)
            .expect("sarif")
            .contains("WS-MSG-01")
    );
    // No secret (API token, tickets) reaches any output.
    for text in [
        stdout.to_string(),
        std::fs::read_to_string(&json).expect("json"),
        std::fs::read_to_string(&junit).expect("junit"),
        std::fs::read_to_string(&sarif).expect("sarif"),
    ] {
        assert!(!text.contains(&srv.api_token), "the API token leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_the_valid_message_never_reaches_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_srv, target) = serve("schema", dir.path()).await;
    // The valid message's reference comes from the environment, so it is a secret.
    let text = std::fs::read_to_string(&target)
        .expect("target")
        .replace("TX-123456", "${PAYMENT_REF}");
    let secret = "TX-424242";
    let loaded = LoadedTarget::parse(
        wsaudit::config::SourceFile::from_text(&target, text),
        &|name| (name == "PAYMENT_REF").then(|| secret.to_string()),
    )
    .expect("target with a secret loads");
    let mut rt = TargetRuntime::new(&loaded).expect("runtime");
    rt.reply_wait = GUARD;
    let rt = Arc::new(rt);
    let mut opts = options(11, Duration::from_secs(20));
    opts.max_findings = 5;
    let report = run(rt.clone(), Some(&policy()), &opts)
        .await
        .expect("fuzzing runs");
    assert!(!findings(&report).is_empty(), "nothing found");
    let secrets = rt.secrets();
    let redacted = report.redact(|s| secrets.redact(s));
    let hex_secret: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    for out in [
        wsaudit::report::terminal::render(&redacted),
        wsaudit::report::json::render(&redacted),
        wsaudit::report::junit::render(&redacted),
        wsaudit::report::sarif::render(&redacted),
    ] {
        assert!(!out.contains(secret), "the secret leaked");
        assert!(!out.contains(&hex_secret), "the secret leaked in hex");
    }
}
