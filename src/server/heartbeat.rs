//! Heartbeats: a ping every interval from the moment the connection opens, and termination
//! once `missed` pings in a row went unanswered. With `heartbeat` weakened the server never pings.

use std::time::Duration;

/// One connection's heartbeat bookkeeping.
#[derive(Debug)]
pub struct Heartbeat {
    /// Time between pings.
    pub interval: Duration,
    missed_max: u32,
    outstanding: u32,
    sent: u64,
}

/// What the connection does at a heartbeat tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// Send a ping with this payload.
    Ping(Vec<u8>),
    /// Too many pings went unanswered: terminate.
    Terminate,
}

impl Heartbeat {
    /// Pings every `interval`, terminating after `missed_max` unanswered pings.
    pub fn new(interval: Duration, missed_max: u32) -> Self {
        Self {
            interval,
            missed_max: missed_max.max(1),
            outstanding: 0,
            sent: 0,
        }
    }

    /// Called every interval, the first time as the connection opens.
    ///
    /// With the first ping at t=0, a client that never answers is terminated at
    /// `interval * missed_max`, the bound the policy states.
    pub fn tick(&mut self) -> Beat {
        if self.outstanding >= self.missed_max {
            return Beat::Terminate;
        }
        self.outstanding += 1;
        self.sent += 1;
        Beat::Ping(self.sent.to_be_bytes().to_vec())
    }

    /// A pong arrived: the client is alive.
    pub fn on_pong(&mut self) {
        self.outstanding = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminates_after_missed_pings_and_pongs_reset() {
        let mut hb = Heartbeat::new(Duration::from_millis(500), 2);
        assert!(matches!(hb.tick(), Beat::Ping(_)));
        assert!(matches!(hb.tick(), Beat::Ping(_)));
        hb.on_pong();
        assert!(matches!(hb.tick(), Beat::Ping(_)));
        assert!(matches!(hb.tick(), Beat::Ping(_)));
        assert_eq!(hb.tick(), Beat::Terminate);
    }
}
