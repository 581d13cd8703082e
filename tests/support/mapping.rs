//! Fixtures for mapping tests: services, checks, and engines with chosen plugins.

use haproxy_nomad_connector::mapping::{self, Engine, Limits};
use haproxy_nomad_connector::vocab::check::RenderContext;
use hnc_core::model::{NomadCheck, ServiceContext};
use std::path::{Path, PathBuf};

/// A Nomad-provider service instance named `name` with `tags`.
pub fn service(name: &str, tags: &[&str]) -> ServiceContext {
    ServiceContext {
        name: name.into(),
        namespace: "default".into(),
        job: "job".into(),
        group: "group".into(),
        task: String::new(),
        provider: "nomad".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        address: "127.0.0.1".into(),
        port: 8080,
    }
}

/// A Nomad `http` check on `path`, every 5 s with a 1 s timeout.
pub fn http_check(path: &str) -> NomadCheck {
    NomadCheck {
        name: "health".into(),
        check_type: "http".into(),
        path: path.into(),
        interval_ms: 5_000,
        timeout_ms: 1_000,
        ..NomadCheck::default()
    }
}

/// Writes a component to `dir/name.wasm` and returns its path.
pub fn write_plugin(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).expect("writing the plugin");
    path
}

/// A mapping config where `check_type` is served by the component at `path`.
pub fn config_with(check_type: &str, path: &Path, limits: Limits) -> mapping::Config {
    let mut config = mapping::Config {
        limits,
        ..mapping::Config::default()
    };
    config
        .plugins
        .insert(check_type.into(), path.display().to_string());
    config
}

/// An engine with the built-ins only.
pub fn builtin_engine() -> Engine {
    Engine::new(&mapping::Config::default(), RenderContext::default()).expect("built-ins load")
}
