//! `plugin check`: load a component the way the daemon would and print its info or why it is refused.

use haproxy_nomad_connector::mapping::{self, CallError, Plugin, sample, wasm};
use hnc_core::model::{BackendCheck, Settings};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Warm calls timed per check type.
const TIMED_CALLS: u32 = 1000;

/// `plugin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Print a component's info, or why the connector refuses it.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
        /// A plugin setting for the sample calls, as in
        /// `[mapping.settings.<type>]` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = setting)]
        settings: Vec<(String, String)>,
    },
}

/// `KEY=VALUE`.
fn setting(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))
}

pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    let PluginCommand::Check { file, settings } = command;
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
            let mut sound = true;
            for check_type in &info.check_types {
                sound &= sample_call(&plugin, check_type, &settings);
            }
            Ok(if sound {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Maps the sample check of `check_type` and prints what it cost: the fuel
/// of one call against the default budget, and the mean time of a warm call.
///
/// False when the plugin failed (a trap, a limit, an answer the host cannot
/// use); a refusal is the plugin's own answer, often to missing settings.
fn sample_call(plugin: &Plugin, check_type: &str, settings: &Settings) -> bool {
    let (service, check) = (sample::service(), sample::check(check_type));
    let (first, fuel) = plugin.call_metered(&service, &check, settings);
    let plan = match first {
        Ok(plan) => plan,
        Err(CallError::Rejected(why)) => {
            println!(
                "sample {check_type} check: refused by the plugin: {why} \
                 (give its settings with --set KEY=VALUE)"
            );
            return true;
        }
        Err(e) => {
            println!("sample {check_type} check: failed: {e}");
            return false;
        }
    };
    let started = Instant::now();
    for _ in 0..TIMED_CALLS {
        if let Err(e) = plugin.call(&service, &check, settings) {
            println!("sample {check_type} check: a warm call failed: {e}");
            return false;
        }
    }
    let warm = started.elapsed().as_secs_f64() * 1e6 / f64::from(TIMED_CALLS);
    let backend = match &plan.backend {
        BackendCheck::Tcp => "a TCP connect check".to_string(),
        BackendCheck::Http(_) => "an HTTP check".to_string(),
        BackendCheck::TcpCheck(rules) => format!("a tcp-check of {} rules", rules.len()),
    };
    println!(
        "sample {check_type} check: {backend}; fuel {fuel} of {budget} per call; \
         warm call {warm:.1} µs (mean of {TIMED_CALLS})",
        budget = mapping::Limits::default().fuel,
    );
    true
}
