//! Counters of the mapping engine: calls, plugin errors and fallbacks.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counters, keyed by plugin label or check type and by cause.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Snapshot>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Calls per plugin label (an input that failed within the failure
    /// TTL is answered from memory, without a call).
    pub calls: BTreeMap<String, u64>,
    /// Fuel burned per plugin label, over all its calls (a call that ran
    /// out counts its whole budget).
    pub fuel: BTreeMap<String, u64>,
    /// Failed calls per (plugin label, cause).
    pub errors: BTreeMap<(String, String), u64>,
    /// TCP fallbacks per cause (`no-check`, `unsupported-type`, a plugin
    /// error cause, `invalid-value`).
    pub fallbacks: BTreeMap<String, u64>,
}

impl Stats {
    pub(super) fn call(&self, plugin: &str, fuel: u64) {
        if let Ok(mut s) = self.inner.lock() {
            *s.calls.entry(plugin.to_string()).or_default() += 1;
            let burned = s.fuel.entry(plugin.to_string()).or_default();
            *burned = burned.saturating_add(fuel);
        }
    }

    pub(super) fn error(&self, plugin: &str, cause: &str) {
        if let Ok(mut s) = self.inner.lock() {
            *s.errors
                .entry((plugin.to_string(), cause.to_string()))
                .or_default() += 1;
        }
    }

    pub(super) fn fallback(&self, cause: &str) {
        if let Ok(mut s) = self.inner.lock() {
            *s.fallbacks.entry(cause.to_string()).or_default() += 1;
        }
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
