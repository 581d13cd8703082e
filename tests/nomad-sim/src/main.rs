//! `nomad-sim`: runs the Nomad API simulator on a fixed address until killed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use nomad_sim::{Acl, AclToken, Scenario, Sim, SimConfig, StreamMode, parse_positive_duration};

/// Event-stream wire format.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Nomad before 1.11.2: chunked, errors as status codes or trailing text.
    Chunked,
    /// Nomad 1.11.2+: always 200, close-delimited, errors close the connection.
    Hijacked,
}

/// A simulated Nomad agent (HTTP API) for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "nomad-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4646")]
    listen: SocketAddr,
    /// JSON scenario: {"jobs": [...], "allocs": [...]}.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Event-stream heartbeat interval (Go duration).
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    heartbeat: Duration,
    /// Raft batches kept in the event buffer.
    #[arg(long, default_value_t = 100)]
    buffer_size: usize,
    /// Event-stream wire format.
    #[arg(long, value_enum, default_value = "hijacked")]
    stream_mode: Mode,
    /// Enable ACLs with this management token (anonymous gets nothing).
    #[arg(long)]
    acl_management_token: Option<String>,
    /// Status for a valid token lacking capability on the stream (403, or 500 for <=1.9.5).
    #[arg(long, default_value_t = 403)]
    acl_denied_status: u16,
    /// Also serve the Task API on this Unix socket (every request must authenticate).
    #[arg(long)]
    task_api_socket: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cfg = SimConfig {
        listen: args.listen,
        heartbeat: args.heartbeat,
        buffer_size: args.buffer_size,
        stream_mode: match args.stream_mode {
            Mode::Chunked => StreamMode::Chunked,
            Mode::Hijacked => StreamMode::Hijacked,
        },
        acl: args
            .acl_management_token
            .as_deref()
            .map(|t| Acl::with_tokens(vec![AclToken::management(t)])),
        acl_denied_status: args.acl_denied_status,
        task_api_socket: args.task_api_socket.clone(),
        ..SimConfig::default()
    };
    let sim = Sim::start(cfg).await?;
    if let Some(path) = &args.scenario {
        let scenario = Scenario::load(path)?;
        let allocs = scenario.apply(&sim)?;
        eprintln!(
            "scenario applied: {} job(s), {} alloc(s)",
            scenario.jobs.len(),
            allocs.len()
        );
    }
    println!("{}", sim.url());
    wait_for_signal().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
