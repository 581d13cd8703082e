//! Tests of the job-spec check resolver against a scripted Nomad.

use super::*;
use crate::nomad::config::Config;
use crate::nomad::fake::{FakeApi, join_all};
use crate::nomad::watch::wire::{AllocatedResources, JobVersion, PortMapping, SharedResources};
use serde_json::json;
use std::collections::BTreeMap;

fn settings() -> Settings {
    Config::default().resolve(&BTreeMap::new()).unwrap()
}

fn job(version: u64, path: &str) -> Value {
    let check = |path: &str, port: &str| {
        json!({"Name": "c", "Type": "http", "Path": path, "PortLabel": port,
               "Interval": 10_000_000_000_i64, "Timeout": 2_000_000_000_i64})
    };
    json!({"ID": "web", "Namespace": "default", "Version": version, "CreateIndex": 5,
        "TaskGroups": [{"Name": "g",
            "Services": [{"Name": "web", "PortLabel": "http", "Provider": "nomad",
                          "Checks": [check(path, "")]}],
            "Tasks": [{"Name": "t", "Services": [
                {"Name": "admin", "PortLabel": "admin", "Provider": "nomad",
                 "Checks": [check("/ready", "health")]},
                {"Name": "bare", "PortLabel": "admin", "Provider": "nomad"}]}]}]})
}

fn stub(id: &str, version: u64) -> AllocStub {
    AllocStub {
        id: id.into(),
        job_version: version,
        task_group: "g".into(),
        allocated_resources: None,
        job: None,
    }
}

fn inst(alloc: &str, workload: &str, service: &str, label: &str) -> Instance {
    Instance {
        job: "web".into(),
        alloc: alloc.into(),
        ..Instance::test(
            &format!("_nomad-task-{alloc}-{workload}-{service}-{label}"),
            service,
            8080,
        )
    }
}

fn fake(versions: &[Value], allocs: Vec<AllocStub>) -> FakeApi {
    let api = FakeApi::default();
    {
        let mut st = api.state();
        st.jobs
            .insert(("default".into(), "web".into()), versions.to_vec());
        st.allocs.insert(("default".into(), "web".into()), allocs);
    }
    api
}

fn found(l: CheckLookup) -> SpecCheck {
    match l {
        CheckLookup::Found(s) => (*s).clone(),
        other => panic!("expected Found, got {other:?}"),
    }
}

#[tokio::test]
async fn each_allocation_gets_the_check_of_the_version_it_runs() {
    let api = fake(
        &[job(0, "/old"), job(1, "/new")],
        vec![stub("a0", 0), stub("a1", 1)],
    );
    let checks = Checks::new(api.clone(), &settings());
    let new = found(
        checks
            .check_for(&inst("a1", "group-g", "web", "http"))
            .await,
    );
    assert_eq!(
        (new.job_version, new.check.unwrap().path.as_str()),
        (1, "/new")
    );
    let old = found(
        checks
            .check_for(&inst("a0", "group-g", "web", "http"))
            .await,
    );
    assert_eq!(
        (old.job_version, old.check.unwrap().path.as_str()),
        (0, "/old")
    );
    assert_eq!((old.group.as_str(), old.task.as_str()), ("g", ""));
    assert_eq!(api.calls("job ").len() + api.calls("versions ").len(), 2);
}

#[tokio::test]
async fn a_burst_of_lookups_of_one_version_makes_one_spec_fetch() {
    let allocs: Vec<_> = (0..200).map(|i| stub(&format!("a{i}"), 0)).collect();
    let api = fake(&[job(0, "/h")], allocs);
    let checks = Checks::new(api.clone(), &settings());
    let instances: Vec<_> = (0..200)
        .map(|i| inst(&format!("a{i}"), "group-g", "web", "http"))
        .collect();
    let lookups = instances.iter().map(|i| checks.check_for(i)).collect();
    let results = join_all(lookups).await;
    assert!(results.iter().all(|r| matches!(r, CheckLookup::Found(_))));
    assert_eq!(api.calls("job ").len(), 1);
    assert!(api.calls("allocations ").len() <= 2);
    assert_eq!(checks.stats().spec_fetches, 1);
}

#[tokio::test]
async fn a_prefetch_leaves_the_lookup_nothing_to_read() {
    let api = fake(&[job(0, "/h")], vec![stub("a0", 0)]);
    let checks = Checks::new(api.clone(), &settings());
    let instance = inst("a0", "group-g", "web", "http");
    checks.prefetch(&instance).await;
    let read = api.state().calls.len();
    assert!(read >= 2, "the allocation and the spec were read");
    assert_eq!(checks.stats().lookups, 0, "a prefetch is not a look-up");
    let spec = found(checks.check_for(&instance).await);
    assert_eq!(spec.check.map(|c| c.path), Some("/h".to_string()));
    assert_eq!(api.state().calls.len(), read, "no second read");
}

