//! Failed plugin calls, remembered for a while: a plugin that traps or
//! runs past its deadline on some input costs that once per input and
//! [`FAILURE_TTL`], not once per resync.

use super::error::CallError;
use hnc_core::model::{NomadCheck, ServiceContext, Settings};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a failed call's error stands in for calling again.
pub const FAILURE_TTL: Duration = Duration::from_secs(300);

/// Entries kept at most; the oldest half goes when full.
const MAX_ENTRIES: usize = 10_000;

/// Failed calls by a keyed hash of (plugin, service, check, settings).
#[derive(Debug, Default)]
pub(super) struct Failures {
    entries: Mutex<HashMap<u64, (CallError, Instant)>>,
    keys: RandomState,
}

impl Failures {
    pub(super) fn key(
        &self,
        plugin: &str,
        service: &ServiceContext,
        check: &NomadCheck,
        settings: &Settings,
    ) -> u64 {
        self.keys.hash_one((plugin, service, check, settings))
    }

    /// The remembered error of this input, if it failed within the TTL.
    pub(super) fn get(&self, key: u64, now: Instant) -> Option<CallError> {
        let entries = self.entries.lock().ok()?;
        let (error, at) = entries.get(&key)?;
        (now.duration_since(*at) < FAILURE_TTL).then(|| error.clone())
    }

    /// Remembers a failure.
    pub(super) fn put(&self, key: u64, error: CallError, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_TTL / 2);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (error, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_stands_for_its_ttl_then_expires() {
        let failures = Failures::default();
        let (service, check) = (ServiceContext::default(), NomadCheck::default());
        let key = failures.key("p@1", &service, &check, &Vec::new());
        let other = failures.key("p@2", &service, &check, &Vec::new());
        let now = Instant::now();
        failures.put(key, CallError::Trapped("x".into()), now);
        assert_eq!(failures.get(key, now), Some(CallError::Trapped("x".into())));
        assert_eq!(failures.get(other, now), None);
        assert_eq!(failures.get(key, now + FAILURE_TTL), None);
    }
}
