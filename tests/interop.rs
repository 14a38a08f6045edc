//! Third-party servers with their default settings (tests/interop/): Python `websockets` and
//! `aiohttp`, Node `ws` and axum, each a small JSON payment endpoint written the way its docs
//! write one; then a default `socket.io` server, a `graphql-ws` server, a FastAPI endpoint
//! authenticated by an `Authorization` header on the upgrade, and an express endpoint
//! authenticated by the session cookie of a login request. Their true behaviour, established
//! by an independent client (`probe.py`, `probe_dialect.py`), is written down in
//! `<server>/expected.yaml`; wsaudit's verdict must equal it, control by control (and case by
//! case where the file names cases). `wsaudit init` must write a starter target for each that
//! `wsaudit check` accepts and that, answered, runs.
//!
//! The servers run as separate processes on 127.0.0.1 (packages provisioned by the tests
//! themselves, see tests/common/provision.rs); those that crash on some input run under a
//! supervisor that restarts them on their port, as a deployment would.

#[path = "common/provision.rs"]
mod provision;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wsaudit::attacks::TargetRuntime;
use wsaudit::config::target::LoadedTarget;
use wsaudit::config::{LoadedPolicy, SourceFile};
use wsaudit::report::{RunReport, Verdict};
use wsaudit::run::{RunOptions, run};

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The payment every server acknowledges.
const VALID: &str = r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;

/// How one interop server is started and described.
struct Server {
    /// Its directory under tests/interop/.
    dir: &'static str,
    /// The command that starts it (`PORT` set in the environment restarts it on that port).
    command: fn() -> Command,
    /// The target file's authentication part, beyond URL, origin and messages.
    auth: &'static str,
    /// A query string its legitimate URL carries.
    query: &'static str,
    /// Whether a supervisor restarts it when it exits (a crashing stack).
    supervised: bool,
    /// Whether `<dir>/target.yaml` is its whole target file (`__PORT__` filled in), as for
    /// the dialect and handshake-credential servers; otherwise [`target_yaml`] writes it.
    template: bool,
}

fn python(script: &'static str) -> Command {
    let mut c = Command::new(provision::python());
    c.arg(interop_dir().join(script));
    c
}

const SERVERS: [Server; 4] = [
    Server {
        dir: "python_websockets",
        command: || python("python_websockets/server.py"),
        auth: "auth:\n  first_message: '{\"type\":\"auth\",\"token\":\"${INTEROP_TOKEN}\"}'\n  accepted_when: { json: { \"/type\": \"auth_ok\" } }\n",
        query: "",
        supervised: false,
        template: false,
    },
    Server {
        dir: "python_aiohttp",
        command: || python("python_aiohttp/server.py"),
        auth: "auth:\n  accepted_when: { json: { \"/type\": \"welcome\" } }\n",
        query: "?token=${INTEROP_TOKEN}",
        supervised: false,
        template: false,
    },
    Server {
        dir: "node_ws",
        command: || node("node_ws/server.js"),
        auth: "",
        query: "",
        supervised: true,
        template: false,
    },
    Server {
        dir: "rust_axum",
        command: || {
            Command::new(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/examples/interop_axum"),
            )
        },
        auth: "connect:\n  headers: { Authorization: \"Bearer ${INTEROP_TOKEN}\" }\n",
        query: "",
        supervised: false,
        template: false,
    },
];

fn node(script: &'static str) -> Command {
    let mut c = provision::node();
    c.arg(interop_dir().join(script));
    c
}

/// Servers that speak an application protocol or take their credential on the handshake:
/// audited after [`SERVERS`], so that the two groups do not share the two cores' timing.
const DIALECT_SERVERS: [Server; 4] = [
    Server {
        dir: "node_socketio",
        command: || node("node_socketio/server.js"),
        auth: "",
        query: "",
        // An event without an ack id kills it (observed.md); a deployment restarts it.
        supervised: true,
        template: true,
    },
    Server {
        dir: "node_graphql_ws",
        command: || node("node_graphql_ws/server.js"),
        auth: "",
        query: "",
        supervised: false,
        template: true,
    },
    Server {
        dir: "python_fastapi_header",
        command: || python("python_fastapi_header/server.py"),
        auth: "",
        query: "",
        supervised: false,
        template: true,
    },
    Server {
        dir: "node_express_session",
        command: || node("node_express_session/server.js"),
        auth: "",
        query: "",
        // Malformed JSON kills it (an uncaught JSON.parse error).
        supervised: true,
        template: true,
    },
];

