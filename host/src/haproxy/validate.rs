//! `haproxy -c` on a candidate managed file together with the operator's config.

use super::error::{Error, Result};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One `[ALERT]` line of `haproxy -c`, with its location when HAProxy gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigAlert {
    /// The file named in `parsing [file:line]`.
    pub file: Option<String>,
    /// The line.
    pub line: Option<u32>,
    /// HAProxy's message (after the location).
    pub message: String,
}

impl fmt::Display for ConfigAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: {}", self.message),
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Validates `candidate` loaded after `operator_configs`, as HAProxy would.
///
/// # Errors
/// [`Error::ValidationFailed`] (with `kept_at` = `candidate`) when HAProxy
/// finds errors or would not start; [`Error::ValidatorFailed`] or
/// [`Error::ValidatorTimedOut`] when it cannot be run.
pub async fn check(
    bin: &Path,
    operator_configs: &[PathBuf],
    candidate: &Path,
    timeout: Duration,
) -> Result<()> {
    let mut command = tokio::process::Command::new(bin);
    command.arg("-c");
    for config in operator_configs {
        command.arg("-f").arg(config);
    }
    command.arg("-f").arg(candidate).kill_on_drop(true);
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .map_err(|_| Error::ValidatorTimedOut {
            bin: bin.into(),
            after: timeout,
        })?
        .map_err(|source| Error::ValidatorFailed {
            bin: bin.into(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut alerts = parse_alerts(&stderr);
    if alerts.is_empty() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        alerts.push(ConfigAlert {
            file: None,
            line: None,
            message: format!("{} ({})", stdout.trim(), output.status),
        });
    }
    Err(Error::ValidationFailed {
        alerts,
        kept_at: candidate.into(),
    })
}

/// The `[ALERT]` lines of HAProxy's output, most specific first: those with
/// a `parsing [file:line]` location, then the others (summaries).
pub fn parse_alerts(stderr: &str) -> Vec<ConfigAlert> {
    let mut located = Vec::new();
    let mut other = Vec::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("[ALERT]") else {
            continue;
        };
        // "[ALERT]    (123) : config : parsing [f.cfg:6] : message"
        let rest = rest.split_once(") : ").map_or(rest, |(_, r)| r);
        let rest = rest.strip_prefix("config : ").unwrap_or(rest).trim();
        if let Some(at) = rest.find("parsing [")
            && let Some(end) = rest[at..].find("] : ")
        {
            let location = &rest[at + "parsing [".len()..at + end];
            let message = rest[at + end + "] : ".len()..].trim().to_string();
            let (file, line) = match location.rsplit_once(':') {
                Some((file, n)) => (file.to_string(), n.parse().ok()),
                None => (location.to_string(), None),
            };
            located.push(ConfigAlert {
                file: Some(file),
                line,
                message,
            });
        } else if !rest.starts_with("Fatal errors found") {
            other.push(ConfigAlert {
                file: None,
                line: None,
                message: rest.to_string(),
            });
        }
    }
    located.extend(other);
    located
}

/// Which of the `changed` backends `alerts` blame: the backend section of
/// `render` (kept at `render_path`) an alert's line falls in, or a backend
/// an alert names (`'default_api'`, as in "unable to find required
/// default_backend" from the operator's config).
pub fn culprits(
    alerts: &[ConfigAlert],
    render: &str,
    render_path: &Path,
    changed: &BTreeSet<String>,
) -> BTreeSet<String> {
    let lines: Vec<&str> = render.lines().collect();
    let shown = render_path.to_string_lossy();
    let mut blamed = BTreeSet::new();
    for alert in alerts {
        if alert.file.as_deref() == Some(&*shown)
            && let Some(line) = alert.line
        {
            let section = lines
                .iter()
                .take(line as usize)
                .rev()
                .find_map(|l| l.trim_start().strip_prefix("backend "));
            if let Some(name) = section {
                blamed.insert(name.trim().to_string());
            }
        }
        blamed.extend(
            changed
                .iter()
                .filter(|name| names(&alert.message, name))
                .cloned(),
        );
    }
    blamed.retain(|name| changed.contains(name));
    blamed
}

/// Whether `message` names `backend` as a whole word.
fn names(message: &str, backend: &str) -> bool {
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || "_-.:".contains(c);
    message.match_indices(backend).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + backend.len()..].chars().next();
        !before.is_some_and(part_of_name) && !after.is_some_and(part_of_name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(file: Option<&str>, line: Option<u32>, message: &str) -> ConfigAlert {
        ConfigAlert {
            file: file.map(Into::into),
            line,
            message: message.into(),
        }
    }

    #[test]
    fn culprits_are_the_sections_and_the_backends_alerts_name() {
        let render = "global\n\nbackend default_web\n    balance roundrobin\n\nbackend default_api\n    bogus\n";
        let changed: BTreeSet<String> = ["default_web", "default_api", "default_fresh"]
            .map(String::from)
            .into();
        let path = Path::new("/run/.m.cfg.rejected");
        let by_line = [alert(
            Some("/run/.m.cfg.rejected"),
            Some(7),
            "unknown keyword 'bogus'",
        )];
        assert_eq!(
            culprits(&by_line, render, path, &changed),
            BTreeSet::from(["default_api".to_string()])
        );
        // HAProxy 2.6's words when the operator's frontend needs a
        // backend the render drops.
        let by_name = [alert(
            None,
            None,
            "Proxy 'fe_pinned': unable to find required default_backend: 'default_api'.",
        )];
        assert_eq!(
            culprits(&by_name, render, path, &changed),
            BTreeSet::from(["default_api".to_string()])
        );
        // A longer name that merely contains a changed one blames nothing.
        let other = [alert(None, None, "unable to find 'default_api2'")];
        assert!(culprits(&other, render, path, &changed).is_empty());
        // Another file's line is not the render's.
        let elsewhere = [alert(Some("/etc/haproxy.cfg"), Some(7), "parse error")];
        assert!(culprits(&elsewhere, render, path, &changed).is_empty());
    }

    #[test]
    fn alerts_carry_file_and_line() {
        // Captured from HAProxy 2.6.12.
        let stderr = "[NOTICE]   (27896) : haproxy version is 2.6.12-1+deb12u4\n\
[ALERT]    (27896) : config : parsing [/run/m.cfg:6] : unknown keyword 'bogus-keyword' in 'backend' section\n\
[ALERT]    (27896) : config : Error(s) found in configuration file : /run/m.cfg\n\
[ALERT]    (27896) : config : Fatal errors found in configuration.\n";
        let alerts = parse_alerts(stderr);
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert_eq!(alerts[0].file.as_deref(), Some("/run/m.cfg"));
        assert_eq!(alerts[0].line, Some(6));
        assert_eq!(
            alerts[0].to_string(),
            "/run/m.cfg:6: unknown keyword 'bogus-keyword' in 'backend' section"
        );
        assert_eq!(
            alerts[1].message,
            "Error(s) found in configuration file : /run/m.cfg"
        );
    }
}
