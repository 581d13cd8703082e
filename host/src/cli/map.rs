//! `map`: a job's services and the HAProxy checks the connector would give them, offline.

use anyhow::Context;
use haproxy_nomad_connector::mapping::Engine;
use haproxy_nomad_connector::nomad::job::JobSpec;
use haproxy_nomad_connector::report;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `map`.
#[derive(Debug, clap::Args)]
pub struct MapArgs {
    /// A job as `GET /v1/job/:id` returns it (JSON).
    #[arg(long)]
    job: PathBuf,
    /// The connector's config file (plugins, settings, limits).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Haproxy)]
    format: Format,
    /// Exit with status 1 when any check fell back to TCP (a service
    /// without any check is not counted).
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// HAProxy's own syntax, with comments.
    Haproxy,
    /// The typed results, as JSON.
    Json,
}

pub fn run(args: MapArgs) -> anyhow::Result<ExitCode> {
    let config = match super::load_config(args.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let text = std::fs::read_to_string(&args.job)
        .with_context(|| format!("reading {}", args.job.display()))?;
    let job =
        JobSpec::from_json(&text).with_context(|| format!("parsing {}", args.job.display()))?;
    let engine = match Engine::new(&config.mapping, config.render.clone()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(super::EXIT_CONFIG));
        }
    };
    let reports = report::job_report(&engine, &job);
    match args.format {
        Format::Haproxy => print!("{}", report::render_haproxy(&reports)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
    }
    let fell_back: Vec<&str> = reports
        .iter()
        .filter(|r| {
            r.fallback
                .as_deref()
                .is_some_and(|f| !f.starts_with("no-check"))
        })
        .map(|r| r.service.as_str())
        .collect();
    if args.strict && !fell_back.is_empty() {
        eprintln!(
            "error: {} check(s) fell back to TCP: {}",
            fell_back.len(),
            fell_back.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
