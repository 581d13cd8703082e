//! Figures of the runtime driver against a real HAProxy: batched adds vs. the raw floor, and a reload.
//!
//! `cargo run --release -p hnc-tests --bin bench-haproxy [servers] [rounds] [haproxy dir…]`
//!
//! Runs once per HAProxy: the `haproxy` on `PATH`, then each directory given
//! (by default every `../shared/haproxy/<version>/` that exists), each put
//! first on `PATH` for a run of this program in its own process; a table of
//! every version's figures ends the output.
//!
//! 1. Adds `servers` (default 1000) checked servers to an empty backend with
//!    `RuntimeDriver::apply` (one batch of the safe add sequence, plus the
//!    managed file, Host map and state file it rewrites), and sends the
//!    very same command lines raw, in the same requests of at most
//!    `MAX_REQUEST` bytes (`prompt` mode, read to the end), to a twin
//!    backend: HAProxy's own floor. Rounds alternate;
//!    the medians and their ratio are printed.
//! 2. Changes the check of the `servers`-server backend and prints how many
//!    reloads `show proc` counted and how long the apply took (render,
//!    `haproxy -c`, state dump, reload, confirmation, persistence).

use haproxy_nomad_connector::haproxy::{Driver, ReloadOutcome, RuntimeDriver};
use haproxy_nomad_connector::plan::{BackendSpec, diff};
use hnc_tests::floor::{add_lines, backend, desired, raw};
use hnc_tests::haproxy::Haproxy;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Marks a run for one HAProxy (the `haproxy` on `PATH`).
const ONE_VERSION: &str = "HNC_BENCH_ONE_VERSION";
/// The line each run ends with, for the summary table.
const FIGURES: &str = "figures:";

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let servers: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let rounds: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(5);
    if std::env::var_os(ONE_VERSION).is_some() {
        return tokio::runtime::Runtime::new()?.block_on(one_version(servers, rounds));
    }
    let mut dirs: Vec<Option<PathBuf>> = vec![None];
    if args.len() > 2 {
        dirs.extend(args[2..].iter().map(|d| Some(PathBuf::from(d))));
    } else if let Ok(found) = std::fs::read_dir("../shared/haproxy") {
        let mut found: Vec<PathBuf> = found
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("haproxy").is_file())
            .collect();
        found.sort();
        dirs.extend(found.into_iter().map(Some));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut rows = Vec::new();
    for dir in dirs {
        let mut run = Command::new(std::env::current_exe()?);
        run.args([servers.to_string(), rounds.to_string()])
            .env(ONE_VERSION, "1");
        if let Some(dir) = &dir {
            let mut paths = vec![std::fs::canonicalize(dir)?];
            paths.extend(std::env::split_paths(&path));
            run.env("PATH", std::env::join_paths(paths)?);
        }
        let out = run.output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            return Err(format!("the run with {dir:?} failed").into());
        }
        rows.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix(FIGURES))
                .map(str::to_string),
        );
    }
    println!();
    println!(
        "| HAProxy | driver apply (ms) | raw floor (ms) | ratio | check change: reloads | check change: apply (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// The figures of the `haproxy` on `PATH`.
async fn one_version(servers: usize, rounds: usize) -> Result<(), Error> {
    let h = Haproxy::start("").await;
    let mut config = h.driver_config();
    config.host_map = None;
    config.uri_map = None;
    config.drain_grace_ms = 0;
    let driver = RuntimeDriver::start(config).await?;
    let empty_a = BackendSpec::dynamic("bench_driver");
    let empty_b = BackendSpec::dynamic("bench_raw");
    driver.sync(&desired(&[&empty_a, &empty_b])).await?;

    let full = backend("bench_driver", servers, "60s")?;
    let twin = backend("bench_raw", servers, "60s")?;
    let (mut driver_times, mut raw_times) = (Vec::new(), Vec::new());
    let mut commands = 0;
    for _ in 0..rounds {
        // The driver: actual + diff outside the timing, the apply inside.
        let want = desired(&[&full, &empty_b]);
        let changes = diff(&want, &driver.actual().await?);
        let start = Instant::now();
        let report = driver.apply(&want, &changes).await?;
        driver_times.push(start.elapsed());
        assert_eq!(report.applied.len(), servers, "{:?}", report.failed.first());
        // The floor: the same command lines for the twin backend.
        let lines = add_lines(&driver, &desired(&[&empty_a, &twin])).await?;
        commands = lines.len();
        raw_times.push(raw(&h.stats_socket, &lines).await?);
        // Clean up both (not timed): the driver removes everything.
        driver.sync(&desired(&[&empty_a, &empty_b])).await?;
    }
    let (d, r) = (median(driver_times), median(raw_times));
    println!(
        "HAProxy {} | {servers} servers, {commands} commands per run, median of {rounds} rounds",
        driver.version()
    );
    println!(
        "runtime adds, driver apply (1 batch + managed file + state dump): {:>8.1} ms",
        d.as_secs_f64() * 1e3
    );
    println!(
        "runtime adds, raw floor (same lines, same requests):              {:>8.1} ms",
        r.as_secs_f64() * 1e3
    );
    println!(
        "ratio driver / floor:                                             {:>8.2}",
        d.as_secs_f64() / r.as_secs_f64()
    );

    // The reload: a check change on the full backend.
    driver.sync(&desired(&[&full, &empty_b])).await?;
    let before = h.reloads().await;
    let changed = backend("bench_driver", servers, "30s")?;
    let want = desired(&[&changed, &empty_b]);
    let changes = diff(&want, &driver.actual().await?);
    let start = Instant::now();
    let report = driver.apply(&want, &changes).await?;
    let took = start.elapsed();
    let after = h.reloads().await;
    assert!(
        matches!(report.reload, ReloadOutcome::Done { .. }),
        "{:?}",
        report.reload
    );
    println!(
        "check change on a {servers}-server backend: {} reload(s) counted by show proc, apply {:.1} ms (render, haproxy -c, state dump, reload, new worker answering, persistence)",
        after.0 - before.0,
        took.as_secs_f64() * 1e3
    );
    println!(
        "{FIGURES}| {} | {:.1} | {:.1} | {:.2} | {} | {:.1} |",
        driver.version(),
        d.as_secs_f64() * 1e3,
        r.as_secs_f64() * 1e3,
        d.as_secs_f64() / r.as_secs_f64(),
        after.0 - before.0,
        took.as_secs_f64() * 1e3
    );
    Ok(())
}
