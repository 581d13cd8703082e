//! Readiness for `/readyz`: the first full sync is done, Nomad's event
//! streams are connected, HAProxy answered the last sync, and every file
//! the connector owns was written.

use crate::nomad::{Health, HealthWatch};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Why the connector is not ready, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not ready: {}", .reasons.join("; "))]
pub struct NotReady {
    /// Every condition that fails, most fundamental first.
    pub reasons: Vec<String>,
}

/// The readiness state the daemon updates; cheap to clone.
///
/// # Guarantees
/// Ready exactly when [`Readiness::first_sync_done`] was called, every Nomad
/// scope's event stream is connected, the last sync reached HAProxy, and
/// no file is listed by [`Readiness::files_unwritten`].
#[derive(Debug, Clone)]
pub struct Readiness {
    nomad: HealthWatch,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    first_sync: bool,
    /// Set while syncs fail to reach HAProxy: since when, and the last error.
    haproxy_failing: Option<(Instant, String)>,
    /// The files whose last write failed, with the cause.
    unwritten: BTreeMap<PathBuf, String>,
}

impl Readiness {
    /// Not ready until the first full sync; Nomad's part read from `nomad`.
    pub fn new(nomad: HealthWatch) -> Readiness {
        Readiness {
            nomad,
            state: Arc::default(),
        }
    }

    /// Marks the first full sync done: every scope listed, the desired state
    /// planned and applied to HAProxy (which therefore answered).
    pub fn first_sync_done(&self) {
        let mut st = self.lock();
        st.first_sync = true;
        st.haproxy_failing = None;
    }

    /// HAProxy answered a sync. A sync whose reload was rejected or whose
    /// server changes partly failed still counts: HAProxy serves.
    pub fn haproxy_ok(&self) {
        self.lock().haproxy_failing = None;
    }

    /// A sync did not reach HAProxy (socket unreachable, unreadable answer,
    /// managed file not written). Keeps the time of the first failure in a row.
    pub fn haproxy_failed(&self, error: &dyn Display) {
        let mut st = self.lock();
        let since = st
            .haproxy_failing
            .as_ref()
            .map_or_else(Instant::now, |f| f.0);
        st.haproxy_failing = Some((since, error.to_string()));
    }

    /// The files whose last write failed (`haproxy::Snapshot::unwritten`):
    /// HAProxy would load their old contents after a reload or restart.
    pub fn files_unwritten(&self, files: BTreeMap<PathBuf, String>) {
        self.lock().unwritten = files;
    }

    /// Ready, or every reason why not.
    ///
    /// # Errors
    /// [`NotReady`] naming each failing condition.
    pub fn check(&self) -> Result<(), NotReady> {
        let mut reasons = Vec::new();
        let (first_sync, haproxy, unwritten) = {
            let st = self.lock();
            (
                st.first_sync,
                st.haproxy_failing.clone(),
                st.unwritten.clone(),
            )
        };
        if !first_sync {
            reasons.push(
                "the first full sync (list Nomad, apply to HAProxy) has not completed".into(),
            );
        }
        let scopes = self.nomad.scopes();
        if scopes.is_empty() {
            reasons.push("the Nomad watcher has no scope to watch".into());
        }
        for (scope, health) in &scopes {
            if !health.connected {
                reasons.push(disconnected(scope, health));
            }
        }
        if let Some((since, error)) = haproxy {
            reasons.push(format!(
                "HAProxy did not answer the last sync (failing for {}): {error}",
                secs(since.elapsed())
            ));
        }
        if !unwritten.is_empty() {
            reasons.push(unwritten_reason(&unwritten));
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(NotReady { reasons })
        }
    }

