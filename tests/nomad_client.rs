//! The Nomad client (`nomad::Watcher`, `nomad::Checks`) against the Nomad
//! API simulator: listing and streaming, every deletion type, restarts and
//! cuts, rolling deploys, a registration burst, permission errors.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use haproxy_nomad_connector::nomad::{
    self, Catalog, Change, CheckLookup, Checks, Config, HealthWatch, HttpClient, Instance,
    Settings, SpecCheck, Watcher,
};
use nomad_sim::{Acl, AclToken, PlaceAlloc, RestartKind, Sim, SimConfig, StopKind, StreamMode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// Generous bound for anything that must happen.
const SOON: Duration = Duration::from_secs(15);

fn sim_config() -> SimConfig {
    SimConfig {
        heartbeat: Duration::from_millis(200),
        ..SimConfig::default()
    }
}

fn settings(sim: &Sim, namespaces: &[&str], token: Option<&str>) -> Settings {
    Config {
        address: Some(sim.url()),
        token: token.map(str::to_string),
        namespaces: Some(namespaces.iter().map(|n| n.to_string()).collect()),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(400),
        ..Config::default()
    }
    .resolve(&BTreeMap::new())
    .expect("settings")
}

/// A job with one group-level Nomad service and one check.
fn http_job(ns: &str, id: &str, service: &str, label: &str, check: Value) -> Value {
    json!({
        "ID": id, "Namespace": ns,
        "TaskGroups": [{"Name": "g",
            "Services": [{"Name": service, "PortLabel": label, "Provider": "nomad",
                          "Tags": ["v1"], "Checks": [check]}],
            "Tasks": [{"Name": "t"}]}]
    })
}

fn http_check(path: &str, port_label: &str) -> Value {
    json!({"Name": "health", "Type": "http", "Path": path, "PortLabel": port_label,
           "Interval": 10_000_000_000_i64, "Timeout": 2_000_000_000_i64})
}

fn place(sim: &Sim, ns: &str, job: &str, ports: &[(&str, u16)]) -> String {
    let mut p = PlaceAlloc {
        namespace: ns.into(),
        ..PlaceAlloc::new(job, "g")
    };
    for (label, port) in ports {
        p = p.port(label, *port);
    }
    sim.place_alloc(p)
}

/// The watcher running in the background, its changes applied to a catalog.
struct Running {
    catalog: Arc<Mutex<Catalog>>,
    log: Arc<Mutex<Vec<Change>>>,
    /// Upserted/Removed changes that changed nothing: duplicates.
    noops: Arc<Mutex<Vec<Change>>>,
    health: HealthWatch,
    checks: Checks,
    _stop: oneshot::Sender<()>,
}

fn start(settings: &Settings) -> Running {
    let client = HttpClient::new(settings).expect("client");
    let checks = Checks::new(client.clone(), settings);
    let watcher = Watcher::new(client, settings).with_checks(&checks);
    let health = watcher.health();
    let (tx, mut rx) = mpsc::channel(4096);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(watcher.run(tx, async {
        let _ = stopped.await;
    }));
    let catalog = Arc::new(Mutex::new(Catalog::new()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let noops = Arc::new(Mutex::new(Vec::new()));
    let (c, l, n) = (catalog.clone(), log.clone(), noops.clone());
    tokio::spawn(async move {
        while let Some(change) = rx.recv().await {
            let changed = c.lock().unwrap().apply(&change);
            if !changed && matches!(change, Change::Upserted(_) | Change::Removed(_)) {
                n.lock().unwrap().push(change.clone());
            }
            l.lock().unwrap().push(change);
        }
    });
    Running {
        catalog,
        log,
        noops,
        health,
        checks,
        _stop: stop,
    }
}

/// What a consumer can compare: id → (namespace, service, job, alloc, address:port, tags).
type View = BTreeMap<String, (String, String, String, String, String, Vec<String>)>;

fn truth(sim: &Sim) -> View {
    sim.services_snapshot()
        .into_iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            let tags = r["Tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let addr = format!("{}:{}", s("Address"), r["Port"]);
            (
                s("ID"),
                (
                    s("Namespace"),
                    s("ServiceName"),
                    s("JobID"),
                    s("AllocID"),
                    addr,
                    tags,
                ),
            )
        })
        .collect()
}

fn view(catalog: &Catalog) -> View {
    catalog
        .instances()
        .map(|i| {
            let addr = format!("{}:{}", i.address, i.port);
            let v = (
                i.namespace.clone(),
                i.service.clone(),
                i.job.clone(),
                i.alloc.clone(),
                addr,
                i.tags.clone(),
            );
            (i.id.clone(), v)
        })
        .collect()
}

impl Running {
    async fn converges_to(&self, sim: &Sim, what: &str) {
        let deadline = Instant::now() + SOON;
        loop {
            let (want, got) = (truth(sim), view(&self.catalog.lock().unwrap()));
            if want == got {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: never converged\nwant {want:#?}\ngot {got:#?}\nhealth {:?}",
                self.health.get()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn instances(&self) -> Vec<Instance> {
        self.catalog.lock().unwrap().instances().cloned().collect()
    }

    fn assert_no_duplicates(&self) {
        let noops = self.noops.lock().unwrap();
        assert!(noops.is_empty(), "changes that changed nothing: {noops:#?}");
    }
}

async fn found(checks: &Checks, i: &Instance) -> SpecCheck {
    match checks.check_for(i).await {
        CheckLookup::Found(s) => (*s).clone(),
        other => panic!("{}: expected a job-spec check, got {other:?}", i.id),
    }
}

#[tokio::test]
async fn startup_listing_and_stream_yield_exactly_the_instances_with_their_checks() {
    let sim = Sim::start(sim_config()).await.unwrap();
    sim.register_job(http_job(
        "default",
        "web",
        "web",
        "http",
        http_check("/health", ""),
    ));
    sim.register_job(json!({
        "ID": "api", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "server", "Services": [
            {"Name": "${NOMAD_JOB_NAME}-api", "PortLabel": "http", "Provider": "nomad",
             "Checks": [{"Type": "tcp", "Interval": 5_000_000_000_i64, "Timeout": 1_000_000_000_i64}]},
            {"Name": "api-consul", "PortLabel": "http"}]}]}]
    }));
    sim.register_job(http_job(
        "apps",
        "worker",
        "worker",
        "main",
        http_check("/ready", "health"),
    ));
    place(&sim, "default", "web", &[("http", 8001)]);
    place(&sim, "default", "web", &[("http", 8002)]);
    place(&sim, "default", "api", &[("http", 8101)]);

    let run = start(&settings(&sim, &["*"], None));
    run.converges_to(&sim, "start-up listing").await;
    place(&sim, "apps", "worker", &[("main", 8201), ("health", 9201)]);
    place(&sim, "default", "web", &[("http", 8003)]);
    run.converges_to(&sim, "streamed registrations").await;

    let instances = run.instances();
    let by_service: BTreeMap<_, usize> = instances.iter().fold(BTreeMap::new(), |mut m, i| {
        *m.entry((i.namespace.as_str(), i.service.as_str()))
            .or_default() += 1;
        m
    });
    assert_eq!(
        by_service,
        BTreeMap::from([
            (("apps", "worker"), 1),
            (("default", "api-api"), 1),
            (("default", "web"), 3)
        ])
    );
    for i in &instances {
        let spec = found(&run.checks, i).await;
        let check = spec.check.expect("a declared check");
        match i.service.as_str() {
            "web" => assert_eq!(
                (
                    check.check_type.as_str(),
                    check.path.as_str(),
                    check.check_port
                ),
                ("http", "/health", None)
            ),
            "api-api" => {
                assert_eq!(
                    (check.check_type.as_str(), spec.task.as_str()),
                    ("tcp", "server")
                );
                assert_eq!(spec.service, "${NOMAD_JOB_NAME}-api");
            }
            "worker" => assert_eq!(
                (check.path.as_str(), check.check_port),
                ("/ready", Some(9201))
            ),
            other => panic!("unexpected service {other}"),
        }
    }
    assert!(run.health.get().connected);
    run.assert_no_duplicates();
}

#[tokio::test]
async fn deletions_of_every_raft_type_are_understood_as_deletions() {
    let sim = Sim::start(sim_config()).await.unwrap();
    sim.register_job(http_job(
        "default",
        "web",
        "web",
        "http",
        http_check("/h", ""),
    ));
    let allocs: Vec<String> = (0..4)
        .map(|n| place(&sim, "default", "web", &[("http", 8000 + n)]))
        .collect();
    let run = start(&settings(&sim, &["default"], None));
    run.converges_to(&sim, "listing").await;
    let mut health = run.health.clone();
    tokio::time::timeout(SOON, health.wait_until(|h| h.connected))
        .await
        .expect("connected");
    let kinds = [
        StopKind::ClientDeregister, // ServiceDeregistration
        StopKind::ClientTerminal,   // AllocationUpdated
        StopKind::PlanTerminal,     // PlanResult
        StopKind::NodeDown,         // NodeStreamEvent
    ];
    for (alloc, kind) in allocs.iter().zip(kinds) {
        assert!(sim.stop_alloc(alloc, kind));
    }
    run.converges_to(&sim, "after the four stops").await;
    assert!(run.catalog.lock().unwrap().is_empty());
    let removed: BTreeSet<String> = run
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|c| match c {
            Change::Removed(i) => Some(i.alloc.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        removed,
        allocs.iter().cloned().collect(),
        "each deletion came as a Removed change"
    );
    assert_eq!(
        run.health.get().reconnects,
        0,
        "deletions came from the stream, not a re-list"
    );
    run.assert_no_duplicates();
}

#[tokio::test]
async fn restarts_and_a_cut_mid_frame_converge_to_the_servers_truth() {
    let sim = Sim::start(sim_config()).await.unwrap();
    sim.register_job(http_job(
        "default",
        "web",
        "web",
        "http",
        http_check("/before", ""),
    ));
    let first = place(&sim, "default", "web", &[("http", 8001)]);
    place(&sim, "default", "web", &[("http", 8002)]);
    let run = start(&settings(&sim, &["*"], None));
    run.converges_to(&sim, "listing").await;
    let mut health = run.health.clone();
    tokio::time::timeout(SOON, health.wait_until(|h| h.connected))
        .await
        .expect("connected");

    // A frame cut in half: the client must notice, re-list, and catch up.
    sim.cut_streams_mid_frame();
    place(&sim, "default", "web", &[("http", 8003)]);
    run.converges_to(&sim, "after the cut").await;
    tokio::time::timeout(
        SOON,
        health.wait_until(|h| h.reconnects >= 1 && h.connected),
    )
    .await
    .expect("reconnected after the cut");

    // A snapshot-restore restart (buffer lost, state kept), with changes meanwhile.
    sim.restart(RestartKind::KeepState);
    sim.stop_alloc(&first, StopKind::PlanTerminal);
    place(&sim, "default", "web", &[("http", 8004)]);
    run.converges_to(&sim, "after a restart keeping state")
        .await;

    // A wiped dev agent: index back to 0, other jobs and allocations.
    sim.restart(RestartKind::Wipe);
    sim.register_job(http_job(
        "default",
        "web",
        "web",
        "http",
        http_check("/after-wipe", ""),
    ));
    place(&sim, "default", "web", &[("http", 8005)]);
    run.converges_to(&sim, "after a wipe").await;
    tokio::time::timeout(
        SOON,
        health.wait_until(|h| h.index_resets >= 1 && h.connected),
    )
    .await
    .expect("index reset detected");
    let only = run.instances();
    assert_eq!(only.len(), 1);
    let spec = found(&run.checks, &only[0]).await;
    assert_eq!(
        spec.check.unwrap().path,
        "/after-wipe",
        "the check cache started over too"
    );
    run.assert_no_duplicates();
}

#[tokio::test]
async fn a_rolling_deploy_keeps_each_allocation_on_its_versions_check() {
    let sim = Sim::start(sim_config()).await.unwrap();
    sim.register_job(http_job(
        "default",
        "web",
        "web",
        "http",
        http_check("/v0", ""),
    ));
    let old: Vec<String> = (0..2)
        .map(|n| place(&sim, "default", "web", &[("http", 8000 + n)]))
        .collect();
    let run = start(&settings(&sim, &["*"], None));
    run.converges_to(&sim, "listing").await;
    for i in run.instances() {
        assert_eq!(found(&run.checks, &i).await.check.unwrap().path, "/v0");
    }
    let v1 = sim.register_job(http_job(
        "default",
        "web",
        "web",
        "http",
        http_check("/v1", ""),
    ));
    assert_eq!(v1.version, 1);
    let new: Vec<String> = (0..2)
        .map(|n| place(&sim, "default", "web", &[("http", 8100 + n)]))
        .collect();
    run.converges_to(&sim, "mid-deploy").await;
    for i in run.instances() {
        let spec = found(&run.checks, &i).await;
        let (want_version, want_path) = if old.contains(&i.alloc) {
            (0, "/v0")
        } else {
            (1, "/v1")
        };
        assert!(old.contains(&i.alloc) || new.contains(&i.alloc));
        assert_eq!(
            (spec.job_version, spec.check.unwrap().path.as_str()),
            (want_version, want_path),
            "{}",
            i.alloc
        );
    }
    assert!(
        run.log
            .lock()
            .unwrap()
            .iter()
            .any(|c| matches!(c, Change::JobChanged { job, .. } if job == "web")),
        "the new version was announced"
    );
    for a in &old {
        sim.stop_alloc(a, StopKind::PlanTerminal);
    }
    run.converges_to(&sim, "deploy done").await;
    run.assert_no_duplicates();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_registrations_of_one_version_makes_exactly_one_job_fetch() {
    let sim = Sim::start(sim_config()).await.unwrap();
    sim.register_job(http_job(
        "default",
        "burst",
        "burst",
        "http",
        http_check("/h", ""),
    ));
    let settings = settings(&sim, &["*"], None);
    let client = HttpClient::new(&settings).unwrap();
    let checks = Checks::new(client.clone(), &settings);
    let watcher = Watcher::new(client, &settings).with_checks(&checks);
    let (tx, mut rx) = mpsc::channel(4096);
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(watcher.run(tx, async {
        let _ = stopped.await;
    }));
    // The consumer: every new instance's check is looked up off the event path.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let c = checks.clone();
    tokio::spawn(async move {
        let mut asked = BTreeSet::new();
        while let Some(change) = rx.recv().await {
            let new: Vec<Arc<Instance>> = match change {
                Change::Upserted(i) => vec![i],
                Change::Relisted { instances, .. } => instances,
                _ => Vec::new(),
            };
            for i in new {
                if asked.insert(i.id.clone()) {
                    let (c, done) = (c.clone(), done_tx.clone());
                    tokio::spawn(async move {
                        let _ = done.send(c.check_for(&i).await);
                    });
                }
            }
        }
    });
    let started = Instant::now();
    for n in 0..1000u16 {
        place(&sim, "default", "burst", &[("http", 10_000 + n)]);
        if n % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    let placed = started.elapsed();
    let mut found_n = 0;
    while found_n < 1000 {
        let lookup = tokio::time::timeout(SOON, done_rx.recv())
            .await
            .expect("lookups finish")
            .unwrap();
        assert!(matches!(lookup, CheckLookup::Found(_)), "{lookup:?}");
        found_n += 1;
    }
    let spec_fetches = sim.request_count_exact("/v1/job/burst")
        + sim.request_count_exact("/v1/job/burst/versions");
    let stats = checks.stats();
    println!(
        "figure: 1000 registrations → {spec_fetches} job spec fetch(es), {} allocation-list fetch(es), {} alloc reads, placed in {placed:?}, all checks in {:?}",
        sim.request_count_exact("/v1/job/burst/allocations"),
        stats.alloc_fetches,
        started.elapsed()
    );
    assert_eq!(spec_fetches, 1);
    assert_eq!(stats.spec_fetches, 1);
}

#[tokio::test]
async fn permission_denied_gives_a_clear_error_and_a_bounded_retry() {
    let read_default = |denied: u16, mode: StreamMode| SimConfig {
        acl: Some(Acl::with_tokens(vec![AclToken::read(
            "reader",
            &["default"],
        )])),
        acl_denied_status: denied,
        stream_mode: mode,
        ..sim_config()
    };
    // An unknown token: 403 on the list.
    let sim = Sim::start(read_default(403, StreamMode::Hijacked))
        .await
        .unwrap();
    let run = start(&settings(&sim, &["default"], Some("wrong")));
    let error = bounded_failure(&sim, &run, "/v1/services").await;
    assert!(error.contains("permission denied (HTTP 403"), "{error}");

    // A token lacking read-job somewhere, `*` stream on Nomad ≤ 1.9.5: 500 `Permission denied`.
    let sim = Sim::start(read_default(500, StreamMode::Chunked))
        .await
        .unwrap();
    sim.register_job(http_job(
        "apps",
        "other",
        "other",
        "http",
        http_check("/", ""),
    ));
    sim.register_job(http_job(
        "default",
        "web",
        "web",
        "http",
        http_check("/", ""),
    ));
    place(&sim, "default", "web", &[("http", 8001)]);
    let run = start(&settings(&sim, &["*"], Some("reader")));
    let error = bounded_failure(&sim, &run, "/v1/event/stream").await;
    assert!(
        error.contains("permission denied (HTTP 500") && error.contains("every namespace"),
        "{error}"
    );

    // The same on 1.11.2+: 200, then the connection closes.
    let sim = Sim::start(read_default(403, StreamMode::Hijacked))
        .await
        .unwrap();
    sim.register_job(http_job(
        "apps",
        "other",
        "other",
        "http",
        http_check("/", ""),
    ));
    let run = start(&settings(&sim, &["*"], Some("reader")));
    let error = bounded_failure(&sim, &run, "/v1/event/stream").await;
    assert!(error.contains("before its first heartbeat"), "{error}");

    // Following the hint (list the readable namespaces) works with the same token.
    let run = start(&settings(&sim, &["default"], Some("reader")));
    let mut health = run.health.clone();
    tokio::time::timeout(SOON, health.wait_until(|h| h.connected))
        .await
        .expect("connects");
}

/// Waits for the watcher to report an error, then checks it retries without
/// hammering Nomad: `backoff_max` is 400 ms, a hot loop would make hundreds
/// of requests in the window below. Returns the error.
async fn bounded_failure(sim: &Sim, run: &Running, path: &str) -> String {
    let mut health = run.health.clone();
    let h = tokio::time::timeout(SOON, health.wait_until(|h| h.last_error.is_some()))
        .await
        .expect("an error is reported");
    let before = sim.request_count(path);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let retries = sim.request_count(path) - before;
    assert!(
        (1..=12).contains(&retries),
        "{retries} requests to {path} in 1.2 s"
    );
    assert!(!run.health.get().connected);
    h.last_error.unwrap_or_default()
}

#[tokio::test]
async fn the_client_honours_nomad_addr_with_a_unix_socket() {
    let sim = Sim::start(sim_config()).await.unwrap();
    sim.register_job(http_job(
        "default",
        "web",
        "web",
        "http",
        http_check("/h", ""),
    ));
    place(&sim, "default", "web", &[("http", 8001)]);
    // A Unix socket in front of the simulator (as `nomad agent` can listen on one).
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nomad.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let target = sim.addr();
    tokio::spawn(async move {
        while let Ok((mut unix, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut tcp) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut unix, &mut tcp).await;
                }
            });
        }
    });
    let env: BTreeMap<String, String> = [
        (
            "NOMAD_ADDR".to_string(),
            format!("unix://{}", socket.display()),
        ),
        ("NOMAD_NAMESPACE".to_string(), "default".to_string()),
    ]
    .into_iter()
    .collect();
    let file = Config {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(400),
        ..Config::default()
    };
    let s = file.resolve(&env).unwrap();
    assert_eq!(s.address, nomad::Address::Unix(socket.clone()));
    let run = start(&s);
    run.converges_to(&sim, "over a unix socket").await;
    place(&sim, "default", "web", &[("http", 8002)]);
    run.converges_to(&sim, "streamed over a unix socket").await;
    let i = run.instances().remove(0);
    assert_eq!(found(&run.checks, &i).await.check.unwrap().path, "/h");
}

/// A server that answers every request with `status` and `body`.
async fn canned_server(status: &'static str, body: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn plain_text_and_mistyped_answers_are_clear_errors_not_panics() {
    use haproxy_nomad_connector::nomad::Api;
    let client = |url: String| {
        let s = Config {
            address: Some(url),
            ..Config::default()
        }
        .resolve(&BTreeMap::new())
        .unwrap();
        HttpClient::new(&s).unwrap()
    };
    let text = client(canned_server("200 OK", "No cluster leader").await);
    let err = text.services("*").await.unwrap_err().to_string();
    assert!(
        err.contains("GET /v1/services: unexpected response"),
        "{err}"
    );
    let mistyped = client(canned_server("200 OK", r#"[{"Namespace":5}]"#).await);
    let err = mistyped.services("*").await.unwrap_err().to_string();
    assert!(err.contains("invalid type"), "{err}");
    let leaderless = client(canned_server("500 Internal Server Error", "No cluster leader").await);
    let err = leaderless
        .job("default", "web")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTTP 500: No cluster leader"), "{err}");
    // The job-spec look-up falls back instead.
    let s = Config {
        address: Some(canned_server("200 OK", "<html>proxy</html>").await),
        ..Config::default()
    }
    .resolve(&BTreeMap::new())
    .unwrap();
    let checks = Checks::new(HttpClient::new(&s).unwrap(), &s);
    let i: Instance = serde_json::from_value::<nomad::Registration>(json!({
        "ID": "_nomad-task-a-group-g-web-http", "ServiceName": "web", "JobID": "web",
        "AllocID": "a", "Address": "127.0.0.1", "Port": 80}))
    .unwrap()
    .try_into()
    .unwrap();
    assert!(matches!(
        checks.check_for(&i).await,
        CheckLookup::Unavailable { .. }
    ));
}
