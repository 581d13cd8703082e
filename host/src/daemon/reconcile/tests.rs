//! The reconciler's scheduling, driven with a fake driver and a scripted
//! Nomad under tokio's paused time: every due time is asserted on the clock.

use super::*;
use crate::haproxy::{HeldBack, ReloadOutcome, Result as DriverResult};
use crate::nomad::fake::FakeApi;
use crate::nomad::{AllocStub, Change, Config as NomadConfig, Settings};
use crate::plan::{Actual, ChangeSet, Desired};
use crate::vocab::check::RenderContext;
use crate::vocab::syntax::join;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex};

static ENGINE: LazyLock<Arc<Engine>> = LazyLock::new(|| {
    Arc::new(
        Engine::new(&crate::mapping::Config::default(), RenderContext::default())
            .expect("built-ins"),
    )
});

const TTL: Duration = Duration::from_secs(30);

/// A driver that records each sync and answers with scripted reports.
#[derive(Debug, Default)]
struct FakeDriver {
    syncs: Mutex<Vec<(Instant, Desired)>>,
    reports: Mutex<VecDeque<ApplyReport>>,
}

impl FakeDriver {
    fn script(&self, report: ApplyReport) {
        self.reports.lock().unwrap().push_back(report);
    }

    fn sync_times(&self) -> Vec<Instant> {
        self.syncs.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }
}

impl Driver for FakeDriver {
    async fn actual(&self) -> DriverResult<Actual> {
        Ok(Actual::default())
    }

    async fn apply(&self, desired: &Desired, _changes: &ChangeSet) -> DriverResult<ApplyReport> {
        self.syncs
            .lock()
            .unwrap()
            .push((Instant::now(), desired.clone()));
        Ok(self.reports.lock().unwrap().pop_front().unwrap_or_default())
    }
}

fn settings() -> Settings {
    let settings = NomadConfig::default()
        .resolve(&BTreeMap::new())
        .expect("defaults");
    assert_eq!(settings.negative_cache_ttl, TTL);
    settings
}

/// A job `name` whose group service `name` has an HTTP check on `path`.
fn job(name: &str, path: &str) -> Value {
    json!({"ID": name, "Namespace": "default", "Version": 0, "CreateIndex": 5,
        "TaskGroups": [{"Name": "g",
            "Services": [{"Name": name, "PortLabel": "http", "Provider": "nomad",
                "Checks": [{"Name": "c", "Type": "http", "Path": path, "PortLabel": "",
                            "Interval": 10_000_000_000_i64, "Timeout": 2_000_000_000_i64}]}],
            "Tasks": [{"Name": "t"}]}]})
}

/// An enabled instance of service `name` (job `name`) in allocation `alloc`.
fn instance(name: &str, alloc: &str, port: u16) -> Arc<Instance> {
    let mut i = Instance::test(
        &format!("_nomad-task-{alloc}-group-g-{name}-http"),
        name,
        port,
    );
    i.job = name.into();
    i.alloc = alloc.into();
    i.tags = vec!["haproxy.enable=true".into()];
    Arc::new(i)
}

/// A Nomad with the allocations of `allocs` (service, alloc) and the jobs
/// of `jobs` (a job missing here cannot be read).
fn nomad(allocs: &[(&str, &str)], jobs: &[&str]) -> FakeApi {
    let api = FakeApi::default();
    {
        let mut st = api.state();
        for (service, alloc) in allocs {
            st.allocs
                .entry(("default".into(), (*service).into()))
                .or_default()
                .push(AllocStub {
                    id: (*alloc).into(),
                    job_version: 0,
                    task_group: "g".into(),
                    allocated_resources: None,
                    job: None,
                });
        }
        for name in jobs {
            st.jobs.insert(
                ("default".into(), (*name).into()),
                vec![job(name, &format!("/{name}"))],
            );
        }
    }
    api
}

fn reconciler(api: &FakeApi) -> Reconciler<FakeDriver, FakeApi> {
    Reconciler::new(
        FakeDriver::default(),
        ENGINE.clone(),
        Checks::new(api.clone(), &settings()),
        Scope::from_list(&["default".into()]),
    )
}

fn listed(instances: Vec<Arc<Instance>>) -> Change {
    Change::Relisted {
        scope: Scope::Namespace("default".into()),
        instances,
    }
}

fn key(name: &str) -> ServiceKey {
    ServiceKey {
        namespace: "default".into(),
        name: name.into(),
    }
}

