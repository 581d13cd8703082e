//! Fault scenarios: each runs a whole world (the Nomad simulator,
//! the daemon in-process, a real HAProxy, real backends) with a steady load
//! through HAProxy's frontend to healthy instances, injects one fault, and
//! asserts two things:
//!
//! - **convergence**: HAProxy's own view (`show servers state`, `show
//!   backend`) equals Nomad's truth (`Sim::services_snapshot`), as
//!   `hnc_tests::convergence` defines it;
//! - **no failed request beyond HAProxy's own behaviour**: every request
//!   to the healthy service gets a 200, except in the windows each scenario
//!   names (say, while HAProxy is killed it refuses connections); errors in
//!   those windows are counted apart, everything else must be 0.
//!
//! Each test prints its time to converge (measured by the test, never
//! asserted) and records it in `target/faults.json`. Run them with
//! `cargo test -p hnc-tests --test integration faults -- --nocapture`.

use haproxy_nomad_connector::config::Config;
use haproxy_nomad_connector::daemon;
use hnc_tests::backends::HttpBackend;
use hnc_tests::convergence;
use hnc_tests::haproxy::{free_port, wait_until};
use hnc_tests::hostile::Hostility;
use hnc_tests::load::{Sample, SampledLoad, get};
use hnc_tests::mapping::write_plugin;
use hnc_tests::world::{
    RESYNC, World, http_check, job, metric, metrics, readyz, resolved, tcp_check,
};
use nomad_sim::{RestartKind, StopKind};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const ON: &str = "haproxy.enable=true";
/// The generous limit of every wait (never an assertion on speed).
const WAIT: Duration = Duration::from_secs(30);
/// The backend the load goes to: its instances stay healthy throughout.
const WEB: &str = "default_web";
/// The pause between two requests of one load worker.
const PAUSE: Duration = Duration::from_millis(20);
/// Load before a fault and after convergence, so both are sampled.
const SETTLE: Duration = Duration::from_millis(400);

/// A converged world under load: `web` (two instances, HTTP check) takes
/// the load; `api` (one instance) is what faults change.
struct Scene {
    w: World,
    config: Config,
    admin: SocketAddr,
    backends: Vec<HttpBackend>,
    api_allocs: Vec<String>,
    load: Option<SampledLoad>,
}

impl Scene {
    async fn start() -> Scene {
        Scene::start_with(|_, _| {}).await
    }

    /// As [`Scene::start`], with the daemon's config edited first.
    async fn start_with(edit: impl FnOnce(&World, &mut Config)) -> Scene {
        let mut w = World::start().await;
        w.sim
            .register_job(job("web", "web", &[ON], Some(http_check("/health"))));
        w.sim
            .register_job(job("api", "api", &[ON], Some(http_check("/health"))));
        let mut backends = Vec::new();
        for _ in 0..2 {
            let b = HttpBackend::start().await;
            w.place("web", "g", &[("http", b.port)]);
            backends.push(b);
        }
        let api = HttpBackend::start().await;
        let api_allocs = vec![w.place("api", "g", &[("http", api.port)])];
        backends.push(api);
        let (mut config, admin) = w.config_with_admin();
        edit(&w, &mut config);
        w.start_daemon_with(config.clone());
        w.wait_converged("the initial world", WAIT, Instant::now())
            .await;
        let load = SampledLoad::start(w.haproxy.port, &[WEB], 2, PAUSE);
        tokio::time::sleep(SETTLE).await;
        Scene {
            w,
            config,
            admin,
            backends,
            api_allocs,
            load: Some(load),
        }
    }

    /// Places one more (healthy) instance of `job`'s service.
    async fn add(&mut self, job: &str) -> String {
        let b = HttpBackend::start().await;
        let alloc = self.w.place(job, "g", &[("http", b.port)]);
        self.backends.push(b);
        alloc
    }

