//! Retry timing as a value: exponential back-off with jitter, and the
//! error policy that turns a failure into an [`Action`].

use super::error::Error;
use std::time::Duration;

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

    /// The delay after a failure that only an operator can fix (`Permission
    /// denied`): the cap, jittered, so a wrong token costs Nomad one request
    /// per `max` at most.
    pub fn next_delay_at_cap(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.jitter(self.max)
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets past failures (after a stream that stayed up).
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

/// The action after `error`.
pub fn error_policy(error: &Error, backoff: &mut Backoff) -> Action {
    if error.is_permission_denied() {
        Action::RetryAfter(backoff.next_delay_at_cap())
    } else {
        Action::RetryAfter(backoff.next_delay())
    }
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
        let mut b = Backoff::with_seed(MS, 10_000 * MS, 1);
        let delays: Vec<_> = (0..20).map(|_| b.next_delay_at_cap()).collect();
        assert!(delays.iter().all(|d| *d >= 5000 * MS && *d <= 10_000 * MS));
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn permission_denied_waits_the_cap() {
        let mut b = Backoff::with_seed(10 * MS, 60_000 * MS, 3);
        let denied = Error::from_status("GET /v1/services".into(), 403, "Permission denied");
        let Action::RetryAfter(d) = error_policy(&denied, &mut b) else {
            panic!("must wait")
        };
        assert!(d >= 30_000 * MS);
        let other = Error::from_status("x".into(), 500, "No cluster leader");
        b.reset();
        assert!(matches!(error_policy(&other, &mut b), Action::RetryAfter(d) if d <= 10 * MS));
    }
}