/// A server process (and its restarts, when supervised), killed on drop.
struct Running {
    child: Arc<Mutex<Child>>,
    port: u16,
    stop: Arc<AtomicBool>,
    restarts: Arc<Mutex<u32>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut c = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Starts `command` and reads its `PORT <n>` line (a bounded wait).
fn spawn(mut command: Command, token: &str, port: Option<u16>) -> (Child, u16) {
    command
        .env("INTEROP_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(p) = port {
        command.env("PORT", p.to_string());
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep draining, so a chatty server never blocks on a full pipe.
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{command:?} printed no PORT line within 60 s"));
    let port = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{command:?} printed `{line}`, expected `PORT <n>`"));
    (child, port)
}

fn start(server: &Server, token: &str) -> Running {
    let (child, port) = spawn((server.command)(), token, None);
    let child = Arc::new(Mutex::new(child));
    let stop = Arc::new(AtomicBool::new(false));
    let restarts = Arc::new(Mutex::new(0));
    if server.supervised {
        let (child, stop, restarts) = (child.clone(), stop.clone(), restarts.clone());
        let command = server.command;
        let token = token.to_string();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                let exited = child
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .try_wait()
                    .ok()
                    .flatten()
                    .is_some();
                if exited && !stop.load(Ordering::SeqCst) {
                    let (next, _) = spawn(command(), &token, Some(port));
                    *child.lock().unwrap_or_else(|e| e.into_inner()) = next;
                    *restarts.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                }
            }
        });
    }
    Running {
        child,
        port,
        stop,
        restarts,
    }
}

/// The target file of `server` listening on `port`.
fn target_yaml(server: &Server, port: u16) -> String {
    if server.template {
        let file = interop_dir().join(server.dir).join("target.yaml");
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        return text.replace("__PORT__", &port.to_string());
    }
    format!(
        "target: {}\nurl: ws://127.0.0.1:{port}/ws{}\norigin: https://app.example.com\n{}messages:\n  valid: ['{VALID}']\n  accepted_when: {{ json: {{ \"/type\": \"ack\" }} }}\n  rejected_when: {{ json: {{ \"/type\": \"error\" }} }}\nlimits: {{ connect_timeout: 5s, case_timeout: 60s, max_parallel: 8, recovery: 15s }}\n",
        server.dir, server.query, server.auth
    )
}

/// What `expected.yaml` says of one control or case.
#[derive(Debug, serde::Deserialize)]
struct Expected {
    verdict: String,
    why: String,
}

#[derive(Debug, serde::Deserialize)]
struct ExpectedFile {
    server: String,
    controls: BTreeMap<String, Expected>,
    #[serde(default)]
    cases: BTreeMap<String, Expected>,
}

fn verdict(word: &str) -> Verdict {
    match word {
        "pass" => Verdict::Pass,
        "fail" => Verdict::Fail,
        "error" => Verdict::Error,
        "skipped" => Verdict::Skipped,
        other => panic!("expected.yaml: unknown verdict `{other}`"),
    }
}

/// Audits one server with tests/interop/policy.yaml and returns the report and the expected file.
async fn audit(server: &Server) -> (RunReport, ExpectedFile, u32) {
    audit_with(server, "policy.yaml", "expected.yaml", &[]).await
}

