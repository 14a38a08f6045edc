//! The cargo-fuzz seed corpora (`fuzz/seeds/<target>/`), replayed through every harness on every
//! `cargo test`, so the seeds and the invariants never rot even where libFuzzer does not run.
//!
//! `cargo test --test fuzz_seeds -- --ignored` regenerates them: the shipped policies, suites
//! and targets, synthetic frames and messages, and traffic recorded from the reference server
//! (tickets and session ids blanked). A crashing input found by `cargo fuzz` belongs in the
//! target's seed folder too, where it stays as a regression test.

use std::path::{Path, PathBuf};

use wsaudit::fuzzing::alloc::{CappedAlloc, DEFAULT_CAP};
use wsaudit::fuzzing::targets::TARGETS;

/// The replay runs under the same allocation cap as the fuzzers.
#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc::new(DEFAULT_CAP);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seeds(target: &str) -> PathBuf {
    root().join("fuzz/seeds").join(target)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_seed_passes_its_target() {
    for (name, harness) in TARGETS {
        let found = files(&seeds(name));
        assert!(found.len() >= 3, "{name}: only {} seeds", found.len());
        for f in found {
            let bytes = std::fs::read(&f).expect("seed readable");
            harness(&bytes);
        }
    }
}

#[test]
fn every_target_is_a_cargo_fuzz_binary() {
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).expect("fuzz manifest");
    for (name, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} missing from fuzz/Cargo.toml"
        );
        let src = root().join(format!("fuzz/fuzz_targets/{name}.rs"));
        let text = std::fs::read_to_string(&src).expect("target source");
        assert!(
            text.contains(&format!("target!({name})")),
            "{}",
            src.display()
        );
    }
    let smoke = std::fs::read_to_string(root().join("fuzz/smoke.sh")).expect("smoke script");
    assert!(
        smoke.contains("fuzz_targets"),
        "smoke.sh must run every target"
    );
}

mod regenerate {
    use super::*;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wsaudit::client::conn::opcode;
    use wsaudit::client::handshake::open_stream;
    use wsaudit::client::{Deadline, FrameSpec, Mask, UpgradeRequest};
    use wsaudit::config::{LoadedPolicy, LoadedTarget};
    use wsaudit::fuzzing::targets::FUZZ_KEY;
    use wsaudit::server::{self, ServerOptions, Weakened};

    const VALID: &str =
        r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;

    fn write(target: &str, name: &str, bytes: &[u8]) {
        let dir = seeds(target);
        std::fs::create_dir_all(&dir).expect("seed folder");
        std::fs::write(dir.join(name), bytes).expect("seed written");
    }

    fn frame(op: u8, payload: &[u8]) -> FrameSpec {
        FrameSpec::new(op, payload.to_vec()).mask(Mask::Fixed([0x37, 0xfa, 0x21, 0x3d]))
    }

    fn shipped_files() {
        for dir in [
            "policies",
            "suites",
            "tests/compile_data",
            "tests/bad_files",
        ] {
            for f in files(&root().join(dir)) {
                let ok = f.extension().is_some_and(|e| e == "yaml");
                if let (true, Some(name)) = (ok, f.file_name().and_then(|n| n.to_str())) {
                    let text = std::fs::read(&f).expect("shipped file");
                    write(
                        "config_load",
                        &format!("{}-{name}", dir.replace('/', "-")),
                        &text,
                    );
                }
            }
        }
    }

    fn structured_bytes() {
        // Arbitrary-driven targets read any bytes; a spread of lengths and values starts them.
        for (i, len) in [0usize, 8, 64, 256, 1024].iter().enumerate() {
            let bytes: Vec<u8> = (0..*len).map(|j| (j * 31 + i * 7) as u8).collect();
            write("plan_compile", &format!("spread-{len}"), &bytes);
            write("server_handshake", &format!("spread-{len}"), &bytes);
        }
        let policy = std::fs::read(root().join("policies/reference-fast.yaml")).expect("policy");
        write("plan_compile", "reference-fast-bytes", &policy);
    }

