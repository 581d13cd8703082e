//! The reconciler's timers as data: when each service is planned again and
//! when HAProxy is synced again, so the loop sleeps until the earliest.
//!
//! A service's time comes from its plan (a job spec that could not be
//! read is asked for again at its negative TTL) or from HAProxy (a refused
//! check is planned again at once); a sync's from the driver (a drain's
//! grace period ends, a deferred reload, a failed change). Nothing here
//! sleeps: the loop asks [`Schedule::next`] and the reconciler takes what
//! is due with [`Schedule::take_due`] (kube-runtime's `Action` and
//! scheduler, as data).

use crate::plan::ServiceKey;
use std::collections::{BTreeSet, HashMap};
use tokio::time::Instant;

/// Due times: one per service at most, plus one for the next sync.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    /// Each scheduled service's time.
    services: HashMap<ServiceKey, Instant>,
    /// The same, ordered by time (the earliest first).
    order: BTreeSet<(Instant, ServiceKey)>,
    /// When HAProxy is synced again even if no service is due.
    sync: Option<Instant>,
}

impl Schedule {
    /// Plans `service` again at `at`, or earlier if it is already due earlier.
    pub(super) fn plan_at(&mut self, service: ServiceKey, at: Instant) {
        match self.services.get(&service) {
            Some(old) if *old <= at => {}
            Some(old) => {
                self.order.remove(&(*old, service.clone()));
                self.order.insert((at, service.clone()));
                self.services.insert(service, at);
            }
            None => {
                self.order.insert((at, service.clone()));
                self.services.insert(service, at);
            }
        }
    }

    /// Forgets `service`'s time: it is being planned now.
    pub(super) fn cancel(&mut self, service: &ServiceKey) {
        if let Some(at) = self.services.remove(service) {
            self.order.remove(&(at, service.clone()));
        }
    }

    /// Syncs again at `at` at the latest (the earliest request wins).
    pub(super) fn sync_at(&mut self, at: Instant) {
        self.sync = Some(self.sync.map_or(at, |s| s.min(at)));
    }

    /// Forgets the sync's time: a sync is running, and its report says
    /// when the next one is due.
    pub(super) fn synced(&mut self) {
        self.sync = None;
    }

    /// Takes the services due by `now`, the earliest first.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<ServiceKey> {
        let mut due = Vec::new();
        while let Some(first) = self.order.first() {
            if first.0 > now {
                break;
            }
            let (_, service) = self.order.pop_first().expect("not empty");
            self.services.remove(&service);
            due.push(service);
        }
        due
    }

    /// The earliest due time, if any.
    pub(super) fn next(&self) -> Option<Instant> {
        let service = self.order.first().map(|(at, _)| *at);
        match (service, self.sync) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Services with a due time.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.services.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(name: &str) -> ServiceKey {
        ServiceKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_service_is_due_once_at_its_earliest_time() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.plan_at(key("a"), t0 + 30 * S);
        s.plan_at(key("a"), t0 + 40 * S);
        s.plan_at(key("b"), t0 + 20 * S);
        assert_eq!(s.next(), Some(t0 + 20 * S));
        assert_eq!(s.take_due(t0 + 29 * S), vec![key("b")]);
        assert_eq!(s.next(), Some(t0 + 30 * S), "a keeps its earlier time");
        s.plan_at(key("a"), t0 + 25 * S);
        assert_eq!(s.take_due(t0 + 25 * S), vec![key("a")]);
        assert!(
            s.take_due(t0 + 60 * S).is_empty(),
            "each time is taken once"
        );
        assert_eq!(s.next(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sync_time_counts_until_a_sync_runs() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.sync_at(t0 + 20 * S);
        s.sync_at(t0 + 10 * S);
        s.plan_at(key("a"), t0 + 15 * S);
        assert_eq!(s.next(), Some(t0 + 10 * S));
        s.synced();
        assert_eq!(s.next(), Some(t0 + 15 * S));
        s.cancel(&key("a"));
        assert_eq!((s.next(), s.len()), (None, 0));
    }
}
