//! `run`: builds the parts of the data path and drives the reconcile loop.

use super::admin::{self, AdminState, Readiness};
use super::reconcile::Reconciler;
use crate::config::Resolved;
use crate::haproxy::{Driver, RuntimeDriver};
use crate::mapping::Engine;
use crate::metrics::{ApplyOutcome, Metrics, Sources};
use crate::nomad::{self, Checks, HttpClient, Scope, Watcher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the daemon can be told while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Reload the config file's plugins and settings (SIGHUP); keep the old
    /// ones if the new ones are invalid.
    Reload,
    /// Finish the batch in flight, then stop (SIGTERM, SIGINT).
    Shutdown,
}

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mapping engine (plugins, settings) is unusable.
    #[error(transparent)]
    Mapping(#[from] crate::mapping::Error),
    /// The Nomad client could not be built.
    #[error(transparent)]
    Nomad(#[from] nomad::Error),
    /// HAProxy cannot be driven.
    #[error(transparent)]
    Haproxy(#[from] crate::haproxy::Error),
    /// The admin listener could not start.
    #[error(transparent)]
    Admin(#[from] admin::Error),
    /// Another connector drives this HAProxy, or its lock cannot be taken.
    #[error(transparent)]
    Locked(#[from] super::lock::Error),
    /// Nomad could not be listed in time (for one-shot commands).
    #[error("nomad could not be listed within {seconds} s: {reason}")]
    NomadUnavailable {
        /// The time allowed.
        seconds: u64,
        /// The watcher's last error.
        reason: String,
    },
}

/// The parts of the data path, built from a config.
struct Parts {
    reconciler: Reconciler<Arc<RuntimeDriver>, HttpClient>,
    client: HttpClient,
    watcher: Watcher,
    namespaces: Vec<String>,
    driver: Arc<RuntimeDriver>,
    checks: Checks<HttpClient>,
    engine: Arc<Engine>,
}

async fn build(config: &Resolved) -> Result<Parts, Error> {
    let engine = Arc::new(Engine::new(&config.mapping, config.render.clone())?);
    let settings = &config.nomad;
    let client = HttpClient::new(settings)?;
    let checks = Checks::new(client.clone(), settings);
    let watcher = Watcher::new(client.clone(), settings).with_checks(&checks);
    let driver = Arc::new(RuntimeDriver::start(config.haproxy.clone()).await?);
    let scopes = Scope::from_list(&settings.namespaces);
    Ok(Parts {
        reconciler: Reconciler::new(driver.clone(), engine.clone(), checks.clone(), scopes),
        client,
        watcher,
        namespaces: settings.namespaces.clone(),
        driver,
        checks,
        engine,
    })
}

/// Lists Nomad once and plans every service, without touching HAProxy:
/// the state `plan` and `explain` show.
///
/// # Errors
/// A part cannot start, or Nomad cannot be listed within `timeout`.
pub async fn snapshot(
    config: &Resolved,
    timeout: Duration,
) -> Result<Reconciler<Arc<RuntimeDriver>, HttpClient>, Error> {
    let Parts {
        mut reconciler,
        watcher,
        ..
    } = build(config).await?;
    reconciler.keep_reports();
    let health = watcher.health();
    let (tx, mut changes) = mpsc::channel(4096);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(watcher.run(tx, async {
        let _ = stopped.await;
    }));
    let listed = tokio::time::timeout(timeout, async {
        while !reconciler.ready() {
            match changes.recv().await {
                Some(change) => reconciler.apply(&change),
                None => break,
            }
        }
    })
    .await;
    let _ = stop.send(());
    let _ = task.await;
    if listed.is_err() || !reconciler.ready() {
        return Err(Error::NomadUnavailable {
            seconds: timeout.as_secs(),
            reason: health
                .get()
                .last_error
                .unwrap_or_else(|| "no answer".into()),
        });
    }
    reconciler.plan().await;
    Ok(reconciler)
}

/// Runs the daemon until [`Control::Shutdown`] (or the control channel closes).
///
/// `config_path` is re-read on [`Control::Reload`].
///
/// # Errors
/// Another connector holds the lock beside the managed config
/// ([`super::Lock`]), or a part cannot start: plugins, Nomad settings, or
/// HAProxy's sockets.
pub async fn run(
    config: Resolved,
    config_path: Option<PathBuf>,
    control: mpsc::Receiver<Control>,
) -> Result<(), Error> {
    // Before anything touches HAProxy; held until the daemon returns.
    let lock = super::Lock::acquire(&super::Lock::path_for(&config.haproxy.managed_config))?;
    tracing::info!(lock = %lock.path().display(), "this connector alone drives this HAProxy");
    let Parts {
        mut reconciler,
        client,
        watcher,
        namespaces,
        driver,
        checks,
        engine,
    } = build(&config).await?;
    let readiness = Readiness::new(watcher.health());
    let (engine_cell, engine_now) = tokio::sync::watch::channel(engine);
    let mut control = interrupting(control, engine_cell.subscribe());
    let metrics = Arc::new(Metrics::new(sources(
        &readiness, &watcher, &driver, &checks, engine_now,
    )));
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut publisher = None;
    if let Some(addr) = config.admin_listen {
        let listener = admin::bind(addr).await?;
        // The status page shows each instance's report: keep them.
        reconciler.keep_reports();
        let (status_tx, published) = admin::Publisher::new();
        publisher = Some(status_tx);
        let status = admin::StatusSource::new(
            published,
            engine_cell.subscribe(),
            watcher.health(),
            &config.haproxy.stats_socket,
        );
        let state = AdminState {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            status: Some(status),
        };
        tracing::info!(%addr, "admin listener: /metrics, /healthz, /readyz, /status");
        tokio::spawn(async move {
            let shutdown = async {
                let _ = admin_stopped.await;
            };
            if let Err(e) = admin::serve(listener, state, shutdown).await {
                tracing::error!("admin listener stopped: {e}");
            }
        });
    }

    let (targets, compared) = tokio::sync::watch::channel(Arc::new(Vec::new()));
    let mut publish = super::verdicts::Publish::new(config.verdicts.haproxy_poll());
    let (stop_verdicts, verdicts_stopped) = tokio::sync::oneshot::channel::<()>();
    let verdicts = super::verdicts::spawn(
        client,
        config.verdicts.clone(),
        &config.haproxy.stats_socket,
        metrics.clone(),
        compared,
        async {
            let _ = verdicts_stopped.await;
        },
    );

    let (tx, watched) = mpsc::channel(4096);
    let (stop_watcher, watcher_stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher_task = tokio::spawn(watcher.run(tx, async {
        let _ = watcher_stopped.await;
    }));
    let (forwarded, mut changes) = mpsc::channel(4096);
    tokio::spawn(super::prefetch::forward(watched, forwarded, checks.clone()));
    let mut resync = tokio::time::interval(config.resync_interval);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trim = super::trim::Schedule::default();
    let mut reloads = super::config_reload::Reloads::start(config_path);
    tracing::info!(?namespaces, "connector running");

    loop {
        // The earliest due time the reconciler holds (a spec to read again,
        // a drain's end, a refused check to plan again).
        let due = reconciler.next_due();
        let wake_at = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            message = control.recv() => match message {
                Some(Control::Reload) => reloads.request(),
                Some(Control::Shutdown) | None => break,
            },
            Some(engine) = reloads.built.recv() => {
                engine_cell.send_replace(engine.clone());
                reconciler.set_engine(engine);
            }
            change = changes.recv() => {
                let Some(change) = change else { break };
                reconciler.apply(&change);
                publisher.iter_mut().for_each(|p| p.observe(&change));
                // Coalesce a burst: take everything already waiting.
                while let Ok(change) = changes.try_recv() {
                    reconciler.apply(&change);
                    publisher.iter_mut().for_each(|p| p.observe(&change));
                }
            }
            _ = resync.tick() => reconciler.mark_all_dirty(),
            () = tokio::time::sleep_until(wake_at), if due.is_some() => {}
            () = tokio::time::sleep_until(trim.due().unwrap_or(wake_at)), if trim.due().is_some() => {
                trim.run();
                continue;
            }
            () = tokio::time::sleep_until(publish.due().unwrap_or(wake_at)), if publish.due().is_some() => {
                if publish.take(Instant::now()) {
                    targets.send_replace(Arc::new(reconciler.verdict_targets()));
                }
                continue;
            }
        }
        if !reconciler.ready() {
            continue;
        }
        let started = Instant::now();
        let result = reconciler.reconcile().await;
        metrics.apply_finished(
            started.elapsed(),
            ApplyOutcome::of(&result.as_ref().map(|o| o.report.clone())),
        );
        readiness.files_unwritten(driver.stats().unwritten);
        match result {
            Ok(outcome) => {
                readiness.haproxy_ok();
                readiness.first_sync_done();
                for reason in &outcome.reload_reasons {
                    metrics.reloaded(*reason);
                }
                if let Some(p) = &mut publisher {
                    p.after_pass(
                        reconciler.plans_mut(),
                        &outcome.services,
                        &outcome.reload_reasons,
                    );
                }
                if verdicts.is_some() && outcome.planned > 0 {
                    publish.changed(Instant::now());
                    if publish.take(Instant::now()) {
                        targets.send_replace(Arc::new(reconciler.verdict_targets()));
                    }
                }
                metrics.servers_managed(
                    reconciler
                        .assembled()
                        .desired
                        .backends
                        .values()
                        .map(|b| b.servers.len())
                        .sum(),
                );
                trim.after_pass(
                    outcome.planned >= super::trim::LARGE_PASS
                        || !outcome.reload_reasons.is_empty(),
                    Instant::now(),
                );
            }
            Err(e) => {
                tracing::error!("haproxy sync failed, retrying: {e}");
                readiness.haproxy_failed(&e);
            }
        }
    }
    if let Err(e) = driver.flush().await {
        tracing::error!("could not write the last changes to the managed files: {e}");
    }
    tracing::info!("shutting down: the last batch is applied");
    let _ = stop_watcher.send(());
    let _ = stop_admin.send(());
    let _ = stop_verdicts.send(());
    let _ = watcher_task.await;
    if let Some(task) = verdicts {
        let _ = task.await;
    }
    Ok(())
}

/// Forwards the control messages; a stop request first interrupts the
/// plugins, so that a call in flight (up to its deadline) does not hold up
/// the loop that is to see the request.
fn interrupting(
    mut control: mpsc::Receiver<Control>,
    engine: tokio::sync::watch::Receiver<Arc<Engine>>,
) -> mpsc::Receiver<Control> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(message) = control.recv().await {
            if message == Control::Shutdown {
                engine.borrow().interrupt();
            }
            if tx.send(message).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// What `/metrics` reads at scrape time.
fn sources(
    readiness: &Readiness,
    watcher: &Watcher,
    driver: &Arc<RuntimeDriver>,
    checks: &Checks<HttpClient>,
    engine: tokio::sync::watch::Receiver<Arc<Engine>>,
) -> Sources {
    let (ready, health, driver, checks) = (
        readiness.clone(),
        watcher.health(),
        driver.clone(),
        checks.clone(),
    );
    Sources {
        engine: Arc::new(move || engine.borrow().stats()),
        haproxy: Arc::new(move || driver.stats()),
        nomad: Arc::new(move || health.scopes()),
        checks: Arc::new(move || checks.stats()),
        ready: Arc::new(move || ready.is_ready()),
    }
}

/// The daemon shares its driver with the metrics.
impl<D: Driver> Driver for Arc<D> {
    fn actual(
        &self,
    ) -> impl std::future::Future<Output = crate::haproxy::Result<crate::plan::Actual>> + Send {
        (**self).actual()
    }

    fn apply(
        &self,
        desired: &crate::plan::Desired,
        changes: &crate::plan::ChangeSet,
    ) -> impl std::future::Future<Output = crate::haproxy::Result<crate::haproxy::ApplyReport>> + Send
    {
        (**self).apply(desired, changes)
    }

    fn sync_within(
        &self,
        desired: &crate::plan::Desired,
        scope: &std::collections::BTreeSet<String>,
    ) -> impl std::future::Future<Output = crate::haproxy::Result<crate::haproxy::ApplyReport>> + Send
    {
        (**self).sync_within(desired, scope)
    }
}