    fn client_frames() {
        let mut seeds: Vec<(&str, u8, Vec<u8>)> = vec![
            (
                "valid-text",
                0b1000,
                frame(opcode::TEXT, VALID.as_bytes()).encode(),
            ),
            ("ping", 0b1000, frame(opcode::PING, b"hb").encode()),
            (
                "close-1000",
                0b1000,
                frame(opcode::CLOSE, &[0x03, 0xE8]).encode(),
            ),
            (
                "close-1005",
                0b1000,
                frame(opcode::CLOSE, &[0x03, 0xED]).encode(),
            ),
            ("reserved-opcode", 0b1000, frame(0x3, b"x").encode()),
            (
                "unmasked",
                0b1000,
                FrameSpec::text(VALID).mask(Mask::Unmasked).encode(),
            ),
            (
                "rsv2",
                0b1000,
                frame(opcode::TEXT, b"{}").rsv(false, true, false).encode(),
            ),
            (
                "over-limit-header",
                0b0100,
                frame(opcode::BINARY, b"").declaring(100 << 20).encode(),
            ),
            ("lax-reserved", 0b1001, frame(0xB, b"r").encode()),
        ];
        let mut fragmented = frame(opcode::TEXT, b"{\"type\":").fin(false).encode();
        fragmented.extend(frame(opcode::PING, b"p").encode());
        fragmented.extend(frame(opcode::CONTINUATION, b"\"payment\"}").encode());
        seeds.push(("fragmented", 0b1000, fragmented));
        // A permessage-deflate message (no context takeover), and a small bomb.
        for (name, data) in [
            ("deflate", VALID.as_bytes().to_vec()),
            ("deflate-bomb", vec![b'a'; 200_000]),
        ] {
            let mut c = flate2::Compress::new(flate2::Compression::best(), false);
            let mut out = Vec::with_capacity(data.len() + 64);
            let _ = c.compress_vec(&data, &mut out, flate2::FlushCompress::Sync);
            out.truncate(out.len().saturating_sub(4));
            seeds.push((
                name,
                0b1010,
                frame(opcode::TEXT, &out).rsv(true, false, false).encode(),
            ));
        }
        for (name, cfg, bytes) in seeds {
            let mut input = vec![cfg];
            input.extend(bytes);
            write("server_frames", name, &input);
        }
    }

    fn messages() {
        // Every message the shipped suites send against the reference policy is a seed.
        let policy =
            LoadedPolicy::load(&root().join("policies/reference-fast.yaml")).expect("policy");
        let suites = wsaudit::config::SuiteSet::builtin().expect("suites");
        let target = wsaudit::plan::sample_target().expect("sample target");
        let plan = wsaudit::plan::compile(&policy, &target, &suites).expect("plan");
        let mut n = 0;
        for case in &plan.cases {
            for step in &case.steps {
                let wsaudit::plan::Step::Send(send) = step else {
                    continue;
                };
                let (flags, payload) = match (&send.text, &send.json, &send.binary) {
                    (Some(t), _, _) => (0u8, t.as_bytes().to_vec()),
                    (_, Some(j), _) => (0, j.to_string().into_bytes()),
                    (_, _, Some(b)) => (1, b.0.clone()),
                    _ => continue,
                };
                n += 1;
                write(
                    "server_messages",
                    &format!("suite-{n}"),
                    &[&[flags][..], &payload].concat(),
                );
            }
        }
        for (name, flags, payload) in [
            ("valid", 0u8, VALID.as_bytes().to_vec()),
            ("valid-lax", 2, VALID.as_bytes().to_vec()),
            ("binary", 1, VALID.as_bytes().to_vec()),
            ("malformed", 0, b"{\"type\":".to_vec()),
            ("invalid-utf8", 0, b"{\"type\":\"\xff\"}".to_vec()),
            (
                "auth",
                4,
                b"{\"type\":\"auth\",\"ticket\":\"forged\"}".to_vec(),
            ),
            ("deep", 0, [&[b'['; 200][..], &[b']'; 200][..]].concat()),
            ("rate", 0xfb, vec![b' '; 64]),
        ] {
            write("server_messages", name, &[&[flags][..], &payload].concat());
        }
    }

    /// Replaces every occurrence of `secret` with as many `x`: same lengths, no secret.
    fn blank(bytes: &mut [u8], secret: &str) {
        let s = secret.as_bytes();
        if s.is_empty() {
            return;
        }
        let mut i = 0;
        while i + s.len() <= bytes.len() {
            if &bytes[i..i + s.len()] == s {
                bytes[i..i + s.len()].fill(b'x');
                i += s.len();
            } else {
                i += 1;
            }
        }
    }