/// Audits one server with the interop policy `policy`, running the controls `only` names (all
/// when empty), against its ground truth in `<server>/<expected>`.
async fn audit_with(
    server: &Server,
    policy: &str,
    expected: &str,
    only: &[&str],
) -> (RunReport, ExpectedFile, u32) {
    let token = format!("interop-{:016x}", rand_token());
    let running = start(server, &token);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("target.yaml");
    std::fs::write(&path, target_yaml(server, running.port)).expect("write target");
    let env = |name: &str| (name == "INTEROP_TOKEN").then(|| token.clone());
    let target = LoadedTarget::parse(SourceFile::read(&path).expect("read target"), &env)
        .unwrap_or_else(|e| panic!("{}: target: {e}", server.dir));
    let policy = LoadedPolicy::load(&interop_dir().join(policy)).expect("interop policy");
    let suites = wsaudit::config::check::load_suites(&[]).expect("suites");
    let plan = wsaudit::plan::compile(&policy, &target, &suites)
        .unwrap_or_else(|e| panic!("{}: compile: {e}", server.dir));
    let rt = Arc::new(TargetRuntime::new(&target).expect("runtime"));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let mut opts = RunOptions::all(cancel);
    opts.only = only.iter().map(|c| c.to_string()).collect();
    let report = run(&plan, &policy, rt.clone(), opts).await;
    let report = {
        let secrets = rt.secrets();
        // The token never reaches a report (the harness redacts at the one redaction point).
        let redacted = report.redact(|s| secrets.redact(s));
        let text = wsaudit::report::json::render(&redacted);
        assert!(
            !text.contains(&token),
            "{}: the token reached the report",
            server.dir
        );
        report
    };
    let restarts = *running.restarts.lock().unwrap_or_else(|e| e.into_inner());
    let file = interop_dir().join(server.dir).join(expected);
    let expected: ExpectedFile = match std::fs::read_to_string(&file) {
        Ok(text) => {
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}/{expected}: {e}", server.dir))
        }
        // Reported as a difference for every control, with wsaudit's verdicts and reasons.
        Err(_) => ExpectedFile {
            server: server.dir.replace('_', "-"),
            controls: BTreeMap::new(),
            cases: BTreeMap::new(),
        },
    };
    (report, expected, restarts)
}

