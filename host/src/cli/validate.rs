//! `validate CONFIG`: everything the daemon checks at start, without starting it.

use haproxy_nomad_connector::config::Resolved;
use haproxy_nomad_connector::mapping::Engine;
use haproxy_nomad_connector::nomad::Address;
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
    let config = match Resolved::load(Some(args.config.as_path())) {
        Ok(c) => c,
        Err(e) => return refuse(e.to_string()),
    };
    let engine = match Engine::new(&config.mapping, config.render.clone()) {
        Ok(e) => e,
        Err(e) => return refuse(e.to_string()),
    };
    println!("config {} is valid", args.config.display());
    let nomad = match &config.nomad.address {
        Address::Tcp(url) => url.clone(),
        Address::Unix(path) => format!("unix://{}", path.display()),
    };
    println!(
        "  nomad: {nomad} (namespaces {:?})",
        config.nomad.namespaces
    );
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
