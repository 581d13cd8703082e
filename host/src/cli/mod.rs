//! The command line: arguments and the commands behind them.

mod explain_text;
mod man;
mod map;
mod plan;
mod plugin;
mod run;
mod validate;

#[cfg(test)]
mod docs_flags_tests;
#[cfg(test)]
mod exit_code_tests;

use clap::{Parser, Subcommand};
use haproxy_nomad_connector::config::Resolved;
use haproxy_nomad_connector::daemon;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status for an unusable config: every config error, whichever
/// command meets it (docs/configuration.md).
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
    /// Run the connector: keep HAProxy equal to Nomad.
    Run(run::RunArgs),
    /// Print what the connector would change in the live HAProxy, without applying it.
    Plan(plan::PlanArgs),
    /// Show how a service is mapped: instances, checks, job versions, plugins, tags, HAProxy lines and state.
    Explain(plan::ExplainArgs),
    /// Check a config file (plugins, settings, Nomad variables) without running.
    Validate(validate::ValidateArgs),
    /// Print the HAProxy checks the connector would use for a job's services.
    Map(map::MapArgs),
    /// Work with mapping plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Write the man page (for packaging).
    #[command(hide = true)]
    Man(man::ManArgs),
}

/// Runs the chosen command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Run(a) => run::run(a),
        Command::Plan(a) => plan::plan(a),
        Command::Explain(a) => plan::explain(a),
        Command::Validate(a) => {
            init_logging(&Default::default());
            validate::run(a)
        }
        Command::Map(a) => map::run(a),
        Command::Plugin(c) => {
            init_logging(&Default::default());
            plugin::run(c)
        }
        Command::Man(a) => man::run(a),
    }
}

/// Loads and resolves the config file (or the defaults when none is
/// given), then sets up logging as its `[log]` section says. An unusable
/// config is printed and becomes [`EXIT_CONFIG`].
fn load_config(path: Option<&PathBuf>) -> Result<Resolved, ExitCode> {
    match Resolved::load(path.map(PathBuf::as_path)) {
        Ok(config) => {
            init_logging(&config.log);
            Ok(config)
        }
        Err(e) => {
            init_logging(&Default::default());
            eprintln!("error: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// The exit status of a daemon error that comes from the config (a plugin
/// or its settings that cannot load): [`EXIT_CONFIG`], after printing it.
fn config_failure(e: &daemon::Error) -> Option<ExitCode> {
    match e {
        daemon::Error::Mapping(_) => {
            eprintln!("error: {e}");
            Some(ExitCode::from(EXIT_CONFIG))
        }
        _ => None,
    }
}

/// Sets up logging once; a bad filter falls back to `info` with a warning.
fn init_logging(log: &haproxy_nomad_connector::logging::Config) {
    if let Err(e) = log.init() {
        let _ = haproxy_nomad_connector::logging::init(log.format, "info");
        tracing::warn!("{e}; logging at info");
    }
}
