//! The built-in mappings, as native functions: each guest in `plugins/` wraps one.

pub mod common;
pub mod grpc;
pub mod h2;
pub mod http;
pub mod script;
pub mod tcp;

use crate::model::{CheckPlan, NomadCheck, PluginInfo, ServiceContext, Settings};

/// The signature of a mapping function.
pub type MapFn = fn(&ServiceContext, &NomadCheck, &Settings) -> Result<CheckPlan, String>;

/// One built-in mapping, native.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Its name in the config (`http`, `tcp`, `grpc`, `script`).
    pub name: &'static str,
    /// Its self-description.
    pub info: fn() -> PluginInfo,
    /// Its mapping function.
    pub map: MapFn,
}

/// Every built-in.
pub const ALL: &[Builtin] = &[
    Builtin {
        name: "http",
        info: http::info,
        map: http::map,
    },
    Builtin {
        name: "tcp",
        info: tcp::info,
        map: tcp::map,
    },
    Builtin {
        name: "grpc",
        info: grpc::info,
        map: grpc::map,
    },
    Builtin {
        name: "script",
        info: script::info,
        map: script::map,
    },
];
