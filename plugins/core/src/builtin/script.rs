//! The built-in `script` mapping: HAProxy cannot run a script, so a TCP check with a warning.
//!
//! A site plugin can do better, e.g. an `agent-check` on a sidecar that runs
//! the script (see examples/site-grpc-plugin for the shape of such a plugin).

use super::common::{checked_settings, timed_plan};
use crate::model::{CheckPlan, NomadCheck, PluginInfo, ServiceContext, Settings};

/// The plugin's self-description.
pub fn info() -> PluginInfo {
    PluginInfo {
        name: "builtin-script".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        check_types: vec!["script".into()],
    }
}

/// Maps a Nomad `script` check to a TCP check on the service port, with a warning.
///
/// # Errors
/// An unknown or invalid setting.
pub fn map(
    _service: &ServiceContext,
    check: &NomadCheck,
    settings: &Settings,
) -> Result<CheckPlan, String> {
    let get = checked_settings(settings, &[])?;
    let mut plan = timed_plan(check, &get)?;
    plan.warnings.push(format!(
        "script check '{}' ({}) cannot run in HAProxy: using a TCP check on the service port",
        check.name, check.command
    ));
    Ok(plan)
}