    /// Lets the load run on the converged world a little, then stops it.
    async fn samples(&mut self) -> Vec<Sample> {
        tokio::time::sleep(SETTLE).await;
        match self.load.take() {
            Some(load) => load.stop().await,
            None => Vec::new(),
        }
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric(&metrics(self.admin).await, name, labels)
    }

    async fn wait_ready(&self, what: &str) {
        let admin = self.admin;
        wait_until(
            what,
            WAIT,
            || async move { readyz(admin).await.0.then_some(()) },
        )
        .await;
    }

    /// Waits until `/readyz` says 503 with `reason` in its text.
    async fn wait_not_ready(&self, what: &str, reason: &str) -> String {
        let admin = self.admin;
        wait_until(what, WAIT, || async move {
            let (ready, text) = readyz(admin).await;
            (!ready && text.contains(reason)).then_some(text)
        })
        .await
    }
}

/// A window in which HAProxy itself makes requests fail, and why.
struct Allowed {
    from: Instant,
    to: Instant,
    why: &'static str,
}

/// How the load fared.
#[derive(Debug)]
struct Verdict {
    ok: usize,
    allowed: BTreeMap<&'static str, usize>,
    unexpected: Vec<String>,
}

/// Sorts every failed request into an allowed window (the first it
/// overlaps) or the unexpected ones (with its time relative to `t0`).
fn judge(samples: &[Sample], allowed: &[Allowed], t0: Instant) -> Verdict {
    let mut verdict = Verdict {
        ok: 0,
        allowed: allowed.iter().map(|a| (a.why, 0)).collect(),
        unexpected: Vec::new(),
    };
    for s in samples {
        if s.ok() {
            verdict.ok += 1;
        } else if let Some(a) = allowed.iter().find(|a| s.overlaps(a.from, a.to)) {
            *verdict.allowed.entry(a.why).or_default() += 1;
        } else {
            let at = s.started.saturating_duration_since(t0).as_millis();
            verdict
                .unexpected
                .push(format!("{} at +{at} ms: {:?}", s.backend, s.outcome));
        }
    }
    verdict
}

/// Prints the figures, records them in `target/faults.json` under
/// `scenario`, then asserts the load's verdict.
fn report(scenario: &str, verdict: &Verdict, converge: &[(&str, Duration)], extra: Value) {
    let converge: BTreeMap<&str, u64> = converge
        .iter()
        .map(|(phase, d)| (*phase, d.as_millis() as u64))
        .collect();
    println!(
        "fault {scenario}: time to converge {converge:?} ms; {} requests OK, errors allowed {:?}, unexpected {}",
        verdict.ok,
        verdict.allowed,
        verdict.unexpected.len()
    );
    record(
        scenario,
        json!({
            "converge_ms": converge,
            "requests_ok": verdict.ok,
            "errors_allowed": verdict.allowed,
            "errors_unexpected": verdict.unexpected.len(),
            "details": extra,
        }),
    );
    let shown: Vec<String> = verdict.unexpected.iter().take(20).cloned().collect();
    assert!(
        verdict.unexpected.is_empty(),
        "{scenario}: {} requests to healthy instances failed beyond HAProxy's own behaviour (of {} OK):\n{}",
        verdict.unexpected.len(),
        verdict.ok,
        shown.join("\n")
    );
    assert!(verdict.ok > 0, "{scenario}: the load sent nothing");
}

/// Merges one scenario's figures into `target/faults.json` (the tests of
/// this binary run in parallel: one writer at a time).
fn record(scenario: &str, figures: Value) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("faults.json");
    let mut all: serde_json::Map<String, Value> = std::fs::read_to_string(&target)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    all.insert(scenario.into(), figures);
    let text = serde_json::to_string_pretty(&all).expect("JSON");
    let _ = std::fs::write(&target, text + "\n");
}

