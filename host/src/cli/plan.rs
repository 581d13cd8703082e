//! `plan` (the diff against the live HAProxy, not applied) and `explain SERVICE`.

use anyhow::Context;
use haproxy_nomad_connector::daemon;
use haproxy_nomad_connector::escape::OneLine;
use haproxy_nomad_connector::haproxy::Driver;
use haproxy_nomad_connector::plan::{ServicePlan, diff};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long a one-shot command waits for Nomad's listing.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The config file.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Arguments of `explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The service: `name` or `namespace/name`.
    service: String,
    /// The config file.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let config = match super::load_config(args.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    runtime()?.block_on(async {
        let reconciler = match daemon::snapshot(&config, LIST_TIMEOUT).await {
            Ok(r) => r,
            Err(e) => return super::config_failure(&e).ok_or(e.into()),
        };
        let actual = reconciler
            .driver()
            .actual()
            .await
            .context("reading HAProxy's state")?;
        let desired = &reconciler.assembled().desired;
        let changes = diff(desired, &actual);
        for conflict in &reconciler.assembled().conflicts {
            println!("! {}", OneLine(conflict));
        }
        let lines = super::explain_text::describe(&changes);
        if lines.is_empty() {
            println!(
                "no changes: HAProxy matches Nomad ({} backends, {} instances)",
                desired.backends.len(),
                reconciler.instances()
            );
        } else {
            for line in &lines {
                println!("{line}");
            }
            let reload = if changes.needs_reload() {
                "1 reload"
            } else {
                "no reload"
            };
            println!("{} changes ({reload}); not applied", lines.len());
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let config = match super::load_config(args.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let (namespace, name) = match args.service.split_once('/') {
        Some((ns, name)) => (Some(ns.to_string()), name.to_string()),
        None => (None, args.service.clone()),
    };
    runtime()?.block_on(async {
        let reconciler = match daemon::snapshot(&config, LIST_TIMEOUT).await {
            Ok(r) => r,
            Err(e) => return super::config_failure(&e).ok_or(e.into()),
        };
        let actual = reconciler
            .driver()
            .actual()
            .await
            .context("reading HAProxy's state")?;
        let matches: Vec<&ServicePlan> = reconciler
            .plans()
            .values()
            .filter(|p| {
                p.key.name == name && namespace.as_ref().is_none_or(|ns| *ns == p.key.namespace)
            })
            .collect();
        if matches.is_empty() {
            eprintln!(
                "no service {:?} in Nomad (among {} services)",
                args.service,
                reconciler.plans().len()
            );
            return Ok(ExitCode::FAILURE);
        }
        let targets = reconciler.verdict_targets();
        for plan in matches {
            print!(
                "{}",
                super::explain_text::render(plan, reconciler.assembled(), &actual)
            );
            let mine: Vec<_> = targets
                .iter()
                .filter(|t| t.namespace == plan.key.namespace && t.service == plan.key.name)
                .cloned()
                .collect();
            for line in daemon::verdicts::explain(&config, &mine).await {
                println!("{line}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
