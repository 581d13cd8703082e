//! The watcher: list, then stream from the last index + 1, re-list after
//! every reconnect. A `State` plus `step` per scope (as kube's watcher):
//! `step` does one piece of I/O and returns the next state, the changes
//! and an [`Action`]; only the loop in `run` waits.

use super::backoff::{Action, Backoff, RepeatLog};
use super::client::Api;
use super::frames::Decoder;
use super::health::{HealthBoard, HealthWatch};
use super::http::HttpClient;
use super::instance::{Change, Scope};
use super::store::Catalog;
use crate::nomad::config::Settings;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A stream that delivered an event frame, or stayed up this long, worked:
/// the next stream failure starts the back-off over. A server (or proxy)
/// that accepts streams and drops them at once is retried ever more slowly.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// After a stream that delivered events ends (Nomad drops a reader that
/// falls more than its event buffer behind, a burst of placements can do
/// that), the stream is resumed at once and the re-list that repairs what
/// was missed waits until the stream has been this quiet...
const QUIET_BEFORE_RELIST: Duration = Duration::from_millis(50);

/// ...or this long at most, under events that never pause.
const RELIST_WITHIN: Duration = Duration::from_secs(1);

/// Receives what the job-spec check cache must know from the stream.
pub(crate) trait Invalidate: Send + Sync {
    /// A `Job` event.
    fn job_event(&self, namespace: &str, job: &str, version: u64, create_index: u64, deleted: bool);
    /// A server-side update of an allocation with instances (in-place update).
    fn alloc_planned(&self, namespace: &str, job: &str, alloc: &str);
    /// Nomad's index went backwards: everything cached may be wrong.
    fn server_reset(&self);
}

/// Watches Nomad's service registrations and sends [`Change`]s.
///
/// One list-and-stream per scope: `namespaces = ["*"]` is one scope
/// (`namespace=*`), a list of namespaces is one scope each.
pub struct Watcher<C: Api = HttpClient> {
    client: C,
    scopes: Vec<Scope>,
    settings: Settings,
    board: HealthBoard,
    invalidate: Option<Arc<dyn Invalidate>>,
}

impl<C: Api> Watcher<C> {
    /// A watcher of `settings.namespaces`, with `settings`' timing.
    pub fn new(client: C, settings: &Settings) -> Watcher<C> {
        let scopes = Scope::from_list(&settings.namespaces);
        Watcher {
            board: HealthBoard::new(scopes.iter().map(ToString::to_string)),
            client,
            scopes,
            settings: settings.clone(),
            invalidate: None,
        }
    }

    /// Forwards `Job` (and planned `Allocation`) events to a check resolver,
    /// which drops what they make stale.
    pub fn with_checks<D: Api>(mut self, checks: &crate::nomad::Checks<D>) -> Watcher<C> {
        self.invalidate = Some(Arc::new(checks.clone()));
        self
    }

    /// A handle on the watcher's health (take it before `run`).
    pub fn health(&self) -> HealthWatch {
        self.board.watch()
    }

    /// Lists and streams until `shutdown` resolves or `tx`'s receiver is dropped.
    ///
    /// # Guarantees
    /// Never gives up: every failure is logged, shown in [`Self::health`] and
    /// retried after a back-off (at the cap after `Permission denied`).
    pub async fn run(self, tx: mpsc::Sender<Change>, shutdown: impl Future<Output = ()> + Send) {
        let mut set = tokio::task::JoinSet::new();
        for scope in self.scopes {
            let lp = ScopeLoop::new(
                self.client.clone(),
                scope,
                &self.settings,
                self.board.clone(),
                self.invalidate.clone(),
            );
            set.spawn(lp.run(tx.clone()));
        }
        drop(tx);
        tokio::select! {
            () = shutdown => {}
            () = async { while set.join_next().await.is_some() {} } => {}
        }
    }
}

/// Where one scope's loop is.
pub(crate) enum State<S> {
    /// Open the stream, then list everything (start-up, after every
    /// failure or stream end).
    Relist,
    /// The stream is open (unread, from `from`): list everything.
    List { body: S, from: u64 },
    /// Listed: open the stream from this index (after an index reset).
    Subscribe { from: u64 },
    /// Reading the stream.
    Streaming(Box<Streaming<S>>),
}

/// An open stream.
pub(crate) struct Streaming<S> {
    body: S,
    decoder: Decoder,
    requested: u64,
    opened: Instant,
    connected: bool,
    /// Event frames received at or after the requested index.
    frames: u64,
}

