//! Per-connection token bucket (governor): the first excess message gets a warning, continued
//! excess closes with 1008. With `rate-limit` weakened there is no limit.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::policy::RateLimitParams;

/// What to do with one incoming data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Under the limit: process it.
    Allow,
    /// First excess: drop it and send a warning.
    Warn,
    /// Continued excess: close with 1008.
    Close,
}

/// One connection's limiter.
pub struct ConnectionRate {
    limiter: Limiter,
    warn_first: bool,
    warned: bool,
}

/// How messages are counted.
enum Limiter {
    /// A token bucket holding and refilling the limit each second.
    Bucket(DefaultDirectRateLimiter),
    /// Flaw `rate-fixed-window`: a count per window of one second, the first window starting at
    /// the connection's first message.
    FixedWindow {
        limit: u32,
        start: Option<std::time::Instant>,
        count: u32,
    },
}

impl Limiter {
    fn allow(&mut self) -> bool {
        match self {
            Limiter::Bucket(b) => b.check().is_ok(),
            Limiter::FixedWindow {
                limit,
                start,
                count,
            } => {
                let now = std::time::Instant::now();
                match start {
                    Some(s) if now.duration_since(*s) < std::time::Duration::from_secs(1) => {}
                    _ => {
                        *start = Some(now);
                        *count = 0;
                    }
                }
                *count += 1;
                *count <= *limit
            }
        }
    }
}

impl ConnectionRate {
    /// A bucket refilling `max_per_second` tokens a second, holding as many.
    pub fn new(params: &RateLimitParams) -> Self {
        Self::with_flaws(params, &super::flaw::Flaws::none())
    }

    /// [`ConnectionRate::new`] as a flawed server builds it: flaw `rate-loose` enforces three
    /// times the limit, `rate-fixed-window` counts per fixed window instead of a bucket.
    pub fn with_flaws(params: &RateLimitParams, flaws: &super::flaw::Flaws) -> Self {
        use super::flaw::Flaw;
        let limit = if flaws.is(Flaw::RateLoose) {
            params.max_per_second.saturating_mul(3)
        } else {
            params.max_per_second
        };
        let limiter = if flaws.is(Flaw::RateFixedWindow) {
            Limiter::FixedWindow {
                limit,
                start: None,
                count: 0,
            }
        } else {
            let per_second = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
            Limiter::Bucket(RateLimiter::direct(Quota::per_second(per_second)))
        };
        Self {
            limiter,
            warn_first: params.warn_first,
            warned: false,
        }
    }

    /// Takes a token for one message.
    pub fn on_message(&mut self) -> RateDecision {
        if self.limiter.allow() {
            return RateDecision::Allow;
        }
        if self.warn_first && !self.warned {
            self.warned = true;
            RateDecision::Warn
        } else {
            RateDecision::Close
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_then_closes() {
        let mut r = ConnectionRate::new(&RateLimitParams {
            max_per_second: 5,
            warn_first: true,
        });
        let decisions: Vec<_> = (0..7).map(|_| r.on_message()).collect();
        assert_eq!(&decisions[..5], &[RateDecision::Allow; 5]);
        assert_eq!(decisions[5], RateDecision::Warn);
        assert_eq!(decisions[6], RateDecision::Close);
    }
}
