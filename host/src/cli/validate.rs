//! `validate CONFIG`: everything the daemon checks at start, without starting it.

use haproxy_nomad_connector::config::Config;
use haproxy_nomad_connector::mapping::Engine;
use haproxy_nomad_connector::nomad::{Address, ProcessEnv};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The config file.
    config: PathBuf,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let refuse = |what: String| {
        eprintln!("invalid: {what}");
        Ok(ExitCode::from(super::EXIT_CONFIG))
    };
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return refuse(e.to_string()),
    };
    let engine = match Engine::new(&config.mapping, config.render_context()) {
        Ok(e) => e,
        Err(e) => return refuse(e.to_string()),
    };
    let settings = match config.nomad.resolve(&ProcessEnv) {
        Ok(s) => s,
        Err(e) => return refuse(e.to_string()),
    };
    for (what, path) in [
        ("haproxy.stats_socket", &config.haproxy.stats_socket),
        ("haproxy.master_socket", &config.haproxy.master_socket),
        ("haproxy.managed_config", &config.haproxy.managed_config),
        ("haproxy.state_file", &config.haproxy.state_file),
    ] {
        if !path.is_absolute() {
            return refuse(format!(
                "{what}: {} is not an absolute path",
                path.display()
            ));
        }
    }
    println!("config {} is valid", args.config.display());
    let nomad = match &settings.address {
        Address::Tcp(url) => url.clone(),
        Address::Unix(path) => format!("unix://{}", path.display()),
    };
    println!("  nomad: {nomad} (namespaces {:?})", settings.namespaces);
    println!(
        "  haproxy: {} ({})",
        config.haproxy.stats_socket.display(),
        config.haproxy.managed_config.display()
    );
    for (check_type, plugin) in engine.plugins() {
        println!(
            "  {check_type:<8} → {} from {}",
            plugin.label(),
            plugin.origin()
        );
    }
    Ok(ExitCode::SUCCESS)
}