/// The outcome of one step.
pub(crate) struct Step<S> {
    pub next: State<S>,
    pub changes: Vec<Change>,
    pub action: Action,
}

/// One scope's list-and-stream.
pub(crate) struct ScopeLoop<C: Api> {
    client: C,
    scope: Scope,
    idle_timeout: Duration,
    max_frame: usize,
    board: HealthBoard,
    invalidate: Option<Arc<dyn Invalidate>>,
    /// Delays after failed requests (opening the stream, listing); a
    /// successful list resets it.
    request_backoff: Backoff,
    /// Delays after streams that fail; a stream that worked
    /// ([`STABLE_AFTER`]) resets it. Kept apart so that a stream refused
    /// after every successful list (a token without `read-job` everywhere
    /// on Nomad 1.11.2+) still backs off, and so that failed lists during
    /// one outage do not lengthen the wait after the next stream failure.
    stream_backoff: Backoff,
    view: Catalog,
    /// Highest Raft index seen (frames, lists).
    last_index: Option<u64>,
    /// Highest service-table index known: `X-Nomad-Index` of the lists and
    /// indexes of `Service` events. A list below it means a wiped server.
    services_index: u64,
    /// Service events at or below these indexes are already in the list.
    stale_all: u64,
    stale_names: HashMap<(String, String), u64>,
    streams_opened: u64,
    failure_log: RepeatLog,
    /// A resumed stream may have missed events: re-list by then at the latest.
    relist_due: Option<Instant>,
}

impl<C: Api> ScopeLoop<C> {
    pub(crate) fn new(
        client: C,
        scope: Scope,
        settings: &Settings,
        board: HealthBoard,
        invalidate: Option<Arc<dyn Invalidate>>,
    ) -> ScopeLoop<C> {
        ScopeLoop {
            client,
            scope,
            idle_timeout: settings.idle_timeout,
            max_frame: settings.max_frame_bytes,
            board,
            invalidate,
            request_backoff: Backoff::new(settings.backoff_min, settings.backoff_max),
            stream_backoff: Backoff::new(settings.backoff_min, settings.backoff_max),
            view: Catalog::new(),
            last_index: None,
            services_index: 0,
            stale_all: 0,
            stale_names: HashMap::new(),
            streams_opened: 0,
            failure_log: RepeatLog::default(),
            relist_due: None,
        }
    }

    async fn run(mut self, tx: mpsc::Sender<Change>) {
        let mut state = State::Relist;
        loop {
            let step = self.step(state).await;
            for change in step.changes {
                if tx.send(change).await.is_err() {
                    return;
                }
            }
            if let Action::RetryAfter(d) = step.action {
                tokio::time::sleep(d).await;
            }
            state = step.next;
        }
    }

    /// One piece of work: a full list, opening the stream, or one chunk.
    pub(crate) async fn step(&mut self, state: State<C::Stream>) -> Step<C::Stream> {
        match state {
            State::Relist => {
                // The stream opens before the list: it then starts at or
                // before the list's index, so every event after the list
                // arrives on it (events the list holds are skipped). Opened
                // after, it could ask for an index a burst has already
                // pushed out of Nomad's event buffer, and Nomad would
                // silently start at the oldest event it still has.
                let from = self.next_index();
                match self.open(from).await {
                    Ok(body) => Step {
                        next: State::List { body, from },
                        changes: Vec::new(),
                        action: Action::Continue,
                    },
                    Err(e) => self.failed(e, None, Vec::new()),
                }
            }
            State::List { body, from } => match self.relist().await {
                Ok((changes, from_now)) => {
                    // Nomad answers again: the next failure starts over.
                    self.request_backoff.reset();
                    Step {
                        // Nomad's index went backwards: the stream asked for
                        // indexes the new server has not reached; ask again.
                        next: if from_now < from {
                            State::Subscribe { from: from_now }
                        } else {
                            self.streaming(body, from)
                        },
                        changes,
                        action: Action::Continue,
                    }
                }
                Err(e) => self.failed(e, None, Vec::new()),
            },
            State::Subscribe { from } => match self.open(from).await {
                Ok(body) => Step {
                    next: self.streaming(body, from),
                    changes: Vec::new(),
                    action: Action::Continue,
                },
                Err(e) => self.failed(e, None, Vec::new()),
            },
            State::Streaming(s) => self.read(s).await,
        }
    }

    fn key(&self) -> &str {
        self.scope.param()
    }
}

mod apply;
mod failures;
mod relist;
mod stream;

#[cfg(test)]
#[path = "watcher_tests/mod.rs"]
mod tests;
