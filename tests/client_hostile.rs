//! The client against hostile or broken peers on 127.0.0.1: wrong accept keys, absurd frame
//! lengths, garbage, silence, endless headers, redirect loops and giant bodies must all end in
//! typed errors or bounded events, within their deadlines, without a panic.

#[path = "fixtures/closed_port.rs"]
mod closed_port;

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsaudit::client::conn::Event;
use wsaudit::client::handshake::{BODY_PREFIX, MAX_HEAD};
use wsaudit::client::http::{HttpClient, HttpOptions, HttpRequestSpec};
use wsaudit::client::tls::{TlsClient, TlsOptions};
use wsaudit::client::{ClientError, Connection, Phase, UpgradeRequest, connect};

/// A guard against hangs, not a timing assertion.
const GUARD: Duration = Duration::from_secs(20);
/// A short budget for cases that are meant to time out.
const SHORT: Duration = Duration::from_millis(300);

fn tls() -> TlsClient {
    wsaudit::crypto::install_crypto_provider();
    TlsClient::new(&TlsOptions::default()).expect("TLS client")
}

/// Reads one request head (bounded); `None` at end of stream.
async fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match s.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// The accept key for the request's `Sec-WebSocket-Key`.
fn accept_for(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(request);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("request has a key");
    tungstenite::handshake::derive_accept_key(key.trim().as_bytes())
}

fn switching(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// Serves every connection with `behave(stream, request)`; returns the port.
async fn hostile<F, Fut>(behave: F) -> u16
where
    F: Fn(TcpStream, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let behave = std::sync::Arc::new(behave);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let behave = behave.clone();
            tokio::spawn(async move {
                if let Some(req) = read_request(&mut s).await {
                    behave(s, req).await;
                }
            });
        }
    });
    port
}

fn ws(port: u16) -> UpgradeRequest {
    UpgradeRequest::new(&format!("ws://127.0.0.1:{port}/ws"))
        .expect("ws url")
        .origin("https://app.example.com")
}

/// A connection upgraded by the hostile server on `port`.
async fn upgraded(port: u16) -> Connection {
    connect(&ws(port), &tls(), GUARD)
        .await
        .expect("handshake")
        .into_connection()
        .expect("upgraded")
}

/// Keeps a connection open without answering, until the test ends.
async fn hold(s: TcpStream) {
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop(s);
}

#[tokio::test]
async fn a_wrong_accept_key_is_a_typed_error() {
    let port = hostile(|mut s, _| async move {
        let _ = s.write_all(&switching("d3Jvbmcga2V5")).await;
        hold(s).await;
    })
    .await;
    match connect(&ws(port), &tls(), GUARD).await {
        Err(ClientError::BadAccept { got, .. }) => assert_eq!(got.as_deref(), Some("d3Jvbmcga2V5")),
        other => panic!("expected BadAccept, got {other:?}"),
    }
}

#[tokio::test]
async fn a_frame_declaring_2_pow_63_minus_1_bytes_is_skipped_not_allocated() {
    let port = hostile(|mut s, req| async move {
        let mut out = switching(&accept_for(&req));
        out.extend_from_slice(&[0x82, 0x7F]);
        out.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        out.extend_from_slice(b"a few bytes");
        let _ = s.write_all(&out).await;
        hold(s).await;
    })
    .await;
    let mut conn = upgraded(port).await;
    assert_eq!(
        conn.read_event(GUARD).await,
        Event::Skipped {
            opcode: 2,
            declared_len: u64::MAX >> 1,
            reason: "larger than the client's read cap"
        }
    );
    assert_eq!(conn.read_event(SHORT).await, Event::Timeout);
}

#[tokio::test]
async fn a_length_with_its_top_bit_set_fails_the_connection() {
    let port = hostile(|mut s, req| async move {
        let mut out = switching(&accept_for(&req));
        out.extend_from_slice(&[0x82, 0x7F]);
        out.extend_from_slice(&(1u64 << 63).to_be_bytes());
        let _ = s.write_all(&out).await;
        hold(s).await;
    })
    .await;
    let mut conn = upgraded(port).await;
    match conn.read_event(GUARD).await {
        Event::Violation(v) => {
            assert_eq!(v.rule, "RFC 6455 §5.2");
            assert!(v.what.contains("most significant bit"), "{v}");
        }
        other => panic!("expected a violation, got {other:?}"),
    }
    assert!(conn.has_ended());
}

