//! `[verdicts]`: the disagreement monitor's settings.

use serde::Deserialize;
use std::time::Duration;

/// `[verdicts]`: comparing Nomad's check results with HAProxy's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Compare at all. Default true. It never changes routing; off saves
    /// its Nomad requests.
    pub enabled: bool,
    /// Every compared allocation's results are read this often, in seconds,
    /// besides the reads a state change of HAProxy's makes. Default 300 (5
    /// minutes): 12 reads an hour per allocation. Shorter finds a
    /// disagreement that began without a state change in HAProxy (Nomad
    /// started failing while HAProxy stays UP) sooner, at one request per
    /// allocation per sweep.
    pub sweep_interval_secs: u64,
    /// At most this many check reads per second, sweep and state changes
    /// together. Default 10: a sweep of 1,000 allocations takes 100 s; a
    /// sweep that cannot finish within its interval stretches (an
    /// allocation is never queued twice).
    pub max_requests_per_second: u32,
    /// HAProxy's server states (`show stat`) are read this often, in
    /// milliseconds, to see UP↔DOWN changes. Default 5000. Each read is one
    /// stats-socket command whose answer grows with the servers.
    pub haproxy_poll_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            sweep_interval_secs: 300,
            max_requests_per_second: 10,
            haproxy_poll_ms: 5_000,
        }
    }
}

impl Config {
    /// The sweep interval.
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs(self.sweep_interval_secs.max(1))
    }

    /// The gap between two check reads.
    pub fn request_gap(&self) -> Duration {
        Duration::from_secs(1) / self.max_requests_per_second.max(1)
    }

    /// How often HAProxy is read.
    pub fn haproxy_poll(&self) -> Duration {
        Duration::from_millis(self.haproxy_poll_ms.max(100))
    }

    /// The first unusable value: its key and why.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.sweep_interval_secs == 0 {
            return Some(("verdicts.sweep_interval_secs", "must be at least 1"));
        }
        if self.max_requests_per_second == 0 {
            return Some(("verdicts.max_requests_per_second", "must be at least 1"));
        }
        if self.haproxy_poll_ms < 100 {
            return Some(("verdicts.haproxy_poll_ms", "must be at least 100"));
        }
        None
    }
}
