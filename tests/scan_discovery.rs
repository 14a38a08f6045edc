//! Page scan discovery against an in-process HTTPS site: what is found where (minified code,
//! template literals, relative URLs, Socket.IO, SockJS, SignalR, module imports), what is and
//! is not fetched, and that every bound holds (script count, bytes, per-request and total time).

mod common;
#[path = "fixtures/scan/site.rs"]
mod site;
#[path = "fixtures/scan/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use site::{Resource, Site, fixture};
use support::{case, expect, run};
use wsaudit::client::TlsOptions;
use wsaudit::report::{RunReport, Verdict};
use wsaudit::scan::{self, ScanOptions};

fn options(site: &Site, path: &str) -> ScanOptions {
    let mut o = ScanOptions::new(url::Url::parse(&site.url(path)).expect("page url"));
    o.tls = TlsOptions::default()
        .with_ca_pem(&site.ca_pem)
        .expect("CA PEM");
    // Discovered endpoints here are on example domains: nothing but 127.0.0.1 is contacted.
    o.probe = false;
    o
}

fn verdicts(r: &RunReport) -> BTreeMap<String, Verdict> {
    r.cases
        .iter()
        .map(|c| (c.case_id.clone(), c.verdict))
        .collect()
}

/// `file:line:column` of the first occurrence of `needle` in `text` (1-based, byte column).
fn at(file: &str, text: &str, needle: &str) -> String {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in {file}"));
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..offset].matches('\n').count() + 1;
    format!("{file}:{line}:{}", offset - line_start + 1)
}

fn control(r: &RunReport, id: &str) -> Verdict {
    r.controls
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.verdict)
        .unwrap_or_else(|| panic!("no control {id}"))
}

