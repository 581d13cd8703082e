//! The `haproxy-nomad-connector` binary: parse the command line, run a command.

// jemalloc; `--features system-allocator` keeps glibc's malloc, for heap
// profilers that hook it (heaptrack).
#[cfg(all(
    target_os = "linux",
    not(target_env = "musl"),
    not(feature = "system-allocator")
))]
mod allocator;
mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(all(
        target_os = "linux",
        not(target_env = "musl"),
        not(feature = "system-allocator")
    ))]
    haproxy_nomad_connector::heap::install(allocator::JEMALLOC);
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
