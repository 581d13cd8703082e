//! The demo: the Nomad simulator with `examples/jobs/demo.json` (an http, a
//! tcp and a grpc service), real backends (one healthy and one failing per
//! type), a real HAProxy, and the real `haproxy-nomad-connector run`; then
//! HAProxy's own view of the servers and their checks.
//!
//! `examples/demo.sh [--once]`. With `--once` it exits after the first
//! complete table (0 when every server shows the expected verdict).

use hnc_tests::backends::{HttpBackend, TcpBackend};
use hnc_tests::grpc::GrpcHealthServer;
use hnc_tests::haproxy::{Haproxy, StatRow, free_port};
use nomad_sim::{PlaceAlloc, Sim, SimConfig};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

/// (backend, port of the server, the verdict it should get, what it runs).
type Expected = Vec<(&'static str, u16, &'static str, &'static str)>;

#[tokio::main]
async fn main() -> ExitCode {
    let once = std::env::args().any(|a| a == "--once");
    match demo(once).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(once: bool) -> anyhow::Result<ExitCode> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sim = Sim::start(SimConfig::default()).await?;
    let job: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("examples/jobs/demo.json"),
    )?)?;
    sim.register_job(job);

    let web_ok = HttpBackend::start().await;
    let web_bad = HttpBackend::start().await;
    web_bad.set_health_status(500);
    let cache_ok = TcpBackend::start().await;
    let cache_closed = free_port();
    let grpc_ok = GrpcHealthServer::start().await?;
    grpc_ok.set("greeter.Greeter", true).await;
    let grpc_bad = GrpcHealthServer::start().await?;
    grpc_bad.set("greeter.Greeter", false).await;
    let placements = [
        ("web", "http", web_ok.port),
        ("web", "http", web_bad.port),
        ("cache", "db", cache_ok.port),
        ("cache", "db", cache_closed),
        ("grpc", "rpc", grpc_ok.addr.port()),
        ("grpc", "rpc", grpc_bad.addr.port()),
    ];
    for (group, label, port) in placements {
        sim.place_alloc(PlaceAlloc::new("demo", group).port(label, port));
    }
    let expected: Expected = vec![
        ("default_web", web_ok.port, "UP", "HTTP 200 on /health"),
        ("default_web", web_bad.port, "DOWN", "HTTP 500 on /health"),
        ("default_cache", cache_ok.port, "UP", "TCP port open"),
        ("default_cache", cache_closed, "DOWN", "TCP port closed"),
        ("default_greeter", grpc_ok.addr.port(), "UP", "gRPC SERVING"),
        (
            "default_greeter",
            grpc_bad.addr.port(),
            "DOWN",
            "gRPC NOT_SERVING",
        ),
    ];

    let haproxy = Haproxy::start("").await;
    let admin = free_port();
    let config = write_config(&haproxy, &sim, admin)?;
    println!(
        "Nomad simulator   {}  (job 'demo' from examples/jobs/demo.json)",
        sim.url()
    );
    println!(
        "HAProxy 2.6       frontend 127.0.0.1:{}, files in {}",
        haproxy.port,
        haproxy.dir.path().display()
    );
    println!("connector         admin http://127.0.0.1:{admin}/metrics  /readyz");
    println!("config            {}\n", config.display());
    let mut connector = Connector::spawn(&config)?;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rows = haproxy.stat().await;
        let settled = expected.iter().all(|(backend, port, want, _)| {
            row_on(&rows, backend, *port).is_some_and(|r| {
                r["status"] == *want
                    && !r["check_status"].starts_with("* ")
                    && r["check_status"] != "INI"
            })
        });
        if settled || Instant::now() > deadline {
            print_table(&rows, &expected);
            print_backends(&haproxy.managed_cfg);
            if once || !settled {
                connector.stop();
                return Ok(if settled {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            break;
        }
        if let Some(status) = connector.child.try_wait()? {
            anyhow::bail!("the connector exited early ({status})");
        }
    }
    println!(
        "\nRunning: try `{} explain web --config {}`, or Ctrl-C to stop.",
        connector.binary.display(),
        config.display()
    );
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        print_table(&haproxy.stat().await, &expected);
    }
}

/// The connector's config for the demo world.
fn write_config(haproxy: &Haproxy, sim: &Sim, admin: u16) -> anyhow::Result<PathBuf> {
    let d = haproxy.dir.path();
    let text = haproxy.connector_toml(
        &format!("address = \"{}\"\nnamespaces = [\"*\"]", sim.url()),
        &format!(
            r#"reload_delay_ms = 200

[daemon]
resync_interval_secs = 10
admin_listen = "127.0.0.1:{admin}"
"#
        ),
    );
    let path = d.join("connector.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn row_on<'a>(rows: &'a [StatRow], backend: &str, port: u16) -> Option<&'a StatRow> {
    rows.iter()
        .find(|r| r["pxname"] == backend && r["addr"].ends_with(&format!(":{port}")))
}

fn print_table(rows: &[StatRow], expected: &Expected) {
    println!(
        "BACKEND          ADDRESS          STATUS  CHECK              BACKEND RUNS           EXPECTED"
    );
    for (backend, port, want, runs) in expected {
        let (status, check) =
            row_on(rows, backend, *port).map_or(("absent".to_string(), String::new()), |r| {
                let code = if r["check_code"].is_empty() {
                    String::new()
                } else {
                    format!(" {}", r["check_code"])
                };
                (r["status"].clone(), format!("{}{code}", r["check_status"]))
            });
        let mark = if status == *want { "ok" } else { "MISMATCH" };
        println!(
            "{backend:<16} 127.0.0.1:{port:<6} {status:<7} {check:<18} {runs:<22} {want} {mark}"
        );
    }
}

/// The connector's backends as it wrote them (the checks from the job).
fn print_backends(managed: &Path) {
    let Ok(text) = std::fs::read_to_string(managed) else {
        return;
    };
    println!(
        "\nThe connector's managed config ({}), servers left out:",
        managed.display()
    );
    for line in text
        .lines()
        .filter(|l| !l.trim_start().starts_with("server ") && !l.trim().is_empty())
    {
        println!("  {line}");
    }
}

/// The connector process.
struct Connector {
    child: Child,
    binary: PathBuf,
    stopped: bool,
}

impl Connector {
    fn spawn(config: &Path) -> anyhow::Result<Connector> {
        let binary = std::env::current_exe()?
            .parent()
            .map(|d| d.join("haproxy-nomad-connector"))
            .filter(|p| p.exists())
            .ok_or_else(|| anyhow::anyhow!("build the connector first (examples/demo.sh does)"))?;
        let child = Command::new(&binary)
            .args(["run", "--config"])
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()?;
        Ok(Connector {
            child,
            binary,
            stopped: false,
        })
    }

    /// SIGTERM, so the connector finishes its batch; then waits for it.
    fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.stop();
    }
}
