//! The CSWSH probe against the in-process reference server: a page (served by the in-process
//! HTTPS site) references the server's real `wss://127.0.0.1:PORT/ws`; the probe must PASS
//! against the hardened server (allowlist `https://app.example.com`), FAIL against the server
//! weakened on `origin`, and be inconclusive when the page's own origin is refused too.

mod common;
#[path = "fixtures/scan/site.rs"]
mod site;
#[path = "fixtures/scan/support.rs"]
mod support;

use site::{Resource, Site};
use support::{APP_ORIGIN, case, expect, reference, run};
use wsaudit::client::TlsOptions;
use wsaudit::report::Verdict;
use wsaudit::scan::ScanOptions;
use wsaudit::server::ServerHandle;

/// A site whose page opens a WebSocket to each server, the way an app's page would.
async fn page_for(servers: &[&ServerHandle]) -> Site {
    let script: String = servers
        .iter()
        .enumerate()
        .map(|(i, s)| format!("const feed{i} = new WebSocket(\"{}\");\n", s.ws_url()))
        .collect();
    Site::start(vec![
        (
            "/".into(),
            Resource::html("<html><script src=\"/app.js\"></script></html>"),
        ),
        ("/app.js".into(), Resource::js(script)),
    ])
    .await
}

fn options(site: &Site, servers: &[&ServerHandle], origin: Option<&str>) -> ScanOptions {
    let mut o = ScanOptions::new(url::Url::parse(&site.url("/")).expect("page url"));
    let mut tls = TlsOptions::default()
        .with_ca_pem(&site.ca_pem)
        .expect("site CA");
    for s in servers {
        tls = tls
            .with_ca_pem(s.ca_pem.as_deref().expect("generated CA"))
            .expect("server CA");
    }
    o.tls = tls;
    // The page is served from 127.0.0.1, but the app's origin is app.example.com.
    o.origin = origin.map(str::to_string);
    o
}

#[tokio::test]
async fn a_server_refusing_foreign_origins_passes() {
    let hardened = reference("").await;
    let site = page_for(&[&hardened]).await;
    let report = run(&options(&site, &[&hardened], Some(APP_ORIGIN))).await;
    let ws = hardened.ws_url();
    expect(
        &report,
        &format!("SCAN-CSWSH/PAGE-ORIGIN[{ws}]"),
        Verdict::Pass,
        APP_ORIGIN,
    );
    let attack = format!("SCAN-CSWSH/FOREIGN-ORIGIN[{ws}]");
    expect(&report, &attack, Verdict::Pass, "HTTP 403");
    let evidence = case(&report, &attack).evidence.transcript.join("\n");
    assert!(
        evidence.contains("Origin: https://evil.example"),
        "{evidence}"
    );
    assert!(evidence.contains("referenced at /app.js:1:"), "{evidence}");
    assert_eq!(report.exit_code(), 0, "{report:#?}");
}

#[tokio::test]
async fn a_server_accepting_any_origin_fails() {
    let weak = reference("origin").await;
    let site = page_for(&[&weak]).await;
    let report = run(&options(&site, &[&weak], Some(APP_ORIGIN))).await;
    let attack = format!("SCAN-CSWSH/FOREIGN-ORIGIN[{}]", weak.ws_url());
    expect(&report, &attack, Verdict::Fail, "CSWSH");
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn a_refused_page_origin_makes_the_probe_inconclusive() {
    // Without --origin the positive control sends the page's own origin (127.0.0.1), which the
    // hardened server refuses: its refusal of evil.example then proves nothing.
    let hardened = reference("").await;
    let site = page_for(&[&hardened]).await;
    let report = run(&options(&site, &[&hardened], None)).await;
    let ws = hardened.ws_url();
    expect(
        &report,
        &format!("SCAN-CSWSH/PAGE-ORIGIN[{ws}]"),
        Verdict::Error,
        "--origin",
    );
    let attack = format!("SCAN-CSWSH/FOREIGN-ORIGIN[{ws}]");
    expect(&report, &attack, Verdict::Error, "PAGE-ORIGIN");
    assert_eq!(report.exit_code(), 3);
}

#[tokio::test]
async fn endpoints_are_judged_and_gated_one_by_one() {
    let hardened = reference("").await;
    let weak = reference("origin").await;
    let site = page_for(&[&hardened, &weak]).await;
    let report = run(&options(&site, &[&hardened, &weak], Some(APP_ORIGIN))).await;
    for (server, verdict) in [(&hardened, Verdict::Pass), (&weak, Verdict::Fail)] {
        let ws = server.ws_url();
        expect(
            &report,
            &format!("SCAN-CSWSH/PAGE-ORIGIN[{ws}]"),
            Verdict::Pass,
            "101",
        );
        expect(
            &report,
            &format!("SCAN-CSWSH/FOREIGN-ORIGIN[{ws}]"),
            verdict,
            "evil.example",
        );
    }
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_inconclusive_and_no_probe_skips() {
    let closed = common::closed_port::ClosedPort::reserve();
    let ws = format!("wss://127.0.0.1:{}/ws", closed.port());
    let site = Site::start(vec![(
        "/".into(),
        Resource::html(format!("<script>new WebSocket('{ws}')</script>")),
    )])
    .await;
    let mut o = options(&site, &[], Some(APP_ORIGIN));
    let report = run(&o).await;
    expect(
        &report,
        &format!("SCAN-CSWSH/PAGE-ORIGIN[{ws}]"),
        Verdict::Error,
        "refused",
    );
    expect(
        &report,
        &format!("SCAN-CSWSH/FOREIGN-ORIGIN[{ws}]"),
        Verdict::Error,
        "refused",
    );
    assert_eq!(report.exit_code(), 3);

    o.probe = false;
    let report = run(&o).await;
    expect(
        &report,
        &format!("SCAN-CSWSH/FOREIGN-ORIGIN[{ws}]"),
        Verdict::Skipped,
        "--no-probe",
    );
    assert_eq!(report.exit_code(), 0);
}
