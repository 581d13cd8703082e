//! The watcher's health, for `/readyz` and metrics: connected, last index,
//! reconnects, index resets, events by topic, stream lag, the last error.

use super::events::TOPICS;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// A snapshot of the watcher's health (all scopes together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Every scope has listed and its event stream delivered its first heartbeat.
    pub connected: bool,
    /// Highest Raft index seen.
    pub last_index: u64,
    /// Times a stream was re-opened after the first.
    pub reconnects: u64,
    /// Times Nomad's index went backwards (a wiped server) and the client started over.
    pub index_resets: u64,
    /// Event frames applied.
    pub frames: u64,
    /// Events received, by topic (a topic not subscribed to counts as `other`,
    /// so a misbehaving server cannot grow this map).
    pub events: BTreeMap<&'static str, u64>,
    /// When the last frame or heartbeat arrived, or the watcher started if
    /// none has yet (the oldest scope's, in an aggregate).
    pub last_received: Option<Instant>,
    /// The most recent error, kept after recovery (`connected` tells the present).
    pub last_error: Option<String>,
}

impl Health {
    /// Stream lag: the age of the last frame or heartbeat (Nomad sends a
    /// heartbeat every 30 s, so a healthy stream stays below that and a
    /// stalled one grows without bound). `None` if nothing was ever recorded.
    pub fn stream_lag(&self) -> Option<Duration> {
        self.last_received.map(|at| at.elapsed())
    }

    /// Records a frame or heartbeat that arrived `at`, with its events' topics.
    pub(crate) fn received<'a>(&mut self, at: Instant, topics: impl IntoIterator<Item = &'a str>) {
        self.last_received = Some(at);
        for topic in topics {
            let known = TOPICS.iter().find(|t| **t == topic).copied();
            *self.events.entry(known.unwrap_or("other")).or_default() += 1;
        }
    }
}

/// Read side: a cheap handle to clone into `/readyz` and metrics.
#[derive(Debug, Clone)]
pub struct HealthWatch {
    rx: watch::Receiver<BTreeMap<String, Health>>,
}

impl HealthWatch {
    /// The current health.
    pub fn get(&self) -> Health {
        aggregate(&self.rx.borrow())
    }

    /// The current health of each scope (`*` or a namespace), for metrics
    /// and for naming the scope that is down.
    pub fn scopes(&self) -> BTreeMap<String, Health> {
        self.rx.borrow().clone()
    }

    /// Waits until `pred` holds (returns at once if it does); the health then.
    /// Returns the last health if the watcher is gone.
    pub async fn wait_until(&mut self, mut pred: impl FnMut(&Health) -> bool) -> Health {
        if let Ok(m) = self.rx.wait_for(|m| pred(&aggregate(m))).await {
            return aggregate(&m);
        }
        self.get()
    }
}

fn aggregate(scopes: &BTreeMap<String, Health>) -> Health {
    let mut h = Health {
        connected: !scopes.is_empty(),
        ..Health::default()
    };
    for s in scopes.values() {
        h.connected &= s.connected;
        h.last_index = h.last_index.max(s.last_index);
        h.reconnects += s.reconnects;
        h.index_resets += s.index_resets;
        h.frames += s.frames;
        for (topic, n) in &s.events {
            *h.events.entry(topic).or_default() += n;
        }
        h.last_received = match (h.last_received, s.last_received) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if s.last_error.is_some() {
            h.last_error.clone_from(&s.last_error);
        }
    }
    h
}

/// Write side, shared by the scope loops.
#[derive(Debug, Clone)]
pub(crate) struct HealthBoard {
    tx: watch::Sender<BTreeMap<String, Health>>,
}

impl HealthBoard {
    /// A board with one entry per scope; the lag of each counts from now.
    pub(crate) fn new(scopes: impl IntoIterator<Item = String>) -> HealthBoard {
        let start = Health {
            last_received: Some(Instant::now()),
            ..Health::default()
        };
        let map = scopes.into_iter().map(|s| (s, start.clone())).collect();
        HealthBoard {
            tx: watch::channel(map).0,
        }
    }

    /// A read handle.
    pub(crate) fn watch(&self) -> HealthWatch {
        HealthWatch {
            rx: self.tx.subscribe(),
        }
    }

    /// Updates one scope's entry.
    pub(crate) fn update(&self, scope: &str, f: impl FnOnce(&mut Health)) {
        self.tx
            .send_modify(|m| f(m.entry(scope.to_string()).or_default()));
    }
}

#[cfg(test)]
impl HealthWatch {
    /// A board and its watch, for tests outside `nomad` that play the watcher.
    pub(crate) fn test_board(scopes: &[&str]) -> (HealthBoard, HealthWatch) {
        let board = HealthBoard::new(scopes.iter().map(ToString::to_string));
        let watch = board.watch();
        (board, watch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connected_only_when_every_scope_is() {
        let board = HealthBoard::new(["a".to_string(), "b".to_string()]);
        let w = board.watch();
        board.update("a", |h| {
            h.connected = true;
            h.last_index = 9;
        });
        assert!(!w.get().connected);
        board.update("b", |h| {
            h.connected = true;
            h.reconnects = 2;
            h.last_error = Some("x".into());
        });
        let h = w.get();
        assert!(h.connected);
        assert_eq!((h.last_index, h.reconnects), (9, 2));
        assert_eq!(h.last_error.as_deref(), Some("x"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_aggregate_sums_topics_and_takes_the_oldest_scopes_lag() {
        let board = HealthBoard::new(["a".to_string(), "b".to_string()]);
        let w = board.watch();
        tokio::time::advance(Duration::from_secs(40)).await;
        board.update("a", |h| h.received(Instant::now(), ["Service", "Job"]));
        let h = w.get();
        assert_eq!(h.stream_lag(), Some(Duration::from_secs(40)));
        board.update("b", |h| {
            h.received(Instant::now(), ["Service", "Evaluation"])
        });
        let h = w.get();
        assert_eq!(h.stream_lag(), Some(Duration::ZERO));
        let events: Vec<_> = h.events.into_iter().collect();
        assert_eq!(events, [("Job", 1), ("Service", 2), ("other", 1)]);
        assert_eq!(w.scopes()["b"].events["other"], 1);
    }
}
