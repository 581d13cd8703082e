//! Injected faults (canned failures, delays) and per-path request counters.

use std::collections::BTreeMap;
use std::time::Duration;

/// A canned failure for a path prefix.
#[derive(Debug, Clone)]
struct Failure {
    prefix: String,
    status: u16,
    body: String,
    remaining: Option<usize>,
}

/// Faults and counters.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    failures: Vec<Failure>,
    delays: BTreeMap<String, Duration>,
    counts: BTreeMap<String, u64>,
}

impl Faults {
    /// Adds a failure (`count` None = until cleared).
    pub(crate) fn add_failure(
        &mut self,
        prefix: &str,
        status: u16,
        body: &str,
        count: Option<usize>,
    ) {
        if count == Some(0) {
            return;
        }
        self.failures.push(Failure {
            prefix: prefix.to_string(),
            status,
            body: body.to_string(),
            remaining: count,
        });
    }

    /// Sets (or with zero removes) a delay.
    pub(crate) fn set_delay(&mut self, prefix: &str, d: Duration) {
        if d.is_zero() {
            self.delays.remove(prefix);
        } else {
            self.delays.insert(prefix.to_string(), d);
        }
    }

    /// Removes failures and delays (counters stay).
    pub(crate) fn clear(&mut self) {
        self.failures.clear();
        self.delays.clear();
    }

    /// Counts a request for `path`.
    pub(crate) fn count(&mut self, path: &str) {
        *self.counts.entry(path.to_string()).or_default() += 1;
    }

    /// Requests whose path starts with `prefix`.
    pub(crate) fn count_prefix(&self, prefix: &str) -> u64 {
        self.counts
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests whose path is exactly `path` (no query string).
    pub(crate) fn count_exact(&self, path: &str) -> u64 {
        self.counts.get(path).copied().unwrap_or(0)
    }

    /// All counters.
    pub(crate) fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// The delay for `path` (longest matching prefix).
    pub(crate) fn delay_for(&self, path: &str) -> Option<Duration> {
        self.delays
            .iter()
            .filter(|(p, _)| path.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, d)| *d)
    }

    /// Takes one use of the first failure matching `path`.
    pub(crate) fn take_failure(&mut self, path: &str) -> Option<(u16, String)> {
        let i = self
            .failures
            .iter()
            .position(|f| path.starts_with(&f.prefix))?;
        let f = &mut self.failures[i];
        let out = (f.status, f.body.clone());
        if let Some(n) = f.remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                self.failures.remove(i);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_failures_expire() {
        let mut f = Faults::default();
        f.add_failure("/v1/job/", 500, "boom", Some(2));
        assert_eq!(f.take_failure("/v1/job/x"), Some((500, "boom".into())));
        assert_eq!(f.take_failure("/v1/services"), None);
        assert!(f.take_failure("/v1/job/x").is_some());
        assert_eq!(f.take_failure("/v1/job/x"), None);
    }

    #[test]
    fn counts_by_prefix() {
        let mut f = Faults::default();
        f.count("/v1/job/a");
        f.count("/v1/job/b/versions");
        f.count("/v1/jobs");
        assert_eq!(f.count_prefix("/v1/job/"), 2);
        assert_eq!(f.count_prefix("/v1/job"), 3);
        assert_eq!(f.count_exact("/v1/job/a"), 1);
        assert_eq!(f.count_exact("/v1/job/b"), 0);
    }
}
