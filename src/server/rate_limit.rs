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
    limiter: DefaultDirectRateLimiter,
    warn_first: bool,
    warned: bool,
}

impl ConnectionRate {
    /// A bucket refilling `max_per_second` tokens a second, holding as many.
    pub fn new(params: &RateLimitParams) -> Self {
        let per_second = NonZeroU32::new(params.max_per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::direct(Quota::per_second(per_second)),
            warn_first: params.warn_first,
            warned: false,
        }
    }

    /// Takes a token for one message.
    pub fn on_message(&mut self) -> RateDecision {
        if self.limiter.check().is_ok() {
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
