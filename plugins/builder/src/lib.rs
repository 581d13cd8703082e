//! Builds mapping-plugin guest crates into WASI-free wasm components.
//!
//! Used by `host/build.rs` (the built-in plugins are embedded in the daemon),
//! by `tests/build.rs` (the example site plugin) and by plugin authors through
//! the `hnc-plugin-build` binary. It runs cargo for `wasm32-unknown-unknown`
//! and turns the core module into a component with `wit-component`, so nobody
//! needs `wasm-tools` installed.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The rustc target of every guest: no WASI, so no WASI imports.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// The cargo profile guests build with (see the workspace `Cargo.toml`).
pub const DEFAULT_PROFILE: &str = "wasm-plugin";

/// Why a guest could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The wasm target is missing and could not be installed.
    #[error("the {TARGET} target is not installed and `rustup target add {TARGET}` failed: {0}")]
    TargetMissing(String),
    /// cargo could not be started.
    #[error("could not run cargo: {0}")]
    CargoSpawn(#[source] std::io::Error),
    /// cargo ran and failed.
    #[error("cargo failed to build {packages} for {TARGET}:\n{stderr}")]
    CargoFailed {
        /// The packages being built.
        packages: String,
        /// cargo's error output.
        stderr: String,
    },
    /// The built module could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The module path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The core module could not become a component.
    #[error("encoding {path} as a component: {message}")]
    Encode {
        /// The module path.
        path: PathBuf,
        /// wit-component's message, with its causes.
        message: String,
    },
    /// The component could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The component path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// One guest build: which packages of which workspace, where.
#[derive(Debug, Clone)]
pub struct Build {
    /// The `Cargo.toml` of the workspace (or package) holding the guests.
    pub manifest: PathBuf,
    /// Package names to build; each must be a `cdylib`.
    pub packages: Vec<String>,
    /// cargo's target directory for the wasm build.
    pub target_dir: PathBuf,
    /// The cargo profile, usually [`DEFAULT_PROFILE`].
    pub profile: String,
}

impl Build {
    /// Builds every package and returns `(package, component bytes)` pairs.
    ///
    /// # Errors
    /// The target cannot be installed, cargo fails, or encoding fails.
    pub fn run(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.run_cargo(false)
    }

    /// As [`Build::run`], with cargo's progress on this process's stderr
    /// (for a person at a terminal rather than a build script).
    ///
    /// # Errors
    /// The target cannot be installed, cargo fails, or encoding fails.
    pub fn run_showing_progress(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.run_cargo(true)
    }

    fn run_cargo(&self, progress: bool) -> Result<Vec<(String, Vec<u8>)>, Error> {
        ensure_target()?;
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo
            .arg("build")
            .arg("--manifest-path")
            .arg(&self.manifest)
            .args(["--target", TARGET, "--profile", &self.profile])
            .arg("--target-dir")
            .arg(&self.target_dir);
        for package in &self.packages {
            cargo.args(["-p", package]);
        }
        // Flags meant for the outer (native) build must not leak into the guest
        // build; a small stack keeps a guest's initial memory at 2 pages.
        for var in [
            "RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
        ] {
            cargo.env_remove(var);
        }
        cargo.env("CARGO_ENCODED_RUSTFLAGS", "-Clink-arg=-zstack-size=65536");
        let failed = if progress {
            let status = cargo.status().map_err(Error::CargoSpawn)?;
            (!status.success())
                .then(|| format!("(cargo's messages are above; it exited with {status})"))
        } else {
            let output = cargo.output().map_err(Error::CargoSpawn)?;
            (!output.status.success()).then(|| String::from_utf8_lossy(&output.stderr).into_owned())
        };
        if let Some(stderr) = failed {
            return Err(Error::CargoFailed {
                packages: self.packages.join(", "),
                stderr,
            });
        }
        let out_dir = self.target_dir.join(TARGET).join(&self.profile);
        self.packages
            .iter()
            .map(|package| {
                let module = out_dir.join(format!("{}.wasm", package.replace('-', "_")));
                Ok((package.clone(), componentize(&module)?))
            })
            .collect()
    }
}

/// Encodes a core wasm module built with `wit-bindgen` as a component.
///
/// # Errors
/// The file cannot be read or is not a module with component type information.
pub fn componentize(module: &Path) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(module).map_err(|source| Error::Read {
        path: module.to_path_buf(),
        source,
    })?;
    let encode = || -> anyhow::Result<Vec<u8>> {
        wit_component::ComponentEncoder::default()
            .module(&bytes)?
            .validate(true)
            .encode()
    };
    encode().map_err(|e| Error::Encode {
        path: module.to_path_buf(),
        message: format!("{e:#}"),
    })
}

/// Writes bytes to `path`, creating parent directories.
///
/// # Errors
/// Any I/O failure, with the path.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let write = || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)
    };
    write().map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Installs the wasm target through rustup when it is missing.
fn ensure_target() -> Result<(), Error> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let installed = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|dir| dir.join("libcore").exists() || has_rlib(&dir));
    if installed {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|e| Error::TargetMissing(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::TargetMissing(format!("rustup exited with {status}")))
    }
}

fn has_rlib(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libcore-"))
    })
}