/// The connector's servers of every backend, as HAProxy runs them.
async fn server_names(w: &World) -> BTreeSet<String> {
    let (view, _) = convergence::haproxy_view(&w.haproxy)
        .await
        .expect("HAProxy answers");
    view.iter()
        .flat_map(|(b, servers)| servers.keys().map(move |s| format!("{b}/{s}")))
        .collect()
}

/// Kill -9 of HAProxy, a change in Nomad while it is down, restart from its
/// files. Allowed: while no HAProxy runs, connections are refused (and
/// those in flight at the kill are reset). Once the new HAProxy answers
/// its sockets, every request must pass: the managed file and the state
/// file bring back the servers, and the connector adds what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_restart_converges_with_a_change_made_while_it_was_down() {
    let mut s = Scene::start().await;
    let t0 = Instant::now();
    // A crash in a steady world: nothing changed for over a resync period.
    tokio::time::sleep(RESYNC + SETTLE).await;
    let killed = Instant::now();
    s.w.haproxy.kill();
    s.add("web").await;
    let why = s
        .wait_not_ready(
            "the daemon reporting HAProxy gone",
            "HAProxy did not answer",
        )
        .await;
    s.w.haproxy.restart().await;
    let back = Instant::now();

    let took =
        s.w.wait_converged("the restarted HAProxy equal to Nomad", WAIT, back)
            .await;
    s.wait_ready("ready again").await;
    let samples = s.samples().await;
    let verdict = judge(
        &samples,
        &[Allowed {
            from: killed,
            to: back,
            why: "haproxy-down",
        }],
        t0,
    );
    report(
        "haproxy_restart",
        &verdict,
        &[("after_restart", took)],
        json!({"down_ms": back.duration_since(killed).as_millis() as u64, "readyz_while_down": why.trim()}),
    );
    s.w.stop_daemon().await;
}

/// The operator pins `default_api` in their own config (a frontend with
/// `default_backend default_api`, not reloaded yet), then `api` stops: the
/// connector's next render drops a backend the operator's config needs,
/// and `haproxy -c` refuses it. Waits until the metrics report the
/// refusal; returns the original operator config and when `api` stopped.
async fn refuse_next_render(s: &Scene) -> (String, Instant) {
    let operator = &s.w.haproxy.operator_cfg;
    let original = std::fs::read_to_string(operator).expect("operator.cfg");
    let pinned = format!(
        "{original}\nfrontend fe_pinned\n    bind 127.0.0.1:{}\n    default_backend default_api\n",
        free_port()
    );
    std::fs::write(operator, pinned).expect("pin default_api");
    let fault = Instant::now();
    s.w.sim
        .stop_alloc(&s.api_allocs[0], StopKind::ClientDeregister);
    let admin = s.admin;
    wait_until("a rejected render in the metrics", WAIT, || async move {
        let text = metrics(admin).await;
        (metric(&text, "hnc_reloads_total", &[("reason", "rejected")]) >= 1.0).then_some(())
    })
    .await;
    (original, fault)
}

