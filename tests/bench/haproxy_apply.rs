//! Figures of the runtime driver against a real HAProxy: batched adds vs. the raw floor, and a reload.
//!
//! `cargo run --release -p hnc-tests --bin bench-haproxy [servers] [rounds]`
//!
//! 1. Adds `servers` (default 1000) checked servers to an empty backend with
//!    `RuntimeDriver::apply` (one batch of the safe add sequence, plus the
//!    managed file, Host map and state file it rewrites), and sends the
//!    very same command lines raw on one connection (`prompt` mode, read to
//!    the end) to a twin backend: HAProxy's own floor. Rounds alternate;
//!    the medians and their ratio are printed.
//! 2. Changes the check of the `servers`-server backend and prints how many
//!    reloads `show proc` counted and how long the apply took (render,
//!    `haproxy -c`, state dump, reload, confirmation, persistence).

use haproxy_nomad_connector::haproxy::commands::{self, Context};
use haproxy_nomad_connector::haproxy::syntax::Token;
use haproxy_nomad_connector::haproxy::{Driver, ReloadOutcome, RuntimeDriver, names};
use haproxy_nomad_connector::plan::{BackendSpec, Desired, ServerSpec, diff};
use hnc_tests::haproxy::Haproxy;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

type Error = Box<dyn std::error::Error>;

fn check_args(inter: &str) -> Result<Vec<Token>, Error> {
    Ok(vec![
        Token::word("check", "check", 8)?,
        Token::word("inter", "inter", 8)?,
        Token::word("ms", inter, 16)?,
    ])
}

fn backend(name: &str, servers: usize, inter: &str) -> Result<BackendSpec, Error> {
    let mut b = BackendSpec::dynamic(name);
    for i in 0..servers {
        let port = 20_000 + u16::try_from(i % 40_000)?;
        let mut s = ServerSpec::new(
            names::server_name(&format!("bench-{i}")),
            [127, 0, 0, 1].into(),
            port,
        );
        s.weight = 10;
        s.check_args = check_args(inter)?.into();
        b.insert(s);
    }
    Ok(b)
}

fn desired(backends: &[&BackendSpec]) -> Desired {
    let mut d = Desired::default();
    for b in backends {
        d.insert((*b).clone());
    }
    d
}

/// The floor: the same lines, raw, on one connection.
async fn raw(socket: &std::path::Path, lines: &[String]) -> Result<Duration, Error> {
    let mut input = String::from("prompt\n");
    for l in lines {
        input.push_str(l);
        input.push('\n');
    }
    input.push_str("quit\n");
    let start = Instant::now();
    let stream = UnixStream::connect(socket).await?;
    let (mut r, mut w) = stream.into_split();
    let write = async {
        w.write_all(input.as_bytes()).await?;
        w.shutdown().await
    };
    let mut out = Vec::new();
    let (written, read) = tokio::join!(write, r.read_to_end(&mut out));
    written?;
    read?;
    Ok(start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let servers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
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
        let twin_changes = diff(&desired(&[&empty_a, &twin]), &driver.actual().await?);
        let mut lines = Vec::new();
        for change in twin_changes
            .servers
            .iter()
            .filter(|c| c.backend == "bench_raw")
        {
            lines.extend(
                commands::for_change(change, Context::default())?
                    .into_iter()
                    .map(|c| c.text),
            );
        }
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
        "runtime adds, raw floor (same lines, one connection):            {:>8.1} ms",
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
    Ok(())
}
