//! Reference server message defences: schema validation, text rules, rate limit, maximum size
//! (declared frames, fragments, deflate bombs).

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

const SCHEMA_VIOLATIONS: &[&str] = &[
    r#"{"type":"payment","amount":12.5,"reference":"TX-123456"}"#,
    r#"{"type":"payment","amount":"12.5","reference":"TX-123456","currency":"USD"}"#,
    r#"{"type":"payment","amount":-1,"reference":"TX-123456","currency":"USD"}"#,
    r#"{"type":"payment","amount":1e12,"reference":"TX-123456","currency":"USD"}"#,
    r#"{"type":"payment","amount":12.5,"reference":"DROP TABLE","currency":"USD"}"#,
    r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"XXX"}"#,
    r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD","admin":true}"#,
    r#"{"type":"refund","amount":12.5,"reference":"TX-123456","currency":"USD"}"#,
    r#"[1,2,3]"#,
];

#[tokio::test]
async fn malformed_and_invalid_messages_get_errors_and_the_connection_stays_usable() {
    let srv = start("").await;
    let mut ws = srv.authed().await;
    send_text(&mut ws, r#"{"type":"payment","amount":"#).await;
    assert_eq!(next_json(&mut ws).await["reason"], "malformed_json");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    send_text(&mut ws, &deep).await;
    assert_eq!(next_json(&mut ws).await["type"], "error");
    for bad in SCHEMA_VIOLATIONS {
        send_text(&mut ws, bad).await;
        let reply = next_json(&mut ws).await;
        assert_eq!(reply["type"], "error", "{bad} -> {reply}");
        assert_eq!(reply["reason"], "schema", "{bad} -> {reply}");
    }
    expect_ack(&mut ws).await;
}

#[tokio::test]
async fn weakened_schema_acks_invalid_messages_and_ignores_garbage() {
    let srv = start("schema").await;
    let mut ws = srv.authed().await;
    for bad in SCHEMA_VIOLATIONS {
        send_text(&mut ws, bad).await;
        assert_eq!(next_json(&mut ws).await["type"], "ack", "{bad}");
    }
    send_text(&mut ws, "{not json").await;
    assert_eq!(
        next_seen(&mut ws, Duration::from_millis(300)).await,
        Seen::Silence
    );
}

#[tokio::test]
async fn binary_closes_1003_and_invalid_utf8_closes_1007_unless_schema_is_weakened() {
    let full = start("").await;
    let mut ws = full.authed().await;
    send_binary(&mut ws, VALID_PAYMENT.as_bytes()).await;
    expect_close(&mut ws, 1003).await;

    let mut ws = full.authed().await;
    let invalid = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(invalid)).await.expect("send");
    expect_close(&mut ws, 1007).await;

    let weak = start("schema").await;
    let mut ws = weak.authed().await;
    send_binary(&mut ws, VALID_PAYMENT.as_bytes()).await;
    assert_eq!(next_json(&mut ws).await["type"], "ack");
    let invalid = Frame::message(vec![b'{', b'}', 0xff], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(invalid)).await.expect("send");
    expect_ack(&mut ws).await;
}

#[tokio::test]
async fn one_bad_client_does_not_hurt_another() {
    let srv = start("").await;
    let mut good = srv.authed().await;
    let mut bad = srv.authed().await;
    send_text(&mut bad, "}}}").await;
    bad.send(Message::binary(vec![0u8; 10]))
        .await
        .expect("send");
    expect_ack(&mut good).await;
}

/// Queues `n` valid payments and sends them in one go.
async fn flood(ws: &mut Ws, n: usize) {
    for _ in 0..n {
        ws.feed(Message::text(VALID_PAYMENT)).await.expect("feed");
    }
    ws.flush().await.expect("flush");
}

/// reference-fast allows 50 messages/s with a burst of 50.
const RATE: u32 = 50;

