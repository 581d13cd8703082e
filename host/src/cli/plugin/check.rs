//! `plugin check`: a component through exactly the daemon's path (limits
//! from the config, import check, load, trial, mapping, validation,
//! rendering, and `haproxy -c` when `haproxy` is on `PATH`), with the
//! HAProxy lines it gives and what a call costs.

use super::{Out, say, setting};
use haproxy_nomad_connector::config::Config;
use haproxy_nomad_connector::haproxy::dry_run::{self, Verdict};
use haproxy_nomad_connector::mapping::{self, Engine, Plugin, config::Source, sample};
use haproxy_nomad_connector::nomad::job::JobSpec;
use haproxy_nomad_connector::vocab::check::RenderedCheck;
use hnc_core::model::{NomadCheck, PluginInfo, ServiceContext};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Warm calls timed per check.
const TIMED_CALLS: u32 = 1000;

/// `plugin check FILE.wasm [--config FILE] [--check CHECK.json] [--set K=V]`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The component (`.wasm`).
    file: PathBuf,
    /// The connector's config file: limits, settings and `ca_file`
    /// come from it, as the daemon would use them for this file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A Nomad check as a job spec holds it (JSON, e.g. one entry of
    /// `Checks` in `GET /v1/job/:id`), instead of the sample checks.
    #[arg(long, value_name = "CHECK.json")]
    check: Option<PathBuf>,
    /// A plugin setting, as in `[mapping.settings.<type>]` (repeatable;
    /// over the config's).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = setting)]
    settings: Vec<(String, String)>,
}

