//! `plugin build [DIR]`: `cargo build --release --target
//! wasm32-unknown-unknown` in a plugin project, then the core module
//! encoded as a component in this process (no other tool to install).

use super::{Out, say};
use anyhow::Context as _;
use hnc_plugin_builder::{Build, TARGET};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `plugin build [DIR]`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The plugin project (its `Cargo.toml`); the current directory when absent.
    dir: Option<PathBuf>,
}

/// Runs `plugin build`; the component's path.
pub(super) fn run(args: &BuildArgs, out: &mut Out) -> anyhow::Result<PathBuf> {
    let dir = args.dir.clone().unwrap_or_else(super::current_dir);
    build_project(&dir, out)
}

/// Builds the project in `dir` and writes its component to
/// `<target dir>/plugin/<package>.wasm`; the target dir is
/// `CARGO_TARGET_DIR` when set, else `DIR/target`, as for cargo.
pub(super) fn build_project(dir: &Path, out: &mut Out) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    let package = package_name(&manifest)?;
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => dir.join("target"),
    };
    say!(
        out,
        "building {package} for {TARGET} (cargo build --release, target dir {})",
        target_dir.display()
    );
    let started = Instant::now();
    let build = Build {
        manifest: manifest.clone(),
        packages: vec![package.clone()],
        target_dir: target_dir.clone(),
        profile: "release".into(),
    };
    let built = build
        .run_showing_progress()
        .with_context(|| format!("building {}", manifest.display()))?;
    let (_, component) = built.into_iter().next().context("cargo built no package")?;
    let path = target_dir.join("plugin").join(format!("{package}.wasm"));
    hnc_plugin_builder::write(&path, &component)?;
    say!(
        out,
        "built {} ({} bytes) in {:.1} s",
        path.display(),
        component.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// `[package] name` of a manifest.
fn package_name(manifest: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(manifest).with_context(|| {
        format!(
            "{} is not a plugin project (write one with `plugin new`)",
            manifest.display()
        )
    })?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("reading {}", manifest.display()))?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .map(String::from)
        .with_context(|| format!("{} has no [package] name", manifest.display()))
}
