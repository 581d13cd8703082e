//! `plugin`: the plugin author's kit. `new` writes a standalone project,
//! `build` turns it into a component, `check` runs a component through the
//! daemon's path, `test` runs a project's fixtures through that same path.

mod build;
mod check;
mod diff;
mod fixture;
mod new;
mod test;
mod vendor;

use std::path::PathBuf;
use std::process::ExitCode;

/// Prints a line and keeps it (tests read what was said).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        $out.say(format!($($arg)*))
    };
}
pub(crate) use say;

/// What a `plugin` command says: printed as it goes, and kept.
#[derive(Debug, Default)]
pub(crate) struct Out {
    lines: Vec<String>,
    quiet: bool,
}

impl Out {
    fn say(&mut self, line: String) {
        if !self.quiet {
            if line.starts_with("refused:") || line.starts_with("error:") {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        self.lines.push(line);
    }

    /// An `Out` that keeps lines without printing them (unit tests).
    #[cfg(test)]
    fn quiet() -> Out {
        Out {
            quiet: true,
            ..Out::default()
        }
    }
}

/// `plugin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Map a sample check (or the given one) with a component as the daemon
    /// would, print the HAProxy lines, and exit non-zero when the daemon
    /// would refuse the plugin or fall back to a TCP check.
    Check(check::CheckArgs),
    /// Write a new plugin project (a standalone Cargo project with the SDK,
    /// the WIT, fixtures and a README) that builds with crates.io alone.
    New(new::NewArgs),
    /// Build a plugin project into a component (`cargo build --release
    /// --target wasm32-unknown-unknown`, then component encoding).
    Build(build::BuildArgs),
    /// Run a plugin's fixtures through the daemon's path and show a diff
    /// for each that does not give what it expects.
    Test(test::TestArgs),
}

/// `KEY=VALUE`.
fn setting(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))
}

/// Runs a `plugin` subcommand.
pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    let out = &mut Out::default();
    match command {
        PluginCommand::Check(args) => check::run(args, out),
        PluginCommand::New(args) => new::run(&args, out),
        PluginCommand::Build(args) => build::run(&args, out).map(|_| ExitCode::SUCCESS),
        PluginCommand::Test(args) => test::run(&args, out),
    }
}

/// The project directory of `build` and `test` when none is given.
fn current_dir() -> PathBuf {
    PathBuf::from(".")
}
