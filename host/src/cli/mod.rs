//! The command line: arguments and the commands behind them.

mod map;
mod plugin;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status for an unusable config (sysexits' EX_USAGE... EX_CONFIG is 78;
/// the project uses 64 for every config error, see docs/configuration.md).
pub const EXIT_CONFIG: u8 = 64;

/// Keeps HAProxy's backends and health checks equal to Nomad's services.
#[derive(Debug, Parser)]
#[command(name = "haproxy-nomad-connector", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the HAProxy checks the connector would use for a job's services.
    Map(map::MapArgs),
    /// Work with mapping plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// Runs the chosen command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Map(a) => map::run(a),
        Command::Plugin(c) => plugin::run(c),
    }
}

/// Loads the config file, or the defaults when none is given.
fn load_config(
    path: Option<&PathBuf>,
) -> Result<haproxy_nomad_connector::config::Config, ExitCode> {
    match path {
        None => Ok(Default::default()),
        Some(p) => haproxy_nomad_connector::config::Config::load(p).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }),
    }
}
