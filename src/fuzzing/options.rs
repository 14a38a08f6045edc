//! How a live fuzzing run is carried out: its options, derived from the policy where it states
//! a rate or size limit.

use std::time::Duration;

use crate::config::LoadedPolicy;
use crate::config::policy::CheckParams;

/// Messages per second when neither `--rate` nor a policy rate limit says otherwise.
pub const DEFAULT_RATE: f64 = 10.0;
/// Largest fuzzed message when the policy states no size limit.
pub const DEFAULT_MAX_LEN: usize = 32 * 1024;
/// How a live fuzzing run is carried out.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    /// How long to fuzz (batches in progress finish their current case, then the health check).
    pub duration: Duration,
    /// The seed every case derives from.
    pub seed: u64,
    /// Business messages per second, kept under the target's rate limit.
    pub rate: f64,
    /// Cases per batch; a health check follows each batch.
    pub batch_size: u64,
    /// Run only this batch (reproduces a finding), whatever the duration.
    pub replay_batch: Option<u64>,
    /// Stop after this many findings.
    pub max_findings: usize,
    /// After a fenced case, how long to wait for the fence's pong or a close before it is a hang.
    pub hang_after: Duration,
    /// Largest generated message in bytes.
    pub max_len: usize,
    /// How to rerun this fuzzing (`wsaudit fuzz --target ... --policy ...`), for reproduce lines.
    pub command: String,
}

impl FuzzOptions {
    /// Options derived from the policy (when given): half its rate limit, messages below its
    /// size limit; the rest at their defaults.
    pub fn for_policy(policy: Option<&LoadedPolicy>, seed: u64, command: String) -> Self {
        let mut rate = DEFAULT_RATE;
        let mut max_len = DEFAULT_MAX_LEN;
        for p in policy.map(|p| p.params.as_slice()).unwrap_or_default() {
            match p {
                CheckParams::RateLimit(r) => rate = (f64::from(r.max_per_second) / 2.0).max(0.5),
                CheckParams::MaxSize(m) => {
                    max_len = m.limit.as_usize().saturating_sub(64).clamp(64, 256 * 1024)
                }
                _ => {}
            }
        }
        Self {
            duration: Duration::from_secs(60),
            seed,
            rate,
            batch_size: 25,
            replay_batch: None,
            max_findings: 20,
            hang_after: crate::attacks::runtime::DEFAULT_REPLY_WAIT,
            max_len,
            command,
        }
    }
}