/// The operator's config pins the connector's backend `default_api` (a
/// frontend with `default_backend default_api`); then the service stops,
/// so the connector's next render drops a backend HAProxy's config needs
/// and `haproxy -c` refuses it. Allowed: nothing. No reload happens, the
/// old config keeps serving, the refusal is reported (metric, the rejected
/// render kept, readiness stays 200 as documented), and server changes
/// keep applying at runtime. Once the operator removes the pin, the next
/// change of the desired state validates, reloads and converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_haproxy_refuses_keeps_the_old_config_serving_and_is_reported() {
    let mut s = Scene::start().await;
    let t0 = Instant::now();
    let reloads = s.w.haproxy.reloads().await;
    let operator = s.w.haproxy.operator_cfg.clone();
    let (original, fault) = refuse_next_render(&s).await;
    let reported = fault.elapsed();

    // The refusal is reported and kept; HAProxy was never reloaded.
    let rejected = s.w.haproxy.dir.path().join(".managed.cfg.rejected");
    let render = std::fs::read_to_string(&rejected).expect("the rejected render is kept");
    assert!(!render.contains("backend default_api"), "{render}");
    let check = std::process::Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(&operator)
        .arg("-f")
        .arg(&rejected)
        .output()
        .expect("haproxy -c");
    let said = String::from_utf8_lossy(&check.stderr).to_string();
    assert!(
        !check.status.success() && said.contains("default_api"),
        "{said}"
    );
    assert_eq!(s.w.haproxy.reloads().await, reloads, "no reload was tried");
    let (ready, text) = readyz(s.admin).await;
    assert!(
        ready,
        "a rejected render leaves the connector ready: {text}"
    );

    // The old config serves (default_api still runs, empty); server changes
    // still apply at runtime: api's server leaves, a new web server joins.
    let during = Instant::now();
    s.add("web").await;
    let sim = s.w.sim.clone();
    let runtime_converged = {
        let haproxy = &s.w.haproxy;
        wait_until("server changes applied during the fault", WAIT, || {
            let sim = sim.clone();
            async move {
                convergence::servers_diff(&sim, haproxy)
                    .await
                    .is_empty()
                    .then_some(())
            }
        })
        .await;
        during.elapsed()
    };
    assert!(
        s.w.haproxy
            .backends()
            .await
            .contains(&"default_api".to_string())
    );
    assert_eq!(s.w.haproxy.reloads().await, reloads, "still no reload");

    // The operator removes the pin. A refused render is validated again
    // only when the desired state changes (docs/haproxy-driver.md,
    // "Reloads" 2), so the fix takes effect with the next change in Nomad:
    // one more web instance.
    std::fs::write(&operator, &original).expect("unpin");
    let fixed = Instant::now();
    s.add("web").await;
    let took =
        s.w.wait_converged("default_api removed by a validated reload", WAIT, fixed)
            .await;
    // The managed file drops default_api before the master counts the
    // reload that loads it: wait for the count.
    let haproxy = &s.w.haproxy;
    let (after, failed) = wait_until("the reload counted", WAIT, || async move {
        let (after, failed) = haproxy.reloads().await;
        (after > reloads.0 || failed > 0).then_some((after, failed))
    })
    .await;
    assert!(
        after > reloads.0 && failed == 0,
        "one good reload: {after} {failed}"
    );
    let samples = s.samples().await;
    let verdict = judge(&samples, &[], t0);
    report(
        "reload_rejected",
        &verdict,
        &[
            ("rejection_reported", reported),
            ("runtime_changes_during_fault", runtime_converged),
            ("after_fix", took),
        ],
        json!({"haproxy_said": said.lines().find(|l| l.contains("default_api")).unwrap_or_default()}),
    );
    s.w.stop_daemon().await;
}

/// The same refusal, and meanwhile a new service is registered. Its new
/// backend does not wait for the operator to fix an unrelated backend:
/// `haproxy -c` blames `default_api`, so the driver reloads once more
/// without that change (docs/haproxy-driver.md, "Reloads"), and every other
/// service converges while one backend's change is held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_backend_does_not_hold_back_a_new_service() {
    let mut s = Scene::start().await;
    let t0 = Instant::now();
    refuse_next_render(&s).await;
    s.w.sim
        .register_job(job("fresh", "fresh", &[ON], Some(tcp_check())));
    let registered = Instant::now();
    s.add("fresh").await;
    let sim = s.w.sim.clone();
    let haproxy = &s.w.haproxy;
    let took = wait_until("the new service's servers in HAProxy", WAIT, || {
        let sim = sim.clone();
        async move {
            convergence::servers_diff(&sim, haproxy)
                .await
                .is_empty()
                .then_some(registered.elapsed())
        }
    })
    .await;
    let running = s.w.haproxy.backends().await;
    assert!(
        running.contains(&"default_fresh".to_string())
            && running.contains(&"default_api".to_string()),
        "the new backend runs, the refused removal is held back: {running:?}"
    );
    let samples = s.samples().await;
    report(
        "reload_rejected_new_service",
        &judge(&samples, &[], t0),
        &[("new_service_during_fault", took)],
        json!({}),
    );
    s.w.stop_daemon().await;
}

