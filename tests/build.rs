//! Builds the example site plugin (examples/site-grpc-plugin) as a component
//! for the tests that swap it in through config; its path is in
//! `SITE_GRPC_PLUGIN`.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    for watched in [
        "wit",
        "plugins/core",
        "plugins/sdk",
        "examples/site-grpc-plugin",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let build = hnc_plugin_builder::Build {
        manifest: workspace.join("Cargo.toml"),
        packages: vec!["site-grpc-plugin".into()],
        target_dir: std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace.join("target"), PathBuf::from)
            .join("wasm-plugins"),
        profile: hnc_plugin_builder::DEFAULT_PROFILE.into(),
    };
    let path = out_dir.join("site-grpc-plugin.wasm");
    let result = build
        .run()
        .and_then(|built| hnc_plugin_builder::write(&path, &built[0].1));
    if let Err(e) = result {
        eprintln!("error: building the example site plugin failed: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-env=SITE_GRPC_PLUGIN={}", path.display());
}
