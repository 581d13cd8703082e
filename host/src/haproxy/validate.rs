//! `haproxy -c` on a candidate managed file together with the operator's config.

use super::error::{Error, Result};
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

#[cfg(test)]
mod tests {
    use super::*;

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
