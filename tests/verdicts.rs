//! The disagreement monitor against a real HAProxy: the app fails HAProxy's
//! check while Nomad's client reports its check passing (and then the
//! reverse). The connector counts each lasting disagreement once, logs it
//! once with both verdicts and outputs, `explain` shows it, and HAProxy's
//! routing is never touched.

use crate::connector_process::BINARY;
use hnc_tests::backends::HttpBackend;
use hnc_tests::haproxy::{all_up, wait_until};
use hnc_tests::logs::Logs;
use hnc_tests::world::{World, http_check, job, metric, metrics};
use nomad_sim::CheckOutcome;
use std::time::Duration;

const ON: &str = "haproxy.enable=true";
const BACKEND: &str = "default_web";
const WAIT: Duration = Duration::from_secs(30);
const LOGGED: &str = "HAProxy and Nomad disagree on this instance's health";

/// The log lines of this test (a subscriber for its thread).
/// `connector explain web` as an operator runs it, against this world.
async fn explain(w: &World) -> String {
    let dir = w.haproxy.dir.path().to_path_buf();
    let config = dir.join("explain.toml");
    let nomad = format!("address = \"{}\"\nnamespaces = [\"*\"]", w.sim.url());
    std::fs::write(&config, w.haproxy.connector_toml(&nomad, "")).expect("write the config");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BINARY)
            .args(["explain", "web", "--config"])
            .arg(&config)
            .output()
            .expect("run explain")
    })
    .await
    .expect("explain finished");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// One thread, so that the test's log subscriber sees the daemon's events.
