//! The `check`, `compile` and `schema` commands: output and exit codes.

use std::process::Command;

fn wsaudit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wsaudit"))
        .args(args)
        .env("WSAUDIT_TEST_TOKEN", "tok-cli-secret")
        .output()
        .expect("wsaudit runs")
}

fn shipped_files() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["policies", "suites"] {
        for entry in std::fs::read_dir(dir).expect("directory").flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p.display().to_string());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_policy_and_suite_passes_check() {
    let files = shipped_files();
    assert!(files.len() >= 15, "{files:?}");
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let out = wsaudit(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in &files {
        assert!(stdout.contains(&format!("{f}: ok")), "{f} not reported ok");
    }
}

#[test]
fn check_reports_every_bad_file_and_exits_2() {
    let out = wsaudit(&[
        "check",
        "policies/baseline.yaml",
        "tests/bad_files/policy_bad_duration.yaml",
        "tests/bad_files/target_missing_env.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy_bad_duration.yaml:7:22:"),
        "{stderr}"
    );
    assert!(stderr.contains("target_missing_env.yaml:7:33:"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("policies/baseline.yaml: ok"));
}

#[test]
fn compile_prints_a_redacted_deterministic_plan() {
    let args = [
        "compile",
        "--policy",
        "policies/fintech.yaml",
        "--target",
        "tests/compile_data/target.yaml",
    ];
    let a = wsaudit(&args);
    let b = wsaudit(&args);
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert!(a.stdout == b.stdout, "two runs differ");
    let text = String::from_utf8_lossy(&a.stdout);
    assert!(text.contains("case_id: WS-TLS-01/TLS-PLAINTEXT-UPGRADE"));
    assert!(!text.contains("tok-cli-secret"), "the secret leaked");
}

#[test]
fn compile_errors_exit_2() {
    let out = wsaudit(&[
        "compile",
        "--policy",
        "tests/bad_files/policy_unknown_check.yaml",
        "--target",
        "tests/compile_data/target.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown check `origin.allowlst`"));
}

#[test]
fn schema_prints_json() {
    let out = wsaudit(&["schema", "--kind", "target"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["title"], "Target");
}

#[test]
fn compile_redacts_a_secret_the_url_percent_encodes() {
    // `+`, a space, `/`, `=` and `ü` are all changed by the URL parser; the plan (its target
    // line and case names) shows the encoded form, which must be redacted like the raw one.
    const TOK: &str = "abc+de f/=ü";
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("target.yaml");
    let text = std::fs::read_to_string("tests/compile_data/target.yaml")
        .expect("target")
        .replace(
            "url: wss://staging.example.com/ws\n",
            "url: wss://staging.example.com/ws?token=${WSAUDIT_URL_TOKEN}\n",
        );
    assert!(text.contains("${WSAUDIT_URL_TOKEN}"));
    std::fs::write(&target, text).expect("write target");
    let out = Command::new(env!("CARGO_BIN_EXE_wsaudit"))
        .args(["compile", "--policy", "policies/fintech.yaml", "--target"])
        .arg(&target)
        .env("WSAUDIT_TEST_TOKEN", "tok-cli-secret")
        .env("WSAUDIT_URL_TOKEN", TOK)
        .output()
        .expect("wsaudit runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for form in std::iter::once(TOK.to_string()).chain(wsaudit::config::secrets::encoded_forms(TOK))
    {
        assert!(!stdout.contains(&form), "`{form}` leaked into the plan");
    }
    // Independently of the registry: the query form the url crate gives it.
    assert!(!stdout.contains("abc+de%20f"), "{stdout}");
    assert!(
        stdout.contains("wss://staging.example.com/ws?token=***"),
        "{stdout}"
    );
}

#[test]
fn a_policy_at_every_upper_bound_checks_and_compiles() {
    // What `check` accepts, `compile` must accept too: no error may surface later in a shipped
    // suite the user never wrote (the rate flood count once overflowed there).
    let text = std::fs::read_to_string("policies/reference-fast.yaml").expect("policy");
    let mut at_bounds = text.clone();
    for (from, to) in [
        ("ttl_max: 1s", "ttl_max: 24h"),
        ("timeout: 1s", "timeout: 24h"),
        ("max_per_second: 50", "max_per_second: 1000000"),
        ("limit: 64KiB", "limit: 1GiB"),
        (
            "interval_max: 500ms, missed_max: 2",
            "interval_max: 24h, missed_max: 1000",
        ),
    ] {
        assert!(at_bounds.contains(from), "{from}");
        at_bounds = at_bounds.replace(from, to);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("bounds.yaml");
    std::fs::write(&policy, at_bounds).expect("write policy");
    let policy = policy.to_str().expect("utf-8");
    let check = wsaudit(&["check", policy]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let compile = wsaudit(&[
        "compile",
        "--policy",
        policy,
        "--target",
        "tests/compile_data/target.yaml",
    ]);
    assert_eq!(
        compile.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&compile.stderr)
    );
}
