//! The HAProxy version (from `show info`) and what the driver may use with it.

use super::error::{Error, Result};
use std::fmt;

/// A running HAProxy's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Patch number (0 when absent, as in development versions).
    pub patch: u32,
    /// The full text, e.g. `2.6.12-1+deb12u4`.
    pub text: String,
}

/// What a version supports, as far as the driver is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `add server` with health checks, `del server`, `enable health` and
    /// the master socket's `reload` and `show proc` (2.6 and later; the
    /// driver refuses older versions).
    pub runtime_servers: bool,
    /// `add server … init-state` (3.1 and later), which would start a server
    /// down without the weight-0 sequence. Not used yet: the sequence works
    /// on every supported version and is tested on 2.6.
    pub init_state: bool,
    /// `enable server`/`disable server` are deprecated (2.6 and later), so
    /// the driver uses `set server … state` throughout.
    pub enable_server_deprecated: bool,
}

impl Version {
    /// Reads the `Version:` line of `show info`.
    ///
    /// # Errors
    /// [`Error::BadReply`] when there is no such line or it holds no
    /// `major.minor`.
    pub fn from_show_info(info: &str) -> Result<Version> {
        let text = info
            .lines()
            .find_map(|l| l.strip_prefix("Version:"))
            .map(str::trim)
            .ok_or_else(|| bad(info))?;
        let numbers: Vec<u32> = text
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map_while(|n| n.parse().ok())
            .collect();
        match numbers[..] {
            [major, minor, ..] => Ok(Version {
                major,
                minor,
                patch: numbers.get(2).copied().unwrap_or(0),
                text: text.to_string(),
            }),
            _ => Err(bad(info)),
        }
    }

    /// What this version supports.
    pub fn capabilities(&self) -> Capabilities {
        let at_least = |major, minor| (self.major, self.minor) >= (major, minor);
        Capabilities {
            runtime_servers: at_least(2, 6),
            init_state: at_least(3, 1),
            enable_server_deprecated: at_least(2, 6),
        }
    }

    /// Refuses versions the driver cannot drive.
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`] before 2.6.
    pub fn ensure_supported(&self) -> Result<()> {
        if self.capabilities().runtime_servers {
            Ok(())
        } else {
            Err(Error::UnsupportedVersion {
                version: self.text.clone(),
            })
        }
    }
}

fn bad(info: &str) -> Error {
    Error::BadReply {
        what: "show info",
        reply: info.chars().take(200).collect(),
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The `Pid:` line of `show info`: which worker answered.
pub fn worker_pid(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|p| p.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_version_is_read_and_supported() {
        let info =
            "Name: HAProxy\nVersion: 2.6.12-1+deb12u4\nRelease_date: 2026/10/17\nPid: 4242\n";
        let v = Version::from_show_info(info).unwrap();
        assert_eq!((v.major, v.minor, v.patch), (2, 6, 12));
        assert_eq!(v.text, "2.6.12-1+deb12u4");
        assert!(v.ensure_supported().is_ok());
        assert!(!v.capabilities().init_state);
        assert_eq!(worker_pid(info), Some(4242));
    }

    #[test]
    fn newer_and_older_versions() {
        let v = Version::from_show_info("Version: 3.2-dev5\n").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (3, 2, 0));
        assert!(v.capabilities().init_state);
        let old = Version::from_show_info("Version: 2.4.22\n").unwrap();
        let err = old.ensure_supported().unwrap_err();
        assert!(err.to_string().contains("2.6 or later"), "{err}");
        assert!(Version::from_show_info("Name: HAProxy\n").is_err());
    }
}
