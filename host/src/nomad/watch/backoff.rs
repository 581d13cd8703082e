//! Retry timing as a value: exponential back-off with jitter, the error
//! policy that turns a failure into an [`Action`], and how often a failure
//! that repeats is logged.

use crate::nomad::error::Error;
use std::time::Duration;
use tokio::time::Instant;

/// A failure that goes on is logged again this often (at most).
pub const LOG_REPEAT_EVERY: Duration = Duration::from_secs(60);

/// What the watcher's loop does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Go on at once.
    Continue,
    /// Wait this long, then go on.
    RetryAfter(Duration),
}

/// Exponential back-off: `min · 2^failures`, capped at `max`, each delay
/// drawn uniformly from its upper half ("equal jitter") so that many
/// connectors restarted together do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A back-off between `min` and `max` (`max` is raised to `min` if below).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff::with_rng(min, max, fastrand::Rng::new())
    }

    /// The same with a seeded generator (tests, benches).
    pub fn with_seed(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff::with_rng(min, max, fastrand::Rng::with_seed(seed))
    }

    fn with_rng(min: Duration, max: Duration, rng: fastrand::Rng) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
            rng,
        }
    }

    /// The delay after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = 2u32.saturating_pow(self.failures.min(31));
        let base = self.min.saturating_mul(exp).min(self.max);
        self.failures = self.failures.saturating_add(1);
        self.jitter(base)
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets past failures (after a successful list, or a stream that
    /// delivered its first heartbeat or frame).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The most a delay can be.
    pub fn max(&self) -> Duration {
        self.max
    }

    fn jitter(&mut self, base: Duration) -> Duration {
        let half = base / 2;
        let spread = u64::try_from((base - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.rng.u64(0..=spread))
    }
}

/// Decides whether a failure is logged as a warning: a new message at once,
/// the same message again once [`LOG_REPEAT_EVERY`] has passed (so a
/// failure that lasts shows once a minute, not on every retry).
#[derive(Debug, Clone, Default)]
pub struct RepeatLog {
    last: Option<(String, Instant)>,
}

impl RepeatLog {
    /// Whether `message`, failing at `now`, is logged as a warning (else
    /// at debug level).
    pub fn should_log(&mut self, message: &str, now: Instant) -> bool {
        let due = match &self.last {
            Some((last, at)) if last == message => now.duration_since(*at) >= LOG_REPEAT_EVERY,
            _ => true,
        };
        if due {
            self.last = Some((message.to_string(), now));
        }
        due
    }
}

/// The action after `error`: every failure waits the next back-off delay.
///
/// `Permission denied` is no exception: an operator who fixes the token or
/// its policy wants it noticed within seconds, and doubling from
/// `backoff_min` up to `backoff_max` costs Nomad as little as waiting the
/// cap each time once the failure has lasted a minute or two.
pub fn error_policy(_error: &Error, backoff: &mut Backoff) -> Action {
    Action::RetryAfter(backoff.next_delay())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_should_double_within_jitter_and_stop_at_the_cap() {
        let mut b = Backoff::with_seed(100 * MS, 1000 * MS, 7);
        let bases = [100, 200, 400, 800, 1000, 1000, 1000];
        for base in bases {
            let d = b.next_delay();
            assert!(
                d >= base * MS / 2 && d <= base * MS,
                "{d:?} vs base {base}ms"
            );
        }
        b.reset();
        assert!(b.next_delay() <= 100 * MS);
    }

    #[test]
    fn backoff_should_jitter() {
        let mut b = Backoff::with_seed(10_000 * MS, 10_000 * MS, 1);
        let delays: Vec<_> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d >= 5000 * MS && *d <= 10_000 * MS));
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn a_repeated_failure_is_logged_once_a_minute_a_new_one_at_once() {
        let mut log = RepeatLog::default();
        let t0 = Instant::now();
        assert!(log.should_log("denied", t0));
        assert!(!log.should_log("denied", t0 + LOG_REPEAT_EVERY / 2));
        assert!(!log.should_log("denied", t0 + LOG_REPEAT_EVERY - MS));
        assert!(log.should_log("denied", t0 + LOG_REPEAT_EVERY));
        assert!(log.should_log("refused", t0 + LOG_REPEAT_EVERY + MS));
        assert!(log.should_log("denied", t0 + LOG_REPEAT_EVERY + 2 * MS));
    }

    #[test]
    fn permission_denied_doubles_from_the_floor_like_any_failure() {
        let mut b = Backoff::with_seed(10 * MS, 60_000 * MS, 3);
        let denied = Error::from_status("GET /v1/services".into(), 403, "Permission denied");
        let delays: Vec<_> = (0..3)
            .map(|_| match error_policy(&denied, &mut b) {
                Action::RetryAfter(d) => d,
                Action::Continue => panic!("a failure must wait"),
            })
            .collect();
        for (n, d) in delays.iter().enumerate() {
            let base = 10 * MS * 2u32.pow(n as u32);
            assert!(*d >= base / 2 && *d <= base, "retry {n}: {d:?}");
        }
    }
}
