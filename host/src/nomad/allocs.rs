//! Allocation stubs by job (`GET /v1/job/:id/allocations`: one call gives
//! every allocation's job version, task group and ports). A miss waits for a
//! fetch that started after it, so a burst of misses shares one fetch.

use super::wire::AllocStub;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Fetches of one job's list start at least [`GAP_PER_FETCH_TIME`] times the
/// last fetch's duration apart: during a burst of placements the misses that
/// arrive while a fetch runs or waits share the next one, and a large list
/// (slow to serve) keeps Nomad busy a fifth of the time at most. There is no
/// fixed floor: a lone new allocation is looked up at once, which is what
/// keeps a new instance's way into HAProxy within milliseconds.
const GAP_PER_FETCH_TIME: u32 = 4;

#[derive(Debug, Default)]
struct Data {
    allocs: HashMap<String, AllocStub>,
    fetched_at: Option<Instant>,
    /// The gap to keep after `fetched_at` before the next fetch.
    gap: Duration,
    /// Fetches started so far.
    started: u64,
    /// Start number of the last completed fetch, and its error if it failed.
    completed: u64,
    failed: Option<String>,
}

#[derive(Debug, Default)]
struct JobAllocs {
    data: Mutex<Data>,
    /// Held while a fetch runs: fetches of one job never overlap.
    fetching: tokio::sync::Mutex<()>,
}

/// The cache.
#[derive(Debug)]
pub(crate) struct AllocCache {
    jobs: Mutex<HashMap<(String, String), Arc<JobAllocs>>>,
    ttl: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AllocCache {
    pub(crate) fn new(ttl: Duration) -> AllocCache {
        AllocCache {
            jobs: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn entry(&self, namespace: &str, job: &str) -> Arc<JobAllocs> {
        lock(&self.jobs)
            .entry((namespace.to_string(), job.to_string()))
            .or_default()
            .clone()
    }

    /// The stub of `alloc`; on a miss, `fetch` lists the job's allocations.
    ///
    /// # Errors
    /// The list failed, or does not contain the allocation.
    pub(crate) async fn get<F, Fut>(
        &self,
        namespace: &str,
        job: &str,
        alloc: &str,
        fetch: F,
    ) -> Result<AllocStub, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<AllocStub>, String>>,
    {
        let entry = self.entry(namespace, job);
        let missing = || format!("allocation {alloc} is not (or no longer) listed for job {job}");
        let seen = {
            let d = lock(&entry.data);
            let fresh = d.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
            if let (true, Some(stub)) = (fresh, d.allocs.get(alloc)) {
                return Ok(stub.clone());
            }
            d.started
        };
        let _turn = entry.fetching.lock().await;
        {
            let d = lock(&entry.data);
            if d.completed > seen {
                // A fetch that started after our miss has finished: use it.
                if let Some(e) = &d.failed {
                    return Err(e.clone());
                }
                return d.allocs.get(alloc).cloned().ok_or_else(missing);
            }
        }
        let (last, gap) = {
            let d = lock(&entry.data);
            (d.fetched_at, d.gap)
        };
        if let Some(last) = last {
            tokio::time::sleep_until(last + gap).await;
        }
        let mine = {
            let mut d = lock(&entry.data);
            d.started += 1;
            d.started
        };
        let began = Instant::now();
        let result = fetch().await;
        let mut d = lock(&entry.data);
        d.completed = mine;
        d.fetched_at = Some(began);
        d.gap = began.elapsed().saturating_mul(GAP_PER_FETCH_TIME);
        match result {
            Ok(stubs) => {
                d.failed = None;
                d.allocs = stubs.into_iter().map(|s| (s.id.clone(), s)).collect();
                d.allocs.get(alloc).cloned().ok_or_else(missing)
            }
            Err(e) => {
                d.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Stores a fuller stub of one allocation (e.g. read for its ports).
    pub(crate) fn store(&self, namespace: &str, job: &str, stub: AllocStub) {
        let entry = self.entry(namespace, job);
        let mut d = lock(&entry.data);
        d.allocs.insert(stub.id.clone(), stub);
    }

    /// Forgets one allocation (it was updated in place).
    pub(crate) fn forget_alloc(&self, namespace: &str, job: &str, alloc: &str) {
        let entry = self.entry(namespace, job);
        lock(&entry.data).allocs.remove(alloc);
    }

    /// Forgets a job's allocations.
    pub(crate) fn forget_job(&self, namespace: &str, job: &str) {
        lock(&self.jobs).remove(&(namespace.to_string(), job.to_string()));
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        lock(&self.jobs).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn stub(id: &str) -> AllocStub {
        AllocStub {
            id: id.into(),
            task_group: "g".into(),
            ..AllocStub::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_misses_shares_one_fetch() {
        let cache = AllocCache::new(Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        let ids: Vec<String> = (0..100).map(|i| format!("a{i}")).collect();
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok((0..100).map(|i| stub(&format!("a{i}"))).collect())
        };
        let lookups = ids
            .iter()
            .map(|id| cache.get("default", "web", id, fetch))
            .collect();
        let results = crate::nomad::fake::join_all(lookups).await;
        assert!(results.iter().all(Result::is_ok));
        // The first miss fetches; every miss that queued behind it shares
        // the second fetch (started after them).
        assert!(calls.load(Ordering::SeqCst) <= 2, "{calls:?}");
        assert!(cache.get("default", "web", "a5", fetch).await.is_ok());
        assert!(calls.load(Ordering::SeqCst) <= 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_alloc_is_refetched_once_then_reported() {
        let cache = AllocCache::new(Duration::from_secs(60));
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(vec![stub("a")])
        };
        assert!(cache.get("default", "web", "a", fetch).await.is_ok());
        let err = cache.get("default", "web", "b", fetch).await.unwrap_err();
        assert!(err.contains("allocation b"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        cache.forget_alloc("default", "web", "a");
        assert!(cache.get("default", "web", "a", fetch).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
