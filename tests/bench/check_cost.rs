//! What a service's checks cost HAProxy: the worker's CPU while it checks
//! `servers` servers of one service with one check, and with two.
//!
//! `cargo run --release -p hnc-tests --bin bench-check-cost -- [servers] [seconds]`
//!
//! For each variant (one http check; an http and a tcp check; two http
//! checks), it starts the Nomad simulator, a real HAProxy and the daemon
//! in-process, registers one job whose service declares those checks
//! (every 1 s, timeout 1 s), places `servers` (default 500) instances, waits
//! until HAProxy reports them all UP, then reads the worker's CPU time
//! (`/proc/<pid>/stat`, the pid from `show info`) and `show info`'s
//! `Idle_pct` over `seconds` (default 60). Every variant runs in the same
//! process, one after the other, so their ratio is the figure to read.

use hnc_tests::backends::HttpBackend;
use hnc_tests::world::{World, http_check, tcp_check};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

const ON: &str = "haproxy.enable=true";

/// Every check: each second, a 1 s timeout.
fn every_second(mut check: Value, name: &str) -> Value {
    check["Name"] = json!(name);
    check["Interval"] = json!(1_000_000_000_i64);
    check["Timeout"] = json!(1_000_000_000_i64);
    check
}

fn variants() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "one check (http)",
            vec![every_second(http_check("/health"), "live")],
        ),
        (
            "two checks (http + tcp)",
            vec![
                every_second(http_check("/health"), "live"),
                every_second(tcp_check(), "port"),
            ],
        ),
        (
            "two checks (http + http)",
            vec![
                every_second(http_check("/health"), "live"),
                every_second(http_check("/health/ready"), "ready"),
            ],
        ),
    ]
}

/// A `show info` field.
fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": ").map(str::to_string))
}

/// User + system CPU time of a process, in clock ticks (`/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> Result<u64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: count after it.
    let after = stat
        .rsplit_once(") ")
        .ok_or("no ')' in /proc/<pid>/stat")?
        .1;
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 here).
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// Clock ticks per second.
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf reads a constant of the running system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

struct Figures {
    cpu_ms_per_sec: f64,
    idle_pct: f64,
    checks_per_sec: f64,
}

async fn measure(servers: usize, seconds: u64, checks: Vec<Value>) -> Result<Figures, Error> {
    let app = HttpBackend::start().await;
    let mut world = World::start().await;
    world.sim.register_job(json!({
        "ID": "cost", "Namespace": "default", "Type": "service",
        "TaskGroups": [{"Name": "g",
            "Services": [{"Name": "cost", "PortLabel": "http", "Provider": "nomad",
                          "Tags": [ON], "Checks": checks}],
            "Tasks": [{"Name": "t"}]}]
    }));
    for _ in 0..servers {
        world.place("cost", "g", &[("http", app.port)]);
    }
    world.start_daemon();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let up = world
            .haproxy
            .stat()
            .await
            .iter()
            .filter(|r| r["svname"] != "BACKEND" && r["svname"] != "FRONTEND")
            .filter(|r| r["status"] == "UP")
            .count();
        if up >= servers {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {up} of {servers} servers UP after 180 s").into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Settle: the first checks of every server are behind us.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let info = world.haproxy.cmd("show info").await;
    let pid: u32 = info_field(&info, "Pid")
        .ok_or("no Pid in show info")?
        .parse()?;
    let checks_before = app.health_checks();
    let ticks_before = cpu_ticks(pid)?;
    let start = Instant::now();
    let mut idle = Vec::new();
    while start.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let info = world.haproxy.cmd("show info").await;
        if let Some(v) = info_field(&info, "Idle_pct").and_then(|v| v.parse::<f64>().ok()) {
            idle.push(v);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid)? - ticks_before;
    let checks = app.health_checks() - checks_before;
    world.stop_daemon().await;
    Ok(Figures {
        cpu_ms_per_sec: ticks as f64 / ticks_per_sec() * 1e3 / elapsed,
        idle_pct: idle.iter().sum::<f64>() / idle.len().max(1) as f64,
        checks_per_sec: checks as f64 / elapsed,
    })
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let servers: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(500);
    let seconds: u64 = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(60);
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    for (name, checks) in variants() {
        eprintln!("{name}: {servers} servers, measuring {seconds} s...");
        let f = runtime.block_on(measure(servers, seconds, checks))?;
        rows.push((name, f));
    }
    let base = rows[0].1.cpu_ms_per_sec;
    println!("{servers} servers, one service, checks every 1 s, {seconds} s each, one run");
    println!(
        "| checks per server | HAProxy CPU (ms/s) | per server (µs/s) | ratio to one check | Idle_pct | HTTP requests to /health* per s |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, f) in &rows {
        println!(
            "| {name} | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} |",
            f.cpu_ms_per_sec,
            f.cpu_ms_per_sec * 1e3 / servers as f64,
            f.cpu_ms_per_sec / base,
            f.idle_pct,
            f.checks_per_sec
        );
    }
    Ok(())
}
