//! The monitor task: reads HAProxy's server states, reads Nomad's check
//! results when a state changes, to confirm a disagreement, and on a slow
//! sweep, at a bounded rate; counts and logs what it finds. It only reads:
//! routing stays HAProxy's own check's.

use super::compare::{self, Disagreement, Step, Tracker, Verdict};
use super::{Config, Target};
use crate::daemon::admin::status_live;
use crate::escape::one_line as escape_log;
use crate::haproxy::socket::Socket;
use crate::metrics::Metrics;
use crate::nomad::Api;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;

/// A server: (backend, server).
type Key = (String, String);
/// An allocation to read: (namespace, allocation ID).
type Alloc = (String, String);

/// At most this many distinct read errors are remembered (each is logged once).
const MAX_REMEMBERED_ERRORS: usize = 1_000;

/// The monitor's state.
pub(super) struct Monitor<C: Api> {
    client: C,
    config: Config,
    socket: Socket,
    metrics: Arc<Metrics>,
    targets: watch::Receiver<Arc<Vec<Target>>>,
    /// The current targets by server, and the servers of each allocation.
    by_key: HashMap<Key, Target>,
    by_alloc: HashMap<String, Vec<Key>>,
    /// HAProxy's last verdict of each server.
    haproxy: HashMap<Key, Option<Verdict>>,
    trackers: HashMap<Key, Tracker>,
    /// Reads after a state change, first come first served.
    urgent: VecDeque<Alloc>,
    /// Reads that confirm a disagreement, each at its time.
    rechecks: BTreeSet<(Instant, Alloc)>,
    /// The sweep's reads still to do.
    sweep: VecDeque<Alloc>,
    queued: HashSet<Alloc>,
    next_sweep: Instant,
    next_read: Instant,
    errors_logged: HashSet<String>,
}

impl<C: Api> Monitor<C> {
    pub(super) fn new(
        client: C,
        config: Config,
        socket: Socket,
        metrics: Arc<Metrics>,
        targets: watch::Receiver<Arc<Vec<Target>>>,
    ) -> Self {
        let now = Instant::now();
        Monitor {
            client,
            socket,
            metrics,
            targets,
            by_key: HashMap::new(),
            by_alloc: HashMap::new(),
            haproxy: HashMap::new(),
            trackers: HashMap::new(),
            urgent: VecDeque::new(),
            rechecks: BTreeSet::new(),
            sweep: VecDeque::new(),
            queued: HashSet::new(),
            // The first sweep starts once HAProxy has been read.
            next_sweep: now + config.haproxy_poll(),
            next_read: now,
            errors_logged: HashSet::new(),
            config,
        }
    }

