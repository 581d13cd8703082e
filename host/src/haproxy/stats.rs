//! Counters of the HAProxy driver: reloads, validations, batches, changes, file writes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// The driver's counters.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Snapshot>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Confirmed reloads.
    pub reloads: u64,
    /// Reloads that HAProxy failed or that showed no new worker.
    pub reloads_failed: u64,
    /// Renders refused by `haproxy -c` (the old config kept serving).
    pub validations_failed: u64,
    /// Applies that deferred their reload to coalesce a burst.
    pub reloads_deferred: u64,
    /// Runtime API batches sent (one connection each).
    pub batches: u64,
    /// Runtime API commands sent.
    pub commands: u64,
    /// Server changes applied, by verb.
    pub applied: BTreeMap<&'static str, u64>,
    /// Server changes that failed, by verb.
    pub failed: BTreeMap<&'static str, u64>,
    /// Domain map changes applied, by verb (`add`, `set`, `reset`, `remove`).
    pub domains_applied: BTreeMap<&'static str, u64>,
    /// Domain map changes that failed, by verb.
    pub domains_failed: BTreeMap<&'static str, u64>,
    /// Refusals reported (from the plan or from HAProxy).
    pub refusals: u64,
    /// Failed writes of the connector's files, by file: `config` (the
    /// managed config), `candidate` (a render for `haproxy -c`), `map`,
    /// `state` (a server-state shard).
    pub writes_failed: BTreeMap<&'static str, u64>,
    /// The files whose last write failed, with the cause; each keeps its
    /// old contents until a write succeeds.
    pub unwritten: BTreeMap<PathBuf, String>,
    /// Removals sent again because sessions still held the server.
    pub removal_retries: u64,
}

impl Stats {
    /// Updates the counters.
    pub(super) fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.inner.lock() {
            f(&mut s);
        }
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
