//! A permessage-deflate bomb as a hostile server sends it: one text frame (RSV1 set) whose
//! payload inflates to `mib` MiB of spaces, in about a kilobyte per MiB. Shared by the hostile
//! targets (tests/hostile) and the harness benchmark.

use wsaudit::client::deflate::Deflater;
use wsaudit::wire::{Data, OpCode, encode_frame, header};

/// What a sync flush ends with (and permessage-deflate strips from a message's end).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The frame. Compressing `mib` MiB would take a debug build seconds: once the window is all
/// spaces, each further MiB compresses to the same bytes, so that segment is repeated.
pub fn frame(mib: usize) -> Vec<u8> {
    let mut d = Deflater::new();
    let spaces = vec![b' '; 1 << 20];
    let (first, second, third) = (d.message(&spaces), d.message(&spaces), d.message(&spaces));
    assert_eq!(second, third, "the steady-state segment repeats");
    let mut payload = first;
    for _ in 1..mib {
        payload.extend_from_slice(&TAIL);
        payload.extend_from_slice(&second);
    }
    let mut h = header(OpCode::Data(Data::Text), None);
    h.rsv1 = true;
    let mut out = Vec::with_capacity(payload.len() + 10);
    encode_frame(&mut out, &h, &payload);
    out
}
