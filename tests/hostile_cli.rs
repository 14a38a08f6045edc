//! Issue 8, from the command line: SIGINT during `wsaudit run` prints the partial summary, writes
//! the reports for what finished (the rest listed as not run) and exits 130; a report file that
//! cannot be written is an error named before any connection is made.

mod hostile;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use hostile::{Behaviour, Hostile, Layer, TOKEN, TOKEN_VAR};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// A guard against a hung child, not a timing assertion.
const GUARD: Duration = Duration::from_secs(60);

/// `wsaudit run --policy policies/reference-fast.yaml --target TARGET --junit JUNIT`, output
/// piped.
fn wsaudit_run(target: &Path, junit: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsaudit"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "--policy",
            "policies/reference-fast.yaml",
            "--target",
        ])
        .arg(target)
        .arg("--junit")
        .arg(junit)
        .env(TOKEN_VAR, TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// The `<testcase>` elements of a JUnit document: (name, skipped message if skipped).
fn junit_cases(xml: &str) -> Vec<(String, Option<String>)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases: Vec<(String, Option<String>)> = Vec::new();
    loop {
        match reader.read_event().expect("well-formed JUnit") {
            Event::Start(e) | Event::Empty(e) => {
                let attr = |key: &[u8]| {
                    e.attributes()
                        .filter_map(Result::ok)
                        .find(|a| a.key.as_ref() == key)
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                        .unwrap_or_default()
                };
                match e.name().as_ref() {
                    b"testcase" => cases.push((attr(b"name"), None)),
                    b"skipped" => {
                        if let Some(last) = cases.last_mut() {
                            last.1 = Some(attr(b"message"));
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_reports_what_finished_marks_the_rest_not_run_and_exits_130() {
    wsaudit::crypto::install_crypto_provider();
    // The reference server, in this process: 80 cases of which a few finish within
    // milliseconds and most take seconds, 8 at a time.
    let handle = wsaudit::server::start(wsaudit::server::ServerOptions::local(hostile::policy()))
        .await
        .expect("reference server starts");
    let dir = tempfile::tempdir().expect("temporary directory");
    let target = dir.path().join("target.yaml");
    handle.write_target(&target).expect("target written");
    let junit = dir.path().join("wsaudit.xml");
    let json = dir.path().join("wsaudit.json");
    let mut child = wsaudit_run(&target, &junit)
        .arg("--json")
        .arg(&json)
        .spawn()
        .expect("wsaudit starts");
    let pid = child.id().expect("running child") as libc::pid_t;
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut progress = String::new();
    let waited = tokio::time::timeout(GUARD, async {
        // Interrupt as soon as the first case has finished.
        while let Ok(Some(line)) = stderr.next_line().await {
            progress.push_str(&line);
            progress.push('\n');
            if line.starts_with('[') {
                // SAFETY: sends a signal to the child this test spawned and still owns.
                assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0, "kill");
                break;
            }
        }
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.expect("stdout");
        while let Ok(Some(line)) = stderr.next_line().await {
            progress.push_str(&line);
            progress.push('\n');
        }
        (child.wait().await.expect("exit status"), out)
    })
    .await;
    let (status, out) = waited.unwrap_or_else(|_| {
        panic!("wsaudit did not exit within {GUARD:?} of SIGINT; stderr so far:\n{progress}")
    });
    assert_eq!(
        status.code(),
        Some(130),
        "exit code of an interrupted run\nstdout:\n{out}\nstderr:\n{progress}"
    );
    assert!(progress.contains("interrupted"), "{progress}");

    // The partial summary: what finished, how many did not run.
    let not_run_line = out
        .lines()
        .find(|l| l.starts_with("Not run (interrupted): "))
        .unwrap_or_else(|| panic!("no not-run count in the summary:\n{out}"));
    let not_run: usize = not_run_line
        .trim_start_matches("Not run (interrupted): ")
        .trim()
        .parse()
        .expect("a count");
    assert!(not_run > 0, "{out}");
    assert!(out.contains("\nSummary: "), "{out}");
    // Listed with their verdicts: an attack that finished before its positive control is
    // `ERROR` (not judged), not `PASS`.
    assert!(
        out.lines().any(|l| ["PASS ", "FAIL ", "ERROR "]
            .iter()
            .any(|v| l.starts_with(v))),
        "the finished cases are listed: {out}"
    );

    // The JSON report: the finished cases, and the IDs of the rest.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON report written"))
            .expect("JSON");
    let finished = report["cases"].as_array().expect("cases").len();
    let listed = report["not_run"].as_array().expect("not_run").len();
    assert!(finished > 0, "no case finished before the interrupt");
    assert_eq!(listed, not_run);
    assert_eq!(
        report["exit_code"], 130,
        "the report's exit code is the process's"
    );

    // The JUnit report: every case of the plan, the unfinished ones skipped as not run.
    let cases = junit_cases(&std::fs::read_to_string(&junit).expect("JUnit report written"));
    assert_eq!(cases.len(), finished + not_run, "{cases:?}");
    let skipped_not_run = cases
        .iter()
        .filter(|(_, m)| m.as_deref() == Some("not run: interrupted"))
        .count();
    assert_eq!(skipped_not_run, not_run, "{cases:?}");
    eprintln!("interrupted after {finished} finished cases; {not_run} not run");
}

#[tokio::test]
async fn an_unwritable_report_is_named_before_any_connection() {
    let server = Hostile::start(Behaviour::layer(Layer::Silent)).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let target = server.write_target(dir.path());
    let unwritable = Path::new("/nonexistent-wsaudit-dir/report.xml");
    let output = tokio::time::timeout(GUARD, wsaudit_run(&target, unwritable).output())
        .await
        .expect("wsaudit exits")
        .expect("wsaudit runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&unwritable.display().to_string()),
        "the error names the path: {stderr}"
    );
    assert_eq!(
        server.accepted(),
        0,
        "no connection may be made before the report path is checked"
    );
}
