//! The watcher's health, for `/readyz` and metrics: connected, last index,
//! reconnects, index resets, the last error.

use std::collections::BTreeMap;
use tokio::sync::watch;

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
    /// The most recent error, kept after recovery (`connected` tells the present).
    pub last_error: Option<String>,
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
    /// A board with one entry per scope.
    pub(crate) fn new(scopes: impl IntoIterator<Item = String>) -> HealthBoard {
        let map = scopes.into_iter().map(|s| (s, Health::default())).collect();
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
}
