//! The `Sim` handle: starts the server, and drives the simulated cluster
//! (jobs, allocations, restarts, faults) from tests or the binary.

use parking_lot::{Mutex, MutexGuard};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::SimConfig;
use crate::faults::Faults;
use crate::identity::{Claims, Identities};
use crate::lifecycle::{PlaceAlloc, RegisterOutcome, SimError, StopKind};
use crate::state::{State, StoreSettings};

/// How the simulated agent restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartKind {
    /// Like a snapshot restore: the event buffer is dropped and every stream is
    /// closed (`subscription closed by server, client should resubscribe`);
    /// state and the Raft index carry on.
    KeepState,
    /// Like `nomad agent -dev` restarting: every connection drops, all state is
    /// gone and the Raft index starts again from 0.
    Wipe,
}

impl std::str::FromStr for RestartKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keep_state" => Ok(RestartKind::KeepState),
            "wipe" => Ok(RestartKind::Wipe),
            other => Err(format!("unknown restart kind {other:?} (keep_state, wipe)")),
        }
    }
}

/// State shared by the handle and the server tasks.
pub(crate) struct Shared {
    pub cfg: SimConfig,
    state: Mutex<State>,
    faults: Mutex<Faults>,
    /// Bumped after every change (wakes streams and blocking queries).
    pub changed: watch::Sender<u64>,
    /// Bumped when every connection must drop (wipe, shutdown).
    pub kill: watch::Sender<u64>,
    /// Set when the last `Sim` handle is dropped.
    pub shutdown: watch::Sender<bool>,
    /// Bumped by `cut_streams_mid_frame`.
    pub cut_epoch: AtomicU64,
    /// Workload identities issued to tasks.
    pub identities: Identities,
    /// The clients' check results, as tests set them.
    pub checks: Mutex<crate::model::checks::CheckStore>,
}

impl Shared {
    /// Locks the state store.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Locks the fault table.
    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock()
    }

    /// Wakes every waiter.
    pub(crate) fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn settings(&self) -> StoreSettings {
        settings_from(&self.cfg)
    }

    /// Runs a mutation and wakes waiters.
    ///
    /// The lock is handed to a waiting reader, if any: Nomad serves reads
    /// from state-store snapshots, so a run of applies never starves them,
    /// whereas a plain unlock lets a writer in a loop take the lock again
    /// before any waiting request thread wakes up.
    pub(crate) fn mutate<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.lock();
        let out = f(&mut state);
        MutexGuard::unlock_fair(state);
        self.notify();
        out
    }

    /// Restarts the simulated agent.
    pub(crate) fn restart(&self, kind: RestartKind) {
        {
            let mut st = self.lock();
            match kind {
                RestartKind::KeepState => st.broker.reset(),
                RestartKind::Wipe => {
                    let generation = st.broker.generation + 1;
                    *st = State::new(self.settings(), generation);
                }
            }
        }
        if kind == RestartKind::Wipe {
            self.kill.send_modify(|v| *v = v.wrapping_add(1));
        }
        self.notify();
    }
}

fn settings_from(cfg: &SimConfig) -> StoreSettings {
    StoreSettings {
        region: cfg.region.clone(),
        datacenter: cfg.datacenter.clone(),
        buffer_size: cfg.buffer_size,
        job_deleted_flag: cfg.job_deleted_flag,
    }
}

/// Stops the server when the last `Sim` clone is dropped.
struct ShutdownGuard(Arc<Shared>);

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
        self.0.kill.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// A running simulated Nomad agent (cheap to clone; the server stops when the
