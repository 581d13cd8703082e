//! Builds the built-in mapping plugins as wasm components and embeds them.
//!
//! The guests in `plugins/` are compiled for wasm32-unknown-unknown by a
//! nested cargo (own target dir, so no lock contention with this build) and
//! encoded with wit-component; `src/mapping/builtin.rs` includes the result.
//!
//! When the binary is built for the machine that builds it, each component
//! is also precompiled by wasmtime with the daemon's engine configuration
//! (`src/mapping/wasm.rs` `config`, which must stay equal to
//! [`engine_config`]), so that a start loads the built-ins instead of
//! compiling them (~0.3 s for the four). A host that cannot run the
//! artifact (other CPU features) compiles the component at start instead.

use std::fmt::Write as _;
use std::path::PathBuf;

const BUILTINS: &[&str] = &["http", "tcp", "grpc", "script"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    for watched in ["wit", "plugins/core", "plugins/sdk", "plugins/builder/src"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    for name in BUILTINS {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join("plugins").join(name).display()
        );
    }

    let build = hnc_plugin_builder::Build {
        manifest: workspace.join("Cargo.toml"),
        packages: BUILTINS.iter().map(|n| format!("hnc-plugin-{n}")).collect(),
        target_dir: std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace.join("target"), PathBuf::from)
            .join("wasm-plugins"),
        profile: hnc_plugin_builder::DEFAULT_PROFILE.into(),
    };
    let built = match build.run() {
        Ok(built) => built,
        Err(e) => {
            eprintln!("error: building the built-in plugins failed: {e}");
            std::process::exit(1);
        }
    };

    let mut table = String::from("/// The built-in plugins: (check type, component bytes).\n");
    table.push_str("pub const BUILTINS: &[(&str, &[u8])] = &[\n");
    for (name, (_, bytes)) in BUILTINS.iter().zip(&built) {
        embed(
            &mut table,
            name,
            &out_dir.join(format!("builtin-{name}.wasm")),
            bytes,
        );
    }
    table.push_str("];\n");
    table.push_str(&precompiled(&built, &out_dir));
    if let Err(e) = std::fs::write(out_dir.join("builtins.rs"), table) {
        eprintln!("error: writing builtins.rs: {e}");
        std::process::exit(1);
    }
}

/// The daemon's engine configuration (`src/mapping/wasm.rs` `config`).
fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config
}

/// The `PRECOMPILED` table: each built-in compiled for this machine, or
/// none when cross-compiling (the artifact would be for the wrong host).
fn precompiled(built: &[(String, Vec<u8>)], out_dir: &std::path::Path) -> String {
    let mut table =
        String::from("/// The built-ins precompiled at build time: (check type, artifact).\n");
    table.push_str("pub const PRECOMPILED: &[(&str, &[u8])] = &[\n");
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    let engine = native
        .then(|| wasmtime::Engine::new(&engine_config()))
        .and_then(|e| {
            e.map_err(|e| println!("cargo:warning=no precompiled built-ins: {e:#}"))
                .ok()
        });
    if let Some(engine) = engine {
        for (name, (_, bytes)) in BUILTINS.iter().zip(built) {
            let compiled = match engine.precompile_component(bytes) {
                Ok(compiled) => compiled,
                Err(e) => {
                    eprintln!("error: precompiling the {name} built-in: {e:#}");
                    std::process::exit(1);
                }
            };
            let path = out_dir.join(format!("builtin-{name}.cwasm"));
            embed(&mut table, name, &path, &compiled);
        }
    }
    table.push_str("];\n");
    table
}

/// Writes `bytes` to `path` and adds a `(name, include_bytes!(path))` row to `table`.
fn embed(table: &mut String, name: &str, path: &std::path::Path, bytes: &[u8]) {
    if let Err(e) = hnc_plugin_builder::write(path, bytes) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let _ = writeln!(
        table,
        "    ({name:?}, include_bytes!({:?})),",
        path.display().to_string()
    );
}
