//! `wsaudit scan` from the outside: exit codes 0/1/2/3, the report files, `--ca-file`,
//! `--origin` and the bounds as options, against in-process servers on 127.0.0.1.

mod common;
#[path = "fixtures/scan/site.rs"]
mod site;
#[path = "fixtures/scan/support.rs"]
mod support;

use std::path::Path;
use std::process::Output;

use site::{Resource, Site};
use support::{APP_ORIGIN, GUARD, reference};
use wsaudit::server::ServerHandle;

async fn wsaudit(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wsaudit"))
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(GUARD, child)
        .await
        .expect("wsaudit ends")
        .expect("wsaudit runs")
}

/// `wsaudit scan URL --ca-file CA` with more arguments.
async fn scan(url: &str, ca: &str, more: &[&str]) -> Output {
    let mut args = vec!["scan", url, "--ca-file", ca];
    args.extend_from_slice(more);
    wsaudit(&args).await
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A page opening a WebSocket to `ws`, plus a CA file trusting the site and `server`.
async fn page(ws: &str, server: Option<&ServerHandle>, dir: &Path) -> (Site, String) {
    let site = Site::start(vec![(
        "/".into(),
        Resource::html(format!(
            "<script>const s = new WebSocket(\"{ws}\");</script>"
        )),
    )])
    .await;
    let mut pem = site.ca_pem.clone();
    if let Some(s) = server {
        pem.push_str(s.ca_pem.as_deref().expect("generated CA"));
    }
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pem).expect("write CA file");
    (site, ca.display().to_string())
}

#[tokio::test]
async fn exit_0_writes_every_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hardened = reference("").await;
    let (site, ca) = page(&hardened.ws_url(), Some(&hardened), dir.path()).await;
    let (json, junit, sarif) = (
        dir.path().join("r.json"),
        dir.path().join("r.xml"),
        dir.path().join("r.sarif"),
    );
    let out = scan(
        &site.url("/"),
        &ca,
        &[
            "--origin",
            APP_ORIGIN,
            "--json",
            &json.display().to_string(),
            "--junit",
            &junit.display().to_string(),
            "--sarif",
            &sarif.display().to_string(),
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PASS   SCAN-CSWSH"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("JSON");
    assert_eq!(report["exit_code"], 0);
    let schema_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/wsaudit-report-v1.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    assert!(validator.is_valid(&report), "{report:#}");
    let controls: Vec<&str> = report["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(controls, ["SCAN-SOURCES", "SCAN-PLAINTEXT", "SCAN-CSWSH"]);
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("SCAN-CSWSH/FOREIGN-ORIGIN"), "{xml}");
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).expect("sarif written"))
            .expect("SARIF");
    assert_eq!(sarif["version"], "2.1.0");
}

#[tokio::test]
async fn exit_1_on_plaintext_and_on_an_origin_blind_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (site, ca) = page("ws://127.0.0.1:9/feed", None, dir.path()).await;
    let out = scan(&site.url("/"), &ca, &[]).await;
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("SCAN-PLAINTEXT/WS[/:1:19]"),
        "{}",
        text(&out)
    );

    let weak = reference("origin").await;
    let (site, ca) = page(&weak.ws_url(), Some(&weak), dir.path()).await;
    let out = scan(&site.url("/"), &ca, &["--origin", APP_ORIGIN]).await;
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("FAIL   SCAN-CSWSH"), "{}", text(&out));
}

#[tokio::test]
async fn exit_2_on_invalid_invocations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem").display().to_string();
    for args in [
        vec!["scan", "ftp://127.0.0.1/"],
        vec!["scan", "not a url"],
        vec![
            "scan",
            "https://127.0.0.1:1/",
            "--origin",
            "https://app.example.com/path",
        ],
        vec!["scan", "https://127.0.0.1:1/", "--foreign-origin", "evil"],
        vec!["scan", "https://127.0.0.1:1/", "--ca-file", &missing],
        vec!["scan", "https://127.0.0.1:1/", "--max-script-bytes", "lots"],
        vec!["scan", "https://127.0.0.1:1/", "--timeout", "soon"],
        vec!["scan"],
    ] {
        let out = wsaudit(&args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
    }
}

#[tokio::test]
async fn exit_3_when_the_page_is_unreachable_or_a_script_hangs() {
    let closed = common::closed_port::ClosedPort::reserve();
    let out = wsaudit(&["scan", &format!("https://127.0.0.1:{}/", closed.port())]).await;
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("ERROR  SCAN-SOURCES"), "{}", text(&out));

    let dir = tempfile::tempdir().expect("tempdir");
    let site = Site::start(vec![
        ("/".into(), Resource::html("<script src=/s.js></script>")),
        (
            "/s.js".into(),
            Resource::Stall {
                claimed_len: 1 << 30,
                partial: b"//".to_vec(),
            },
        ),
    ])
    .await;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &site.ca_pem).expect("CA file");
    let ca = ca.display().to_string();
    let out = scan(&site.url("/"), &ca, &["--request-timeout", "1s"]).await;
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("timed out"), "{}", text(&out));
}

#[tokio::test]
async fn help_lists_the_bounds() {
    let out = wsaudit(&["scan", "--help"]).await;
    assert_eq!(code(&out), 0);
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--origin",
        "--ca-file",
        "--max-scripts",
        "--max-script-bytes",
        "--timeout",
        "--request-timeout",
        "--no-probe",
        "--junit",
        "--json",
        "--sarif",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}
