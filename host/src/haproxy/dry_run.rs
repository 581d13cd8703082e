//! Rendered checks in a standalone config, checked by `haproxy -c`: what
//! `plugin check` runs, and what the grammar's property test runs.
//!
//! Each check becomes one backend per mode (`http` and `tcp`) laid out as
//! the managed file lays them out (`mode`, the check lines, one server with
//! the check arguments), so HAProxy reads the same text the daemon would
//! give it.

use super::validate::{ConfigAlert, parse_alerts};
use crate::vocab::check::RenderedCheck;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// What `haproxy -c` said about a standalone config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// HAProxy accepts it.
    Accepted,
    /// HAProxy refuses it: its alerts, each naming a line of the config.
    Refused(Vec<ConfigAlert>),
}

/// The standalone config of `checks`: backends `c<i>_http` and `c<i>_tcp`
/// for the check at index `i`, each with one server on 127.0.0.1.
pub fn standalone_config(checks: &[&RenderedCheck]) -> String {
    let mut text = String::from(
        "defaults\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n",
    );
    for (i, check) in checks.iter().enumerate() {
        for mode in ["http", "tcp"] {
            let _ = writeln!(text, "\nbackend c{i}_{mode}\n    mode {mode}");
            for line in check.backend_lines() {
                let _ = writeln!(text, "    {line}");
            }
            let _ = write!(text, "    server s 127.0.0.1:8080");
            if !check.server.is_empty() {
                let _ = write!(text, " {}", check.server_args());
            }
            text.push('\n');
        }
    }
    text
}

/// The index of the check whose backend holds `line` of a
/// [`standalone_config`], if any.
pub fn check_at_line(config: &str, line: u32) -> Option<usize> {
    let upto = usize::try_from(line).ok()?;
    config
        .lines()
        .take(upto)
        .filter_map(|l| l.strip_prefix("backend c"))
        .last()
        .and_then(|rest| rest.split('_').next()?.parse().ok())
}

/// Writes `config` beside `dir` and runs `bin -c` on it.
///
/// # Errors
/// The file cannot be written or `bin` cannot be run.
pub fn check(bin: &Path, dir: &Path, config: &str) -> std::io::Result<Verdict> {
    let path = dir.join("dry-run.cfg");
    std::fs::write(&path, config)?;
    let output = Command::new(bin).arg("-c").arg("-f").arg(&path).output()?;
    // 2: valid, but no listener to start: exactly our case.
    if matches!(output.status.code(), Some(0 | 2)) {
        return Ok(Verdict::Accepted);
    }
    let mut alerts = parse_alerts(&String::from_utf8_lossy(&output.stderr));
    if alerts.is_empty() {
        alerts.push(ConfigAlert {
            file: None,
            line: None,
            message: format!("haproxy -c exited with {}", output.status),
        });
    }
    Ok(Verdict::Refused(alerts))
}

/// `haproxy` on `PATH`, if there is one.
pub fn haproxy_on_path() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("haproxy"))
        .find(|bin| bin.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::check::{RenderContext, render};
    use hnc_core::model::CheckPlan;

    #[test]
    fn lines_map_back_to_their_check() {
        let tcp = render(&CheckPlan::tcp_fallback(), &RenderContext::default()).unwrap();
        let config = standalone_config(&[&tcp, &tcp]);
        let second = config.lines().position(|l| l == "backend c1_tcp").unwrap();
        assert_eq!(check_at_line(&config, second as u32 + 3), Some(1));
        assert_eq!(check_at_line(&config, 2), None);
    }
}
