//! `plugin test DIR|FILE.wasm`: each fixture mapped through exactly the
//! path of `plugin check` (engine, validation, rendering, `haproxy -c`),
//! compared with what it expects, with a diff for each mismatch.

use super::check::{self, CheckPreview};
use super::fixture::{self, Fixture};
use super::{Out, diff, say};
use haproxy_nomad_connector::config::Config;
use haproxy_nomad_connector::haproxy::dry_run;
use haproxy_nomad_connector::mapping::{Engine, sample};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `plugin test [DIR|FILE.wasm] [--fixtures DIR] [--config FILE]`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// A plugin project (built first, as `plugin build` does) or a
    /// component (`.wasm`); the current directory when absent.
    path: Option<PathBuf>,
    /// The fixture folder: `fixtures` in the project, or in the current
    /// directory for a component.
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// The connector's config file: limits, settings and `ca_file`, as
    /// for `plugin check`.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Runs `plugin test`.
pub(super) fn run(args: &TestArgs, out: &mut Out) -> anyhow::Result<ExitCode> {
    let path = args.path.clone().unwrap_or_else(super::current_dir);
    let (component, fixtures) = if path.is_dir() {
        let component = super::build::build_project(&path, out)?;
        let fixtures = args
            .fixtures
            .clone()
            .unwrap_or_else(|| path.join("fixtures"));
        (component, fixtures)
    } else {
        let fixtures = args.fixtures.clone().unwrap_or_else(|| "fixtures".into());
        (path, fixtures)
    };
    let config = match check::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            say!(out, "error: {e}");
            return Ok(ExitCode::from(super::super::EXIT_CONFIG));
        }
    };
    let files = match fixture::list(&fixtures) {
        Ok(files) if files.is_empty() => {
            say!(out, "error: no fixtures (*.json) in {}", fixtures.display());
            return Ok(ExitCode::FAILURE);
        }
        Ok(files) => files,
        Err(e) => {
            say!(out, "error: reading the fixtures: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    say!(
        out,
        "testing {} with {} fixture(s) from {}",
        component.display(),
        files.len(),
        fixtures.display()
    );
    let mut runner = Runner {
        config,
        component,
        haproxy: dry_run::haproxy_on_path(),
        engines: HashMap::new(),
    };
    if runner.haproxy.is_none() {
        say!(
            out,
            "(no haproxy on PATH: the lines are not checked by haproxy -c)"
        );
    }
    let mut failed = 0;
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        match runner.run(file) {
            Ok(()) => say!(out, "ok      {name}"),
            Err(why) => {
                failed += 1;
                say!(out, "FAILED  {name}");
                for line in why {
                    say!(out, "    {line}");
                }
            }
        }
    }
    say!(out, "{} passed, {failed} failed", files.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs fixtures against one component, with one engine per check type
/// and settings (an engine loads the component and tries the settings, as
/// the daemon's start does).
struct Runner {
    config: Config,
    component: PathBuf,
    haproxy: Option<PathBuf>,
    engines: HashMap<EngineKey, Result<Engine, String>>,
}

/// A check type and the settings its plugin gets.
type EngineKey = (String, Vec<(String, String)>);

impl Runner {
    /// Runs one fixture; the lines that say why it failed.
    fn run(&mut self, file: &Path) -> Result<(), Vec<String>> {
        let fixture = Fixture::load(file).map_err(|e| vec![format!("bad fixture: {e}")])?;
        let why = |lines: Vec<String>| {
            let mut all = Vec::new();
            if !fixture.description.is_empty() {
                all.push(format!("({})", fixture.description));
            }
            all.extend(lines);
            all
        };
        let check = check::check_from_value(fixture.check.clone())
            .map_err(|e| why(vec![format!("bad fixture: check: {e}")]))?;
        let settings = fixture
            .settings()
            .map_err(|e| why(vec![format!("bad fixture: {e}")]))?;
        let key = (check.check_type.clone(), settings);
        let engine = self.engines.entry(key.clone()).or_insert_with(|| {
            check::engine_for(
                &self.config,
                &self.component,
                std::slice::from_ref(&key.0),
                &key.1,
            )
        });
        let engine = match (engine, &fixture.expect.refused) {
            (Err(e), Some(wanted)) if e.contains(wanted.as_str()) => return Ok(()),
            (Err(e), Some(wanted)) => {
                return Err(why(vec![
                    format!("expected a refusal containing {wanted:?}"),
                    format!("refused with: {e}"),
                ]));
            }
            (Err(e), None) => return Err(why(vec![format!("refused at start-up: {e}")])),
            (Ok(_), Some(wanted)) => {
                return Err(why(vec![format!(
                    "expected a refusal containing {wanted:?}, but the plugin accepts the settings"
                )]));
            }
            (Ok(engine), None) => engine,
        };
        let service = fixture.service.clone().unwrap_or_else(sample::service);
        let outcome = check::map_one(engine, &service, &check, self.haproxy.as_deref());
        compare(&fixture, &outcome).map_err(why)
    }
}

/// The differences between what a fixture expects and the outcome.
fn compare(fixture: &Fixture, outcome: &CheckPreview) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    match (&fixture.expect.fallback, &outcome.fallback) {
        (None, None) => {}
        (Some(wanted), Some(reason)) if reason.contains(wanted.as_str()) => {}
        (Some(wanted), Some(reason)) => {
            problems.push(format!("expected a fallback containing {wanted:?}"));
            problems.push(format!("fell back with: {reason}"));
        }
        (Some(wanted), None) => {
            problems.push(format!(
                "expected a fallback containing {wanted:?}, but the check is mapped"
            ));
        }
        (None, Some(reason)) => problems.push(format!("falls back to a TCP check: {reason}")),
    }
    if let Some(expected) = &fixture.expect.lines
        && let Some(diff) = diff::unified(expected, &outcome.lines)
    {
        problems.push("the HAProxy lines differ:".into());
        problems.extend(diff);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
