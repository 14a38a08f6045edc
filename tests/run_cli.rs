//! `wsaudit run` end to end, as CI runs it: the binary against an in-process reference server,
//! with every report format. A canary secret must reach no output byte; partitions must cover
//! every case exactly once; the JUnit of a real run must validate; waivers must apply.

#[path = "common/provision.rs"]
mod provision;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wsaudit::config::{LoadedPolicy, SourceFile};
use wsaudit::server::{self, ServerHandle, ServerOptions, Weakened};

/// The API token: `+`, `/`, `=`, a space and `é` all change when percent- or form-encoded.
const CANARY: &str = "canary+4c1d/9e= never-print-mé";

struct Fixture {
    _server: ServerHandle,
    dir: tempfile::TempDir,
    target: PathBuf,
}

fn reference_fast() -> String {
    read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/reference-fast.yaml"))
}

/// A reference server (weakened on `weaken`) whose API token is the canary, and a target file
/// that reads the token from `${WSAUDIT_CANARY}`.
async fn fixture(weaken: &str) -> Fixture {
    fixture_enforcing(&reference_fast(), weaken).await
}

/// [`fixture`] with the server enforcing `policy` (YAML text), while every audit reads
/// `policies/reference-fast.yaml`: a server stricter than the audited policy.
async fn fixture_enforcing(policy: &str, weaken: &str) -> Fixture {
    wsaudit::crypto::install_crypto_provider();
    let policy = LoadedPolicy::parse(SourceFile::from_text("server.yaml", policy)).expect("policy");
    let mut opts = ServerOptions::local(policy);
    opts.weakened = weaken.parse::<Weakened>().expect("weaken");
    opts.api_token = Some(CANARY.to_string());
    let handle = server::start(opts).await.expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("target.yaml");
    handle.write_target(&target).expect("target");
    let text = std::fs::read_to_string(&target)
        .expect("read target")
        .replace(CANARY, "${WSAUDIT_CANARY}");
    assert!(
        text.contains("${WSAUDIT_CANARY}"),
        "the emitted target carries the token"
    );
    std::fs::write(&target, text).expect("write target");
    Fixture {
        _server: handle,
        dir,
        target,
    }
}

/// Runs `wsaudit run` on a blocking thread (the server lives on this test's runtime).
async fn wsaudit_run(f: &Fixture, extra: &[&str]) -> Output {
    let target = f.target.to_str().expect("utf-8");
    let mut args = vec![
        "run",
        "--policy",
        "policies/reference-fast.yaml",
        "--target",
        target,
    ];
    args.extend(extra);
    wsaudit(&args).await
}

