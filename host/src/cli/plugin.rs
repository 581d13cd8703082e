//! `plugin check`: load a component the way the daemon would and print its info or why it is refused.

use haproxy_nomad_connector::mapping::{self, wasm};
use std::path::PathBuf;
use std::process::ExitCode;

/// `plugin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Print a component's info, or why the connector refuses it.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
    },
}

pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    let PluginCommand::Check { file } = command;
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("refused: {}: {e}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let engine = wasm::new_engine().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let origin = file.display().to_string();
    match mapping::load_bytes(&engine, &bytes, &origin, &mapping::Config::default()) {
        Ok(plugin) => {
            let info = plugin.info();
            println!("plugin:      {}", info.name);
            println!("version:     {}", info.version);
            println!("check types: {}", info.check_types.join(", "));
            println!("size:        {} bytes", bytes.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