/// last clone is dropped).
#[derive(Clone)]
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _guard: Arc<ShutdownGuard>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// Binds `cfg.listen` (127.0.0.1:0 by default), and the Task API socket
    /// when `cfg.task_api_socket` is set, and serves in tokio tasks.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Sim> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let task_api = match &cfg.task_api_socket {
            Some(path) => Some(tokio::net::UnixListener::bind(path)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(settings_from(&cfg), 0)),
            faults: Mutex::new(Faults::default()),
            changed: watch::channel(0).0,
            kill: watch::channel(0).0,
            shutdown: watch::channel(false).0,
            cut_epoch: AtomicU64::new(0),
            identities: Identities::default(),
            checks: Mutex::new(Default::default()),
            cfg,
        });
        tokio::spawn(crate::http::server::serve(listener, shared.clone()));
        if let Some(unix) = task_api {
            tokio::spawn(crate::http::server::serve_task_api(unix, shared.clone()));
        }
        Ok(Sim {
            _guard: Arc::new(ShutdownGuard(shared.clone())),
            shared,
            addr,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Task API's `unix://` address, when it listens on one.
    pub fn task_api_url(&self) -> Option<String> {
        let path = self.shared.cfg.task_api_socket.as_ref()?;
        Some(format!("unix://{}", path.display()))
    }

    /// The default workload identity of `task` in allocation `alloc_id`:
    /// what `identity { env = true }` puts in the task's `NOMAD_TOKEN`.
    /// `None` if the allocation is unknown or has no such task.
    pub fn workload_identity(&self, alloc_id: &str, task: &str) -> Option<String> {
        let claims = {
            let st = self.shared.lock();
            let alloc = st.allocs.get(alloc_id)?;
            alloc.tasks.iter().any(|t| t == task).then(|| Claims {
                namespace: alloc.namespace.clone(),
                job_id: alloc.job_id.clone(),
                group: alloc.group.clone(),
                task: task.to_string(),
            })?
        };
        Some(self.shared.identities.issue(alloc_id, claims))
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// Registers a job given as `GET /v1/job/:id` returns it (PascalCase).
    ///
    /// # Panics
    /// On an invalid job (no `ID`, malformed groups); see [`Sim::try_register_job`].
    pub fn register_job(&self, job: Value) -> RegisterOutcome {
        match self.try_register_job(job) {
            Ok(o) => o,
            Err(e) => panic!("nomad-sim: register_job: {e}"),
        }
    }

    /// Registers a job: a new version (`JobRegistered`) if the spec changed,
    /// otherwise only an evaluation, as Nomad does.
    pub fn try_register_job(&self, job: Value) -> Result<RegisterOutcome, SimError> {
        self.shared.mutate(|st| st.register_job(job))
    }

    /// Stops (`purge = false`, a new version with `Stop: true`) or purges a job;
    /// its allocations are then stopped by a plan. False if there is no such job.
    pub fn deregister_job(&self, ns: &str, id: &str, purge: bool) -> bool {
        self.shared.mutate(|st| st.deregister_job(ns, id, purge))
    }

    /// Places an allocation and registers its services; returns the alloc ID.
    ///
    /// # Panics
    /// When the job, version or group does not exist; see [`Sim::try_place_alloc`].
    pub fn place_alloc(&self, req: PlaceAlloc) -> String {
        match self.try_place_alloc(req) {
            Ok(id) => id,
            Err(e) => panic!("nomad-sim: place_alloc: {e}"),
        }
    }

    /// Places an allocation: a `PlanResult` apply, the client's
    /// `ServiceRegistration` apply, then its `AllocationUpdated` (running) apply.
    pub fn try_place_alloc(&self, req: PlaceAlloc) -> Result<String, SimError> {
        self.shared.mutate(|st| st.place_alloc(req))
    }

    /// Promotes a canary's deployment (all its canaries, as Nomad does); the
    /// clients re-register them with `Tags`. False if not a live canary.
    pub fn promote(&self, alloc_id: &str) -> bool {
        self.shared.mutate(|st| st.promote(alloc_id))
    }

    /// Promotes every canary of `alloc_id`'s deployment at once, as
    /// `nomad deployment promote` does; the clients re-register them with
    /// `Tags`. False without an active deployment.
    pub fn promote_deployment(&self, alloc_id: &str) -> bool {
        self.shared.mutate(|st| st.promote_deployment(alloc_id))
    }

    /// Fails or cancels `alloc_id`'s deployment (`DeploymentStatusUpdate`);
    /// its canaries keep running, as canaries, until stopped. False without
    /// an active deployment.
    pub fn end_deployment(&self, alloc_id: &str, end: crate::DeploymentEnd) -> bool {
        self.shared.mutate(|st| st.end_deployment(alloc_id, end))
    }

    /// Sets the result Nomad's client reports for check `check` of service
    /// `service` in `alloc_id` (`/v1/client/allocation/:id/checks`); until
    /// set, a check is `pending`. No event: check results are not in Raft.
    pub fn set_check_result(
        &self,
        alloc_id: &str,
        service: &str,
        check: &str,
        outcome: crate::CheckOutcome,
    ) {
        let now = crate::ids::now_nanos() / 1_000_000_000;
        self.shared.checks.lock().insert(
            (alloc_id.into(), service.into(), check.into()),
            (outcome, i64::try_from(now).unwrap_or(i64::MAX)),
        );
    }

    /// Stops an allocation; `how` decides the Raft type of the service deletions.
    /// False if unknown or already terminal.
    pub fn stop_alloc(&self, alloc_id: &str, how: StopKind) -> bool {
        self.shared.mutate(|st| st.stop_alloc(alloc_id, how))
    }

    /// Restarts the simulated agent (see [`RestartKind`]).
    pub fn restart(&self, kind: RestartKind) {
        self.shared.restart(kind);
    }

    /// The next event frame on every stream open now is written half, then the
    /// connection is closed (heartbeats are not cut).
    pub fn cut_streams_mid_frame(&self) {
        self.shared.cut_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Answers requests whose path starts with `path_prefix` with `status` and a
    /// plain-text `body`, `count` times (`None` = until cleared).
    pub fn fail_requests(&self, path_prefix: &str, status: u16, body: &str, count: Option<usize>) {
        self.shared
            .faults()
            .add_failure(path_prefix, status, body, count);
    }

    /// Removes all failures and delays.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Delays requests whose path starts with `path_prefix` (zero removes the delay).
    pub fn set_delay(&self, path_prefix: &str, d: Duration) {
        self.shared.faults().set_delay(path_prefix, d);
    }

    /// Number of requests received whose path starts with `path_prefix`
    /// (e.g. `/v1/job/`, `/v1/allocation/`, `/v1/event/stream`).
    pub fn request_count(&self, path_prefix: &str) -> u64 {
        self.shared.faults().count_prefix(path_prefix)
    }

    /// Number of requests received for exactly `path` (query string aside):
    /// `/v1/job/web` counts job reads, not `/v1/job/web/allocations`.
    pub fn request_count_exact(&self, path: &str) -> u64 {
        self.shared.faults().count_exact(path)
    }

    /// Every current registration (all namespaces, ordered by ID), as `GET /v1/service/:name` shows them.
    pub fn services_snapshot(&self) -> Vec<Value> {
        self.shared
            .lock()
            .services
            .values()
            .map(crate::model::registrations::Registration::to_json)
            .collect()
    }

    /// The last applied Raft index.
    pub fn last_index(&self) -> u64 {
        self.shared.lock().index
    }

    /// Alloc IDs of a job, oldest first (all of them, terminal included).
    pub fn allocs_of_job(&self, ns: &str, job_id: &str) -> Vec<String> {
        let st = self.shared.lock();
        let mut allocs: Vec<_> = st
            .allocs_of(ns, job_id)
            .map(|a| (a.create_index, a.id.clone()))
            .collect();
        allocs.sort();
        allocs.into_iter().map(|(_, id)| id).collect()
    }
}
