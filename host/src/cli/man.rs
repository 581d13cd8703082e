//! `man` (hidden): writes the man page, generated from the command line's
//! own definition, so that it never disagrees with `--help`.

use anyhow::Context;
use clap::{Args as ClapArgs, CommandFactory};
use std::path::PathBuf;
use std::process::ExitCode;

/// Where to write the page.
#[derive(Debug, ClapArgs)]
pub struct ManArgs {
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Renders `haproxy-nomad-connector(1)`.
pub fn run(args: ManArgs) -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(super::Args::command())
        .render(&mut page)
        .context("rendering the man page")?;
    match args.output {
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&page)
                .context("writing the man page")?;
        }
        Some(path) => {
            std::fs::write(&path, &page).with_context(|| format!("writing {}", path.display()))?
        }
    }
    Ok(ExitCode::SUCCESS)
}
