//! `wsaudit serve` from the command line: the built binary on port 0, its printed URLs and
//! emitted target used by a plain client; the weaken switches that need a listener or a
//! certificate of their own; policies the server cannot enforce.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A guard against a hung child, not a timing assertion.
const GUARD: Duration = Duration::from_secs(60);

/// The last line `serve` prints once it is listening.
const LAST_LINE: &str = "ticket endpoint: POST ";

/// `wsaudit serve ARGS`, run from the crate root with its output piped; killed when dropped.
fn serve_command(args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsaudit"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// A running `serve` and what it printed up to its last start-up line.
struct Served {
    child: Child,
    lines: Vec<String>,
}

impl Served {
    /// Starts `serve` and reads its standard output until it says it is listening.
    async fn start(args: &[&std::ffi::OsStr]) -> Served {
        let mut child = serve_command(args).spawn().expect("start wsaudit serve");
        // The event log goes to stderr: drain it so the child never blocks on a full pipe.
        let mut stderr = child.stderr.take().expect("stderr piped");
        tokio::spawn(async move { tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await });
        let mut out = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        let mut lines = Vec::new();
        loop {
            match tokio::time::timeout(GUARD, out.next_line()).await {
                Ok(Ok(Some(line))) => {
                    let last = line.starts_with(LAST_LINE);
                    lines.push(line);
                    if last {
                        break;
                    }
                }
                other => panic!("serve stopped before listening ({other:?}); printed {lines:?}"),
            }
        }
        Served { child, lines }
    }

    /// The rest of the printed line that starts with `prefix`.
    fn printed(&self, prefix: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| l.strip_prefix(prefix))
    }

    async fn stop(mut self) {
        self.child.start_kill().expect("kill serve");
        let _ = tokio::time::timeout(GUARD, self.child.wait()).await;
    }
}

/// Runs `serve ARGS` expecting it to exit by itself; returns its exit code and stderr.
async fn serve_exit(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let child = serve_command(args).spawn().expect("start wsaudit serve");
    let out = tokio::time::timeout(GUARD, child.wait_with_output())
        .await
        .expect("serve exits instead of serving")
        .expect("serve output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `serve` on 127.0.0.1:0 with reference-fast (its timings relaxed: a slow machine must
/// not expire the ticket) and `--emit-target DIR/ref.yaml`, plus `extra`; returns the target.
async fn serve_with_target(dir: &Path, extra: &[&std::ffi::OsStr]) -> (Served, PathBuf) {
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, fast_policy_text(&[])).expect("write policy");
    let target = dir.join("ref.yaml");
    let mut args = vec![
        os("--policy"),
        os(&policy),
        os("--listen"),
        os("127.0.0.1:0"),
        os("--emit-target"),
        os(&target),
    ];
    args.extend_from_slice(extra);
    (Served::start(&args).await, target)
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// The socket address of a `ws://` or `wss://` URL on 127.0.0.1.
fn addr_of(url: &str) -> SocketAddr {
    let u = url::Url::parse(url).expect("printed URL parses");
    let port = u.port().expect("URL has a port");
    assert_ne!(port, 0, "{url}");
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("read target")).expect("YAML")
}

#[tokio::test]
async fn serve_prints_its_urls_and_a_plain_client_audits_it_through_the_emitted_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (served, target) =
        serve_with_target(dir.path(), &[os("--plain-listen"), os("127.0.0.1:0")]).await;
    let ws_url = served
        .printed("reference server listening on ")
        .expect("TLS URL printed");
    let plain_url = served
        .printed("plaintext listener (refuses upgrades) on ")
        .expect("plaintext URL printed");
    let ticket_url = served.printed(LAST_LINE).expect("ticket URL printed");

    let doc = yaml(&target);
    assert_eq!(doc["url"].as_str(), Some(ws_url));
    assert_eq!(doc["plaintext_url"].as_str(), Some(plain_url));
    let request = &doc["auth"]["ticket"]["request"];
    assert_eq!(request["url"].as_str(), Some(ticket_url));
    let ca = dir
        .path()
        .join(doc["tls"]["ca_file"].as_str().expect("ca_file"));
    let roots = roots_from_pem(&std::fs::read_to_string(ca).expect("CA beside the target"));
    let config = client_config_trusting(&roots, rustls::ALL_VERSIONS);

    // What a client reads from the target: a ticket, then the WebSocket from the allowed origin.
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(config.clone())
        .timeout(STEP)
        .build()
        .expect("reqwest client");
    let resp = http
        .post(ticket_url)
        .header(
            "authorization",
            request["headers"]["Authorization"]
                .as_str()
                .expect("Authorization in the target"),
        )
        .send()
        .await
        .expect("ticket request");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("JSON ticket");
    let ticket = body["ticket"].as_str().expect("ticket");
    let tls = tls_connect(addr_of(ws_url), config)
        .await
        .expect("TLS with the emitted CA");
    let origin = doc["origin"].as_str().expect("origin in the target");
    let mut ws = ws_handshake(tls, ws_url, Some(origin), &[])
        .await
        .expect("handshake");
    send_text(&mut ws, &auth_message(ticket)).await;
    assert_eq!(next_json(&mut ws).await["type"], "auth_ok");
    expect_ack(&mut ws).await;

    assert_eq!(
        plaintext_upgrade_status(addr_of(plain_url), origin).await,
        "HTTP/1.1 426 Upgrade Required"
    );
    served.stop().await;
}

#[tokio::test]
async fn weakened_tls_without_plain_listen_serves_plaintext_on_a_free_port_of_the_listen_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (served, target) = serve_with_target(dir.path(), &[os("--weaken"), os("tls")]).await;
    let plain_url = served
        .printed("plaintext listener (tls weakened: serves WebSocket upgrades) on ")
        .unwrap_or_else(|| panic!("no plaintext listener printed: {:?}", served.lines));
    assert!(plain_url.starts_with("ws://127.0.0.1:"), "{plain_url}");
    let doc = yaml(&target);
    assert_eq!(doc["plaintext_url"].as_str(), Some(plain_url));
    let origin = doc["origin"].as_str().expect("origin");
    assert_eq!(
        plaintext_upgrade_status(addr_of(plain_url), origin).await,
        "HTTP/1.1 101 Switching Protocols"
    );
    served.stop().await;
}

#[tokio::test]
async fn weakened_tls_cert_with_a_given_certificate_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let given = write_self_signed(dir.path());
    let (code, stderr) = serve_exit(&[
        os("--policy"),
        os("policies/reference-fast.yaml"),
        os("--listen"),
        os("127.0.0.1:0"),
        os("--weaken"),
        os("tls-cert"),
        os("--cert"),
        os(&given.cert),
        os("--key"),
        os(&given.key),
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--weaken tls-cert") && stderr.contains("--cert/--key"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_policy_with_two_controls_of_one_check_is_refused_with_its_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = fast_policy_text(&[]);
    // The second control's `check:` value, three lines into it.
    let line = text.lines().count() + 3;
    let path = dir.path().join("twice.yaml");
    std::fs::write(
        &path,
        format!(
            "{text}  - id: WS-MSG-09\n    title: Bigger\n    check: messages.max_size\n    with: {{ limit: 1MiB }}\n    severity: low\n"
        ),
    )
    .expect("write policy");
    let (code, stderr) =
        serve_exit(&[os("--policy"), os(&path), os("--listen"), os("127.0.0.1:0")]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!(
        "error: {}:{line}:12: control WS-MSG-09 repeats check `messages.max_size` of control WS-MSG-03",
        path.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
}