    /// Runs until `stop` completes.
    pub(super) async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut poll = tokio::time::interval(self.config.haproxy_poll());
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = self.due();
            tokio::select! {
                biased;
                () = &mut stop => break,
                _ = poll.tick() => self.poll_haproxy().await,
                () = tokio::time::sleep_until(due) => self.read_next().await,
            }
        }
    }

    /// When the next read (or sweep) is due.
    fn due(&self) -> Instant {
        let work = if !self.urgent.is_empty() || !self.sweep.is_empty() {
            Some(self.next_read)
        } else {
            self.rechecks.first().map(|(at, _)| *at)
        };
        work.map_or(self.next_sweep, |at| at.min(self.next_sweep))
            .max(self.next_read)
    }

    fn refresh_targets(&mut self) {
        if !self.targets.has_changed().unwrap_or(false) && !self.by_key.is_empty() {
            return;
        }
        let targets = self.targets.borrow_and_update().clone();
        self.by_key.clear();
        self.by_alloc.clear();
        for t in targets.iter() {
            let key = (t.backend.clone(), t.server.clone());
            self.by_alloc
                .entry(t.alloc.clone())
                .or_default()
                .push(key.clone());
            self.by_key.insert(key, t.clone());
        }
        let by_key = &self.by_key;
        self.haproxy.retain(|k, _| by_key.contains_key(k));
        self.trackers.retain(|k, _| by_key.contains_key(k));
        self.metrics.disagreeing(
            self.trackers
                .values()
                .filter(|t| t.confirmed().is_some())
                .count(),
        );
    }

    /// Reads `show stat`; a server whose verdict flipped gets a read.
    async fn poll_haproxy(&mut self) {
        self.refresh_targets();
        let reply = match self.socket.send("show stat -1 4 -1").await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::debug!("verdict monitor: reading HAProxy's server states failed: {e}");
                return;
            }
        };
        let live = status_live::parse(&reply);
        for (key, target) in &self.by_key {
            let now = live
                .get(key)
                .and_then(|l| compare::haproxy(&l.status, &l.check_status, &l.last_check));
            let before = self.haproxy.insert(key.clone(), now.clone());
            let flipped = matches!(
                (&before, &now),
                (Some(Some(b)), Some(n)) if b.side != n.side
            );
            if flipped {
                let alloc = (target.namespace.clone(), target.alloc.clone());
                if self.queued.insert(alloc.clone()) {
                    self.urgent.push_back(alloc);
                } else if !self.urgent.contains(&alloc) {
                    // Queued by the sweep or a recheck: move it forward.
                    self.sweep.retain(|a| *a != alloc);
                    self.urgent.push_back(alloc);
                }
            }
        }
    }

    /// Starts a sweep when due, then makes the most urgent read.
    async fn read_next(&mut self) {
        let now = Instant::now();
        if now >= self.next_sweep {
            self.refresh_targets();
            let allocs: BTreeSet<Alloc> = self
                .by_key
                .values()
                .map(|t| (t.namespace.clone(), t.alloc.clone()))
                .collect();
            for alloc in allocs {
                if self.queued.insert(alloc.clone()) {
                    self.sweep.push_back(alloc);
                }
            }
            self.next_sweep = now + self.config.sweep_interval();
        }
        if now < self.next_read {
            return;
        }
        let due_recheck = self.rechecks.first().filter(|(at, _)| *at <= now).cloned();
        let (alloc, reason) = if let Some(alloc) = self.urgent.pop_front() {
            (alloc, "state-change")
        } else if let Some(entry) = due_recheck {
            self.rechecks.remove(&entry);
            (entry.1, "confirm")
        } else if let Some(alloc) = self.sweep.pop_front() {
            (alloc, "sweep")
        } else {
            return;
        };
        self.queued.remove(&alloc);
        self.next_read = now + self.config.request_gap();
        self.read(&alloc, reason).await;
    }

    async fn read(&mut self, (namespace, alloc): &Alloc, reason: &'static str) {
        self.metrics.verdict_read(reason);
        let results = match self.client.alloc_checks(namespace, alloc).await {
            Ok(results) => results,
            Err(e) => {
                self.metrics.verdict_read_failed();
                self.log_error(alloc, &e);
                return;
            }
        };
        let now = Instant::now();
        for key in self.by_alloc.get(alloc).cloned().unwrap_or_default() {
            let Some(target) = self.by_key.get(&key) else {
                continue;
            };
            let nomad = compare::nomad(&results, &target.service, &target.first_check);
            let haproxy = self.haproxy.get(&key).cloned().flatten();
            let tracker = self.trackers.entry(key.clone()).or_default();
            match tracker.observe(haproxy.as_ref(), nomad.as_ref(), now, target.settle) {
                Step::Nothing => {}
                Step::RecheckAt(at) => {
                    let entry = (namespace.clone(), alloc.clone());
                    if !self.rechecks.iter().any(|(_, a)| *a == entry) {
                        self.rechecks.insert((at, entry));
                    }
                }
                Step::Confirmed(d) => {
                    self.metrics.disagreement(&target.service, &d.nomad.check);
                    log_disagreement(target, &d);
                }
                Step::Resolved(d) => log_resolved(target, &d),
            }
        }
        self.metrics.disagreeing(
            self.trackers
                .values()
                .filter(|t| t.confirmed().is_some())
                .count(),
        );
    }

    fn log_error(&mut self, alloc: &str, e: &crate::nomad::Error) {
        let text = e.to_string();
        if e.is_not_found() {
            tracing::debug!(alloc = %escape_log(alloc), "verdict monitor: {text}");
            return;
        }
        if self.errors_logged.len() >= MAX_REMEMBERED_ERRORS {
            self.errors_logged.clear();
        }
        if self.errors_logged.insert(text.clone()) {
            let hint = if e.is_permission_denied() {
                " (the token needs read-job in the allocation's namespace)"
            } else {
                ""
            };
            tracing::warn!(
                alloc = %escape_log(alloc),
                "verdict monitor: reading Nomad's check results failed{hint}: {text}"
            );
        }
    }
}

fn log_disagreement(t: &Target, d: &Disagreement) {
    tracing::warn!(
        namespace = %escape_log(&t.namespace),
        service = %escape_log(&t.service),
        check = %escape_log(&d.nomad.check),
        alloc = %escape_log(&t.alloc),
        backend = %escape_log(&t.backend),
        server = %escape_log(&t.server),
        haproxy = %d.haproxy.side.as_str(),
        haproxy_output = %escape_log(&d.haproxy.output),
        nomad = %d.nomad.side.as_str(),
        nomad_output = %escape_log(&d.nomad.output),
        lasted_secs = d.lasted.as_secs(),
        "HAProxy and Nomad disagree on this instance's health; HAProxy's check keeps deciding its traffic"
    );
}

fn log_resolved(t: &Target, d: &Disagreement) {
    tracing::info!(
        namespace = %escape_log(&t.namespace),
        service = %escape_log(&t.service),
        alloc = %escape_log(&t.alloc),
        server = %escape_log(&t.server),
        verdict = %d.haproxy.side.as_str(),
        "HAProxy and Nomad agree again on this instance's health"
    );
}
