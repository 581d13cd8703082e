//! Allocation stubs by job (`GET /v1/job/:id/allocations`: one call gives
//! every allocation's job version, task group and ports). A miss waits for a
//! fetch that started after it, so a burst of misses shares one fetch. A
//! lone miss (no other allocation waiting, no fetch running) reads just its
//! allocation (`GET /v1/allocation/:id`) instead: a job's list keeps its
//! stopped allocations until Nomad's GC, so it grows with every deploy, and
//! one new instance should not have to wait for all of it.

use crate::nomad::watch::wire::AllocStub;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Fetches of one job's list start at least [`GAP_PER_FETCH_TIME`] times the
/// last fetch's share of Nomad's time apart: during a burst of placements
/// the misses that arrive while a fetch runs or waits share the next one,
/// and a large list (slow to serve) keeps Nomad busy a fifth of the time at
/// most. The share is the fetch's duration divided by the number of list
/// fetches (of any job) that ran with it: ten jobs listed at once each take
/// up to ten times longer, but Nomad is not ten times busier with each.
/// There is no fixed floor: a lone new allocation is looked up at once,
/// which is what keeps a new instance's way into HAProxy within
/// milliseconds.
const GAP_PER_FETCH_TIME: u32 = 4;

/// The smallest map of jobs that is swept before [`SWEEP_EVERY`] has passed.
const MIN_SWEEP: usize = 256;

/// How often the jobs are swept, at most, while new ones keep coming: a
/// sweep only when the map had doubled let it hold twice the jobs one TTL
/// brings (over an hour's soak, 1,000 lists instead of 500).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Data {
    /// Stubs, each with when it was read.
    allocs: HashMap<String, (AllocStub, Instant)>,
    /// When a stub was last stored: once every stub is older than the TTL,
    /// none is used again and the job can be dropped.
    touched: Option<Instant>,
    fetched_at: Option<Instant>,
    /// The gap to keep after `fetched_at` before the next fetch.
    gap: Duration,
    /// Fetches started so far.
    started: u64,
    /// Misses waiting for their turn (or fetching), by allocation: two
    /// look-ups of one new allocation are still a lone miss.
    waiting: HashMap<String, usize>,
    /// Start number of the last completed fetch, and its error if it failed.
    completed: u64,
    failed: Option<String>,
}

impl Data {
    fn stub(&self, alloc: &str) -> Option<AllocStub> {
        self.allocs.get(alloc).map(|(stub, _)| stub.clone())
    }

    /// The stub of `alloc` if it was read less than `ttl` ago.
    fn fresh(&self, alloc: &str, ttl: Duration) -> Option<AllocStub> {
        self.allocs
            .get(alloc)
            .filter(|(_, read)| read.elapsed() < ttl)
            .map(|(stub, _)| stub.clone())
    }
}

#[derive(Debug, Default)]
struct JobAllocs {
    data: Mutex<Data>,
    /// Held while a fetch runs: fetches of one job never overlap.
    fetching: tokio::sync::Mutex<()>,
}

/// Counts a miss out of [`Data::waiting`] when its turn ends.
struct Waiting<'a> {
    job: &'a JobAllocs,
    alloc: &'a str,
}

impl<'a> Waiting<'a> {
    fn new(job: &'a JobAllocs, alloc: &'a str) -> Waiting<'a> {
        *lock(&job.data)
            .waiting
            .entry(alloc.to_string())
            .or_default() += 1;
        Waiting { job, alloc }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut d = lock(&self.job.data);
        if let Some(n) = d.waiting.get_mut(self.alloc) {
            *n -= 1;
            if *n == 0 {
                d.waiting.remove(self.alloc);
            }
        }
    }
}

/// The cache.
#[derive(Debug)]
pub(crate) struct AllocCache {
    jobs: Mutex<Jobs>,
    ttl: Duration,
    /// List fetches running now, of all jobs.
    listing: Mutex<Listing>,
}

/// The jobs held, the jobs Nomad deleted, and when to sweep them.
#[derive(Debug)]
struct Jobs {
    held: HashMap<(String, String), Arc<JobAllocs>>,
    /// Jobs purged from Nomad, with when. An instance of one can still be
    /// planned before its deregistration arrives; its look-up gets an entry
    /// that is not kept, so that a job gone for good holds no list.
    deleted: HashMap<(String, String), Instant>,
    /// Sweep once `held` has this many jobs...
    sweep_at: usize,
    /// ...or at the first new job after this.
    next_sweep: Option<Instant>,
}

