//! `run`: the daemon, with SIGHUP → reload and SIGTERM/SIGINT → graceful stop.

use haproxy_nomad_connector::daemon::{self, Control};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config file (re-read on SIGHUP).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Threads for blocking work (file writes, DNS look-ups).
const BLOCKING_THREADS: usize = 4;

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match super::load_config(args.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    // File writes (64 state shards at once) run on tokio's blocking pool;
    // uncapped, it grew to ~60 threads, each with its own malloc arena
    // holding freed memory. A few threads write as fast on one disk.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()?;
    runtime.block_on(async {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(forward_signals(tx));
        match daemon::run(config, args.config.clone(), rx).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => match super::config_failure(&e) {
                Some(code) => Ok(code),
                None => Err(anyhow::Error::new(e).context("the connector stopped")),
            },
        }
    })
}

/// Turns signals into [`Control`] messages.
async fn forward_signals(tx: mpsc::Sender<Control>) {
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        let message = tokio::select! {
            _ = hup.recv() => Control::Reload,
            _ = term.recv() => Control::Shutdown,
            _ = int.recv() => Control::Shutdown,
        };
        if tx.send(message).await.is_err() || message == Control::Shutdown {
            return;
        }
    }
}
