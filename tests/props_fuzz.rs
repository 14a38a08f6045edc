//! The fuzz targets' invariants as proptest properties, so `cargo test` checks them on every
//! run: random bytes through every harness, and structured inputs (frames, origins, payments)
//! that reach deeper than random bytes do. Runs under the fuzzers' allocation cap.

use proptest::prelude::*;
use serde_json::json;

use wsaudit::client::{FrameSpec, Mask};
use wsaudit::fuzzing::alloc::{CappedAlloc, DEFAULT_CAP};
use wsaudit::fuzzing::mutate::Mutator;
use wsaudit::fuzzing::oracle::{Oracle, Validity};
use wsaudit::fuzzing::rng::Rng;
use wsaudit::fuzzing::targets;
use wsaudit::server::origin;
use wsaudit::server::{Defence, Weakened};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc::new(DEFAULT_CAP);

const VALID: &str = r#"{"type":"payment","amount":12.5,"reference":"TX-123456","currency":"USD"}"#;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// One client frame with every bit chosen, masked or not, possibly lying about its length.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(0u8),
            Just(1),
            Just(2),
            Just(8),
            Just(9),
            Just(10),
            0u8..16
        ],
        any::<bool>(),
        any::<(bool, bool, bool)>(),
        any::<bool>(),
        prop_oneof![
            Just(VALID.as_bytes().to_vec()),
            Just(vec![0x03, 0xE8]),
            bytes(200)
        ],
        prop::option::of(prop_oneof![
            Just(0u64),
            Just(126),
            Just(65536),
            any::<u64>()
        ]),
    )
        .prop_map(|(op, fin, (r1, r2, r3), masked, payload, declared)| {
            let mut f = FrameSpec::new(op, payload)
                .fin(fin)
                .rsv(r1, r2, r3)
                .mask(if masked {
                    Mask::Fixed([1, 2, 3, 4])
                } else {
                    Mask::Unmasked
                });
            if let Some(d) = declared {
                f = f.declaring(d);
            }
            f.encode()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_hold_every_invariant(data in bytes(2048)) {
        for (name, harness) in targets::TARGETS {
            // The async client target is the slowest; random bytes rarely get past its 101.
            if *name != "harness_frames" {
                harness(&data);
            }
        }
    }

    #[test]
    fn client_frame_sequences_hold_the_server_frame_invariants(
        cfg in any::<u8>(),
        frames in prop::collection::vec(frame(), 0..6),
    ) {
        let mut input = vec![cfg];
        input.extend(frames.concat());
        targets::server_frames(&input);
    }

    #[test]
    fn server_answers_hold_the_client_invariants(
        status in prop_oneof![Just("101 Switching Protocols"), Just("403 Forbidden"), Just("200 OK")],
        accept in prop_oneof![Just("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), Just("wrong")],
        frames in prop::collection::vec(frame(), 0..5),
    ) {
        let mut input = format!(
            "HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nContent-Length: 5\r\n\r\n"
        )
        .into_bytes();
        input.extend(frames.concat());
        targets::harness_frames(&input);
    }

    #[test]
    fn an_accepted_origin_is_byte_equal_to_an_allowed_one(
        which in 0usize..2,
        prefix in "[a-zA-Z.:/]{0,3}",
        suffix in "[a-zA-Z0-9.:/-]{0,12}",
        upper in any::<bool>(),
    ) {
        let allowed = ["https://app.example.com", "http://localhost:8080"];
        let params = wsaudit::config::policy::OriginParams {
            allowed: allowed.iter().map(|o| o.parse().expect("origin")).collect(),
            missing_origin: wsaudit::config::policy::MissingOrigin::Reject,
            status: None,
        };
        let mut header = format!("{prefix}{}{suffix}", allowed[which]);
        if upper {
            header = header.to_uppercase();
        }
        let ok = origin::check(Some(header.as_bytes()), Some(&params), &Weakened::none()).is_ok();
        prop_assert_eq!(ok, allowed.contains(&header.as_str()), "{}", header);
        // The weakened server accepts it all: the property is about the defence, not the input.
        prop_assert!(origin::check(Some(header.as_bytes()), Some(&params), &Weakened::of([Defence::Origin])).is_ok());
    }

    #[test]
    fn an_acknowledged_payment_is_valid(
        amount in prop_oneof![any::<f64>().prop_map(|f| json!(f)), any::<i64>().prop_map(|i| json!(i)), Just(json!("12.5")), Just(json!(null))],
        reference in prop_oneof!["TX-[0-9]{6}", "TX-[0-9０-９]{6}", "\\PC{0,10}"],
        currency in prop_oneof![Just("USD"), Just("usd"), Just("EUR "), Just("NGN")],
        extra in any::<bool>(),
        lax in any::<bool>(),
    ) {
        let mut msg = json!({"type": "payment", "amount": amount, "reference": reference, "currency": currency});
        if extra {
            msg["note"] = json!("x");
        }
        let flags = if lax { 2u8 } else { 0 };
        targets::server_messages(&[&[flags][..], msg.to_string().as_bytes()].concat());
    }

    #[test]
    fn live_cases_reproduce_from_their_seed_and_respect_the_size_bound(
        seed in any::<u64>(),
        batch in 0u64..1000,
        index in 0u64..100,
        max_len in 64usize..8192,
    ) {
        let m = Mutator::new(&[VALID.to_string()], max_len);
        let a = m.case(&mut Rng::for_case(seed, batch, index));
        let b = m.case(&mut Rng::for_case(seed, batch, index));
        prop_assert_eq!(a.wire_bytes(), b.wire_bytes());
        prop_assert!(!a.frames.is_empty());
        if let Some(d) = &a.delivered {
            prop_assert!(d.bytes.len() <= max_len.max(64), "{}: {} B", a.name, d.bytes.len());
            // The oracle decides every generated message without panicking.
            let schema = json!({"type": "object", "required": ["type"]});
            let o = Oracle::new(Some(&schema), &[VALID.to_string()]).expect("schema");
            let v = o.judge(d);
            if !d.text {
                prop_assert!(matches!(v, Validity::Invalid(_)));
            }
        }
    }
}
