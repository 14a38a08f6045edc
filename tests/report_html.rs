//! HTML report: written to a file and opened in headless Chromium, whose rendered DOM must hold
//! the summary, every control and case, and the hostile evidence as inert text.
//!
//! Set `WSAUDIT_SCREENSHOT=/path/report.png` to also save a screenshot for a person to look at.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "common/provision.rs"]
mod provision;

use provision::SystemTool;
use wsaudit::report::html;
use wsaudit::report::sample::hostile_report;

/// Chromium binary: `$WSAUDIT_CHROMIUM` or `chromium` (Debian's package name). No registry
/// installs a browser without root, so without it the test is skipped where `CI` is unset and
/// fails where it is set (`.ci/run` installs it).
fn chromium() -> String {
    std::env::var("WSAUDIT_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

fn browser() -> SystemTool {
    SystemTool {
        program: chromium(),
        purpose: "render the HTML report and check its DOM",
        install: "apt-get install -y chromium (Debian), or set WSAUDIT_CHROMIUM to a Chromium binary",
    }
}

/// Runs headless Chromium on `page` with `args`; fails (never skips) when it is missing.
fn run_chromium(profile: &Path, page: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => panic!(
            "headless Chromium is required to check the HTML report but `{}` could not be run \
             ({e}); install it with `apt-get install -y chromium` (Debian) or point \
             WSAUDIT_CHROMIUM at a Chromium binary",
            chromium()
        ),
    };
    // A hang guard, not a timing assertion: a browser that never exits must not hang CI.
    let id = child.id();
    let deadline = Instant::now() + Duration::from_secs(180);
    let waiter = std::thread::spawn(move || child.wait_with_output());
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("headless Chromium did not exit within 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = waiter
        .join()
        .expect("waiter thread")
        .expect("Chromium output");
    assert!(
        output.status.success(),
        "Chromium failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn chromium_renders_the_summary_controls_and_inert_evidence() {
    if !browser()
        .available_or_skip("report_html::chromium_renders_the_summary_controls_and_inert_evidence")
    {
        return;
    }
    let report = hostile_report().redact(str::to_string);
    let dir = tempfile::tempdir().expect("temporary directory");
    let page = dir.path().join("wsaudit.html");
    std::fs::write(&page, html::render(&report)).expect("write report");
    let profile = dir.path().join("profile");

    let dom = String::from_utf8_lossy(&run_chromium(&profile, &page, &["--dump-dom"]).stdout)
        .into_owned();
    assert!(
        dom.contains("<h2>Summary</h2>"),
        "no summary in DOM:\n{dom}"
    );
    assert!(dom.contains("id=\"policy\">fintech-websocket</b>"));
    assert!(dom.contains("id=\"target\">staging-payments</b>"));
    // The sample lists cases not run: an interrupted run, whatever failed.
    assert!(dom.contains("interrupted (exit 130)"));
    let s = &report.summary;
    for (id, n) in [
        ("count-pass", s.passed),
        ("count-fail", s.failed),
        ("count-error", s.errors),
        ("count-skipped", s.skipped),
        ("count-waived", s.waived),
        ("count-cases", report.cases.len()),
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"><b>{n}</b>")),
            "{id} is not {n} in the DOM"
        );
    }
    for control in &report.controls {
        assert!(dom.contains(&control.id), "{} missing", control.id);
    }
    for case in &report.cases {
        assert!(dom.contains(&case.case_id), "{} missing", case.case_id);
    }
    assert_eq!(
        dom.matches("<rect class=\"bar\"").count(),
        report.cases.len()
    );
    // The hostile evidence is text: the parser made no element of it.
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!dom.contains("<script"), "a script element was created");
    assert!(!dom.contains("<img"), "an img element was created");

    if let Ok(shot) = std::env::var("WSAUDIT_SCREENSHOT") {
        run_chromium(
            &profile,
            &page,
            &[&format!("--screenshot={shot}"), "--window-size=1280,2000"],
        );
        let png = std::fs::read(&shot).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
    }
}
