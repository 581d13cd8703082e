//! The built-in `http` mapping as a component: a thin wrapper over `hnc_core::builtin::http`.

use hnc_plugin_sdk::core::builtin::http;
use hnc_plugin_sdk::{CheckPlan, NomadCheck, PluginInfo, ServiceContext, Settings};

struct Builtin;

impl hnc_plugin_sdk::Plugin for Builtin {
    fn info() -> PluginInfo {
        http::info()
    }

    fn map_check(
        service: ServiceContext,
        check: NomadCheck,
        settings: Settings,
    ) -> Result<CheckPlan, String> {
        http::map(&service, &check, &settings)
    }
}

hnc_plugin_sdk::plugin!(Builtin);

// Each call frees all it allocates: a bump arena instead of dlmalloc.
hnc_plugin_sdk::call_arena!();
