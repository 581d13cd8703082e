//! The built-in `tcp` mapping: a layer-4 connect check, like Nomad's (`nomad: tcp ok`).

use super::common::{checked_settings, timed_plan};
use crate::model::{CheckPlan, NomadCheck, PluginInfo, ServiceContext, Settings};

/// The plugin's self-description.
pub fn info() -> PluginInfo {
    PluginInfo {
        name: "builtin-tcp".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        check_types: vec!["tcp".into()],
    }
}

/// Maps a Nomad `tcp` check: connect to the check port within the timeout.
///
/// # Errors
/// An unknown or invalid setting.
pub fn map(
    _service: &ServiceContext,
    check: &NomadCheck,
    settings: &Settings,
) -> Result<CheckPlan, String> {
    let get = checked_settings(settings, &[])?;
    timed_plan(check, &get)
}