#[tokio::test]
async fn finds_every_reference_in_the_page_and_its_same_origin_scripts() {
    let other = Site::start(vec![(
        "/cdn/analytics.js".into(),
        Resource::js("new WebSocket('ws://x.example/')"),
    )])
    .await;
    let html = fixture("index.html").replace("{{OTHER_PORT}}", &other.port.to_string());
    let files = [
        "minified.js",
        "template.js",
        "relative.js",
        "libs.js",
        "chunk.js",
    ];
    let mut routes = vec![("/index.html".to_string(), Resource::html(html.clone()))];
    routes.extend(
        files
            .iter()
            .map(|f| (format!("/static/{f}"), Resource::js(fixture(f)))),
    );
    let site = Site::start(routes).await;
    let report = run(&options(&site, "/index.html")).await;

    let text = |f: &str| fixture(f);
    let min = "/static/minified.js";
    let tpl = "/static/template.js?…";
    let rel = "/static/relative.js";
    let chunk = "/static/chunk.js";
    let mut expected: BTreeMap<String, Verdict> = BTreeMap::new();
    let mut expect = |id: String, v: Verdict| {
        expected.insert(id, v);
    };
    use Verdict::*;
    expect("SCAN-SOURCES/PAGE[/index.html]".into(), Pass);
    for f in [min, tpl, rel, "/static/libs.js", chunk] {
        expect(format!("SCAN-SOURCES/SCRIPT[{f}]"), Pass);
    }
    let p = |kind: &str, file: &str, src: &str, needle: &str| {
        format!("SCAN-PLAINTEXT/{kind}[{}]", at(file, src, needle))
    };
    expect(
        p("WSS", "/index.html", &html, "wss://feed.example.com"),
        Pass,
    );
    expect(
        p("WS", "/index.html", &html, "new WebSocket(\"ws://ticker"),
        Fail,
    );
    let m = text("minified.js");
    expect(p("WSS", min, &m, "wss://stream.example.com"), Pass);
    expect(p("DYNAMIC", min, &m, "new WebSocket(n)"), Skipped);
    expect(p("WS", min, &m, "new WebSocket(\"ws://legacy"), Fail);
    let t = text("template.js");
    expect(
        p("WSS", tpl, &t, "new WebSocket(`wss://${location.host}"),
        Pass,
    );
    expect(p("WSS", tpl, &t, "new WebSocket(`wss://${window"), Pass);
    expect(p("WSS", tpl, &t, "wss://\" :"), Pass);
    // The plaintext half of a protocol switch, on an https page: not a plaintext reference.
    expect(p("WSS", tpl, &t, "ws://\";"), Pass);
    expect(p("DYNAMIC", tpl, &t, "new WebSocket(proto"), Skipped);
    expect(p("WS", tpl, &t, "ws://${location.hostname}:8081"), Fail);
    let c = text("chunk.js");
    expect(p("WS", chunk, &c, "new WebSocket("), Fail);
    let r = text("relative.js");
    for needle in [
        "new WebSocket(\"/ws/chat",
        "new SockJS",
        ".withUrl",
        "io(\"/payments",
        "io.connect",
    ] {
        expect(p("WSS", rel, &r, needle), Pass);
    }
    let origin = site.origin().replace("https://", "wss://");
    for endpoint in [
        "wss://feed.example.com/prices".to_string(),
        "wss://stream.example.com/v2/live".into(),
        format!("{origin}/quotes"),
        format!("{origin}/ws/chat"),
        format!("{origin}/echo/websocket"),
        format!("{origin}/hubs/orders"),
        format!("{origin}/rt/socket.io/?…"),
        "wss://push.example.com/socket.io/?…".into(),
    ] {
        expect(format!("SCAN-CSWSH/FOREIGN-ORIGIN[{endpoint}]"), Skipped);
    }
    expect(
        format!(
            "SCAN-CSWSH/UNRESOLVED[{}]",
            at(tpl, &t, "new WebSocket(`wss://${window")
        ),
        Skipped,
    );
    assert_eq!(verdicts(&report), expected);

    // Evidence: the resolved URL, the snippet and the assumptions made.
    let quotes = case(
        &report,
        &p("WSS", tpl, &t, "new WebSocket(`wss://${location.host}"),
    );
    let ev = quotes.evidence.transcript.join("\n");
    assert!(ev.contains(&format!("connects to {origin}/quotes")), "{ev}");
    assert!(ev.contains("export const quotes"), "{ev}");
    let legacy = case(&report, &p("WS", min, &m, "new WebSocket(\"ws://legacy"));
    assert!(
        legacy.reason.contains("ws://legacy.example.com:8080/feed"),
        "{}",
        legacy.reason
    );
    let notify = case(&report, &p("WS", chunk, &c, "new WebSocket("));
    assert!(
        notify
            .reason
            .contains("ws://notify.example.com/n?token=${token}"),
        "{}",
        notify.reason
    );
    let sio = case(&report, &p("WSS", rel, &r, "io(\"/payments"));
    assert!(
        sio.evidence
            .transcript
            .iter()
            .any(|l| l.contains("Socket.IO")),
        "{:?}",
        sio.evidence
    );

    // What was fetched: the page and its same-origin scripts once each; nothing elsewhere.
    let mut requests = site.requests();
    requests.sort();
    assert_eq!(
        requests,
        [
            "/index.html",
            "/static/chunk.js",
            "/static/libs.js",
            "/static/minified.js",
            "/static/relative.js",
            "/static/template.js?v=3",
        ]
    );
    assert!(other.requests().is_empty(), "{:?}", other.requests());
    let page = case(&report, "SCAN-SOURCES/PAGE[/index.html]");
    assert!(
        page.evidence
            .transcript
            .iter()
            .any(|l| l.contains("other origin, not fetched") && l.contains("/cdn/analytics.js")),
        "{:?}",
        page.evidence
    );
    assert_eq!(control(&report, scan::PLAINTEXT), Fail);
    assert_eq!(control(&report, scan::SOURCES), Pass);
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn a_clean_page_passes_and_notes_nothing() {
    let site = Site::start(vec![
        (
            "/".into(),
            Resource::html("<script src=/a.js></script><p>no sockets here</p>"),
        ),
        ("/a.js".into(), Resource::js("console.log('hello');")),
    ])
    .await;
    let report = run(&options(&site, "/")).await;
    assert_eq!(report.exit_code(), 0, "{:#?}", verdicts(&report));
    assert_eq!(case(&report, "SCAN-PLAINTEXT/NONE").verdict, Verdict::Pass);
    assert_eq!(case(&report, "SCAN-CSWSH/NONE").verdict, Verdict::Skipped);
}

#[tokio::test]
async fn many_scripts_stop_at_the_script_bound() {
    let tags: String = (0..80)
        .map(|i| format!("<script src=\"/s/{i}.js\"></script>\n"))
        .collect();
    let mut routes = vec![("/".to_string(), Resource::html(tags))];
    routes.extend((0..80).map(|i| {
        (
            format!("/s/{i}.js"),
            Resource::js(format!(
                "var s{i} = new WebSocket('wss://h{i}.example/ws');"
            )),
        )
    }));
    let site = Site::start(routes).await;
    let mut o = options(&site, "/");
    o.bounds.max_scripts = 10;
    let report = run(&o).await;
    assert_eq!(site.requests().len(), 11, "{:?}", site.requests());
    let scripts = report
        .cases
        .iter()
        .filter(|c| c.case_id.starts_with("SCAN-SOURCES/SCRIPT["))
        .count();
    assert_eq!(scripts, 10);
    let over = case(&report, "SCAN-SOURCES/MAX-SCRIPTS");
    assert_eq!(over.verdict, Verdict::Error);
    assert!(over.name.starts_with("70 "), "{}", over.name);
    assert!(over.reason.contains("--max-scripts 10"), "{}", over.reason);
    assert_eq!(
        report.exit_code(),
        3,
        "unread scripts make the scan inconclusive"
    );
}

#[tokio::test]
async fn a_huge_script_is_read_only_up_to_the_byte_bound() {
    let site = Site::start(vec![
        ("/".into(), Resource::html("<script src=/huge.js></script>")),
        (
            "/huge.js".into(),
            // Never ends: only the bound can stop the read.
            Resource::Endless {
                head: b"var a = new WebSocket('ws://early.example/ws');\n".to_vec(),
                chunk: b"/* padding padding padding padding padding padding padding */\n"
                    .repeat(64),
            },
        ),
    ])
    .await;
    let mut o = options(&site, "/");
    o.bounds.max_bytes = 256 * 1024;
    let report = run(&o).await;
    expect(
        &report,
        "SCAN-SOURCES/SCRIPT[/huge.js]",
        Verdict::Error,
        "truncated",
    );
    let huge = case(&report, "SCAN-SOURCES/SCRIPT[/huge.js]");
    assert!(huge.reason.contains("256.0 KiB"), "{}", huge.reason);
    assert!(
        huge.evidence
            .transcript
            .iter()
            .any(|l| l.contains("(truncated)"))
    );
    // What was read is still scanned.
    assert_eq!(
        case(&report, "SCAN-PLAINTEXT/WS[/huge.js:1:9]").verdict,
        Verdict::Fail
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn a_script_that_never_finishes_times_out_and_the_rest_is_scanned() {
    let site = Site::start(vec![
        (
            "/".into(),
            Resource::html("<script src=/stall.js></script><script src=/ok.js></script>"),
        ),
        (
            "/stall.js".into(),
            // Claims a terabyte, sends a few bytes, then nothing.
            Resource::Stall {
                claimed_len: 1 << 40,
                partial: b"var x = 'ws://never.example/';".to_vec(),
            },
        ),
        (
            "/ok.js".into(),
            Resource::js("new WebSocket('wss://fine.example/ws');"),
        ),
    ])
    .await;
    let mut o = options(&site, "/");
    o.bounds.request_timeout = Duration::from_secs(1);
    let report = run(&o).await;
    expect(
        &report,
        "SCAN-SOURCES/SCRIPT[/stall.js]",
        Verdict::Error,
        "timed out",
    );
    assert_eq!(
        case(&report, "SCAN-SOURCES/SCRIPT[/ok.js]").verdict,
        Verdict::Pass
    );
    assert_eq!(
        case(&report, "SCAN-PLAINTEXT/WSS[/ok.js:1:1]").verdict,
        Verdict::Pass
    );
    assert_eq!(report.exit_code(), 3);
}

#[tokio::test]
async fn the_total_time_budget_caps_every_request() {
    let tags: String = (0..6)
        .map(|i| format!("<script src=/stall{i}.js></script>"))
        .collect();
    let mut routes = vec![("/".to_string(), Resource::html(tags))];
    routes.extend((0..6).map(|i| {
        (
            format!("/stall{i}.js"),
            Resource::Stall {
                claimed_len: 100,
                partial: b"//".to_vec(),
            },
        )
    }));
    let site = Site::start(routes).await;
    let mut o = options(&site, "/");
    o.bounds.total_time = Duration::from_secs(2);
    o.bounds.request_timeout = Duration::from_secs(600);
    let report = run(&o).await;
    // Four stall in the first wave until the budget ends; the other two are never requested.
    let left = case(&report, "SCAN-SOURCES/TIME-BUDGET");
    assert_eq!(left.verdict, Verdict::Error);
    assert!(left.name.starts_with("2 "), "{}", left.name);
    assert_eq!(site.requests().len(), 5, "{:?}", site.requests());
    assert_eq!(report.exit_code(), 3);
}

#[tokio::test]
async fn redirects_resolve_against_the_final_page_and_stay_on_origin() {
    let other = Site::start(vec![(
        "/evil.js".into(),
        Resource::js("new WebSocket('ws://x.example')"),
    )])
    .await;
    let site = Site::start(vec![
        ("/".into(), Resource::Redirect("/app/".into())),
        (
            "/app/".into(),
            Resource::html("<script src=main.js></script><script src=/moved.js></script>"),
        ),
        ("/app/main.js".into(), Resource::js("new WebSocket('rt');")),
        (
            "/moved.js".into(),
            Resource::Redirect(other.url("/evil.js")),
        ),
    ])
    .await;
    let mut o = options(&site, "/");
    o.tls = o.tls.with_ca_pem(&other.ca_pem).expect("CA PEM");
    let report = run(&o).await;
    let page = case(&report, "SCAN-SOURCES/PAGE[/]");
    assert!(
        page.evidence
            .transcript
            .iter()
            .any(|l| l.contains("redirected to") && l.contains("/app/")),
        "{:?}",
        page.evidence
    );
    let rt = report
        .cases
        .iter()
        .find(|c| {
            c.case_id
                .starts_with("SCAN-PLAINTEXT/WSS[/app/main.js:1:1]")
        })
        .expect("relative reference found");
    assert!(
        rt.evidence
            .transcript
            .iter()
            .any(|l| l.contains(&format!("connects to wss://127.0.0.1:{}/app/rt", site.port))),
        "{:?}",
        rt.evidence
    );
    let moved = case(&report, "SCAN-SOURCES/SCRIPT[/moved.js]");
    assert_eq!(moved.verdict, Verdict::Skipped, "{}", moved.reason);
    assert!(
        !report.cases.iter().any(|c| c.case_id.contains("x.example")),
        "off-origin content is not scanned"
    );
}

#[tokio::test]
async fn an_unreachable_or_failing_page_is_inconclusive() {
    let closed = common::closed_port::ClosedPort::reserve();
    let site = Site::start(vec![("/gone".into(), Resource::Status(500))]).await;
    let mut o = options(&site, "/gone");
    let report = run(&o).await;
    assert_eq!(
        case(&report, "SCAN-SOURCES/PAGE[/gone]").verdict,
        Verdict::Error
    );
    assert_eq!(
        case(&report, "SCAN-PLAINTEXT/NOTHING-READ").verdict,
        Verdict::Error
    );
    assert_eq!(
        case(&report, "SCAN-CSWSH/NOTHING-READ").verdict,
        Verdict::Error
    );
    assert_eq!(report.exit_code(), 3);

    o.url = url::Url::parse(&format!("https://127.0.0.1:{}/", closed.port())).expect("url");
    let report = run(&o).await;
    let page = &report.cases[0];
    assert_eq!(page.verdict, Verdict::Error);
    assert!(page.reason.contains("could not be read"), "{}", page.reason);
    assert_eq!(report.exit_code(), 3);

    // An untrusted certificate is a failed read too, not an invalid invocation.
    let mut untrusted = options(&site, "/gone");
    untrusted.tls = TlsOptions::default();
    let report = run(&untrusted).await;
    assert_eq!(report.exit_code(), 3);
}

#[tokio::test]
async fn references_beyond_the_bound_are_summed_up_not_dropped() {
    let js: String = (0..30)
        .map(|i| format!("var a{i} = 'ws://p{i}.example/';\nvar b{i} = 'wss://t{i}.example/';\n"))
        .collect();
    let site = Site::start(vec![
        ("/".into(), Resource::html("<script src=/many.js></script>")),
        ("/many.js".into(), Resource::js(js)),
    ])
    .await;
    let mut o = options(&site, "/");
    o.bounds.max_references = 10;
    o.bounds.max_endpoints = 3;
    o.probe = false;
    let report = run(&o).await;
    let single = report
        .cases
        .iter()
        .filter(|c| {
            c.case_id.starts_with("SCAN-PLAINTEXT/WS[")
                || c.case_id.starts_with("SCAN-PLAINTEXT/WSS[")
        })
        .count();
    assert_eq!(single, 10);
    let more = case(&report, "SCAN-PLAINTEXT/MORE-WS");
    assert_eq!(more.verdict, Verdict::Fail);
    assert!(more.name.starts_with("25 "), "{}", more.name);
    assert!(
        case(&report, "SCAN-PLAINTEXT/MORE-WSS")
            .name
            .starts_with("25 ")
    );
    assert!(
        case(&report, "SCAN-CSWSH/MAX-ENDPOINTS")
            .name
            .starts_with("27 ")
    );
}

#[tokio::test]
async fn a_source_with_more_references_than_the_cap_is_inconclusive_not_silent() {
    let js = "'ws://a.example/';\n".repeat(10_050);
    let site = Site::start(vec![
        (
            "/".into(),
            Resource::html("<script src=/flood.js></script>"),
        ),
        ("/flood.js".into(), Resource::js(js)),
    ])
    .await;
    let report = run(&options(&site, "/")).await;
    expect(
        &report,
        "SCAN-PLAINTEXT/UNEXAMINED[/flood.js]",
        Verdict::Error,
        "at least 50 more",
    );
    expect(
        &report,
        "SCAN-PLAINTEXT/MORE-WS",
        Verdict::Fail,
        "9800 more plaintext",
    );
    assert_eq!(report.exit_code(), 1);
}