impl Jobs {
    /// Drops the jobs whose stubs are all older than `ttl` (and that no
    /// look-up is using), and deletions older than `ttl`, when a sweep is due.
    fn sweep_if_due(&mut self, now: Instant, ttl: Duration) {
        let due = self.next_sweep.is_some_and(|at| now >= at);
        if due || self.held.len() >= self.sweep_at {
            // Lock order: `jobs`, then one job's `data`.
            self.held.retain(|_, entry| {
                Arc::strong_count(entry) > 1
                    || lock(&entry.data).touched.is_some_and(|t| t.elapsed() < ttl)
            });
            self.deleted
                .retain(|_, at| now.saturating_duration_since(*at) < ttl);
            self.sweep_at = (2 * self.held.len()).max(MIN_SWEEP);
            self.next_sweep = None;
        }
        self.next_sweep.get_or_insert(now + SWEEP_EVERY);
    }
}

/// The list fetches running, each with the most that ran at once during it.
#[derive(Debug, Default)]
struct Listing {
    next: u64,
    running: HashMap<u64, usize>,
}

/// One list fetch counted in [`Listing`]; uncounted when dropped (also when
/// the look-up is cancelled).
struct Running<'a> {
    listing: &'a Mutex<Listing>,
    id: u64,
}

impl<'a> Running<'a> {
    fn begin(listing: &'a Mutex<Listing>) -> Running<'a> {
        let mut l = lock(listing);
        let id = l.next;
        l.next += 1;
        l.running.insert(id, 0);
        let now = l.running.len();
        for most in l.running.values_mut() {
            *most = (*most).max(now);
        }
        Running { listing, id }
    }

    /// How many fetches ran at once, at most, while this one ran.
    fn end(self) -> usize {
        lock(self.listing).running.remove(&self.id).unwrap_or(1)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(self.listing).running.remove(&self.id);
    }
}

/// A fetch's share of Nomad's time: its duration split evenly among the
/// fetches that ran with it (`alongside`, itself included, at most at once).
fn share(took: Duration, alongside: usize) -> Duration {
    took / u32::try_from(alongside.max(1)).unwrap_or(u32::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AllocCache {
    pub(crate) fn new(ttl: Duration) -> AllocCache {
        AllocCache {
            jobs: Mutex::new(Jobs {
                held: HashMap::new(),
                deleted: HashMap::new(),
                sweep_at: MIN_SWEEP,
                next_sweep: None,
            }),
            ttl,
            listing: Mutex::new(Listing::default()),
        }
    }

    /// A job's entry, made if needed (and kept unless Nomad deleted the job).
    fn entry(&self, namespace: &str, job: &str) -> Arc<JobAllocs> {
        let mut jobs = lock(&self.jobs);
        let key = (namespace.to_string(), job.to_string());
        if let Some(entry) = jobs.held.get(&key) {
            return entry.clone();
        }
        jobs.sweep_if_due(Instant::now(), self.ttl);
        if jobs.deleted.contains_key(&key) {
            return Arc::default();
        }
        jobs.held.entry(key).or_default().clone()
    }

    /// A job's entry, without making one.
    fn existing(&self, namespace: &str, job: &str) -> Option<Arc<JobAllocs>> {
        lock(&self.jobs)
            .held
            .get(&(namespace.to_string(), job.to_string()))
            .cloned()
    }

    /// The stub of `alloc`; on a lone miss `fetch_one` reads the allocation
    /// (`None` when that gives no usable stub), else `fetch` lists the job's
    /// allocations.
    ///
    /// # Errors
    /// The list failed, or does not contain the allocation.
    pub(crate) async fn get<F, Fut, O, OFut>(
        &self,
        namespace: &str,
        job: &str,
        alloc: &str,
        fetch_one: O,
        fetch: F,
    ) -> Result<AllocStub, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<AllocStub>, String>>,
        O: FnOnce() -> OFut,
        OFut: Future<Output = Option<AllocStub>>,
    {
        let entry = self.entry(namespace, job);
        let missing = || format!("allocation {alloc} is not (or no longer) listed for job {job}");
        let seen = {
            let d = lock(&entry.data);
            if let Some(stub) = d.fresh(alloc, self.ttl) {
                return Ok(stub);
            }
            d.started
        };
        let _waited = Waiting::new(&entry, alloc);
        let _turn = entry.fetching.lock().await;
        {
            let d = lock(&entry.data);
            // A fetch that ran while we waited may hold it already.
            if let Some(stub) = d.fresh(alloc, self.ttl) {
                return Ok(stub);
            }
            if d.completed > seen {
                // A fetch that started after our miss has finished: use it.
                if let Some(e) = &d.failed {
                    return Err(e.clone());
                }
                return Err(missing());
            }
        }
        if lock(&entry.data).waiting.len() == 1
            && let Some(stub) = fetch_one().await
            && stub.id == alloc
        {
            let mut d = lock(&entry.data);
            let now = Instant::now();
            d.touched = Some(now);
            d.allocs.insert(stub.id.clone(), (stub.clone(), now));
            return Ok(stub);
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
        let running = Running::begin(&self.listing);
        let result = fetch().await;
        let alongside = running.end();
        let mut d = lock(&entry.data);
        d.completed = mine;
        d.fetched_at = Some(began);
        d.gap = share(began.elapsed(), alongside).saturating_mul(GAP_PER_FETCH_TIME);
        match result {
            Ok(stubs) => {
                d.failed = None;
                d.touched = Some(Instant::now());
                d.allocs = stubs
                    .into_iter()
                    .map(|s| (s.id.clone(), (s, began)))
                    .collect();
                d.stub(alloc).ok_or_else(missing)
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
        let now = Instant::now();
        let read = d.allocs.get(&stub.id).map_or(now, |(_, t)| *t);
        d.touched = Some(now);
        d.allocs.insert(stub.id.clone(), (stub, read));
    }

    /// Forgets one allocation (it was updated in place).
    pub(crate) fn forget_alloc(&self, namespace: &str, job: &str, alloc: &str) {
        if let Some(entry) = self.existing(namespace, job) {
            lock(&entry.data).allocs.remove(alloc);
        }
    }

    /// Forgets a job's allocations (it changed, or was `deleted`: purged).
    pub(crate) fn forget_job(&self, namespace: &str, job: &str, deleted: bool) {
        let mut jobs = lock(&self.jobs);
        let key = (namespace.to_string(), job.to_string());
        jobs.held.remove(&key);
        if deleted {
            let now = Instant::now();
            jobs.sweep_if_due(now, self.ttl);
            jobs.deleted.insert(key, now);
        } else {
            jobs.deleted.remove(&key);
        }
    }

    /// Jobs held.
    pub(crate) fn jobs(&self) -> u64 {
        u64::try_from(lock(&self.jobs).held.len()).unwrap_or(u64::MAX)
    }

    /// Allocation stubs held, of all jobs.
    pub(crate) fn allocations(&self) -> u64 {
        let jobs: Vec<Arc<JobAllocs>> = lock(&self.jobs).held.values().cloned().collect();
        jobs.iter()
            .map(|j| u64::try_from(lock(&j.data).allocs.len()).unwrap_or(u64::MAX))
            .sum()
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        let mut jobs = lock(&self.jobs);
        jobs.held.clear();
        jobs.deleted.clear();
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

    async fn none() -> Option<AllocStub> {
        None
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_miss_reads_its_allocation_and_a_burst_the_list() {
        let cache = AllocCache::new(Duration::from_secs(60));
        let (ones, lists) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let one = |id: &str| {
            let id = id.to_string();
            let ones = &ones;
            move || async move {
                ones.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                Some(stub(&id))
            }
        };
        let list = || async {
            lists.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok((0..100).map(|i| stub(&format!("a{i}"))).collect())
        };
        let got = cache.get("default", "web", "new", one("new"), list).await;
        assert_eq!(got.map(|s| s.id), Ok("new".to_string()));
        assert_eq!(
            (ones.load(Ordering::SeqCst), lists.load(Ordering::SeqCst)),
            (1, 0)
        );
        // Known now: no fetch at all.
        assert!(
            cache
                .get("default", "web", "new", one("new"), list)
                .await
                .is_ok()
        );
        assert_eq!(ones.load(Ordering::SeqCst), 1);
        // A burst: the first miss reads its own, the rest share the list.
        let ids: Vec<String> = (0..100).map(|i| format!("a{i}")).collect();
        let lookups = ids
            .iter()
            .map(|id| cache.get("default", "web", id, one(id), list))
            .collect();
        let results = crate::nomad::fake::join_all(lookups).await;
        assert!(results.iter().all(Result::is_ok));
        assert!(ones.load(Ordering::SeqCst) <= 2, "{ones:?}");
        assert_eq!(lists.load(Ordering::SeqCst), 1);
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
            .map(|id| cache.get("default", "web", id, none, fetch))
            .collect();
        let results = crate::nomad::fake::join_all(lookups).await;
        assert!(results.iter().all(Result::is_ok));
        // The first miss fetches; every miss that queued behind it shares
        // the second fetch (started after them).
        assert!(calls.load(Ordering::SeqCst) <= 2, "{calls:?}");
        assert!(cache.get("default", "web", "a5", none, fetch).await.is_ok());
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
        assert!(cache.get("default", "web", "a", none, fetch).await.is_ok());
        let err = cache
            .get("default", "web", "b", none, fetch)
            .await
            .unwrap_err();
        assert!(err.contains("allocation b"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        cache.forget_alloc("default", "web", "a");
        assert!(cache.get("default", "web", "a", none, fetch).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_whose_stubs_are_all_older_than_the_ttl_are_dropped() {
        let cache = AllocCache::new(Duration::from_secs(60));
        let fetch = || async { Ok(vec![stub("a")]) };
        for n in 0..10 {
            let job = format!("gone{n}");
            assert!(cache.get("default", &job, "a", none, fetch).await.is_ok());
        }
        // Events of allocations of jobs that are not cached make no entry.
        cache.forget_alloc("default", "purged", "a");
        assert_eq!(lock(&cache.jobs).held.len(), 10);
        // A new allocation of one job: its list is read again.
        tokio::time::advance(Duration::from_secs(30)).await;
        let both = || async { Ok(vec![stub("a"), stub("b")]) };
        assert!(cache.get("default", "gone7", "b", none, both).await.is_ok());
        // A minute after the first job, the next new one sweeps the rest.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(cache.get("default", "new", "a", none, fetch).await.is_ok());
        let mut left: Vec<String> = lock(&cache.jobs).held.keys().map(|k| k.1.clone()).collect();
        left.sort();
        assert_eq!(left, ["gone7", "new"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_purged_job_is_looked_up_but_not_kept_until_it_is_registered_again() {
        let cache = AllocCache::new(Duration::from_secs(60));
        let fetch = || async { Ok(vec![stub("a")]) };
        assert!(cache.get("default", "web", "a", none, fetch).await.is_ok());
        cache.forget_job("default", "web", true);
        // An instance planned before its deregistration arrived.
        assert!(cache.get("default", "web", "a", none, fetch).await.is_ok());
        assert!(lock(&cache.jobs).held.is_empty());
        // Registered again: its entries are kept.
        cache.forget_job("default", "web", false);
        assert!(cache.get("default", "web", "a", none, fetch).await.is_ok());
        assert_eq!(lock(&cache.jobs).held.len(), 1);
        // Deletions are forgotten after the TTL.
        cache.forget_job("default", "old", true);
        tokio::time::advance(Duration::from_secs(61)).await;
        cache.forget_job("default", "gone", true);
        let mut deleted: Vec<String> = lock(&cache.jobs)
            .deleted
            .keys()
            .map(|k| k.1.clone())
            .collect();
        deleted.sort();
        assert_eq!(deleted, ["gone"]);
    }

    #[tokio::test(start_paused = true)]
    async fn lists_of_several_jobs_at_once_share_the_gap() {
        let cache = AllocCache::new(Duration::from_secs(60));
        let started = Mutex::new(Vec::new());
        let fetch = |job: &'static str| {
            let started = &started;
            move || async move {
                lock(started).push((job, Instant::now()));
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(vec![stub(&format!("{job}-old"))])
            }
        };
        let t0 = Instant::now();
        // Two jobs listed at the same time: 10 ms each, run together.
        let (a, b) = tokio::join!(
            cache.get("default", "a", "a-old", none, fetch("a")),
            cache.get("default", "b", "b-old", none, fetch("b")),
        );
        assert!(a.is_ok() && b.is_ok());
        // A new miss of job a waits 4 × (10 ms / 2), not 4 × 10 ms.
        let _ = cache.get("default", "a", "a-new", none, fetch("a")).await;
        let starts = lock(&started).clone();
        let (_, last) = starts.last().copied().expect("fetches");
        assert_eq!(starts.len(), 3, "{starts:?}");
        assert_eq!(last - t0, Duration::from_millis(20), "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn two_lookups_of_one_new_allocation_are_still_a_lone_miss() {
        let cache = AllocCache::new(Duration::from_secs(60));
        let (ones, lists) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let one = |id: &'static str| {
            let ones = &ones;
            move || async move {
                ones.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                Some(stub(id))
            }
        };
        let list = || async {
            lists.fetch_add(1, Ordering::SeqCst);
            Ok(vec![stub("old"), stub("new")])
        };
        // While another allocation is read, the daemon's prefetch and the
        // reconciler both look the new one up: they queue together.
        let (old, (a, b)) = tokio::join!(
            cache.get("default", "web", "old", one("old"), list),
            async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                tokio::join!(
                    cache.get("default", "web", "new", one("new"), list),
                    cache.get("default", "web", "new", one("new"), list),
                )
            }
        );
        assert!(old.is_ok() && a.is_ok() && b.is_ok());
        assert_eq!(
            (ones.load(Ordering::SeqCst), lists.load(Ordering::SeqCst)),
            (2, 0)
        );
    }
}