/// The check lines of a service's backend in the last assembled state.
fn check_of(r: &Reconciler<FakeDriver, FakeApi>, name: &str) -> String {
    let backend = &r.assembled().backends[&key(name)];
    r.assembled().desired.backends[backend]
        .check
        .iter()
        .map(|l| join(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A reconciler over a Nomad with services web and api (one allocation
/// each, jobs of the same names) that has their listing.
fn web_and_api() -> Reconciler<FakeDriver, FakeApi> {
    let api = nomad(&[("web", "a0"), ("api", "b0")], &["web", "api"]);
    let mut r = reconciler(&api);
    r.apply(&listed(vec![
        instance("web", "a0", 8080),
        instance("api", "b0", 8081),
    ]));
    r
}

/// What the daemon's loop does without events: sleep until the earliest
/// due time, then run a pass.
async fn pass_when_due(r: &mut Reconciler<FakeDriver, FakeApi>) -> PassSummary {
    let at = r.next_due().expect("a due time");
    tokio::time::sleep_until(at).await;
    r.reconcile().await.expect("pass")
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_job_spec_is_read_again_exactly_at_the_negative_ttl() {
    let api = nomad(&[("web", "a0")], &[]);
    let mut r = reconciler(&api);
    let t0 = Instant::now();
    r.apply(&listed(vec![instance("web", "a0", 8080)]));
    let first = r.reconcile().await.expect("pass");
    assert_eq!(first.planned, 1);
    assert_eq!(api.calls("job "), vec![t0], "one failed read");
    assert!(!check_of(&r, "web").contains("httpchk"), "TCP until read");
    assert_eq!(r.next_due(), Some(t0 + TTL));

    // Nomad answers now; nothing else happens (no event, no resync).
    let path = ("default".to_string(), "web".to_string());
    api.state().jobs.insert(path, vec![job("web", "/web")]);
    let retry = pass_when_due(&mut r).await;
    assert_eq!(Instant::now(), t0 + TTL);
    assert_eq!(retry.planned, 1, "the service whose spec was missing");
    assert_eq!(api.calls("job "), vec![t0, t0 + TTL]);
    assert!(
        check_of(&r, "web").contains("/web"),
        "{}",
        check_of(&r, "web")
    );
    assert_eq!(r.next_due(), None, "nothing left to do without events");
}

#[tokio::test(start_paused = true)]
async fn an_event_before_the_retry_neither_plans_the_retry_early_nor_twice() {
    let api = nomad(&[("web", "a0"), ("api", "b0"), ("api", "b1")], &["api"]);
    let mut r = reconciler(&api);
    let t0 = Instant::now();
    r.apply(&listed(vec![
        instance("web", "a0", 8080),
        instance("api", "b0", 8081),
    ]));
    assert_eq!(r.reconcile().await.expect("pass").planned, 2);

    // One event for api at t0 + 10 s plans api, and only it, once.
    tokio::time::advance(Duration::from_secs(10)).await;
    r.apply(&Change::Upserted(instance("api", "b1", 8082)));
    let event = r.reconcile().await.expect("pass");
    assert_eq!(event.planned, 1);
    assert_eq!(
        r.plans()[&key("api")]
            .backend
            .as_ref()
            .unwrap()
            .servers
            .len(),
        2
    );
    assert_eq!(r.next_due(), Some(t0 + TTL), "web's retry is kept");
    assert_eq!(api.calls("job default/web").len(), 1);

    // The retry plans web, and only it; afterwards nothing is due.
    let retry = pass_when_due(&mut r).await;
    assert_eq!((Instant::now(), retry.planned), (t0 + TTL, 1));
    assert_eq!(api.calls("job default/web"), vec![t0, t0 + TTL]);
    assert_eq!(
        api.calls("job default/api").len(),
        1,
        "api's spec is cached"
    );
    assert_eq!(r.next_due(), Some(t0 + TTL + TTL), "still unreadable");
    assert_eq!(r.driver().sync_times().len(), 3, "one sync per pass");
}

#[tokio::test(start_paused = true)]
async fn a_driver_requeue_syncs_at_its_time_without_planning_anything() {
    let api = nomad(&[("web", "a0")], &["web"]);
    let mut r = reconciler(&api);
    let t0 = Instant::now();
    r.apply(&listed(vec![instance("web", "a0", 8080)]));
    r.driver().script(ApplyReport {
        requeue_after: Some(Duration::from_secs(20)),
        ..ApplyReport::default()
    });
    assert_eq!(r.reconcile().await.expect("pass").planned, 1);
    assert_eq!(r.next_due(), Some(t0 + Duration::from_secs(20)));
    let again = pass_when_due(&mut r).await;
    assert_eq!(again.planned, 0, "a drain's end needs a sync, not a plan");
    assert_eq!(
        r.driver().sync_times(),
        vec![t0, t0 + Duration::from_secs(20)]
    );
    assert_eq!(r.next_due(), None, "the second report asked for nothing");
}

#[tokio::test(start_paused = true)]
async fn a_check_haproxy_refuses_re_plans_the_service_it_names_and_only_it() {
    let mut r = web_and_api();
    let kept_at = std::env::temp_dir().join(format!("hnc-refused-{}.cfg", std::process::id()));
    std::fs::write(&kept_at, "backend default_web\n    option httpchk\n").expect("render");
    r.driver().script(ApplyReport {
        reload: ReloadOutcome::Done {
            worker_pid: 1,
            backends: vec!["default_web".into(), "default_api".into()],
            held_back: Some(HeldBack {
                backends: vec!["default_web".into()],
                alerts: Vec::new(),
                kept_at: kept_at.clone(),
            }),
        },
        ..ApplyReport::default()
    });
    let t0 = Instant::now();
    assert_eq!(r.reconcile().await.expect("pass").planned, 2);
    assert!(check_of(&r, "web").contains("/web"));
    assert_eq!(r.next_due(), Some(t0), "planned again at once");

    let again = pass_when_due(&mut r).await;
    let _ = std::fs::remove_file(&kept_at);
    assert_eq!(again.planned, 1, "web only");
    assert!(
        !check_of(&r, "web").contains("/web"),
        "web falls back to TCP: {}",
        check_of(&r, "web")
    );
    assert!(check_of(&r, "api").contains("/api"), "api keeps its check");
    assert_eq!(r.next_due(), None);
}

fn reloaded(backends: &[&str]) -> ApplyReport {
    ApplyReport {
        reload: ReloadOutcome::Done {
            worker_pid: 1,
            backends: backends.iter().map(|b| b.to_string()).collect(),
            held_back: None,
        },
        ..ApplyReport::default()
    }
}

#[tokio::test(start_paused = true)]
async fn reload_reasons_come_from_what_the_pass_changed() {
    let api = nomad(&[("web", "a0"), ("api", "b0")], &["web", "api"]);
    let mut r = reconciler(&api);
    let web = instance("web", "a0", 8080);
    let api_instance = instance("api", "b0", 8081);
    r.apply(&listed(vec![web.clone(), api_instance.clone()]));
    r.driver().script(reloaded(&["default_web", "default_api"]));
    let first = r.reconcile().await.expect("pass");
    assert_eq!(first.reload_reasons, vec![ReloadReason::BackendAdded]);

    r.apply(&Change::Removed(web));
    r.driver().script(reloaded(&["default_web"]));
    let removed = r.reconcile().await.expect("pass");
    assert_eq!(removed.planned, 1);
    assert_eq!(removed.reload_reasons, vec![ReloadReason::BackendRemoved]);

    let mut weighted = (*api_instance).clone();
    weighted.modify_index += 1;
    weighted.tags.push("haproxy.balance=leastconn".into());
    r.apply(&Change::Upserted(Arc::new(weighted)));
    r.driver().script(reloaded(&["default_api"]));
    let changed = r.reconcile().await.expect("pass");
    assert_eq!(changed.planned, 1);
    assert_eq!(changed.reload_reasons, vec![ReloadReason::BackendChanged]);
    let backend = &r.assembled().desired.backends["default_api"];
    assert_eq!(backend.balance, crate::plan::Balance::LeastConn);
}

#[tokio::test(start_paused = true)]
async fn a_job_change_plans_the_services_of_that_job_only() {
    let mut r = web_and_api();
    assert_eq!(r.reconcile().await.expect("pass").planned, 2);

    r.apply(&Change::JobChanged {
        namespace: "default".into(),
        job: "web".into(),
    });
    let pass = r.reconcile().await.expect("pass");
    assert_eq!(pass.services, BTreeSet::from([key("web")]));

    // A job with no instance here changes nothing.
    r.apply(&Change::JobChanged {
        namespace: "default".into(),
        job: "batch".into(),
    });
    assert_eq!(r.reconcile().await.expect("pass").planned, 0);
}
