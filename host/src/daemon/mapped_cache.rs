//! A cache of mapping results: a mapping is a deterministic function of the
//! service context and the check (plugins import nothing but `log`), so a
//! re-planned service maps only the instances whose inputs changed. A
//! result a failed plugin call produced (a trap, a deadline) is not kept:
//! the next plan asks the plugin again.
//!
//! Entries are keyed by a 128-bit hash of the inputs under keys drawn at
//! random per process, not by the inputs themselves (at 10,000 instances
//! they weighed ~3 MB): Nomad's data cannot aim at a collision, and the
//! chance of one among 10,000 entries is below 10^-30.

use super::interner::Interner;
use crate::mapping::{Engine, Mapped};
use crate::plan::CheckMapper;
use crate::vocab::syntax::Token;
use hnc_core::model::{NomadCheck, ServiceContext};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

/// Mapping results by a keyed hash of their inputs; cleared when the engine
/// changes or the cache outgrows its limit.
#[derive(Default)]
pub(super) struct MappedCache {
    entries: Mutex<HashMap<u128, Arc<Mapped>>>,
    keys: (RandomState, RandomState),
    /// The instances of a service differ in address, not in check: their
    /// servers share one copy of the check arguments.
    server_args: Mutex<Interner<[Token]>>,
}

impl MappedCache {
    /// Forgets everything (a new engine maps differently).
    pub(super) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// A mapper that answers from the cache and fills it from `engine`,
    /// holding at most `limit` results.
    pub(super) fn with<'a>(&'a self, engine: &'a Engine, limit: usize) -> Cached<'a> {
        Cached {
            cache: self,
            engine,
            limit: limit.max(1024),
        }
    }

    fn key(&self, inputs: &impl std::hash::Hash) -> u128 {
        let (a, b) = &self.keys;
        (u128::from(a.hash_one(inputs)) << 64) | u128::from(b.hash_one(inputs))
    }
}

/// The engine behind the cache.
pub(super) struct Cached<'a> {
    cache: &'a MappedCache,
    engine: &'a Engine,
    limit: usize,
}

impl CheckMapper for Cached<'_> {
    fn map(&self, service: &ServiceContext, check: Option<&NomadCheck>) -> Arc<Mapped> {
        let key = self.cache.key(&(service, check));
        self.cached(key, || self.engine.map(service, check))
    }

    fn map_checks(&self, service: &ServiceContext, checks: &[NomadCheck]) -> Arc<Mapped> {
        let key = self.cache.key(&(service, checks));
        self.cached(key, || self.engine.map_all(service, checks))
    }
}

impl Cached<'_> {
    /// The result under `key`, or `map`'s (kept when reproducible).
    fn cached(&self, key: u128, map: impl FnOnce() -> Mapped) -> Arc<Mapped> {
        if let Some(hit) = self
            .cache
            .entries
            .lock()
            .ok()
            .and_then(|e| e.get(&key).cloned())
        {
            return hit;
        }
        let mut mapped = map();
        if let Ok(mut args) = self.cache.server_args.lock() {
            mapped.rendered.server = args.intern(&mapped.rendered.server);
        }
        let mapped = Arc::new(mapped);
        if reproducible(&mapped)
            && let Ok(mut entries) = self.cache.entries.lock()
        {
            if entries.len() >= self.limit {
                entries.clear();
            }
            entries.insert(key, mapped.clone());
        }
        mapped
    }
}

/// Whether mapping the same inputs again gives the same result: not after
/// a failed plugin call (a trap, a deadline, a memory cap, bad output).
fn reproducible(mapped: &Mapped) -> bool {
    mapped.fallback.as_ref().is_none_or(|f| {
        matches!(
            f.cause,
            "no-check" | "unsupported-type" | "invalid-value" | "several-checks"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::check::RenderContext;

    fn check(path: &str) -> NomadCheck {
        NomadCheck {
            check_type: "http".into(),
            path: path.into(),
            interval_ms: 10_000,
            timeout_ms: 2_000,
            ..NomadCheck::default()
        }
    }

    #[test]
    fn the_plugin_is_asked_once_per_distinct_input() {
        let engine = Engine::new(&crate::mapping::Config::default(), RenderContext::default())
            .expect("built-ins");
        let cache = MappedCache::default();
        let mapper = cache.with(&engine, 10);
        let service = ServiceContext {
            name: "web".into(),
            ..ServiceContext::default()
        };
        let calls = || engine.stats().calls.values().sum::<u64>();
        let first = mapper.map(&service, Some(&check("/a")));
        assert_eq!(calls(), 1);
        let again = mapper.map(&service, Some(&check("/a")));
        assert_eq!(calls(), 1, "the same inputs are answered from the cache");
        assert_eq!(again.rendered, first.rendered);
        let other = mapper.map(&service, Some(&check("/b")));
        assert_eq!(calls(), 2, "a changed check is mapped again");
        assert_ne!(other.rendered, first.rendered);
        cache.clear();
        mapper.map(&service, Some(&check("/a")));
        assert_eq!(calls(), 3, "a cleared cache asks the plugin again");
    }
}
