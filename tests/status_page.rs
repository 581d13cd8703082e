//! The status page (`/status`, `/status.json`) against a real HAProxy: what
//! it says about each server is what HAProxy says, outside text is escaped,
//! and the page renders in a real browser.

use hnc_tests::backends::{HttpBackend, TcpBackend};
use hnc_tests::haproxy::{StatRow, wait_until};
use hnc_tests::load::http_get;
use hnc_tests::world::{World, http_check, job, tcp_check};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const ON: &str = "haproxy.enable=true";
/// A refused tag: its text reaches the page as a problem of `db`.
const HOSTILE_TAG: &str = "haproxy.weight=<script>alert(1)</script>";

/// `web` (an http and a tcp check; two instances, the second failing its
/// http check) and `db` (TCP, no check: the TCP fallback, and a refused
/// tag), converged, with the admin listener on.
struct Page {
    w: World,
    admin: SocketAddr,
    _backends: (HttpBackend, HttpBackend, TcpBackend),
}

async fn page_world() -> Page {
    let mut w = World::start().await;
    let (good, bad, db) = (
        HttpBackend::start().await,
        HttpBackend::start().await,
        TcpBackend::start().await,
    );
    bad.set_health_status(503);
    // web declares two checks; the page lists both.
    let mut web = job("web", "web", &[ON], Some(http_check("/health")));
    web["TaskGroups"][0]["Services"][0]["Checks"]
        .as_array_mut()
        .expect("the job's checks")
        .push(tcp_check());
    w.sim.register_job(web);
    w.sim.register_job(job(
        "db",
        "db",
        &[ON, "haproxy.mode=tcp", HOSTILE_TAG],
        None,
    ));
    w.place("web", "g", &[("http", good.port)]);
    w.place("web", "g", &[("http", bad.port)]);
    w.place("db", "g", &[("http", db.port)]);
    let (config, admin) = w.config_with_admin();
    w.start_daemon_with(config);
    // A new server is DOWN until its first check: wait for both verdicts.
    wait_until(
        "web: one server UP, one DOWN by its check",
        WAIT,
        || async {
            let mut seen: Vec<(String, bool)> = w
                .haproxy
                .stat()
                .await
                .into_iter()
                .filter(|r| r["pxname"] == "default_web" && r["svname"] != "BACKEND")
                .map(|r| (r["status"].clone(), r["check_status"].ends_with("INI")))
                .collect();
            seen.sort();
            (seen == [("DOWN".to_string(), false), ("UP".to_string(), false)]).then_some(())
        },
    )
    .await;
    Page {
        w,
        admin,
        _backends: (good, bad, db),
    }
}

async fn status_json(admin: SocketAddr, query: &str) -> Value {
    let (code, body) = http_get(admin, &format!("/status.json{query}"))
        .await
        .expect("admin answers");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("/status.json is JSON")
}

fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {status:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_each_server_as_haproxy_sees_it_and_escapes_outside_text() {
    let mut p = page_world().await;
    let rows: Vec<StatRow> = p.w.haproxy.stat().await;

    // Every instance of web: HAProxy's own status and check result.
    let status = status_json(p.admin, "").await;
    let web = service(&status, "web");
    assert_eq!(web["backend"], "default_web");
    let instances = web["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    for i in instances {
        let row = rows
            .iter()
            .find(|r| r["pxname"] == "default_web" && r["svname"] == i["server"].as_str().unwrap())
            .unwrap_or_else(|| panic!("{} not in HAProxy", i["server"]));
        assert_eq!(i["haproxy"]["status"], row["status"].as_str(), "{i:#}");
        assert_eq!(
            i["haproxy"]["check_status"],
            row["check_status"].trim_start_matches("* "),
            "{i:#}"
        );
        assert_eq!(i["job_version"], 0);
        assert_eq!(i["origin"], "job spec");
        assert_eq!(i["check"], "http GET /health every 500ms");
        assert_eq!(i["other_checks"], json!(["tcp every 500ms"]), "{i:#}");
        assert!(i["plugin"].as_str().unwrap().contains("http@"), "{i:#}");
        assert!(i["haproxy"]["since_seconds"].is_u64(), "{i:#}");
    }
    let down = instances
        .iter()
        .find(|i| i["haproxy"]["status"] == "DOWN")
        .expect("a DOWN server");
    assert!(
        down["haproxy"]["last_check"]
            .as_str()
            .unwrap()
            .starts_with("503"),
        "{down:#}"
    );

    // db: the TCP fallback with its cause, and the refused tag as a problem.
    let db = service(&status, "db");
    assert_eq!(db["instances"][0]["fallback"]["cause"], "no-check");
    assert_eq!(db["instances"][0]["origin"], "none");
    assert!(
        db["problems"][0].as_str().unwrap().contains("<script>"),
        "{db:#}"
    );

    // Plugins, reloads, Nomad's stream.
    let http = status["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["check_type"] == "http")
        .expect("the http plugin");
    assert!(http["calls"].as_u64().unwrap() >= 1, "{http:#}");
    assert_eq!(http["failures"], 0);
    assert!(http["fuel_per_call"].as_u64().unwrap() > 0);
    // The http plugin has mapped the checks: it burned some fuel, within budget.
    let mean = http["fuel_mean"].as_u64().unwrap();
    assert!(
        mean > 0 && mean < http["fuel_per_call"].as_u64().unwrap(),
        "{http}"
    );
    let reasons: Vec<&str> = status["reloads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
        })
        .collect();
    assert!(reasons.contains(&"backend-added"), "{reasons:?}");
    let nomad = &status["nomad"][0];
    assert_eq!(nomad["scope"], "*");
    assert_eq!(nomad["connected"], true);
    assert_eq!(nomad["last_index"], p.w.sim.last_index());
    assert_eq!(status["haproxy"]["reachable"], true);

    // The filter: part of a name, any case.
    let only_web = status_json(p.admin, "?service=WE").await;
    assert_eq!(only_web["services_total"], 2);
    let names: Vec<&str> = only_web["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
    assert_eq!(
        status_json(p.admin, "?service=nothing").await["services"],
        Value::Array(vec![])
    );

    // The HTML page: the same servers and states; the tag escaped.
    let (code, html) = http_get(p.admin, "/status").await.unwrap();
    assert_eq!(code, 200);
    for i in instances {
        assert!(
            html.contains(i["server"].as_str().unwrap()),
            "{} missing",
            i["server"]
        );
    }
    assert!(html.contains(">DOWN<") && html.contains(">UP<"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        !html.contains("<script"),
        "unescaped outside text in the page"
    );
    let (_, filtered) = http_get(p.admin, "/status?service=db").await.unwrap();
    assert!(!filtered.contains("default_web") && filtered.contains("no-check"));
    p.w.stop_daemon().await;
}

/// Debian's Chromium, if installed.
fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: Chromium is not installed (apt-get install chromium)");
        return;
    };
    let mut p = page_world().await;
    let url = format!("http://{}/status", p.admin);
    let profile = tempfile::tempdir().unwrap();
    let out = std::path::PathBuf::from(
        std::env::var_os("CARGO_TARGET_DIR")
            .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into()),
    )
    .join("status-page.png");
    let run = |extra: Vec<String>| {
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--no-first-run".into(),
            format!("--user-data-dir={}", profile.path().display()),
            "--window-size=1280,900".into(),
        ];
        args.extend(extra);
        args.push(url.clone());
        let mut cmd = tokio::process::Command::new(browser);
        cmd.args(args).kill_on_drop(true);
        async move { cmd.output().await }
    };
    // What the browser built from the page: the DOM after parsing.
    let dom = tokio::time::timeout(WAIT, run(vec!["--dump-dom".into()]))
        .await
        .expect("chromium ends")
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("haproxy-nomad-connector"), "{dom}");
    assert!(
        dom.contains("default_web") && dom.contains("no-check"),
        "{dom}"
    );
    assert!(!dom.contains("<script"), "{dom}");

    let _ = std::fs::remove_file(&out);
    let shot = tokio::time::timeout(WAIT, run(vec![format!("--screenshot={}", out.display())]))
        .await
        .expect("chromium ends")
        .expect("chromium runs");
    let png = std::fs::read(&out).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {}: {e}\n{}",
            out.display(),
            String::from_utf8_lossy(&shot.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
    eprintln!("screenshot: {}", out.display());
    p.w.stop_daemon().await;
}