#[tokio::test]
async fn a_check_on_another_port_label_gets_that_port_from_the_allocation() {
    let api = fake(&[job(0, "/h")], vec![stub("a0", 0)]);
    api.state().full_allocs.insert(
        "a0".into(),
        AllocStub {
            allocated_resources: Some(AllocatedResources {
                shared: SharedResources {
                    ports: vec![PortMapping {
                        label: "health".into(),
                        value: 9000,
                    }],
                },
            }),
            // A full allocation embeds the job version it runs.
            job: Some(JobVersion { version: 0 }),
            ..stub("a0", 0)
        },
    );
    let checks = Checks::new(api.clone(), &settings());
    let admin = found(checks.check_for(&inst("a0", "t", "admin", "admin")).await);
    let check = admin.check.unwrap();
    assert_eq!(
        (check.port_label.as_str(), check.check_port),
        ("health", Some(9000))
    );
    assert_eq!(admin.task, "t");
    // The service's own port needs no allocation read.
    let web = found(
        checks
            .check_for(&inst("a0", "group-g", "web", "http"))
            .await,
    );
    assert_eq!(web.check.unwrap().check_port, None);
    assert_eq!(api.calls("allocation ").len(), 1);
    assert_eq!(
        found(checks.check_for(&inst("a0", "t", "admin", "admin")).await)
            .check
            .unwrap()
            .check_port,
        Some(9000)
    );
    assert_eq!(api.calls("allocation ").len(), 1);
}

#[tokio::test]
async fn a_service_without_checks_is_found_with_none() {
    let api = fake(&[job(0, "/h")], vec![stub("a0", 0)]);
    let checks = Checks::new(api, &settings());
    let bare = found(checks.check_for(&inst("a0", "t", "bare", "admin")).await);
    assert_eq!((bare.check, bare.service.as_str()), (None, "bare"));
}

#[tokio::test]
async fn the_flag_off_disables_lookups_without_requests() {
    let api = fake(&[job(0, "/h")], vec![stub("a0", 0)]);
    let mut s = settings();
    s.job_spec_checks = false;
    let checks = Checks::new(api.clone(), &s);
    let l = checks
        .check_for(&inst("a0", "group-g", "web", "http"))
        .await;
    assert_eq!(l, CheckLookup::Disabled);
    assert!(api.state().calls.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_read_falls_back_and_is_retried_after_the_negative_ttl() {
    let api = fake(&[], vec![stub("a0", 0)]);
    let checks = Checks::new(api.clone(), &settings());
    let i = inst("a0", "group-g", "web", "http");
    let CheckLookup::Unavailable {
        reason,
        retry_after,
    } = checks.check_for(&i).await
    else {
        panic!("expected Unavailable")
    };
    assert!(reason.contains("reading job web"), "{reason}");
    assert_eq!(retry_after, Duration::from_secs(30));
    assert!(matches!(
        checks.check_for(&i).await,
        CheckLookup::Unavailable { .. }
    ));
    assert_eq!(api.calls("job ").len(), 1);
    api.state()
        .jobs
        .insert(("default".into(), "web".into()), vec![job(0, "/h")]);
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(matches!(checks.check_for(&i).await, CheckLookup::Found(_)));
    assert_eq!(api.calls("job ").len(), 2);
}

#[tokio::test]
async fn an_unmatched_registration_is_unavailable_with_a_reason() {
    let api = fake(&[job(0, "/h")], vec![stub("a0", 0)]);
    let checks = Checks::new(api, &settings());
    let l = checks.check_for(&inst("a0", "t", "other", "x")).await;
    assert!(
        matches!(l, CheckLookup::Unavailable { reason, .. } if reason.contains("no service block"))
    );
    let l = checks.check_for(&inst("zz", "t", "admin", "admin")).await;
    assert!(
        matches!(l, CheckLookup::Unavailable { reason, .. } if reason.contains("allocation zz"))
    );
}

#[tokio::test]
async fn a_recreated_job_or_a_wiped_server_drops_cached_specs() {
    let api = fake(&[job(0, "/first")], vec![stub("a0", 0)]);
    let checks = Checks::new(api.clone(), &settings());
    let i = inst("a0", "group-g", "web", "http");
    found(checks.check_for(&i).await);
    // Same job instance (CreateIndex 5): versions are immutable, no refetch.
    checks.job_event("default", "web", 0, 5, false);
    found(checks.check_for(&i).await);
    assert_eq!(api.calls("job ").len(), 1);
    // Purged and registered again: version 0 is another spec.
    let mut again = job(0, "/second");
    again["CreateIndex"] = json!(40);
    api.state()
        .jobs
        .insert(("default".into(), "web".into()), vec![again]);
    checks.job_event("default", "web", 0, 40, false);
    let s = found(checks.check_for(&i).await);
    assert_eq!(s.check.unwrap().path, "/second");
    checks.server_reset();
    found(checks.check_for(&i).await);
    assert_eq!(api.calls("job ").len(), 3);
}