#[tokio::test]
async fn flood_gets_a_warning_then_close_1008() {
    let srv = start("").await;
    // The bucket starts full when the connection opens, later than this, and refills at RATE:
    // over `t` seconds the server can allow at most RATE + RATE * t messages, the auth message
    // among them. Measured here, `t` can only come out longer, so load cannot break the bound.
    let started = std::time::Instant::now();
    let mut ws = srv.authed().await;
    flood(&mut ws, 200).await;
    let mut acks = 0;
    let mut warned = false;
    loop {
        match next_seen(&mut ws, STEP).await {
            Seen::Json(v) if v["type"] == "ack" => acks += 1,
            Seen::Json(v) if v["type"] == "warning" => {
                assert_eq!(v["reason"], "rate_limit");
                warned = true;
            }
            Seen::Close(code) => {
                assert_eq!(code, Some(1008));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(warned, "no warning before the close");
    let elapsed = started.elapsed().as_secs_f64();
    // RATE - 1 + RATE * t, plus one token of slack for the limiter's own clock.
    let most = RATE + (f64::from(RATE) * elapsed).ceil() as u32;
    // The burst, less the token the auth message took, is always allowed.
    assert!(
        (RATE - 1..=most).contains(&acks),
        "acks before the limit: {acks}, allowed {}..={most} in {elapsed:.2}s",
        RATE - 1
    );
}

#[tokio::test]
async fn traffic_under_the_limit_is_untouched() {
    let srv = start("").await;
    let mut ws = srv.authed().await;
    // 30 messages at 25/s: half the limit.
    for _ in 0..30 {
        expect_ack(&mut ws).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test]
async fn weakened_rate_limit_never_warns_or_closes() {
    let srv = start("rate-limit").await;
    let mut ws = srv.authed().await;
    flood(&mut ws, 200).await;
    for _ in 0..200 {
        assert_eq!(next_json(&mut ws).await["type"], "ack");
    }
}

/// Writes a binary frame header declaring `declared` bytes, then streams zeros from a small
/// buffer until `send` bytes went out or the server stops reading.
async fn declare_and_stream(raw: &mut Raw, declared: u64, send: usize) -> usize {
    let mut header = raw_frame(0x82, &[], true);
    // Rewrite the length: 127 marker + 8-byte length, then the mask.
    header.truncate(1);
    header.push(0x80 | 127);
    header.extend_from_slice(&declared.to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    raw.send(&header).await;
    let chunk = vec![0u8; 16 * 1024];
    let mut sent = 0;
    while sent < send {
        match tokio::time::timeout(Duration::from_secs(2), raw.io.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
    sent
}

#[tokio::test]
async fn declared_100_mib_frame_is_closed_1009_from_the_header() {
    let srv = start("").await;
    let mut raw = Raw::authed(&srv).await;
    // Send only the header: the server must decide without any payload.
    declare_and_stream(&mut raw, 100 << 20, 0).await;
    assert_eq!(raw.close_code(STEP).await, Some(1009));
    // And for someone else, the server is fine.
    let mut ws = srv.authed().await;
    expect_ack(&mut ws).await;
}

#[tokio::test]
async fn fragmented_message_over_the_limit_is_closed_1009() {
    let srv = start("").await;
    let mut raw = Raw::authed(&srv).await;
    let part = vec![b' '; 40 * 1024];
    raw.send(&raw_frame(0x01, &part, true)).await; // text, not final
    raw.send(&raw_frame(0x00, &part, true)).await; // continuation: 80 KiB > 64 KiB
    assert_eq!(raw.close_code(STEP).await, Some(1009));
}

#[tokio::test]
async fn message_just_under_the_limit_is_accepted() {
    let srv = start("").await;
    let mut ws = srv.authed().await;
    // 64 KiB limit: a JSON document of 64 KiB - 16 bytes, padded with spaces.
    let mut text = VALID_PAYMENT.to_string();
    text.push_str(&" ".repeat(64 * 1024 - 16 - text.len()));
    send_text(&mut ws, &text).await;
    assert_eq!(next_json(&mut ws).await["type"], "ack");
}

#[tokio::test]
async fn weakened_max_size_buffers_large_messages() {
    let srv = start("max-size").await;
    let mut raw = Raw::authed(&srv).await;
    let mut text = VALID_PAYMENT.to_string();
    text.push_str(&" ".repeat(1 << 20));
    raw.send(&raw_frame(0x81, text.as_bytes(), true)).await;
    assert!(
        text_reply(&mut raw).await.contains("ack"),
        "weakened server should have answered"
    );
}

/// The next text frame, skipping pings; empty when the connection ended first.
async fn text_reply(raw: &mut Raw) -> String {
    loop {
        match raw.next(STEP).await {
            RawEvent::Frame { opcode: 1, payload } => {
                return String::from_utf8_lossy(&payload).into_owned();
            }
            RawEvent::Frame { .. } => continue,
            _ => return String::new(),
        }
    }
}

fn deflate_raw(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    loop {
        let before = c.total_in() as usize;
        c.compress_vec(&data[before..], &mut out, FlushCompress::Sync)
            .expect("compress");
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(64 * 1024);
    }
    out.truncate(out.len() - 4);
    out
}

async fn deflate_session(srv: &Srv) -> (Raw, String) {
    let (ticket, _) = srv.ticket().await;
    let (mut raw, head) =
        Raw::connect(srv, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
    raw.send(&raw_frame(0x81, auth_message(&ticket).as_bytes(), true))
        .await;
    loop {
        if let RawEvent::Frame { opcode: 1, .. } = raw.next(STEP).await {
            return (raw, head);
        }
    }
}

#[tokio::test]
async fn deflate_bomb_is_closed_1009_while_small_compressed_messages_work() {
    let srv = start("").await;
    let (mut raw, head) = deflate_session(&srv).await;
    assert!(
        head.to_ascii_lowercase().contains("permessage-deflate"),
        "{head}"
    );
    // RSV1 + FIN + text: a compressed payment is acknowledged.
    raw.send(&raw_frame(
        0xC1,
        &deflate_raw(VALID_PAYMENT.as_bytes()),
        true,
    ))
    .await;
    assert!(
        text_reply(&mut raw).await.contains("ack"),
        "no ack for a compressed message"
    );
    // 10 MiB of spaces compress to about 10 KiB: well under the 64 KiB limit on the wire.
    let bomb = deflate_raw(&vec![b' '; 10 << 20]);
    assert!(bomb.len() < 64 * 1024);
    raw.send(&raw_frame(0xC1, &bomb, true)).await;
    assert_eq!(raw.close_code(STEP).await, Some(1009));

    let weak = start("max-size").await;
    let (mut raw, _) = deflate_session(&weak).await;
    let mut text = VALID_PAYMENT.to_string();
    text.push_str(&" ".repeat(10 << 20));
    raw.send(&raw_frame(0xC1, &deflate_raw(text.as_bytes()), true))
        .await;
    assert!(
        text_reply(&mut raw).await.contains("ack"),
        "weakened server should inflate the whole bomb"
    );
}

#[tokio::test]
async fn deflate_is_refused_when_the_policy_refuses_it() {
    let srv = start_with(policy("fintech.yaml"), "").await;
    let (_raw, head) = Raw::connect(&srv, "Sec-WebSocket-Extensions: permessage-deflate\r\n").await;
    assert!(
        !head.to_ascii_lowercase().contains("permessage-deflate"),
        "{head}"
    );
}

/// The server coalesces the replies of a pipelined burst into one write: every message is still
/// answered, and a reply queued behind a frame that needs no answer (an unsolicited pong) is
/// written before the server waits for more input, not held until the next message.
#[tokio::test]
async fn a_pipelined_burst_is_answered_in_full_without_more_input() {
    let srv = start("").await;
    let mut raw = Raw::authed(&srv).await;
    let mut burst = Vec::new();
    for _ in 0..5 {
        burst.extend(raw_frame(0x81, VALID_PAYMENT.as_bytes(), true));
    }
    burst.extend(raw_frame(0x8A, b"", true));
    raw.send(&burst).await;
    let mut acks = 0;
    while acks < 5 {
        match raw.next(Duration::from_secs(10)).await {
            RawEvent::Frame { opcode: 1, payload } => {
                let reply: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
                assert_eq!(reply["type"], "ack", "reply {reply}");
                acks += 1;
            }
            RawEvent::Frame { opcode: 9, .. } => {}
            RawEvent::Frame { opcode, .. } => panic!("after {acks} acks: frame opcode {opcode}"),
            RawEvent::Ended => panic!("after {acks} acks: the connection ended"),
            RawEvent::Silence => panic!("after {acks} acks: silence (a reply was held back)"),
        }
    }
}
