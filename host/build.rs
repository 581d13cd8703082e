//! Builds the built-in mapping plugins as wasm components and embeds them.
//!
//! The guests in `plugins/` are compiled for wasm32-unknown-unknown by a
//! nested cargo (own target dir, so no lock contention with this build) and
//! encoded with wit-component; `src/mapping/builtin.rs` includes the result.

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
        let path = out_dir.join(format!("builtin-{name}.wasm"));
        if let Err(e) = hnc_plugin_builder::write(&path, bytes) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        let _ = writeln!(
            table,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    table.push_str("];\n");
    if let Err(e) = std::fs::write(out_dir.join("builtins.rs"), table) {
        eprintln!("error: writing builtins.rs: {e}");
        std::process::exit(1);
    }
}