fn rand_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Every difference between the report and the written ground truth.
fn differences(report: &RunReport, expected: &ExpectedFile) -> Vec<String> {
    let mut out = Vec::new();
    for (id, want) in &expected.controls {
        let got = report
            .controls
            .iter()
            .find(|c| &c.id == id)
            .map(|c| c.verdict);
        if got != Some(verdict(&want.verdict)) {
            let cases: Vec<String> = report
                .cases
                .iter()
                .filter(|c| &c.control_id == id && c.verdict != Verdict::Pass)
                .map(|c| format!("      {:?} {}: {}", c.verdict, c.case_id, c.reason))
                .collect();
            out.push(format!(
                "  {id}: wsaudit says {got:?}, the ground truth {} ({})\n{}",
                want.verdict,
                want.why,
                cases.join("\n")
            ));
        }
    }
    for c in &report.controls {
        if !expected.controls.contains_key(&c.id) {
            let cases: Vec<String> = report
                .cases
                .iter()
                .filter(|k| k.control_id == c.id && k.verdict != Verdict::Pass)
                .map(|k| format!("      {:?} {}: {}", k.verdict, k.case_id, k.reason))
                .collect();
            out.push(format!(
                "  {}: not in expected.yaml (wsaudit says {:?})\n{}",
                c.id,
                c.verdict,
                cases.join("\n")
            ));
        }
    }
    for (id, want) in &expected.cases {
        match report.cases.iter().find(|c| &c.case_id == id) {
            Some(c) if c.verdict == verdict(&want.verdict) => {}
            Some(c) => out.push(format!(
                "  case {id}: wsaudit says {:?} ({}), the ground truth {} ({})",
                c.verdict, c.reason, want.verdict, want.why
            )),
            None => out.push(format!("  case {id}: not in the plan")),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_interop_server_gets_its_ground_truth_control_by_control() {
    wsaudit::crypto::install_crypto_provider();
    let started = Instant::now();
    let audits = futures_util::future::join_all(SERVERS.iter().map(audit)).await;
    let mut problems = compare(&SERVERS, &audits);
    let dialect_audits = futures_util::future::join_all(DIALECT_SERVERS.iter().map(audit)).await;
    problems.extend(compare(&DIALECT_SERVERS, &dialect_audits));
    assert!(
        problems.is_empty(),
        "verdicts differ from the written ground truth (after {:.0}s):\n{}",
        started.elapsed().as_secs_f64(),
        problems.join("\n")
    );
    a_crash_on_a_parse_error_is_never_a_size_limit(&audits[2].0, audits[2].2);
    no_case_is_an_error(&DIALECT_SERVERS, &dialect_audits);
}

/// With a policy that allows compression, the deflate cases run against a server that
/// compresses everything it sends (Python `websockets`, permessage-deflate on by default): the
/// login works with compression negotiated, and the deflate bomb gets its verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressing_server_gets_verdicts_for_every_deflate_case() {
    wsaudit::crypto::install_crypto_provider();
    let server = &SERVERS[0];
    assert_eq!(server.dir, "python_websockets");
    let (report, expected, _) = audit_with(
        server,
        "policy-deflate.yaml",
        "expected-deflate.yaml",
        &["WS-MSG-03"],
    )
    .await;
    let diff = differences(&report, &expected);
    assert!(diff.is_empty(), "{}", diff.join("\n"));
    let bomb = report
        .cases
        .iter()
        .find(|c| c.case_id == "WS-MSG-03/SIZE-DEFLATE-BOMB")
        .expect("the deflate bomb ran");
    assert!(
        bomb.evidence
            .transcript
            .iter()
            .any(|l| l.contains("came compressed (permessage-deflate)")),
        "the server's compressed replies were read: {:#?}",
        bomb.evidence.transcript
    );
}

/// The differences between each server's report and its ground truth, one entry per server.
fn compare(servers: &[Server], audits: &[(RunReport, ExpectedFile, u32)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (server, (report, expected, restarts)) in servers.iter().zip(audits) {
        assert_eq!(
            expected.server.replace('-', "_"),
            server.dir,
            "expected.yaml names its server"
        );
        let diff = differences(report, expected);
        if !diff.is_empty() {
            problems.push(format!(
                "{} ({} restarts):\n{}",
                server.dir,
                restarts,
                diff.join("\n")
            ));
        }
    }
    problems
}

/// A dialect or a handshake credential is worth having only if every case that applies gets a
/// verdict: none of these servers may leave a case in `error`.
fn no_case_is_an_error(servers: &[Server], audits: &[(RunReport, ExpectedFile, u32)]) {
    for (server, (report, _, _)) in servers.iter().zip(audits) {
        let errors: Vec<String> = report
            .cases
            .iter()
            .filter(|c| c.verdict == Verdict::Error)
            .map(|c| format!("{}: {}", c.case_id, c.reason))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: cases in error:\n{}",
            server.dir,
            errors.join("\n")
        );
    }
}

/// Node `ws` dies on the first malformed JSON (JSON.parse throws in the message listener): that
/// case fails as a crash, and the size cases, run after the supervisor restarted it, still
/// fail on the payment padded past the limit that ws acknowledges.
fn a_crash_on_a_parse_error_is_never_a_size_limit(report: &RunReport, restarts: u32) {
    let case = |id: &str| {
        report
            .cases
            .iter()
            .find(|c| c.case_id == id)
            .unwrap_or_else(|| panic!("no case {id}"))
    };
    let malformed = case("WS-MSG-01/MSG-MALFORMED-JSON");
    assert_eq!(malformed.verdict, Verdict::Fail, "{}", malformed.reason);
    assert!(
        malformed.reason.contains("stopped accepting connections")
            || malformed.reason.contains("crashed"),
        "{}",
        malformed.reason
    );
    assert!(
        restarts >= 1,
        "the supervisor never restarted node: no crash happened"
    );
    for id in ["WS-MSG-03/SIZE-ONE-OVER", "WS-MSG-03/SIZE-FRAGMENTED"] {
        let c = case(id);
        assert_eq!(c.verdict, Verdict::Fail, "{id}: {}", c.reason);
        assert!(!c.reason.contains("1009"), "{id}: {}", c.reason);
    }
}

/// `wsaudit init` against every interop server: the starter file passes `wsaudit check` as
/// written and names the dialect and URL path the hand-written target uses; with its questions
/// answered (the hand-written target's credentials, messages and dialect options put in), the
/// legitimate session gets its verdict: `WS-MSG-01/MSG-VALID` passes.
#[test]
fn init_writes_a_starter_target_that_check_accepts_and_answered_runs() {
    let all: Vec<&Server> = SERVERS.iter().chain(DIALECT_SERVERS.iter()).collect();
    let problems: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = all
            .iter()
            .map(|server| scope.spawn(|| init_one(server)))
            .collect();
        handles
            .into_iter()
            .zip(&all)
            .filter_map(|(h, server)| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{}: {e}", server.dir)),
                Err(_) => Some(format!("{}: panicked", server.dir)),
            })
            .collect()
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn wsaudit(args: &[&str], token: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wsaudit"))
        .args(args)
        .env("INTEROP_TOKEN", token)
        .output()
        .expect("run wsaudit")
}

fn init_one(server: &Server) -> Result<(), String> {
    let token = format!("interop-{:016x}", rand_token());
    let running = start(server, &token);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let hand: serde_yaml::Mapping = serde_yaml::from_str(&target_yaml(server, running.port))
        .map_err(|e| format!("hand-written target: {e}"))?;
    let hand_url = url::Url::parse(hand["url"].as_str().unwrap_or_default())
        .map_err(|e| format!("hand-written url: {e}"))?;
    let mut given = hand_url.clone();
    given.set_query(None);
    let starter = dir.path().join("starter.yaml");
    let out = wsaudit(
        &[
            "init",
            given.as_str(),
            "--origin",
            "https://app.example.com",
            "-o",
            starter.to_str().unwrap_or_default(),
        ],
        &token,
    );
    if !out.status.success() {
        return Err(format!(
            "init exited {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = std::fs::read_to_string(&starter).map_err(|e| e.to_string())?;
    let check = wsaudit(&["check", starter.to_str().unwrap_or_default()], &token);
    if !check.status.success() {
        return Err(format!(
            "check refused the starter file: {}\n{text}",
            String::from_utf8_lossy(&check.stderr)
        ));
    }
    let mut answered: serde_yaml::Mapping =
        serde_yaml::from_str(&text).map_err(|e| format!("starter: {e}\n{text}"))?;
    // The dialect init detected is the one the hand-written target names.
    let name = |v: Option<&serde_yaml::Value>| match v {
        None => "raw".to_string(),
        Some(serde_yaml::Value::String(s)) => s.clone(),
        Some(m) => m["name"].as_str().unwrap_or_default().to_string(),
    };
    let (detected, written) = (name(answered.get("dialect")), name(hand.get("dialect")));
    if detected != written {
        return Err(format!(
            "init detected dialect {detected}, the hand-written target says {written}\n{text}"
        ));
    }
    let starter_url = url::Url::parse(answered["url"].as_str().unwrap_or_default())
        .map_err(|e| format!("starter url: {e}"))?;
    if starter_url.path() != hand_url.path() {
        return Err(format!(
            "init wrote path {}, the hand-written target {}",
            starter_url.path(),
            hand_url.path()
        ));
    }
    // The answers: credentials (a URL token included), messages, dialect options.
    for (key, value) in &hand {
        match key.as_str() {
            Some("url") | Some("origin") | Some("target") => {}
            _ => {
                answered.insert(key.clone(), value.clone());
            }
        }
    }
    if hand_url.query().is_some() {
        answered.insert("url".into(), hand_url.as_str().into());
    }
    let path = dir.path().join("answered.yaml");
    std::fs::write(
        &path,
        serde_yaml::to_string(&answered).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let json = dir.path().join("report.json");
    let policy = interop_dir().join("policy.yaml");
    let run = wsaudit(
        &[
            "run",
            "--policy",
            policy.to_str().unwrap_or_default(),
            "--target",
            path.to_str().unwrap_or_default(),
            "--only",
            "WS-MSG-01/MSG-VALID",
            "--json",
            json.to_str().unwrap_or_default(),
        ],
        &token,
    );
    let report = std::fs::read_to_string(&json).unwrap_or_default();
    if !run.status.success() {
        return Err(format!(
            "the answered target's MSG-VALID did not pass (exit {:?}): {}\n{report}",
            run.status.code(),
            String::from_utf8_lossy(&run.stdout)
        ));
    }
    if report.contains(&token) {
        return Err("the token reached the report".into());
    }
    drop(running);
    Ok(())
}