/// Runs `plugin check`.
pub(super) fn run(args: CheckArgs, out: &mut Out) -> anyhow::Result<ExitCode> {
    let CheckArgs {
        file,
        config,
        check,
        settings,
    } = args;
    let refused = |out: &mut Out, why: String| {
        say!(out, "refused: {why}");
        Ok(ExitCode::FAILURE)
    };
    let config = match load_config(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            say!(out, "error: {e}");
            return Ok(ExitCode::from(super::super::EXIT_CONFIG));
        }
    };
    let check = match check.as_deref().map(read_check).transpose() {
        Ok(check) => check,
        Err(why) => return refused(out, why),
    };
    let inspected = match inspect(&config, &file) {
        Ok(i) => i,
        Err(why) => return refused(out, why),
    };
    let Inspected { info, limits, size } = inspected;
    say!(out, "plugin:      {}", info.name);
    say!(out, "version:     {}", info.version);
    say!(out, "check types: {}", info.check_types.join(", "));
    say!(out, "size:        {size} bytes");
    say!(
        out,
        "limits:      fuel {}, deadline {} ms, memory {} bytes, output {} bytes, instances {}",
        limits.fuel,
        limits.deadline_ms,
        limits.memory_bytes,
        limits.output_bytes,
        limits.instances
    );
    let types = match &check {
        Some(c) => vec![c.check_type.clone()],
        None => info.check_types.clone(),
    };
    let engine = match engine_for(&config, &file, &types, &settings) {
        Ok(engine) => engine,
        Err(e) => return refused(out, format!("{e} (give its settings with --set KEY=VALUE)")),
    };
    let haproxy = dry_run::haproxy_on_path();
    let mut sound = true;
    for check_type in &types {
        let check = check.clone().unwrap_or_else(|| sample::check(check_type));
        let outcome = map_one(&engine, &sample::service(), &check, haproxy.as_deref());
        say!(out, "\n{check_type} check {:?}:", check.name);
        sound &= print_outcome(out, &outcome);
        if outcome.fallback.is_none() {
            time_calls(out, &engine, check_type, &check);
        }
    }
    Ok(if sound {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The config file, or the defaults when none is given.
pub(super) fn load_config(path: Option<&Path>) -> Result<Config, String> {
    match path {
        Some(path) => Config::load(path).map_err(|e| e.to_string()),
        None => Ok(Config::default()),
    }
}

/// What loading a component alone tells.
pub(super) struct Inspected {
    /// Its self-description.
    pub(super) info: PluginInfo,
    /// The limits it runs under.
    pub(super) limits: mapping::Limits,
    /// Its size in bytes.
    pub(super) size: usize,
}

/// Loads `file` alone (imports, limits, instantiation) and reads its info.
pub(super) fn inspect(config: &Config, file: &Path) -> Result<Inspected, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let limits = limits_for(config, file);
    let engine = mapping::wasm::new_engine().map_err(|e| format!("{e:#}"))?;
    let origin = file.display().to_string();
    let plugin =
        mapping::load_bytes(&engine, &bytes, &origin, None, limits).map_err(|e| e.to_string())?;
    Ok(Inspected {
        info: plugin.info().clone(),
        limits,
        size: bytes.len(),
    })
}

/// The daemon's engine for `config`, with `file` serving `types` and
/// `settings` over the config's: start-up checks (the trial call) included.
pub(super) fn engine_for(
    config: &Config,
    file: &Path,
    types: &[String],
    settings: &[(String, String)],
) -> Result<Engine, String> {
    let mut mapping = config.mapping.clone();
    for check_type in types {
        mapping
            .plugins
            .insert(check_type.clone(), absolute(file).display().to_string());
        let table = mapping.settings.entry(check_type.clone()).or_default();
        for (key, value) in settings {
            table.insert(key.clone(), toml::Value::String(value.clone()));
        }
    }
    Engine::new(&mapping, config.render_context()).map_err(|e| e.to_string())
}

/// What the daemon would do with one check: the HAProxy lines, and the
/// fallback it would take (a plugin failure, a value outside the grammar,
/// or `haproxy -c` refusing the lines).
#[derive(Debug)]
pub(super) struct CheckPreview {
    /// The backend lines, then `server <name> <address:port> ...`.
    pub(super) lines: Vec<String>,
    /// Why the daemon would fall back to a TCP check, if it would.
    pub(super) fallback: Option<String>,
    /// What `haproxy -c` said of the lines.
    pub(super) haproxy: HaproxyVerdict,
}

/// `haproxy -c` of the rendered backend.
#[derive(Debug)]
pub(super) enum HaproxyVerdict {
    /// No `haproxy` on `PATH`, or the mapping already fell back.
    Skipped,
    /// The binary accepted the lines.
    Accepted(PathBuf),
    /// The binary refused them: each alert with the line it names.
    Refused(PathBuf, Vec<String>),
    /// The binary could not run.
    Failed(PathBuf, String),
}

/// Maps one check through the engine (validation and rendering), then
/// through `haproxy -c` when `haproxy` is given.
pub(super) fn map_one(
    engine: &Engine,
    service: &ServiceContext,
    check: &NomadCheck,
    haproxy: Option<&Path>,
) -> CheckPreview {
    let mapped = engine.map(service, Some(check));
    let lines = rendered_lines(&mapped.rendered);
    if let Some(fallback) = &mapped.fallback {
        return CheckPreview {
            lines,
            fallback: Some(format!("{}: {}", fallback.cause, fallback.reason)),
            haproxy: HaproxyVerdict::Skipped,
        };
    }
    let haproxy = haproxy.map_or(HaproxyVerdict::Skipped, |bin| {
        haproxy_check(bin, &mapped.rendered)
    });
    let fallback = match &haproxy {
        HaproxyVerdict::Refused(_, alerts) => Some(format!(
            "haproxy -c refused the lines: {}",
            alerts.join("; ")
        )),
        HaproxyVerdict::Failed(bin, e) => Some(format!("{} could not run: {e}", bin.display())),
        HaproxyVerdict::Skipped | HaproxyVerdict::Accepted(_) => None,
    };
    CheckPreview {
        lines,
        fallback,
        haproxy,
    }
}

/// Prints an outcome as `plugin check` does; false when the daemon would
/// fall back to TCP or HAProxy would refuse the lines.
pub(super) fn print_outcome(out: &mut Out, outcome: &CheckPreview) -> bool {
    for line in &outcome.lines {
        say!(out, "    {line}");
    }
    match &outcome.haproxy {
        HaproxyVerdict::Skipped if outcome.fallback.is_some() => {
            say!(
                out,
                "  FALLS BACK to a TCP check ({})",
                outcome.fallback.as_deref().unwrap_or_default()
            );
            false
        }
        HaproxyVerdict::Skipped => {
            say!(out, "  haproxy -c: skipped (no haproxy on PATH)");
            true
        }
        HaproxyVerdict::Accepted(bin) => {
            say!(out, "  haproxy -c ({}): accepted", bin.display());
            true
        }
        HaproxyVerdict::Refused(bin, alerts) => {
            say!(
                out,
                "  haproxy -c ({}): REFUSED; the daemon would fall back to TCP",
                bin.display()
            );
            for alert in alerts {
                say!(out, "    {alert}");
            }
            false
        }
        HaproxyVerdict::Failed(bin, e) => {
            say!(out, "  haproxy -c ({}): could not run: {e}", bin.display());
            false
        }
    }
}

/// The lines `plugin check` prints and fixtures expect.
fn rendered_lines(rendered: &RenderedCheck) -> Vec<String> {
    let mut lines = rendered.backend_lines();
    let server = format!("server <name> <address:port> {}", rendered.server_args());
    lines.push(server.trim_end().to_string());
    lines
}

/// The limits the daemon would give `file`: those of a check type the
/// config routes to it, else `[mapping.limits]`.
fn limits_for(config: &Config, file: &Path) -> mapping::Limits {
    let wanted = absolute(file);
    config
        .mapping
        .routes()
        .ok()
        .and_then(|routes| {
            routes
                .into_iter()
                .find_map(|(check_type, source)| match source {
                    Source::File(path) if absolute(&path) == wanted => Some(check_type),
                    _ => None,
                })
        })
        .and_then(|check_type| config.mapping.limits_for(&check_type).ok())
        .unwrap_or(config.mapping.limits)
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A check file: one Nomad check as a job spec holds it.
fn read_check(path: &Path) -> Result<NomadCheck, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    check_from_value(value).map_err(|e| format!("{}: {e}", path.display()))
}

/// One Nomad check as a job spec holds it (an entry of `Checks` in
/// `GET /v1/job/:id`), read as the daemon reads a job.
pub(super) fn check_from_value(value: serde_json::Value) -> Result<NomadCheck, String> {
    let job = serde_json::json!({ "TaskGroups": [{ "Services": [{ "Checks": [value] }] }] });
    let job = JobSpec::from_value(job).map_err(|e| e.to_string())?;
    job.groups
        .into_iter()
        .flat_map(|g| g.services)
        .flat_map(|s| s.checks)
        .next()
        .filter(|c| !c.check_type.is_empty())
        .ok_or_else(|| "not a Nomad check (no Type)".to_string())
}

/// `haproxy -c` of the rendered backend, with HAProxy's alerts.
fn haproxy_check(bin: &Path, rendered: &RenderedCheck) -> HaproxyVerdict {
    let dir = std::env::temp_dir().join(format!(
        "hnc-plugin-check-{}-{}",
        std::process::id(),
        SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let config = dry_run::standalone_config(&[rendered]);
    let verdict = std::fs::create_dir_all(&dir).and_then(|()| dry_run::check(bin, &dir, &config));
    let _ = std::fs::remove_dir_all(&dir);
    match verdict {
        Ok(Verdict::Accepted) => HaproxyVerdict::Accepted(bin.to_path_buf()),
        Ok(Verdict::Refused(alerts)) => {
            let alerts = alerts
                .into_iter()
                .map(|alert| {
                    let line = alert
                        .line
                        .and_then(|n| config.lines().nth(n.saturating_sub(1) as usize));
                    match line {
                        Some(line) => format!("{}: {}", line.trim(), alert.message),
                        None => alert.message,
                    }
                })
                .collect();
            HaproxyVerdict::Refused(bin.to_path_buf(), alerts)
        }
        Err(e) => HaproxyVerdict::Failed(bin.to_path_buf(), e.to_string()),
    }
}

/// Tells the scratch directories of one process apart.
static SCRATCH: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Prints the fuel of one call and the mean time of a warm call, with the
/// plugin's logging muted.
fn time_calls(out: &mut Out, engine: &Engine, check_type: &str, check: &NomadCheck) {
    let Some(plugin): Option<&Plugin> = engine.plugins().get(check_type).copied() else {
        return;
    };
    let (service, settings) = (sample::service(), engine.settings(check_type));
    let (_, fuel) = plugin.call_metered(&service, check, settings);
    plugin.mute(true);
    let started = Instant::now();
    let mut failed = 0;
    for _ in 0..TIMED_CALLS {
        failed += u32::from(plugin.call(&service, check, settings).is_err());
    }
    let warm = started.elapsed().as_secs_f64() * 1e6 / f64::from(TIMED_CALLS);
    plugin.mute(false);
    say!(
        out,
        "  fuel {fuel} of {} per call; warm call {warm:.1} µs (mean of {TIMED_CALLS}{})",
        plugin.limits().fuel,
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use haproxy_nomad_connector::mapping::builtin::BUILTINS;

    fn plugin_check(settings: &[(&str, &str)]) -> (ExitCode, String) {
        let dir = tempfile::tempdir().unwrap();
        let (_, bytes) = BUILTINS.iter().find(|(n, _)| *n == "http").unwrap();
        let file = dir.path().join("http.wasm");
        std::fs::write(&file, bytes).unwrap();
        let args = CheckArgs {
            file,
            config: None,
            check: None,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let mut out = Out::quiet();
        let code = run(args, &mut out).unwrap();
        (code, out.lines.join("\n"))
    }

    #[test]
    fn a_plugin_answering_status_2xx_fails_naming_the_field_and_value() {
        let (code, said) = plugin_check(&[("expect-status", "2xx")]);
        assert_eq!(code, ExitCode::FAILURE, "{said}");
        assert!(said.contains("http-check expect status \"2xx\""), "{said}");
    }

    #[test]
    fn a_sound_plugin_passes_and_prints_its_lines() {
        let (code, said) = plugin_check(&[]);
        assert_eq!(code, ExitCode::SUCCESS, "{said}");
        assert!(said.contains("option httpchk"), "{said}");
        assert!(said.contains("http-check expect status 200-399"), "{said}");
    }
}