#[tokio::test]
async fn a_101_a_browser_refuses_is_a_typed_violation() {
    for (broken, named) in [
        ("Upgrade: websocket\r\n", "Upgrade: websocket"),
        ("Connection: Upgrade\r\n", "Connection: Upgrade"),
    ] {
        let port = hostile(move |mut s, req| async move {
            let out = String::from_utf8(switching(&accept_for(&req)))
                .expect("ascii")
                .replace(broken, "");
            let _ = s.write_all(out.as_bytes()).await;
            hold(s).await;
        })
        .await;
        match connect(&ws(port), &tls(), GUARD).await {
            Err(ClientError::Violation(v)) => {
                assert_eq!(v.rule, "RFC 6455 §4.1");
                assert!(v.what.contains(named), "{v}");
            }
            other => panic!("expected a violation naming {named}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn frames_sent_with_the_101_are_all_kept() {
    let port = hostile(|mut s, req| async move {
        // More than one read buffer's worth of frames in the same write as the head.
        let mut out = switching(&accept_for(&req));
        for i in 0..20u8 {
            out.extend_from_slice(&[0x81, 0x7E, 0x04, 0x00]);
            out.extend(std::iter::repeat_n(b'a' + i, 1024));
        }
        let _ = s.write_all(&out).await;
        hold(s).await;
    })
    .await;
    let mut conn = upgraded(port).await;
    for i in 0..20u8 {
        match conn.read_event(GUARD).await {
            Event::Text(t) => assert!(
                t.len() == 1024 && t.bytes().all(|b| b == b'a' + i),
                "frame {i}: {} B starting {:?}",
                t.len(),
                t.get(..8)
            ),
            other => panic!("frame {i}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn garbage_after_the_upgrade_ends_in_an_event() {
    let port = hostile(|mut s, req| async move {
        let mut out = switching(&accept_for(&req));
        out.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let _ = s.write_all(&out).await;
    })
    .await;
    let mut conn = upgraded(port).await;
    let observed = conn.wait_for_close(GUARD).await;
    assert!(observed.end.is_end(), "{observed:?}");
}

#[tokio::test]
async fn garbage_instead_of_http_is_a_malformed_response() {
    let port = hostile(|mut s, _| async move {
        let _ = s
            .write_all(b"\x16\x03\x01\x00\xffnot http at all\r\n\r\n")
            .await;
        hold(s).await;
    })
    .await;
    assert!(matches!(
        connect(&ws(port), &tls(), GUARD).await,
        Err(ClientError::MalformedResponse { .. })
    ));
}

#[tokio::test]
async fn silence_times_out_at_the_response_step() {
    let port = hostile(|s, _| hold(s)).await;
    assert_eq!(
        connect(&ws(port), &tls(), SHORT).await.map(|_| ()),
        Err(ClientError::Timeout {
            step: Phase::ReadResponse,
            budget: SHORT
        })
    );
}

#[tokio::test]
async fn endless_headers_hit_the_head_bound() {
    let port = hostile(|mut s, _| async move {
        let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\n").await;
        for i in 0..10_000 {
            if s.write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    })
    .await;
    match connect(&ws(port), &tls(), GUARD).await {
        Err(ClientError::HeadTooLarge { limit }) => assert_eq!(limit, MAX_HEAD),
        // httparse may count headers first.
        Err(ClientError::MalformedResponse { reason }) => assert!(reason.contains("headers")),
        other => panic!("expected a bounded head, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refusal_claiming_a_1_gb_body_keeps_only_a_prefix() {
    let port = hostile(|mut s, _| async move {
        let _ = s
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 1000000000\r\n\r\n")
            .await;
        let _ = s.write_all(&vec![b'n'; 64 * 1024]).await;
        hold(s).await;
    })
    .await;
    let hs = connect(&ws(port), &tls(), GUARD)
        .await
        .expect("an HTTP answer");
    assert_eq!(hs.response.status, 403);
    assert_eq!(hs.response.body_prefix.len(), BODY_PREFIX);
    assert!(hs.connection.is_none());
}

#[tokio::test]
async fn a_closed_port_is_a_refused_connection() {
    let closed = closed_port::ClosedPort::reserve();
    assert!(matches!(
        connect(&ws(closed.port()), &tls(), GUARD).await,
        Err(ClientError::ConnectRefused { .. })
    ));
}

#[tokio::test]
async fn an_unresolvable_name_fails_at_resolution() {
    let req = UpgradeRequest::new("wss://wsaudit-test.invalid/ws").expect("ws url");
    match connect(&req, &tls(), Duration::from_secs(5)).await {
        Err(ClientError::Resolve { host, .. }) => assert_eq!(host, "wsaudit-test.invalid"),
        Err(ClientError::Timeout {
            step: Phase::Resolve,
            ..
        }) => {}
        other => panic!("expected a resolution failure, got {other:?}"),
    }
}

/// Serves plain HTTP: `respond(request_head)` gives each response; connections stay open.
async fn http_server<F>(respond: F) -> u16
where
    F: Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
{
    let respond = std::sync::Arc::new(respond);
    hostile(move |mut s, first| {
        let respond = respond.clone();
        async move {
            let mut req = Some(first);
            while let Some(r) = req {
                if s.write_all(&respond(&r)).await.is_err() {
                    return;
                }
                req = read_request(&mut s).await;
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_redirect_loop_ends_with_a_clear_error() {
    let port = http_server(|_| {
        b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_vec()
    })
    .await;
    let http = HttpClient::new(&tls(), HttpOptions::default()).expect("HTTP client");
    let spec = HttpRequestSpec::new("POST", &format!("http://127.0.0.1:{port}/ws/ticket"));
    match http.fetch_ticket(&spec, "/ticket", GUARD).await {
        Err(ClientError::Http { reason, .. }) => assert!(reason.contains("redirect"), "{reason}"),
        other => panic!("expected a redirect error, got {other:?}"),
    }
}

#[tokio::test]
async fn giant_bodies_are_cut_at_the_limit() {
    let port = http_server(|_| {
        let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 3145728\r\n\r\n".to_vec();
        r.extend(std::iter::repeat_n(b'z', 3 << 20));
        r
    })
    .await;
    let options = HttpOptions {
        body_limit: 100_000,
        ..HttpOptions::default()
    };
    let http = HttpClient::new(&tls(), options).expect("HTTP client");
    let spec = HttpRequestSpec::new("GET", &format!("http://127.0.0.1:{port}/"));
    let resp = http.send(&spec, GUARD).await.expect("response");
    assert_eq!(resp.body.len(), 100_000);
    assert!(resp.body_truncated);
}

#[tokio::test]
async fn a_silent_ticket_endpoint_times_out_and_errors_hide_secrets() {
    let port = hostile(|s, _| hold(s)).await;
    let http = HttpClient::new(&tls(), HttpOptions::default()).expect("HTTP client");
    let spec = HttpRequestSpec::new("POST", &format!("http://127.0.0.1:{port}/t?token=QSECRET"))
        .header("Authorization", "Bearer HSECRET");
    let err = http
        .fetch_ticket(&spec, "/ticket", SHORT)
        .await
        .expect_err("timeout");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");

    // An endpoint echoing the credential back in an error body.
    let port = http_server(|req| {
        let body = String::from_utf8_lossy(req).into_owned();
        format!(
            "HTTP/1.1 500 Oops\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
    .await;
    let spec = HttpRequestSpec::new("POST", &format!("http://127.0.0.1:{port}/t?token=QSECRET"))
        .header("Authorization", "Bearer HSECRET")
        .secret("QSECRET");
    let err = http
        .fetch_ticket(&spec, "/ticket", GUARD)
        .await
        .expect_err("500");
    let text = format!("{err} {err:?}");
    assert!(
        matches!(err, ClientError::HttpStatus { status: 500, .. }),
        "{text}"
    );
    assert!(
        !text.contains("HSECRET") && !text.contains("QSECRET"),
        "{text}"
    );

    // A ticket body without the ticket names keys, never values.
    let port = http_server(|_| {
        let body = r#"{"token":"VSECRET","ok":true}"#;
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
    .await;
    let spec = HttpRequestSpec::new("POST", &format!("http://127.0.0.1:{port}/t"));
    let err = http
        .fetch_ticket(&spec, "/ticket", GUARD)
        .await
        .expect_err("missing");
    let text = err.to_string();
    assert!(
        text.contains("token") && !text.contains("VSECRET"),
        "{text}"
    );
}