/// The event stream is cut half-way through the frame that carries a new
/// allocation. Allowed: nothing (HAProxy is not involved). The watcher
/// re-lists, converges, and the new stream carries the next change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomad_stream_cut_mid_frame_relists_and_converges() {
    let mut s = Scene::start().await;
    let t0 = Instant::now();
    let streams = s.w.sim.request_count("/v1/event/stream");
    s.w.sim.cut_streams_mid_frame();
    let cut = Instant::now();
    s.add("web").await;
    let took =
        s.w.wait_converged("the cut frame's change", WAIT, cut)
            .await;
    assert!(
        s.w.sim.request_count("/v1/event/stream") > streams,
        "the stream was opened again"
    );
    let next = Instant::now();
    s.w.sim.stop_alloc(&s.api_allocs[0], StopKind::PlanTerminal);
    let took_next = s.w.wait_converged("the next change", WAIT, next).await;
    assert!(s.metric("hnc_nomad_reconnects_total", &[]).await >= 1.0);
    let samples = s.samples().await;
    report(
        "nomad_stream_cut_mid_frame",
        &judge(&samples, &[], t0),
        &[("cut_frame", took), ("next_change", took_next)],
        json!({}),
    );
    s.w.stop_daemon().await;
}

/// A Nomad dev agent restarts and loses everything (its index starts again
/// from 0), then the jobs are submitted again and run on the same ports
/// with new allocation IDs.
///
/// "Converge" follows Nomad's truth, whatever it is: first the wiped truth
/// (no instance, so HAProxy keeps no connector server and no managed
/// backend: a wiped agent also killed its allocations), then the rebuilt
/// one (servers named after the new registrations). Allowed: requests fail
/// from the wipe until the rebuilt instances pass their first check,
/// because Nomad's truth holds no healthy instance of `web` meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomad_restart_with_an_index_reset_follows_the_wiped_then_the_rebuilt_truth() {
    let mut s = Scene::start().await;
    let t0 = Instant::now();
    let before = server_names(&s.w).await;
    let wiped = Instant::now();
    s.w.sim.restart(RestartKind::Wipe);
    let emptied =
        s.w.wait_converged("HAProxy emptied like the wiped Nomad", WAIT, wiped)
            .await;
    assert!(server_names(&s.w).await.is_empty());
    assert!(s.metric("hnc_nomad_index_resets_total", &[]).await >= 1.0);

    let rebuilt_at = Instant::now();
    s.w.sim
        .register_job(job("web", "web", &[ON], Some(http_check("/health"))));
    s.w.sim
        .register_job(job("api", "api", &[ON], Some(http_check("/health"))));
    let ports: Vec<u16> = s.backends.iter().map(|b| b.port).collect();
    s.w.place("web", "g", &[("http", ports[0])]);
    s.w.place("web", "g", &[("http", ports[1])]);
    s.w.place("api", "g", &[("http", ports[2])]);
    let rebuilt =
        s.w.wait_converged("HAProxy equal to the rebuilt Nomad", WAIT, rebuilt_at)
            .await;
    let after = server_names(&s.w).await;
    assert!(
        before.is_disjoint(&after),
        "servers of the new registrations"
    );
    let samples = s.samples().await;
    let verdict = judge(
        &samples,
        &[Allowed {
            from: wiped,
            to: rebuilt_at + rebuilt,
            why: "no-instance-in-nomad",
        }],
        t0,
    );
    report(
        "nomad_restart_index_reset",
        &verdict,
        &[("to_wiped_truth", emptied), ("to_rebuilt_truth", rebuilt)],
        json!({}),
    );
    s.w.stop_daemon().await;
}