#[tokio::test(flavor = "current_thread")]
async fn a_lasting_disagreement_is_counted_logged_once_and_explained_without_touching_routing() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let mut w = World::start().await;
    // Nomad's check: every 500 ms, 1 s time-out. A disagreement must last
    // over 1.5 s to count.
    w.sim
        .register_job(job("web", "web", &[ON], Some(http_check("/health"))));
    let app = HttpBackend::start().await;
    let alloc = w.place("web", "g", &[("http", app.port)]);
    w.sim
        .set_check_result(&alloc, "web", "health", CheckOutcome::http_ok());
    let (mut config, admin) = w.config_with_admin();
    config.verdicts.haproxy_poll_ms = 200;
    config.verdicts.sweep_interval_secs = 2;
    config.verdicts.max_requests_per_second = 50;
    w.start_daemon_with(config);
    let up = all_up(&w.haproxy, BACKEND, 1).await;
    let server = up.keys().next().expect("one server").clone();
    let (reloads, failed) = w.haproxy.reloads().await;
    assert_eq!(failed, 0);
    let scrape = |name: &'static str, labels: &'static [(&'static str, &'static str)]| async move {
        metric(&metrics(admin).await, name, labels)
    };
    // Agreeing sweeps first: nothing counted. (A server is DOWN until its
    // first check: two sweeps apart, whatever that start asked to confirm
    // has been read.)
    let sweeps = &[("reason", "sweep")];
    wait_until("two sweeps read Nomad's checks", WAIT, || async {
        (scrape("hnc_verdict_nomad_reads_total", sweeps).await >= 2.0).then_some(())
    })
    .await;
    let counted = &[("service", "web"), ("check", "health")];
    assert_eq!(
        scrape("hnc_verdict_disagreements_total", counted).await,
        0.0
    );

    // The app fails HAProxy's check (from HAProxy's address) while Nomad's
    // client still gets 200.
    let before = metrics(admin).await;
    app.set_health_status(503);
    wait_until("the disagreement is counted", WAIT, || async {
        (scrape("hnc_verdict_disagreements_total", counted).await == 1.0).then_some(())
    })
    .await;
    assert_eq!(scrape("hnc_verdict_disagreements_current", &[]).await, 1.0);
    // The state change read Nomad once, then once more to confirm.
    let reads = metrics(admin).await;
    let by = |reason| {
        let labels = &[("reason", reason)];
        metric(&reads, "hnc_verdict_nomad_reads_total", labels)
            - metric(&before, "hnc_verdict_nomad_reads_total", labels)
    };
    println!(
        "Nomad reads for one state change: state-change {}, confirm {} (sweeps meanwhile: {})",
        by("state-change"),
        by("confirm"),
        by("sweep"),
    );
    assert_eq!((by("state-change"), by("confirm")), (1.0, 1.0));

    // Logged once, with both verdicts and both outputs.
    let line = logs
        .text()
        .lines()
        .find(|l| l.contains(LOGGED))
        .map(str::to_string)
        .expect("the disagreement logged");
    for field in [
        "WARN",
        "service=web",
        "check=health",
        "haproxy=failing",
        "nomad=passing",
        "nomad_output=success 200 nomad: http ok",
        &format!("server={server}"),
        &format!("alloc={alloc}"),
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    // HAProxy's side as `show stat` had it: DOWN on a layer-7 status. The
    // code and text that follow vary with the moment of the read (under
    // load HAProxy 2.6 reported `L7STS 0` with no text).
    assert!(line.contains("haproxy_output=DOWN L7STS"), "{line}");

    // `explain` shows both verdicts, and that they disagree.
    let explained = explain(&w).await;
    let verdict_line = explained
        .lines()
        .find(|l| l.contains(&server) && l.contains("HAProxy failing"))
        .unwrap_or_else(|| panic!("no verdict line in:\n{explained}"));
    assert!(
        verdict_line.contains("Nomad check \"health\" passing (success 200 nomad: http ok)")
            && verdict_line.contains("DISAGREE"),
        "{verdict_line}"
    );

    // Routing stays HAProxy's: the server is DOWN by its own check, not
    // drained, not in maintenance, its weight untouched.
    let row = w
        .haproxy
        .server(BACKEND, &server)
        .await
        .expect("still there");
    assert_eq!(row["status"], "DOWN");
    let state = w.haproxy.servers_state(BACKEND).await;
    let row = state
        .iter()
        .find(|r| r["srv_name"] == server)
        .expect("in show servers state");
    assert_eq!(
        (row["srv_admin_state"].as_str(), row["srv_uweight"].as_str()),
        ("0", "1")
    );

    // The app recovers: they agree again; the count stays.
    app.set_health_status(200);
    wait_until("they agree again", WAIT, || async {
        (scrape("hnc_verdict_disagreements_current", &[]).await == 0.0).then_some(())
    })
    .await;
    assert_eq!(
        scrape("hnc_verdict_disagreements_total", counted).await,
        1.0
    );
    assert!(logs.text().contains("HAProxy and Nomad agree again"));

    // The reverse: Nomad's check fails while HAProxy's passes. HAProxy's
    // state does not change, so a sweep finds it.
    w.sim.set_check_result(
        &alloc,
        "web",
        "health",
        CheckOutcome::http_failed(500, "db: connection refused"),
    );
    wait_until("the reverse disagreement is counted", WAIT, || async {
        (scrape("hnc_verdict_disagreements_total", counted).await == 2.0).then_some(())
    })
    .await;
    let text = logs.text();
    let logged: Vec<&str> = text.lines().filter(|l| l.contains(LOGGED)).collect();
    assert_eq!(
        logged.len(),
        2,
        "each disagreement logged once: {logged:#?}"
    );
    assert!(
        logged[1].contains("haproxy=passing")
            && logged[1].contains("nomad=failing")
            && logged[1].contains("nomad_output=failure 500 db: connection refused"),
        "{}",
        logged[1]
    );
    all_up(&w.haproxy, BACKEND, 1).await;
    assert_eq!(
        w.haproxy.reloads().await,
        (reloads, 0),
        "the monitor never reloads"
    );
    w.stop_daemon().await;
}
