//! Job specs by (namespace, job, version), with a TTL, a shorter TTL for
//! failures, and concurrent look-ups of one key collapsed into one fetch.

use super::job::JobSpec;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// One version of a job, with the identity of the job instance it belongs
/// to (`CreateIndex` changes when a purged job is registered again, and its
/// versions start over from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Versioned {
    pub spec: JobSpec,
    pub create_index: u64,
}

type Key = (String, String, u64);

#[derive(Debug, Clone)]
struct Fetched {
    result: Result<Arc<Versioned>, String>,
    expires: Instant,
}

/// The cache.
#[derive(Debug)]
pub(crate) struct SpecCache {
    slots: Mutex<HashMap<Key, Arc<OnceCell<Fetched>>>>,
    latest: Mutex<HashMap<(String, String), u64>>,
    ttl: Duration,
    negative_ttl: Duration,
    /// Sweep expired slots once the map holds more than this.
    sweep_at: AtomicUsize,
}

/// The smallest map that is swept.
const MIN_SWEEP: usize = 256;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SpecCache {
    pub(crate) fn new(ttl: Duration, negative_ttl: Duration) -> SpecCache {
        SpecCache {
            slots: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
            ttl,
            negative_ttl,
            sweep_at: AtomicUsize::new(MIN_SWEEP),
        }
    }

    /// The spec of `version`; on a miss, `fetch` runs once for all
    /// concurrent callers and may return other versions too (cached as well).
    ///
    /// # Errors
    /// The fetch failed (remembered for the negative TTL), or did not
    /// return `version`.
    pub(crate) async fn get<F, Fut>(
        &self,
        namespace: &str,
        job: &str,
        version: u64,
        fetch: F,
    ) -> Result<Arc<Versioned>, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Versioned>, String>>,
    {
        let key = (namespace.to_string(), job.to_string(), version);
        let cell = {
            let mut slots = lock(&self.slots);
            let now = Instant::now();
            match slots.get(&key) {
                Some(c) if c.get().is_none_or(|f| f.expires > now) => c.clone(),
                _ => {
                    // Sweep expired slots when the map has doubled since the
                    // last sweep: a sweep per miss made a cold start of
                    // 2,000 jobs quadratic.
                    let sweep_at = self.sweep_at.load(Ordering::Relaxed);
                    if slots.len() > sweep_at {
                        slots.retain(|_, c| c.get().is_none_or(|f| f.expires > now));
                        self.sweep_at
                            .store((2 * slots.len()).max(MIN_SWEEP), Ordering::Relaxed);
                    }
                    let c = Arc::new(OnceCell::new());
                    slots.insert(key, c.clone());
                    c
                }
            }
        };
        let fetched = cell
            .get_or_init(|| async {
                let result = fetch().await;
                let now = Instant::now();
                match result {
                    Ok(versions) => {
                        let mut wanted = None;
                        for v in versions {
                            let v = Arc::new(v);
                            if v.spec.version == version {
                                wanted = Some(v);
                            } else {
                                self.insert_ready(namespace, job, v, now);
                            }
                        }
                        match wanted {
                            Some(v) => Fetched {
                                result: Ok(v),
                                expires: now + self.ttl,
                            },
                            None => Fetched {
                                result: Err(format!(
                                    "version {version} of job {job} is no longer kept by Nomad"
                                )),
                                expires: now + self.negative_ttl,
                            },
                        }
                    }
                    Err(e) => Fetched {
                        result: Err(e),
                        expires: now + self.negative_ttl,
                    },
                }
            })
            .await;
        fetched.result.clone()
    }

    fn insert_ready(&self, namespace: &str, job: &str, v: Arc<Versioned>, now: Instant) {
        let key = (namespace.to_string(), job.to_string(), v.spec.version);
        let mut slots = lock(&self.slots);
        let usable = slots
            .get(&key)
            .and_then(|c| c.get())
            .is_some_and(|f| f.result.is_ok() && f.expires > now);
        if !usable {
            let fetched = Fetched {
                result: Ok(v),
                expires: now + self.ttl,
            };
            slots.insert(key, Arc::new(OnceCell::new_with(Some(fetched))));
        }
    }

    /// The newest version known of a job (from reads and `Job` events).
    pub(crate) fn latest(&self, namespace: &str, job: &str) -> Option<u64> {
        lock(&self.latest)
            .get(&(namespace.to_string(), job.to_string()))
            .copied()
    }

    /// Records a version seen.
    pub(crate) fn note_version(&self, namespace: &str, job: &str, version: u64) {
        let mut latest = lock(&self.latest);
        let v = latest
            .entry((namespace.to_string(), job.to_string()))
            .or_insert(version);
        *v = (*v).max(version);
    }

    /// A `Job` event. Versions are immutable within one job instance, so
    /// cached specs stay unless the job was purged or re-created (another
    /// `CreateIndex`); failed look-ups of the job are forgotten at once.
    pub(crate) fn job_event(&self, namespace: &str, job: &str, create_index: u64, deleted: bool) {
        lock(&self.slots).retain(|k, cell| {
            if k.0 != namespace || k.1 != job {
                return true;
            }
            match cell.get() {
                None => !deleted,
                Some(Fetched { result: Ok(v), .. }) => {
                    !deleted && (create_index == 0 || v.create_index == create_index)
                }
                Some(Fetched { result: Err(_), .. }) => false,
            }
        });
        if deleted {
            lock(&self.latest).remove(&(namespace.to_string(), job.to_string()));
        }
    }

    /// Versions held (specs and failures, expired ones until a sweep).
    pub(crate) fn len(&self) -> u64 {
        u64::try_from(lock(&self.slots).len()).unwrap_or(u64::MAX)
    }

    /// Forgets everything (Nomad's state was wiped).
    pub(crate) fn clear(&self) {
        lock(&self.slots).clear();
        lock(&self.latest).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn v(version: u64, create_index: u64) -> Versioned {
        Versioned {
            spec: JobSpec {
                id: "web".into(),
                namespace: "default".into(),
                version,
                groups: Vec::new(),
            },
            create_index,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_lookups_of_one_key_make_one_fetch() {
        let cache = SpecCache::new(Duration::from_secs(60), Duration::from_secs(5));
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(vec![v(1, 7), v(0, 7)])
        };
        let lookups = (0..50)
            .map(|_| cache.get("default", "web", 1, fetch))
            .collect();
        let results = crate::nomad::fake::join_all(lookups).await;
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().is_ok_and(|s| s.spec.version == 1))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Version 0 came with the same answer.
        let zero = cache
            .get("default", "web", 0, || async { Err("no".into()) })
            .await;
        assert!(zero.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_after_the_negative_ttl_and_successes_after_the_ttl() {
        let cache = SpecCache::new(Duration::from_secs(60), Duration::from_secs(5));
        let calls = AtomicUsize::new(0);
        let failing = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<Vec<Versioned>, _>("HTTP 500".to_string())
        };
        assert!(cache.get("default", "web", 0, failing).await.is_err());
        assert!(cache.get("default", "web", 0, failing).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(6)).await;
        let ok = || async { Ok(vec![v(0, 1)]) };
        assert!(cache.get("default", "web", 0, ok).await.is_ok());
        assert!(cache.get("default", "web", 0, failing).await.is_ok());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(cache.get("default", "web", 0, failing).await.is_err());
    }

    #[tokio::test]
    async fn job_events_drop_only_what_they_make_stale() {
        let cache = SpecCache::new(Duration::from_secs(60), Duration::from_secs(5));
        let ok = || async { Ok(vec![v(0, 7)]) };
        let never = || async { Err("refetched".to_string()) };
        cache.get("default", "web", 0, ok).await.unwrap();
        cache.job_event("default", "web", 7, false);
        assert!(cache.get("default", "web", 0, never).await.is_ok());
        cache.job_event("default", "web", 9, false);
        assert!(cache.get("default", "web", 0, never).await.is_err());
        // The failure is forgotten by the next Job event.
        cache.job_event("default", "web", 9, false);
        cache.get("default", "web", 0, ok).await.unwrap();
        cache.job_event("default", "web", 7, true);
        assert!(cache.get("default", "web", 0, never).await.is_err());
    }
}