    /// Whether [`Readiness::check`] passes.
    pub fn is_ready(&self) -> bool {
        self.check().is_ok()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn disconnected(scope: &str, h: &Health) -> String {
    let quiet = h
        .stream_lag()
        .map(|lag| format!(", nothing received for {}", secs(lag)))
        .unwrap_or_default();
    let error = h
        .last_error
        .as_deref()
        .unwrap_or("no error yet (listing or connecting)");
    format!("nomad event stream for scope {scope:?} disconnected{quiet}: {error}")
}

/// The first three files with their causes, then how many more.
fn unwritten_reason(files: &BTreeMap<PathBuf, String>) -> String {
    let mut named: Vec<String> = files
        .iter()
        .take(3)
        .map(|(path, cause)| format!("{}: {cause}", path.display()))
        .collect();
    if files.len() > 3 {
        named.push(format!("and {} more", files.len() - 3));
    }
    format!(
        "{} file(s) the connector owns could not be written (they keep their old contents): {}",
        files.len(),
        named.join(", ")
    )
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn not_ready_before_the_first_sync_names_what_blocks_it() {
        let (board, watch) = HealthWatch::test_board(&["*"]);
        let r = Readiness::new(watch);
        tokio::time::advance(Duration::from_secs(12)).await;
        board.update("*", |h| h.last_error = Some("connection refused".into()));
        let err = r.check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "not ready: the first full sync (list Nomad, apply to HAProxy) has not completed; \
             nomad event stream for scope \"*\" disconnected, nothing received for 12s: \
             connection refused"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ready_after_the_first_sync_while_nomad_and_haproxy_answer() {
        let (board, watch) = HealthWatch::test_board(&["default", "apps"]);
        let r = Readiness::new(watch);
        board.update("default", |h| h.connected = true);
        board.update("apps", |h| h.connected = true);
        assert!(!r.is_ready());
        r.first_sync_done();
        assert_eq!(r.check(), Ok(()));

        board.update("apps", |h| {
            h.connected = false;
            h.last_error = Some("the stream ended".into());
        });
        let err = r.check().unwrap_err();
        assert_eq!(err.reasons.len(), 1);
        assert!(err.reasons[0].starts_with("nomad event stream for scope \"apps\" disconnected"));
        assert!(err.reasons[0].ends_with(": the stream ended"));
        board.update("apps", |h| h.connected = true);
        assert!(r.is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn haproxy_failures_count_from_the_first_in_a_row_until_it_answers() {
        let (board, watch) = HealthWatch::test_board(&["*"]);
        board.update("*", |h| h.connected = true);
        let r = Readiness::new(watch);
        r.first_sync_done();
        r.haproxy_failed(&"connect /run/haproxy/admin.sock: No such file");
        tokio::time::advance(Duration::from_secs(30)).await;
        r.haproxy_failed(&"connect /run/haproxy/admin.sock: Connection refused");
        let err = r.check().unwrap_err();
        assert_eq!(
            err.reasons,
            ["HAProxy did not answer the last sync (failing for 30s): \
              connect /run/haproxy/admin.sock: Connection refused"]
        );
        r.haproxy_ok();
        assert!(r.is_ready());
    }

    #[test]
    fn unwritten_files_make_it_not_ready_with_file_and_cause_until_written() {
        let (board, watch) = HealthWatch::test_board(&["*"]);
        board.update("*", |h| h.connected = true);
        let r = Readiness::new(watch);
        r.first_sync_done();
        let full = "No space left on device (os error 28)";
        let files = (0..5)
            .map(|n| {
                (
                    PathBuf::from(format!("/var/lib/h.state.0{n}")),
                    full.to_string(),
                )
            })
            .collect();
        r.files_unwritten(files);
        assert_eq!(
            r.check().unwrap_err().reasons,
            [
                "5 file(s) the connector owns could not be written (they keep their old \
              contents): /var/lib/h.state.00: No space left on device (os error 28), \
              /var/lib/h.state.01: No space left on device (os error 28), \
              /var/lib/h.state.02: No space left on device (os error 28), and 2 more"
            ]
        );
        r.files_unwritten(BTreeMap::new());
        assert!(r.is_ready());
    }

    #[test]
    fn a_watcher_without_scopes_is_never_ready() {
        let (_board, watch) = HealthWatch::test_board(&[]);
        let r = Readiness::new(watch);
        r.first_sync_done();
        assert_eq!(
            r.check().unwrap_err().reasons,
            ["the Nomad watcher has no scope to watch"]
        );
    }
}
