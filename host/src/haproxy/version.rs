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

/// What a version supports, as far as the driver is concerned. Each field
/// was checked against the real binaries of 2.6.12, 3.0.0, 3.2.0 and 3.4.0
/// (their replies are kept in `testdata/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// `add server` with health checks, `del server`, `enable health`,
    /// versioned map updates (`prepare map`, `add map @<ver>`, `commit map`)
    /// and the master socket's `reload` and `show proc` (2.6 and later; the
    /// driver refuses older versions).
    pub runtime_servers: bool,
    /// `add server … init-state down` (3.1 and later): a server leaves
    /// maintenance down and waits for its first passing check, without the
    /// weight-0 sequence that 2.6 and 3.0 need.
    pub init_state: bool,
    /// `wait <ms> srv-removable <backend>/<server>` (3.0 and later): waits
    /// until the sessions a `shutdown sessions` killed have let go of the
    /// server, so that `del server` does not find it still attached.
    pub wait_removable: bool,
    /// The master socket's `reload` answers once the new worker loaded or
    /// failed, with `Success=1` or `Success=0` and the start-up log (2.7
    /// and later; 2.6 answers nothing and the driver polls `show proc`).
    pub sync_reload: bool,
    /// `del map <map> <key>` removes one entry of the key per call (3.3 and
    /// later; earlier versions remove every entry). The driver deletes as
    /// many times as the key is held, which is right on both.
    pub del_map_removes_one: bool,
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
            wait_removable: at_least(3, 0),
            sync_reload: at_least(2, 7),
            del_map_removes_one: at_least(3, 3),
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
        let caps = v.capabilities();
        assert!(!caps.init_state && !caps.wait_removable && !caps.sync_reload);
        assert_eq!(worker_pid(info), Some(4242));
    }

    #[test]
    fn newer_and_older_versions() {
        let v = Version::from_show_info("Version: 3.2-dev5\n").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (3, 2, 0));
        assert!(v.capabilities().init_state);
        let caps = |text: &str| Version::from_show_info(text).unwrap().capabilities();
        let v30 = caps("Version: 3.0.0-5590ada47\n");
        assert!(v30.wait_removable && v30.sync_reload && !v30.init_state);
        let v34 = caps("Version: 3.4.0-64a335366\n");
        assert!(v34.init_state && v34.del_map_removes_one);
        assert!(!caps("Version: 3.2.0-e134140d2\n").del_map_removes_one);
        let old = Version::from_show_info("Version: 2.4.22\n").unwrap();
        let err = old.ensure_supported().unwrap_err();
        assert!(err.to_string().contains("2.6 or later"), "{err}");
        assert!(Version::from_show_info("Name: HAProxy\n").is_err());
    }
}
