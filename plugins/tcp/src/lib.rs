//! The built-in `tcp` mapping as a component: a thin wrapper over `hnc_core::builtin::tcp`.

use hnc_plugin_sdk::core::builtin::tcp;
use hnc_plugin_sdk::{CheckPlan, NomadCheck, PluginInfo, ServiceContext, Settings};

struct Builtin;

impl hnc_plugin_sdk::Plugin for Builtin {
    fn info() -> PluginInfo {
        tcp::info()
    }

    fn map_check(
        service: ServiceContext,
        check: NomadCheck,
        settings: Settings,
    ) -> Result<CheckPlan, String> {
        tcp::map(&service, &check, &settings)
    }
}

hnc_plugin_sdk::plugin!(Builtin);

// Each call frees all it allocates: a bump arena instead of dlmalloc.
hnc_plugin_sdk::call_arena!();