/// Runs `wsaudit ARGS` from the repository on a blocking thread.
async fn wsaudit(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsaudit"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("WSAUDIT_CANARY", CANARY)
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run wsaudit"))
        .await
        .expect("join")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_secret_reaches_no_output_byte_of_a_failing_run() {
    // url-token weakened: the credential (the canary) is sent in URLs, where it is percent- or
    // form-encoded, the server accepts it, and the failing cases' evidence shows those very
    // requests. The whole plan runs, so every family's evidence and every issued ticket and
    // session cookie is exposed to the reporters.
    let f = fixture("url-token").await;
    let d = f.dir.path();
    let (junit, json, sarif, html) = (
        d.join("r.xml"),
        d.join("r.json"),
        d.join("r.sarif"),
        d.join("html"),
    );
    let out = wsaudit_run(
        &f,
        &[
            "--junit",
            junit.to_str().expect("utf-8"),
            "--json",
            json.to_str().expect("utf-8"),
            "--sarif",
            sarif.to_str().expect("utf-8"),
            "--html",
            html.to_str().expect("utf-8"),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failing control exits 1\n{stdout}"
    );
    assert!(stdout.contains("FAIL   WS-AUTH-02"), "{stdout}");
    let outputs = [
        ("stdout", stdout.to_string()),
        ("stderr", String::from_utf8_lossy(&out.stderr).to_string()),
        ("junit", read(&junit)),
        ("json", read(&json)),
        ("sarif", read(&sarif)),
        ("html", read(&html.join("index.html"))),
    ];
    // Everything secret the run saw: the canary as written and in every encoded form, and every
    // ticket and session cookie the server issued to the harness during the run.
    let issued = f._server.shared.tickets.issued();
    assert!(
        issued.len() >= 2,
        "the server issued no ticket or cookie: {issued:?}"
    );
    let mut needles = vec![CANARY.to_string()];
    needles.extend(wsaudit::config::secrets::encoded_forms(CANARY));
    needles.extend(issued);
    // Any 12 consecutive bytes of a secret is a leak of it.
    let windows: std::collections::HashSet<&[u8]> = needles
        .iter()
        .flat_map(|n| n.as_bytes().windows(12))
        .collect();
    for (name, text) in &outputs {
        if let Some(at) = text
            .as_bytes()
            .windows(12)
            .position(|w| windows.contains(w))
        {
            let around = &text.as_bytes()[at.saturating_sub(40)..(at + 52).min(text.len())];
            panic!(
                "a secret leaked into {name}: …{}…",
                String::from_utf8_lossy(around)
            );
        }
    }
    // Redaction happened where each secret would have been, not just omission: the canary
    // (form-encoded in the query), the ticket and the session cookie.
    let credential_in_url = "GET /ws?token=*** HTTP/1.1";
    for (name, text) in &outputs {
        if *name != "stderr" {
            assert!(
                text.contains(credential_in_url),
                "{name}: no `{credential_in_url}`"
            );
        }
    }
    let ticket_and_cookie = "< HTTP 200: ticket *** (cookies: wsaudit_session=***; Secure";
    for (name, text) in [&outputs[0], &outputs[2], &outputs[3], &outputs[5]] {
        let text = text.replace("&lt;", "<");
        assert!(
            text.contains(ticket_and_cookie),
            "{name}: no `{ticket_and_cookie}`"
        );
    }
    let report: serde_json::Value = serde_json::from_str(&outputs[3].1).expect("JSON report");
    let transcript = |case: &str| -> Vec<String> {
        let c = report["cases"]
            .as_array()
            .and_then(|cases| cases.iter().find(|c| c["case_id"] == case))
            .unwrap_or_else(|| panic!("no case {case}"));
        c["evidence"]["transcript"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| l.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let credential = transcript("WS-AUTH-02/URLTOKEN-CREDENTIAL[token]");
    assert!(
        credential
            .iter()
            .any(|l| l.starts_with(&format!("> {credential_in_url};"))),
        "{credential:?}"
    );
    let ticket = transcript("WS-AUTH-02/URLTOKEN-QUERY[token]");
    assert!(
        ticket.iter().any(|l| l.starts_with(ticket_and_cookie)),
        "{ticket:?}"
    );
    let cookie = transcript("WS-COOKIE-01/COOKIE-SET");
    assert!(
        cookie
            .iter()
            .any(|l| l.starts_with("< HTTP 200 (cookies: wsaudit_session=***; Secure")),
        "{cookie:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_cover_every_case_exactly_once_and_junit_validates() {
    let f = fixture("").await;
    let d = f.dir.path();
    let only = "WS-ORIGIN-01,WS-PROTO-01,WS-TLS-01";
    let mut seen: Vec<String> = Vec::new();
    for k in 1..=3 {
        let junit = d.join(format!("part{k}.xml"));
        let part = format!("{k}/3");
        let out = wsaudit_run(
            &f,
            &[
                "--only",
                only,
                "--partition",
                &part,
                "--junit",
                junit.to_str().expect("utf-8"),
            ],
        )
        .await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let xml = read(&junit);
        provision::assert_valid_junit(&xml);
        seen.extend(xml.match_indices("<testcase name=\"").map(|(i, m)| {
            xml[i + m.len()..]
                .split('"')
                .next()
                .unwrap_or("")
                .to_string()
        }));
    }
    let all = wsaudit_run(
        &f,
        &[
            "--only",
            only,
            "--junit",
            d.join("all.xml").to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_eq!(all.status.code(), Some(0));
    let whole = read(&d.join("all.xml"));
    let expected: BTreeSet<String> = whole
        .match_indices("<testcase name=\"")
        .map(|(i, m)| {
            whole[i + m.len()..]
                .split('"')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_every_case_once(&seen, &expected);
    assert!(expected.len() > 20);
}

/// The cases the shares of a partitioned run reported (`seen`) are the cases of the whole
/// run, each reported by exactly one share.
fn assert_every_case_once(seen: &[String], expected: &BTreeSet<String>) {
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        seen.len(),
        unique.len(),
        "a case was reported by two shares"
    );
    assert_eq!(
        &unique, expected,
        "the shares together hold every case once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waivers_turn_failures_into_waived_and_expired_ones_do_not() {
    let f = fixture("cookie-samesite").await;
    let waivers = f.dir.path().join("waivers.yaml");
    let waivers_arg = waivers.to_str().expect("utf-8");
    let run_with_waivers = async |text: &str| {
        std::fs::write(&waivers, text).expect("write waivers");
        wsaudit_run(&f, &["--only", "WS-COOKIE-01", "--waivers", waivers_arg]).await
    };
    let waived = run_with_waivers(
        "waivers:\n  - id: WS-COOKIE-01\n    justification: SameSite rollout tracked in SEC-1234\n    expires: 2999-01-01\n  - id: WS-COOKY-01\n    justification: a typo\n",
    )
    .await;
    let stdout = String::from_utf8_lossy(&waived.stdout);
    assert_eq!(waived.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("WAIVED") && stdout.contains("1 waived"),
        "{stdout}"
    );
    // A waiver whose ID matches nothing is named, not silently ignored.
    let stderr = String::from_utf8_lossy(&waived.stderr);
    assert!(
        stderr.contains("WS-COOKY-01") && stderr.contains("matches no control or case"),
        "{stderr}"
    );
    assert!(!stderr.contains("WS-COOKIE-01 matches"), "{stderr}");

    let expired = run_with_waivers(
        "waivers:\n  - id: WS-COOKIE-01\n    justification: SameSite rollout tracked in SEC-1234\n    expires: 2020-01-01\n",
    )
    .await;
    assert_eq!(expired.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&expired.stderr).contains("expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_selection_and_unwritable_reports_fail_before_any_attack() {
    let f = fixture("").await;
    let d = f.dir.path();
    let junit = d.join("wsaudit.xml");
    let junit_arg = junit.to_str().expect("utf-8");
    let typo = wsaudit_run(&f, &["--only", "WS-ORIGN-01", "--junit", junit_arg]).await;
    assert_eq!(typo.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("WS-ORIGN-01"));
    assert!(
        !junit.exists(),
        "a typo must not leave an empty report behind"
    );

    let policy = d.join("typo-policy.yaml");
    std::fs::write(&policy, reference_fast().replace("controls:", "controlz:")).expect("write");
    let target = f.target.to_str().expect("utf-8");
    let bad_policy = wsaudit(&[
        "run",
        "--policy",
        policy.to_str().expect("utf-8"),
        "--target",
        target,
        "--junit",
        junit_arg,
    ])
    .await;
    assert_eq!(bad_policy.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_policy.stderr).contains("typo-policy.yaml"));
    assert!(
        !junit.exists(),
        "an invalid policy must not leave an empty report behind"
    );

    let unwritable = wsaudit_run(&f, &["--junit", "/nonexistent-dir/wsaudit.xml"]).await;
    assert_eq!(unwritable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unwritable.stderr).contains("/nonexistent-dir/wsaudit.xml"));
    assert!(unwritable.stdout.is_empty(), "no attack may run");
    let half = wsaudit_run(
        &f,
        &[
            "--junit",
            junit_arg,
            "--json",
            "/nonexistent-dir/wsaudit.json",
        ],
    )
    .await;
    assert_eq!(half.status.code(), Some(2));
    assert!(half.stdout.is_empty(), "no attack may run");
    assert!(!junit.exists(), "the writable report is not left empty");
}

/// The JSON report a run wrote.
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).expect("JSON report")
}

/// The audited policy with the server stricter than it: the legitimate origin is not on the
/// server's allowlist, and its size limit is under the policy's.
fn stricter_than_the_policy() -> String {
    let policy = reference_fast();
    let strict = policy
        .replace(
            r#"allowed: ["https://app.example.com"]"#,
            r#"allowed: ["https://other.example.com"]"#,
        )
        .replace("limit: 64KiB", "limit: 1KiB");
    assert_eq!(
        strict.matches("other.example.com").count() + strict.matches("limit: 1KiB").count(),
        2,
        "the shipped policy changed: revisit this fixture"
    );
    strict
}

/// SPEC: a failed positive control makes its family's cases `error`, never `pass`, however the
/// cases are selected. The server refuses the legitimate path (the allowed origin, a message
/// under the policy's limit), so the attacks selected alone are refused, as a secure server's
/// would be, but prove nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attack_selected_alone_is_still_gated_by_its_positive_control() {
    let f = fixture_enforcing(&stricter_than_the_policy(), "").await;
    let report = f.dir.path().join("r.json");
    for (attack, gate) in [
        ("WS-ORIGIN-01/ORIGIN-FOREIGN", "WS-ORIGIN-01/ORIGIN-ALLOWED"),
        ("WS-MSG-03/SIZE-FRAGMENTED", "WS-MSG-03/SIZE-UNDER-LIMIT"),
    ] {
        let out = wsaudit_run(
            &f,
            &["--only", attack, "--json", report.to_str().expect("utf-8")],
        )
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(3),
            "inconclusive, not passed\n{stdout}"
        );
        let doc = json(&report);
        assert_eq!(doc["exit_code"], 3);
        let cases = doc["cases"].as_array().expect("cases");
        assert_eq!(
            cases.len(),
            1,
            "only the selected case is reported: {cases:#?}"
        );
        let case = &cases[0];
        assert_eq!(case["case_id"], attack);
        assert_eq!(case["verdict"], "error", "{case:#}");
        let reason = case["reason"].as_str().expect("reason");
        assert!(reason.contains(gate), "{reason}");
        let evidence: Vec<&str> = case["evidence"]["transcript"]
            .as_array()
            .expect("transcript")
            .iter()
            .filter_map(|l| l.as_str())
            .collect();
        assert!(
            evidence.iter().any(|l| l.contains(gate)
                && l.contains("not selected")
                && l.contains("ended fail")),
            "the evidence says how the unreported gate ended: {evidence:#?}"
        );
        assert!(
            evidence
                .iter()
                .any(|l| l.contains("original verdict: pass")),
            "{evidence:#?}"
        );
    }
}

/// Every share of a partitioned run runs the gates its cases depend on: against a server that
/// refuses the legitimate origin, no share reports a pass, and together the shares still hold
/// every case exactly once. Each share's SARIF run has its own category.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_shares_are_gated_and_keep_their_sarif_apart() {
    let f = fixture_enforcing(&stricter_than_the_policy(), "").await;
    let d = f.dir.path();
    let mut seen: Vec<String> = Vec::new();
    let mut categories = BTreeSet::new();
    for k in 1..=3 {
        let (report, sarif) = (d.join(format!("{k}.json")), d.join(format!("{k}.sarif")));
        let part = format!("{k}/3");
        let out = wsaudit_run(
            &f,
            &[
                "--only",
                "WS-ORIGIN-01",
                "--partition",
                &part,
                "--json",
                report.to_str().expect("utf-8"),
                "--sarif",
                sarif.to_str().expect("utf-8"),
            ],
        )
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_ne!(out.status.code(), Some(0), "{stdout}");
        for case in json(&report)["cases"].as_array().expect("cases") {
            assert_ne!(case["verdict"], "pass", "{case:#}");
            seen.push(case["case_id"].as_str().expect("id").to_string());
        }
        let sarif: serde_json::Value = serde_json::from_str(&read(&sarif)).expect("SARIF");
        let category = sarif["runs"][0]["automationDetails"]["id"]
            .as_str()
            .expect("category")
            .to_string();
        assert!(
            category.ends_with(&format!("/partition-{k}-of-3/")),
            "{category}"
        );
        categories.insert(category);
    }
    assert_eq!(categories.len(), 3, "{categories:?}");
    let whole = d.join("all.json");
    let all = wsaudit_run(
        &f,
        &[
            "--only",
            "WS-ORIGIN-01",
            "--json",
            whole.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert_eq!(all.status.code(), Some(1), "the positive control fails");
    let expected: BTreeSet<String> = json(&whole)["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["case_id"].as_str().map(str::to_string))
        .collect();
    assert_every_case_once(&seen, &expected);
}
