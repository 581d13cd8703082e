//! Passes and the job-spec look-ups they wait for.

use super::*;
use crate::haproxy::Result as DriverResult;
use crate::haproxy::check::RenderContext;
use crate::nomad::fake::FakeApi;
use crate::plan::{Actual, ChangeSet};
use std::sync::Mutex;
use tokio::sync::Semaphore;

/// A driver that only remembers the servers of each synced desired state.
#[derive(Default)]
struct Synced(Mutex<Vec<BTreeSet<String>>>);

impl Synced {
    fn last(&self) -> BTreeSet<String> {
        self.0.lock().unwrap().last().cloned().unwrap_or_default()
    }
}

impl Driver for Arc<Synced> {
    async fn actual(&self) -> DriverResult<Actual> {
        Ok(Actual::default())
    }

    async fn apply(&self, _: &Desired, _: &ChangeSet) -> DriverResult<ApplyReport> {
        Ok(ApplyReport::default())
    }

    async fn sync(&self, desired: &Desired) -> DriverResult<ApplyReport> {
        let servers = desired
            .backends
            .values()
            .flat_map(|b| b.servers.values().map(|s| format!("{}:{}", s.addr, s.port)))
            .collect();
        self.0.lock().unwrap().push(servers);
        Ok(ApplyReport::default())
    }
}

fn instance(id: &str, service: &str, port: u16) -> Arc<Instance> {
    Arc::new(Instance {
        tags: vec!["haproxy.enable=true".into()],
        job: service.into(),
        alloc: format!("{id}-alloc"),
        ..Instance::test(id, service, port)
    })
}

fn servers(ports: &[u16]) -> BTreeSet<String> {
    ports.iter().map(|p| format!("127.0.0.1:{p}")).collect()
}

/// A streaming reconciler over `api`, listed with `web` at port 8001 and
/// `api` at 9001.
async fn listed(api: &FakeApi) -> (Reconciler<Arc<Synced>, FakeApi>, Arc<Synced>) {
    let settings = crate::nomad::Config::default()
        .resolve(&std::collections::BTreeMap::new())
        .expect("settings");
    let engine =
        Engine::new(&crate::mapping::Config::default(), RenderContext::default()).expect("engine");
    let driver = Arc::new(Synced::default());
    let mut r = Reconciler::new(
        driver.clone(),
        Arc::new(engine),
        Checks::new(api.clone(), &settings),
        vec![Scope::All],
    );
    r.stream_lookups();
    r.apply(&Change::Relisted {
        scope: Scope::All,
        instances: vec![instance("a", "web", 8001), instance("d", "api", 9001)],
    });
    r.reconcile().await.expect("first pass");
    (r, driver)
}

fn gate(api: &FakeApi) -> Arc<Semaphore> {
    let gate = Arc::new(Semaphore::new(0));
    api.state().alloc_gate = Some(gate.clone());
    gate
}

#[tokio::test]
async fn slow_lookups_of_new_instances_do_not_hold_back_the_pass() {
    let api = FakeApi::default();
    let (mut r, driver) = listed(&api).await;
    assert_eq!(driver.last(), servers(&[8001, 9001]));
    let gate = gate(&api);
    r.apply(&Change::Upserted(instance("b", "web", 8002)));
    r.apply(&Change::Upserted(instance("e", "web", 8003)));
    r.apply(&Change::Removed(instance("d", "api", 9001)));
    // The pass ends with the look-ups of b and e still running: d has
    // left, b and e are not in yet.
    tokio::time::timeout(Duration::from_secs(5), r.reconcile())
        .await
        .expect("the pass does not wait for b and e")
        .expect("pass");
    assert_eq!(driver.last(), servers(&[8001]));
    // A service whose every instance waits keeps its plan meanwhile.
    r.apply(&Change::Removed(instance("a", "web", 8001)));
    tokio::time::timeout(Duration::from_secs(5), r.reconcile())
        .await
        .expect("the pass does not wait for b and e")
        .expect("pass");
    assert_eq!(driver.last(), servers(&[8001]));
    gate.add_permits(100);
    let resolved = tokio::time::timeout(Duration::from_secs(5), r.resolved())
        .await
        .expect("a look-up ends");
    r.record(resolved);
    r.reconcile().await.expect("pass");
    assert_eq!(driver.last(), servers(&[8002, 8003]));
}

#[tokio::test]
async fn a_lone_new_instance_is_waited_for() {
    let api = FakeApi::default();
    let (mut r, driver) = listed(&api).await;
    let gate = gate(&api);
    r.apply(&Change::Upserted(instance("b", "web", 8002)));
    let pass = r.reconcile();
    tokio::pin!(pass);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut pass)
            .await
            .is_err(),
        "one new instance is planned with its look-up"
    );
    gate.add_permits(100);
    pass.await.expect("pass");
    assert_eq!(driver.last(), servers(&[8001, 8002, 9001]));
}

#[tokio::test]
async fn a_new_service_waits_for_its_lookups() {
    let api = FakeApi::default();
    let (mut r, driver) = listed(&api).await;
    let gate = gate(&api);
    r.apply(&Change::Upserted(instance("c", "new", 7001)));
    let pass = r.reconcile();
    tokio::pin!(pass);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut pass)
            .await
            .is_err(),
        "a new service is planned with its look-ups"
    );
    gate.add_permits(100);
    pass.await.expect("pass");
    assert!(
        driver.last().contains("127.0.0.1:7001"),
        "{:?}",
        driver.last()
    );
}

#[tokio::test]
async fn a_changed_job_keeps_its_instances_while_they_are_looked_up_again() {
    let api = FakeApi::default();
    let (mut r, driver) = listed(&api).await;
    let gate = gate(&api);
    r.apply(&Change::JobChanged {
        namespace: "default".into(),
        job: "web".into(),
    });
    let pass = r.reconcile();
    tokio::pin!(pass);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut pass)
            .await
            .is_err(),
        "the instance is looked up again before it is re-planned"
    );
    gate.add_permits(100);
    pass.await.expect("pass");
    assert_eq!(driver.last(), servers(&[8001, 9001]));
}
