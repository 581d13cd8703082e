//! A fixture of `plugin test`: one JSON file holding a Nomad check as a job
//! spec writes it, optional settings (and service), and what the daemon
//! must do with it: the HAProxy lines, a TCP fallback, or a refusal of the
//! settings at start-up.

use hnc_core::model::ServiceContext;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One fixture file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fixture {
    /// What it shows, for the reader.
    #[serde(default)]
    pub(super) description: String,
    /// One entry of `Checks` as `GET /v1/job/:id` gives it (`Type`, `Path`,
    /// `Interval` in nanoseconds, ...).
    pub(super) check: serde_json::Value,
    /// `[mapping.settings.<type>]` for this fixture (strings, numbers or booleans).
    #[serde(default)]
    pub(super) settings: BTreeMap<String, serde_json::Value>,
    /// The service instance (fields of the WIT's `service-context`);
    /// `plugin check`'s sample instance when absent.
    #[serde(default)]
    pub(super) service: Option<ServiceContext>,
    /// What the daemon must do.
    pub(super) expect: Expect,
}

/// What a fixture expects; `lines` may come with `fallback` (the TCP
/// check's lines).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Expect {
    /// The HAProxy lines `plugin check` prints, without their indent.
    #[serde(default)]
    pub(super) lines: Option<Vec<String>>,
    /// The check falls back to TCP, for a reason containing this text.
    #[serde(default)]
    pub(super) fallback: Option<String>,
    /// The plugin refuses the settings at start-up, with a message
    /// containing this text.
    #[serde(default)]
    pub(super) refused: Option<String>,
}

impl Fixture {
    /// Reads and checks one fixture file.
    pub(super) fn load(path: &Path) -> Result<Fixture, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let fixture: Fixture = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let expect = &fixture.expect;
        if expect.lines.is_none() && expect.fallback.is_none() && expect.refused.is_none() {
            return Err("`expect` needs `lines`, `fallback` or `refused`".into());
        }
        if expect.refused.is_some() && (expect.lines.is_some() || expect.fallback.is_some()) {
            return Err("`expect.refused` goes alone: a refused plugin maps nothing".into());
        }
        Ok(fixture)
    }

    /// The settings as the plugin receives them: strings.
    pub(super) fn settings(&self) -> Result<Vec<(String, String)>, String> {
        self.settings
            .iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(s) => Ok((key.clone(), s.clone())),
                serde_json::Value::Number(n) => Ok((key.clone(), n.to_string())),
                serde_json::Value::Bool(b) => Ok((key.clone(), b.to_string())),
                other => Err(format!(
                    "setting '{key}' is {other}: a string, number or boolean is needed"
                )),
            })
            .collect()
    }
}

/// The fixture files of `dir` (`*.json`), in name order.
pub(super) fn list(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}
