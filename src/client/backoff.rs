//! Reconnect delays: exponential backoff with full jitter.
//!
//! Attempt `n` (1-based) waits a uniformly random time in `[0, min(cap, base·2^(n-1))]`.
//! Full jitter spreads the reconnects of many clients cut off at once (a server restart)
//! over the whole window instead of having them return in synchronized waves.

use std::time::Duration;

/// First ceiling: short enough that a blip costs little.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Largest ceiling: a client of a server that is down retries at least this often.
pub const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// How long to wait before each reconnect attempt, and how many attempts to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Consecutive failed attempts before the client gives up; `None`: never.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: BACKOFF_BASE, cap: BACKOFF_CAP, max_attempts: None }
    }
}

impl Backoff {
    /// The upper bound of attempt `attempt`'s delay (attempt 0 counts as 1).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << doublings).min(self.cap)
    }

    /// A delay drawn uniformly from `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.u64(0..=ceiling))
    }

    /// Whether the client may make attempt `attempt`.
    pub fn allows(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempt <= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(2), max_attempts: Some(6) }
    }

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = backoff();
        let ceilings: Vec<u128> = (1..=8).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(b.ceiling(0), b.ceiling(1));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2), "no overflow on absurd attempts");
    }

    #[test]
    fn delays_are_full_jitter_and_reproducible_with_a_seed() {
        let b = backoff();
        let schedule = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (1..=8).map(|n| b.delay(n, &mut rng)).collect::<Vec<_>>()
        };
        let first = schedule(7);
        assert_eq!(first, schedule(7), "same seed, same schedule");
        assert_ne!(first, schedule(8), "another seed, another schedule");
        for (n, d) in (1..=8).zip(&first) {
            assert!(*d <= b.ceiling(n), "attempt {n}: {d:?} within its ceiling");
        }
        // Full jitter: uniform over the whole window, so the mean is near half the ceiling
        // and both ends of the window are reached.
        let mut rng = fastrand::Rng::with_seed(1);
        let samples: Vec<u128> = (0..10_000).map(|_| b.delay(3, &mut rng).as_millis()).collect();
        let mean = samples.iter().sum::<u128>() / samples.len() as u128;
        assert!((180..=220).contains(&mean), "mean {mean} ms ≈ 400/2");
        assert!(samples.iter().any(|&d| d < 20) && samples.iter().any(|&d| d > 380));
    }

    #[test]
    fn attempts_are_bounded_when_asked() {
        let b = backoff();
        assert!(b.allows(6) && !b.allows(7));
        assert!(Backoff::default().allows(u32::MAX));
    }
}
