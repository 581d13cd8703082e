//! HAProxy's own floor for a batch of runtime changes: the very command
//! lines the driver sends, written raw over the stats socket, in the same
//! requests (at most `MAX_REQUEST` bytes each), with nothing else around
//! them. The benches compare the driver and the daemon with it.

use crate::haproxy::Haproxy;
use haproxy_nomad_connector::haproxy::commands::{self, Context};
use haproxy_nomad_connector::haproxy::{Driver, RuntimeDriver};
use haproxy_nomad_connector::plan::{BackendSpec, Desired, ServerAction, ServerSpec, diff};
use haproxy_nomad_connector::vocab::names;
use haproxy_nomad_connector::vocab::syntax::Token;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

type Error = Box<dyn std::error::Error>;

/// `servers` checked servers (`check inter <inter>`, weight 10) on ports
/// from 20,000 in a dynamic backend.
///
/// # Errors
/// A name or argument is not a valid token.
pub fn backend(name: &str, servers: usize, inter: &str) -> Result<BackendSpec, Error> {
    let mut b = BackendSpec::dynamic(name);
    for i in 0..servers {
        let port = 20_000 + u16::try_from(i % 40_000)?;
        let mut s = ServerSpec::new(
            names::server_name(&format!("{name}-{i}")),
            [127, 0, 0, 1].into(),
            port,
        );
        s.weight = 10;
        s.check_args = vec![
            Token::word("check", "check", 8)?,
            Token::word("inter", "inter", 8)?,
            Token::word("ms", inter, 16)?,
        ]
        .into();
        b.insert(s);
    }
    Ok(b)
}

/// A desired state of these backends.
pub fn desired(backends: &[&BackendSpec]) -> Desired {
    let mut d = Desired::default();
    for b in backends {
        d.insert((*b).clone());
    }
    d
}

/// The command lines the driver would send to add the servers of `want`
/// that HAProxy does not run yet (their backends must run).
///
/// # Errors
/// HAProxy cannot be read, or a change has no command.
pub async fn add_lines(driver: &RuntimeDriver, want: &Desired) -> Result<Vec<String>, Error> {
    let changes = diff(want, &driver.actual().await?);
    let ctx = Context {
        caps: driver.version().capabilities(),
        ..Context::default()
    };
    let mut lines = Vec::new();
    let adds = changes
        .servers
        .iter()
        .filter(|c| matches!(c.action, ServerAction::Add(_)));
    for change in adds {
        lines.extend(
            commands::for_change(change, ctx)?
                .into_iter()
                .map(|c| c.text),
        );
    }
    Ok(lines)
}

/// Sends `lines` raw, in the driver's requests, each written while its
/// answer is read to the end; returns how long HAProxy took.
///
/// # Errors
/// The socket cannot be reached.
pub async fn raw(socket: &Path, lines: &[String]) -> Result<Duration, Error> {
    let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
    let inputs: Vec<String> = commands::requests(&texts, commands::MAX_REQUEST)
        .into_iter()
        .map(|run| commands::frame(texts[run].iter().copied()))
        .collect();
    let start = Instant::now();
    for input in inputs {
        let stream = UnixStream::connect(socket).await?;
        let (mut r, mut w) = stream.into_split();
        let write = w.write_all(input.as_bytes());
        let mut out = Vec::new();
        let (written, read) = tokio::join!(write, r.read_to_end(&mut out));
        written?;
        read?;
    }
    Ok(start.elapsed())
}

/// HAProxy's floor for adding `per_backend` checked servers to each of
/// `backends` running backends, in a fresh HAProxy: the median of `rounds`.
///
/// # Errors
/// HAProxy cannot be started or driven.
pub async fn adds(
    backends: usize,
    per_backend: usize,
    inter: &str,
    rounds: usize,
) -> Result<Duration, Error> {
    let h = Haproxy::start("").await;
    let mut config = h.driver_config();
    config.host_map = None;
    config.uri_map = None;
    config.drain_grace_ms = 0;
    let driver = RuntimeDriver::start(config).await?;
    let names: Vec<String> = (0..backends).map(|i| format!("floor{i}")).collect();
    let empty: Vec<BackendSpec> = names.iter().map(BackendSpec::dynamic).collect();
    let full: Vec<BackendSpec> = names
        .iter()
        .map(|n| backend(n, per_backend, inter))
        .collect::<Result<_, _>>()?;
    let empty_state = desired(&empty.iter().collect::<Vec<_>>());
    driver.sync(&empty_state).await?;
    let mut times = Vec::new();
    for _ in 0..rounds.max(1) {
        let lines = add_lines(&driver, &desired(&full.iter().collect::<Vec<_>>())).await?;
        times.push(raw(&h.stats_socket, &lines).await?);
        // The driver removes them again (not timed).
        driver.sync(&empty_state).await?;
    }
    times.sort();
    Ok(times[times.len() / 2])
}