    /// Reads whatever arrives until `quiet` passes without a byte.
    async fn read_quiet<S: tokio::io::AsyncRead + Unpin>(s: &mut S, quiet: Duration) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout(quiet, s.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Records the raw bytes the reference server sends: the ticket endpoint's response, and a
    /// whole WebSocket session (101, auth_ok, ack, error, a heartbeat ping, close 1003).
    async fn recorded() {
        wsaudit::crypto::install_crypto_provider();
        let policy =
            LoadedPolicy::load(&root().join("policies/reference-fast.yaml")).expect("policy");
        let mut opts = ServerOptions::local(policy);
        opts.weakened = Weakened::none();
        let srv = server::start(opts).await.expect("server");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.yaml");
        srv.write_target(&path).expect("target");
        let target = LoadedTarget::load(&path).expect("target loads");
        let rt = wsaudit::attacks::TargetRuntime::new(&target).expect("runtime");
        let deadline = Deadline::after(Duration::from_secs(10));
        let mut secrets = vec![srv.api_token.clone()];

        // The ticket endpoint, raw.
        let url = url::Url::parse(&srv.ticket_url()).expect("url");
        let (mut s, _) = open_stream(&url, &rt.tls, &deadline).await.expect("tls");
        let req = format!(
            "POST /ws/ticket HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            url.host_str().unwrap_or("127.0.0.1"),
            srv.api_token
        );
        s.write_all(req.as_bytes()).await.expect("request");
        let mut ticket_response = read_quiet(&mut s, Duration::from_millis(500)).await;
        let text = String::from_utf8_lossy(&ticket_response).into_owned();
        let ticket = text
            .split("\"ticket\":\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap_or("")
            .to_string();
        let session = text
            .split("wsaudit_session=")
            .nth(1)
            .and_then(|t| t.split(';').next())
            .unwrap_or("")
            .to_string();
        secrets.extend([ticket.clone(), session.clone()]);

        // A WebSocket session, raw, with the fuzzers' fixed key.
        let up = UpgradeRequest::new(&srv.ws_url())
            .expect("url")
            .set_header("Sec-WebSocket-Key", FUZZ_KEY)
            .origin(b"https://app.example.com".to_vec())
            .cookie(&format!("wsaudit_session={session}"));
        let (mut ws, _) = open_stream(up.url(), &rt.tls, &deadline)
            .await
            .expect("tls");
        ws.write_all(&up.to_bytes()).await.expect("upgrade");
        let mut session_bytes = read_quiet(&mut ws, Duration::from_millis(200)).await;
        for msg in [
            format!(r#"{{"type":"auth","ticket":"{ticket}"}}"#),
            VALID.to_string(),
            r#"{"type":"payment","amount":-1}"#.to_string(),
            "{".to_string(),
        ] {
            ws.write_all(&frame(opcode::TEXT, msg.as_bytes()).encode())
                .await
                .expect("send");
            session_bytes.extend(read_quiet(&mut ws, Duration::from_millis(200)).await);
        }
        // The heartbeat pings (500 ms) arrive unanswered; then a binary message closes 1003.
        session_bytes.extend(read_quiet(&mut ws, Duration::from_millis(700)).await);
        ws.write_all(&frame(opcode::BINARY, b"bin").encode())
            .await
            .expect("send");
        session_bytes.extend(read_quiet(&mut ws, Duration::from_millis(500)).await);
        for s in &secrets {
            blank(&mut ticket_response, s);
            blank(&mut session_bytes, s);
        }
        assert!(
            session_bytes.starts_with(b"HTTP/1.1 101"),
            "{:?}",
            String::from_utf8_lossy(&session_bytes)
        );
        write(
            "harness_parse",
            "recorded-ticket-response",
            &ticket_response,
        );
        write("harness_frames", "recorded-session", &session_bytes);
        let head_end = session_bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |i| i + 4);
        write(
            "harness_parse",
            "recorded-101-head",
            &session_bytes[..head_end],
        );
        write(
            "harness_parse",
            "recorded-frames",
            &session_bytes[head_end..],
        );
        // Each recorded server frame on its own: close payloads, JSON replies, headers.
        let mut rest = &session_bytes[head_end..];
        let mut n = 0;
        while let Some(h) = wsaudit::wire::parse_header(rest) {
            let end = h.header_len + usize::try_from(h.length).unwrap_or(0);
            if end > rest.len() {
                break;
            }
            n += 1;
            write(
                "harness_parse",
                &format!("recorded-frame-{n}"),
                &rest[..end],
            );
            write(
                "harness_parse",
                &format!("recorded-payload-{n}"),
                &rest[h.header_len..end],
            );
            rest = &rest[end..];
        }
        // A refused handshake, recorded: a foreign origin gets 403.
        let refused = UpgradeRequest::new(&srv.ws_url())
            .expect("url")
            .origin(b"https://evil.example".to_vec());
        let (mut ws, _) = open_stream(refused.url(), &rt.tls, &deadline)
            .await
            .expect("tls");
        ws.write_all(&refused.to_bytes()).await.expect("upgrade");
        let bytes = read_quiet(&mut ws, Duration::from_millis(300)).await;
        write("harness_parse", "recorded-403", &bytes);
        write("harness_frames", "recorded-403", &bytes);
    }

    #[tokio::test]
    #[ignore = "rewrites fuzz/seeds; run by hand after changing what the targets read"]
    async fn regenerate_seeds() {
        shipped_files();
        structured_bytes();
        client_frames();
        messages();
        recorded().await;
        // Hand-made server answers: a 101 with the right accept and frames, and odd heads.
        let accept = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let mut huge = accept.as_bytes().to_vec();
        huge.extend([0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        write("harness_frames", "claims-2-63", &huge);
        let mut frag = accept.as_bytes().to_vec();
        frag.extend([
            0x01, 0x02, b'{', b'"', 0x80, 0x01, b'}', 0x88, 0x02, 0x03, 0xF1,
        ]);
        write("harness_frames", "fragmented-then-close", &frag);
        write(
            "harness_parse",
            "set-cookie",
            b"wsaudit_session=abc; Path=/; Secure; HttpOnly; SameSite=Strict",
        );
        write(
            "harness_parse",
            "ack",
            br#"{"type":"ack","reference":"TX-123456"}"#,
        );
        write("harness_parse", "close-invalid-utf8", &[0x03, 0xE8, 0xFF]);
    }
}
