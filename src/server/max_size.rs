//! Maximum message size, decided from the frame header before any payload is read, for single
//! frames, fragmented messages and inflated (permessage-deflate) messages. Close code 1009.
//! With `max-size` weakened the server buffers up to 100 MiB, like a careless default would;
//! with `deflate` weakened it negotiates compression even when the policy refuses it.

use flate2::{Decompress, FlushDecompress, Status};

use super::weaken::{Defence, Weakened};
use crate::config::policy::DeflatePolicy;

/// Whether to negotiate permessage-deflate for a handshake whose `Sec-WebSocket-Extensions`
/// headers are `offers`: only when the client offers it and the policy allows compression
/// (or `deflate` is weakened, as a server that ignores its policy would).
pub fn negotiate_deflate<'a>(
    policy: DeflatePolicy,
    offers: impl IntoIterator<Item = &'a str>,
    weakened: &Weakened,
) -> bool {
    (policy == DeflatePolicy::Allow || weakened.is(Defence::Deflate))
        && offers
            .into_iter()
            .flat_map(|v| v.split(','))
            .any(|ext| ext.split(';').next().map(str::trim) == Some("permessage-deflate"))
}

/// What a careless server buffers: the seed's "100MB message".
pub const CARELESS_LIMIT: usize = 100 * 1024 * 1024;

/// The effective message size limit.
pub fn effective_limit(policy_limit: usize, weakened: &Weakened) -> usize {
    if weakened.is(Defence::MaxSize) {
        CARELESS_LIMIT.max(policy_limit)
    } else {
        policy_limit
    }
}

/// Whether a frame declaring `declared` bytes, after `buffered` bytes of its message, fits.
pub fn fits(buffered: usize, declared: u64, limit: usize) -> bool {
    (buffered as u64).saturating_add(declared) <= limit as u64
}

/// Why inflating a compressed message failed.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The inflated message would exceed the limit (a deflate bomb): close 1009.
    TooBig,
    /// The payload is not valid DEFLATE data: close 1007.
    Corrupt,
}

/// Inflates one permessage-deflate message (no context takeover), stopping at `limit` bytes.
pub fn inflate_bounded(compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut input = compressed.to_vec();
    // RFC 7692 7.2.2: append the four bytes the sender removed.
    input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let mut inflater = Decompress::new(false);
    let mut out: Vec<u8> =
        Vec::with_capacity(compressed.len().saturating_mul(2).min(limit).min(64 * 1024));
    loop {
        if out.len() > limit {
            return Err(InflateError::TooBig);
        }
        // Grow in bounded steps: never more than one step past the limit.
        if out.capacity() - out.len() < 4096 {
            out.reserve(16 * 1024);
        }
        let consumed = inflater.total_in() as usize;
        let before = out.len();
        let status = inflater
            .decompress_vec(
                &input[consumed.min(input.len())..],
                &mut out,
                FlushDecompress::Sync,
            )
            .map_err(|_| InflateError::Corrupt)?;
        let progressed = out.len() > before || inflater.total_in() as usize > consumed;
        if status == Status::StreamEnd
            || (inflater.total_in() as usize >= input.len() && out.len() < out.capacity())
        {
            break;
        }
        if !progressed {
            break;
        }
    }
    if out.len() > limit {
        return Err(InflateError::TooBig);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    #[test]
    fn deflate_is_negotiated_only_when_allowed_unless_weakened() {
        let offer = ["x-other, permessage-deflate; client_max_window_bits"];
        let none = Weakened::none();
        assert!(negotiate_deflate(DeflatePolicy::Allow, offer, &none));
        assert!(!negotiate_deflate(DeflatePolicy::Refuse, offer, &none));
        assert!(!negotiate_deflate(DeflatePolicy::Allow, ["x-other"], &none));
        let weak = Weakened::of([Defence::Deflate]);
        assert!(negotiate_deflate(DeflatePolicy::Refuse, offer, &weak));
        assert!(!negotiate_deflate(DeflatePolicy::Refuse, [], &weak));
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(data.len() + 64);
        let _ = c.compress_vec(data, &mut out, FlushCompress::Sync);
        out.truncate(out.len().saturating_sub(4));
        out
    }

    #[test]
    fn bombs_stop_at_the_limit_and_small_messages_round_trip() {
        let small = deflate(b"{\"type\":\"payment\"}");
        assert_eq!(
            inflate_bounded(&small, 1024).as_deref(),
            Ok(&b"{\"type\":\"payment\"}"[..])
        );
        let bomb = deflate(&vec![b'a'; 10 << 20]);
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(inflate_bounded(&bomb, 64 * 1024), Err(InflateError::TooBig));
        assert_eq!(
            inflate_bounded(&[0xff, 0xff, 0xff], 1024),
            Err(InflateError::Corrupt)
        );
        assert!(fits(10, 20, 30) && !fits(10, u64::MAX, 30));
    }
}
