//! `plugin check`: a component through exactly the daemon's path (limits
//! from the config, import check, load, trial, mapping, validation,
//! rendering, and `haproxy -c` when `haproxy` is on `PATH`), with the
//! HAProxy lines it gives and what a call costs.

use haproxy_nomad_connector::config::Config;
use haproxy_nomad_connector::haproxy::check::RenderedCheck;
use haproxy_nomad_connector::haproxy::dry_run::{self, Verdict};
use haproxy_nomad_connector::mapping::{self, Engine, Mapped, Plugin, config::Source, sample};
use haproxy_nomad_connector::nomad::job::JobSpec;
use hnc_core::model::NomadCheck;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Prints a line and keeps it (tests read what was said).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        $out.say(format!($($arg)*))
    };
}

/// What `plugin check` says: printed as it goes, and kept.
#[derive(Debug, Default)]
struct Out {
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
}

/// Warm calls timed per check.
const TIMED_CALLS: u32 = 1000;

/// `plugin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Map a sample check (or the given one) with a component as the daemon
    /// would, print the HAProxy lines, and exit non-zero when the daemon
    /// would refuse the plugin or fall back to a TCP check.
    Check {
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
    },
}

/// `KEY=VALUE`.
fn setting(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))
}

pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    check(command, &mut Out::default())
}

fn check(command: PluginCommand, out: &mut Out) -> anyhow::Result<ExitCode> {
    let PluginCommand::Check {
        file,
        config,
        check,
        settings,
    } = command;
    let refused = |out: &mut Out, why: String| {
        say!(out, "refused: {why}");
        Ok(ExitCode::FAILURE)
    };
    let config = match &config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                say!(out, "error: {e}");
                return Ok(ExitCode::from(super::EXIT_CONFIG));
            }
        },
        None => Config::default(),
    };
    let check = match check.as_deref().map(read_check).transpose() {
        Ok(check) => check,
        Err(why) => return refused(out, why),
    };
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => return refused(out, format!("{}: {e}", file.display())),
    };
    // The plugin alone first: its info says which check types to route.
    let limits = limits_for(&config, &file);
    let engine = mapping::wasm::new_engine().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let origin = file.display().to_string();
    let plugin = match mapping::load_bytes(&engine, &bytes, &origin, None, limits) {
        Ok(plugin) => plugin,
        Err(e) => return refused(out, e.to_string()),
    };
    let info = plugin.info().clone();
    say!(out, "plugin:      {}", info.name);
    say!(out, "version:     {}", info.version);
    say!(out, "check types: {}", info.check_types.join(", "));
    say!(out, "size:        {} bytes", bytes.len());
    say!(
        out,
        "limits:      fuel {}, deadline {} ms, memory {} bytes, output {} bytes, instances {}",
        limits.fuel,
        limits.deadline_ms,
        limits.memory_bytes,
        limits.output_bytes,
        limits.instances
    );
    drop(plugin);
    let types = match &check {
        Some(c) => vec![c.check_type.clone()],
        None => info.check_types.clone(),
    };
    let mut mapping = config.mapping.clone();
    for check_type in &types {
        mapping
            .plugins
            .insert(check_type.clone(), absolute(&file).display().to_string());
        let table = mapping.settings.entry(check_type.clone()).or_default();
        for (key, value) in &settings {
            table.insert(key.clone(), toml::Value::String(value.clone()));
        }
    }
    let engine = match Engine::new(&mapping, config.render_context()) {
        Ok(engine) => engine,
        Err(e) => return refused(out, format!("{e} (give its settings with --set KEY=VALUE)")),
    };
    let haproxy = dry_run::haproxy_on_path();
    let mut sound = true;
    for check_type in &types {
        let check = check.clone().unwrap_or_else(|| sample::check(check_type));
        sound &= check_one(out, &engine, check_type, &check, haproxy.as_deref());
    }
    Ok(if sound {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
    let job = serde_json::json!({ "TaskGroups": [{ "Services": [{ "Checks": [value] }] }] });
    let job = JobSpec::from_value(job).map_err(|e| format!("{}: {e}", path.display()))?;
    job.groups
        .into_iter()
        .flat_map(|g| g.services)
        .flat_map(|s| s.checks)
        .next()
        .filter(|c| !c.check_type.is_empty())
        .ok_or_else(|| format!("{}: not a Nomad check (no Type)", path.display()))
}

/// Maps one check as the daemon would and prints the outcome; false when
/// the daemon would fall back to TCP or HAProxy would refuse the lines.
fn check_one(
    out: &mut Out,
    engine: &Engine,
    check_type: &str,
    check: &NomadCheck,
    haproxy: Option<&Path>,
) -> bool {
    let service = sample::service();
    let mapped = engine.map(&service, Some(check));
    say!(out, "\n{check_type} check {:?}:", check.name);
    print_lines(out, &mapped.rendered);
    if let Some(fallback) = &mapped.fallback {
        say!(
            out,
            "  FALLS BACK to a TCP check ({}): {}",
            fallback.cause,
            fallback.reason
        );
        return false;
    }
    let accepted = match haproxy {
        Some(bin) => haproxy_check(out, bin, &mapped),
        None => {
            say!(out, "  haproxy -c: skipped (no haproxy on PATH)");
            true
        }
    };
    time_calls(out, engine, check_type, check);
    accepted
}

fn print_lines(out: &mut Out, rendered: &RenderedCheck) {
    for line in rendered.backend_lines() {
        say!(out, "    {line}");
    }
    say!(
        out,
        "    server <name> <address:port> {}",
        rendered.server_args()
    );
}

/// `haproxy -c` of the rendered backend; prints HAProxy's alerts.
fn haproxy_check(out: &mut Out, bin: &Path, mapped: &Mapped) -> bool {
    let dir = std::env::temp_dir().join(format!("hnc-plugin-check-{}", std::process::id()));
    let config = dry_run::standalone_config(&[&mapped.rendered]);
    let verdict = std::fs::create_dir_all(&dir).and_then(|()| dry_run::check(bin, &dir, &config));
    let _ = std::fs::remove_dir_all(&dir);
    match verdict {
        Ok(Verdict::Accepted) => {
            say!(out, "  haproxy -c ({}): accepted", bin.display());
            true
        }
        Ok(Verdict::Refused(alerts)) => {
            say!(
                out,
                "  haproxy -c ({}): REFUSED; the daemon would fall back to TCP",
                bin.display()
            );
            for alert in alerts {
                let line = alert
                    .line
                    .and_then(|n| config.lines().nth(n.saturating_sub(1) as usize));
                match line {
                    Some(line) => say!(out, "    {}: {}", line.trim(), alert.message),
                    None => say!(out, "    {}", alert.message),
                }
            }
            false
        }
        Err(e) => {
            say!(out, "  haproxy -c ({}): could not run: {e}", bin.display());
            false
        }
    }
}

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
        let command = PluginCommand::Check {
            file,
            config: None,
            check: None,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let mut out = Out {
            quiet: true,
            ..Out::default()
        };
        let code = check(command, &mut out).unwrap();
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
