//! Partitions for sharded CI runs (`K/N`): each case belongs to exactly one of N shares, decided
//! by a hash of its ID that is the same on every machine, every release and every run.

use std::fmt;
use std::str::FromStr;

use ring::digest::{SHA256, digest};

/// SHA-256 of `parts`, each followed by a NUL byte so `("ab", "c")` and `("a", "bc")` differ.
///
/// Used wherever a hash must never change between releases (partitions, SARIF fingerprints);
/// Rust's `DefaultHasher` makes no such promise.
pub fn stable_digest(parts: &[&str]) -> [u8; 32] {
    let mut input = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        input.extend_from_slice(part.as_bytes());
        input.push(0);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, &input).as_ref());
    out
}

/// [`stable_digest`] as lower-case hex, for identifiers written into reports.
pub fn stable_hex(parts: &[&str]) -> String {
    stable_digest(parts)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `case_id` falls in share `k` (1-based) of `n`; false when `k`/`n` is not a valid
/// partition (see [`Partition`] for parsing with errors).
pub fn in_partition(case_id: &str, k: u32, n: u32) -> bool {
    if n == 0 || k == 0 || k > n {
        return false;
    }
    let d = stable_digest(&[case_id]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first) % u64::from(n) == u64::from(k - 1)
}

/// One share `K/N` of a sharded run, with `1 <= K <= N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// Which share, 1-based.
    pub k: u32,
    /// How many shares in all.
    pub n: u32,
}

impl Partition {
    /// Whether a case belongs to this share.
    pub fn contains(&self, case_id: &str) -> bool {
        in_partition(case_id, self.k, self.n)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// Why a `K/N` partition string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// No `/` between the two numbers.
    #[error("invalid partition {0:?}: expected K/N, e.g. 1/4")]
    Shape(String),
    /// K or N is not a whole number.
    #[error("invalid partition {input:?}: {part} must be a whole number, got {value:?}")]
    Number {
        /// The whole input.
        input: String,
        /// `K` or `N`.
        part: &'static str,
        /// What stood there.
        value: String,
    },
    /// K or N out of range.
    #[error("invalid partition {0:?}: expected 1 <= K <= N")]
    Range(String),
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (k, n) = input
            .trim()
            .split_once('/')
            .ok_or_else(|| PartitionError::Shape(input.into()))?;
        let number = |part: &'static str, value: &str| {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| PartitionError::Number {
                    input: input.into(),
                    part,
                    value: value.into(),
                })
        };
        let (k, n) = (number("K", k)?, number("N", n)?);
        if k == 0 || k > n {
            return Err(PartitionError::Range(input.into()));
        }
        Ok(Self { k, n })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_k_of_n_with_clear_errors() {
        assert_eq!("2/5".parse(), Ok(Partition { k: 2, n: 5 }));
        assert_eq!(" 1 / 1 ".parse(), Ok(Partition { k: 1, n: 1 }));
        let err = |s: &str| s.parse::<Partition>().expect_err(s).to_string();
        assert_eq!(err("3"), "invalid partition \"3\": expected K/N, e.g. 1/4");
        assert!(err("a/4").contains("K must be a whole number"));
        assert!(err("1/-4").contains("N must be a whole number"));
        assert!(err("0/4").contains("expected 1 <= K <= N"));
        assert!(err("5/4").contains("expected 1 <= K <= N"));
        assert!(err("0/0").contains("expected 1 <= K <= N"));
        assert_eq!(Partition { k: 2, n: 5 }.to_string(), "2/5");
    }

    #[test]
    fn invalid_shares_contain_nothing() {
        assert!(!in_partition("x", 0, 3));
        assert!(!in_partition("x", 4, 3));
        assert!(!in_partition("x", 1, 0));
        assert!(in_partition("x", 1, 1));
    }

    #[test]
    fn hash_is_pinned() {
        // Pinned so a change of hash (which would reshuffle every sharded pipeline) is noticed.
        assert_eq!(
            stable_hex(&["origin.null"]),
            "0aca3e666868725df4d1187e52d0946d6ff5331dfb33f5316846f02d4db7a7f4"
        );
        let shares: Vec<u32> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|id| (1..=4).find(|&k| in_partition(id, k, 4)).unwrap_or(0))
            .collect();
        assert_eq!(shares, PINNED_SHARES);
    }

    /// Shares of `a`..`f` among 4, recorded once; see `hash_is_pinned`.
    const PINNED_SHARES: [u32; 6] = [1, 4, 1, 1, 4, 4];

    #[test]
    fn shares_are_roughly_even() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let id = format!("family.case-{i}");
            for (k, count) in counts.iter_mut().enumerate() {
                if in_partition(&id, k as u32 + 1, 4) {
                    *count += 1;
                }
            }
        }
        assert_eq!(counts.iter().sum::<usize>(), 4000);
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    proptest! {
        #[test]
        fn every_case_is_in_exactly_one_share(case_id in "\\PC{0,40}", n in 1u32..64) {
            let shares = (1..=n).filter(|&k| in_partition(&case_id, k, n)).count();
            prop_assert_eq!(shares, 1);
        }
    }
}