/// Nomad answers every request with `status` for a while, its open stream
/// closed (a restart that keeps its state): Nomad changes meanwhile, which
/// the connector cannot see. Allowed: nothing. HAProxy keeps what it runs
/// (nothing emptied, nothing half-applied), the connector retries with its
/// back-off and reports itself not ready, and converges once Nomad answers.
async fn nomad_failing_for_a_while(status: u16, body: &str, scenario: &str) {
    let mut s = Scene::start().await;
    let t0 = Instant::now();
    let before = server_names(&s.w).await;
    // Each attempt opens the event stream first, then lists.
    let attempts = s.w.sim.request_count("/v1/event/stream");
    s.w.sim.fail_requests("/v1/", status, body, None);
    s.w.sim.restart(RestartKind::KeepState);
    let fault = Instant::now();
    s.add("web").await;
    s.w.sim
        .stop_alloc(&s.api_allocs[0], StopKind::ClientDeregister);
    let why = s
        .wait_not_ready("the daemon reporting Nomad unreachable", "disconnected")
        .await;
    let sim = s.w.sim.clone();
    wait_until("three failed attempts", WAIT, || {
        let sim = sim.clone();
        async move { (sim.request_count("/v1/event/stream") >= attempts + 3).then_some(()) }
    })
    .await;
    // A periodic resync runs on the stale view meanwhile.
    tokio::time::sleep(RESYNC).await;
    assert_eq!(
        server_names(&s.w).await,
        before,
        "HAProxy keeps what it ran while Nomad fails"
    );
    let retries = s.w.sim.request_count("/v1/event/stream") - attempts;
    let lasted = fault.elapsed();
    let cleared = Instant::now();
    s.w.sim.clear_faults();
    let took =
        s.w.wait_converged("Nomad answering again", WAIT, cleared)
            .await;
    s.wait_ready("ready again").await;
    let samples = s.samples().await;
    report(
        scenario,
        &judge(&samples, &[], t0),
        &[("after_nomad_answers", took)],
        json!({"fault_ms": lasted.as_millis() as u64, "attempts_during_fault": retries, "readyz_during_fault": why.trim()}),
    );
    s.w.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomad_answering_500_for_a_while_leaves_haproxy_alone_then_converges() {
    nomad_failing_for_a_while(500, "No cluster leader", "nomad_500").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomad_answering_403_for_a_while_leaves_haproxy_alone_then_converges() {
    nomad_failing_for_a_while(403, "Permission denied", "nomad_403").await;
}

/// The connector stops (gracefully); while it is down an instance stops, a
/// new one and a new service start; it starts again. Allowed: nothing.
/// HAProxy serves what it had while nobody drives it; the new daemon
/// converges from its first listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_restart_converges_on_what_changed_while_it_was_down() {
    let mut s = Scene::start().await;
    let t0 = Instant::now();
    let before = server_names(&s.w).await;
    s.w.stop_daemon().await;
    s.w.sim
        .stop_alloc(&s.api_allocs[0], StopKind::ClientTerminal);
    s.add("web").await;
    s.w.sim
        .register_job(job("fresh", "fresh", &[ON], Some(tcp_check())));
    s.add("fresh").await;
    tokio::time::sleep(RESYNC).await;
    assert_eq!(server_names(&s.w).await, before, "nobody drives HAProxy");
    let started = Instant::now();
    s.w.start_daemon_with(s.config.clone());
    let took =
        s.w.wait_converged("the restarted connector", WAIT, started)
            .await;
    let samples = s.samples().await;
    report(
        "connector_restart",
        &judge(&samples, &[], t0),
        &[("from_start", took)],
        json!({}),
    );
    s.w.stop_daemon().await;
}

/// A hostile plugin serves the check type `hostile`; `xbad` (a name it
/// misbehaves on) and `calm` (one it serves well) are registered while the
/// daemon runs. Allowed: nothing. `xbad` falls back to a TCP check and
/// serves; `calm` keeps the plugin's answer; `web` keeps its HTTP check;
/// the failure is counted; the daemon keeps running and applies the next
/// change.
async fn hostile_plugin(hostility: Hostility, cause: &str, scenario: &str) {
    let mut s = Scene::start_with(|w, config| {
        let component = hostility.component().expect("the hostile component");
        let path = write_plugin(w.haproxy.dir.path(), "hostile", &component);
        config
            .mapping
            .plugins
            .insert("hostile".into(), path.display().to_string());
    })
    .await;
    let t0 = Instant::now();
    let tags = [ON, "haproxy.check.type=hostile"];
    let registered = Instant::now();
    for name in ["xbad", "calm"] {
        s.w.sim
            .register_job(job(name, name, &tags, Some(tcp_check())));
        s.add(name).await;
    }
    // The fault converges when `xbad` serves with its fallback check; `calm`
    // takes the plugin's bare `check` (HAProxy's defaults: inter 2 s, rise 2).
    let took = {
        let w = &s.w;
        wait_until(
            "xbad serving with its fallback check",
            WAIT,
            || async move {
                let diff = w.diff().await;
                (!diff.iter().any(|l| l.contains("default_xbad"))).then(|| registered.elapsed())
            },
        )
        .await
    };
    let took_all =
        s.w.wait_converged("the hostile plugin's services", WAIT, registered)
            .await;

    let checks: BTreeMap<String, String> =
        s.w.haproxy
            .stat()
            .await
            .into_iter()
            .map(|r| {
                (
                    r["pxname"].clone(),
                    r["check_status"].trim_start_matches("* ").to_string(),
                )
            })
            .collect();
    assert_eq!(checks["default_xbad"], "L4OK", "{checks:?}");
    assert_eq!(checks["default_calm"], "L4OK", "{checks:?}");
    assert_eq!(checks[WEB], "L7OK", "web keeps its HTTP check: {checks:?}");
    let plugin = [("plugin", "hostile@0.0.1"), ("cause", cause)];
    assert!(s.metric("hnc_plugin_errors_total", &plugin).await >= 1.0);
    assert!(
        s.metric("hnc_check_fallbacks_total", &[("cause", cause)])
            .await
            >= 1.0
    );
    // What the daemon planned, as `explain` shows it.
    let reconciler = daemon::snapshot(&resolved(s.config.clone()), WAIT)
        .await
        .expect("a snapshot");
    let fallback = |name: &str| {
        let plan = reconciler
            .plans()
            .values()
            .find(|p| p.key.name == name)
            .unwrap_or_else(|| panic!("a plan for {name}"));
        plan.instances[0].fallback.as_ref().map(|f| f.cause)
    };
    assert_eq!(fallback("xbad"), Some(cause));
    assert_eq!(fallback("calm"), None);
    assert_eq!(fallback("web"), None);

    // The daemon keeps serving: running, ready, the next change applies,
    // and requests to the fallen-back service pass.
    assert!(s.w.daemon_running());
    s.wait_ready("ready").await;
    let next = Instant::now();
    s.add("web").await;
    let took_next = s.w.wait_converged("the next change", WAIT, next).await;
    assert_eq!(get(s.w.haproxy.port, "default_xbad").await, Ok(200));
    let samples = s.samples().await;
    report(
        scenario,
        &judge(&samples, &[], t0),
        &[
            ("fallen_back_service", took),
            ("both_plugin_services", took_all),
            ("next_change", took_next),
        ],
        json!({"fallback_cause": cause}),
    );
    s.w.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_trap_falls_back_to_tcp_for_its_service_only() {
    hostile_plugin(Hostility::Trap, "trap", "plugin_trap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_endless_loop_falls_back_to_tcp_for_its_service_only() {
    hostile_plugin(Hostility::Spin, "timeout", "plugin_endless_loop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_memory_bomb_falls_back_to_tcp_for_its_service_only() {
    hostile_plugin(Hostility::MemoryBomb, "memory", "plugin_memory_bomb").await;
}
