//! `hnc-plugin-build`: builds a plugin crate into a component, for plugin authors.
//!
//! Usage: `hnc-plugin-build --manifest PATH/Cargo.toml --package NAME --out FILE.wasm [--profile release]`

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut manifest = PathBuf::from("Cargo.toml");
    let mut package = None;
    let mut out = None;
    let mut target_dir = None;
    let mut profile = "release".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().map(PathBuf::from);
        match arg.as_str() {
            "--manifest" => manifest = value().unwrap_or(manifest),
            "--package" | "-p" => package = value(),
            "--out" | "-o" => out = value(),
            "--target-dir" => target_dir = value(),
            "--profile" => profile = value().map_or(profile, |p| p.to_string_lossy().into_owned()),
            _ => {
                eprintln!(
                    "usage: hnc-plugin-build [--manifest Cargo.toml] --package NAME --out FILE.wasm [--profile release] [--target-dir DIR]"
                );
                return ExitCode::from(64);
            }
        }
    }
    let (Some(package), Some(out)) = (package, out) else {
        eprintln!("hnc-plugin-build: --package and --out are required");
        return ExitCode::from(64);
    };
    let package = package.to_string_lossy().into_owned();
    let target_dir = target_dir.unwrap_or_else(|| {
        manifest
            .parent()
            .unwrap_or(&manifest)
            .join("target")
            .join("wasm-plugins")
    });
    let build = hnc_plugin_builder::Build {
        manifest,
        packages: vec![package],
        target_dir,
        profile,
    };
    let result = build
        .run()
        .and_then(|built| hnc_plugin_builder::write(&out, &built[0].1));
    match result {
        Ok(()) => {
            println!("wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hnc-plugin-build: {e}");
            ExitCode::FAILURE
        }
    }
}
