//! What `plugin new` writes besides the plugin itself: the SDK, the model
//! crate and the WIT, embedded from the repository's own files when the
//! binary is built (so they cannot drift from what the connector runs),
//! with manifests that need nothing but crates.io.

use std::path::PathBuf;

/// A repository file, embedded: (path in the repository, text).
macro_rules! repo_file {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../../", $path)))
    };
}

/// The WIT the connector implements.
const WIT: (&str, &str) = repo_file!("wit/mapping.wit");

/// The SDK's sources (`plugins/sdk/src`).
const SDK_SOURCES: &[(&str, &str)] = &[
    repo_file!("plugins/sdk/src/lib.rs"),
    repo_file!("plugins/sdk/src/arena.rs"),
    repo_file!("plugins/sdk/src/capture.rs"),
    repo_file!("plugins/sdk/src/convert.rs"),
    repo_file!("plugins/sdk/src/panic.rs"),
];

/// The model crate's sources (`plugins/core/src`): the types and built-ins.
const CORE_SOURCES: &[(&str, &str)] = &[
    repo_file!("plugins/core/src/lib.rs"),
    repo_file!("plugins/core/src/model.rs"),
    repo_file!("plugins/core/src/builtin/mod.rs"),
    repo_file!("plugins/core/src/builtin/common.rs"),
    repo_file!("plugins/core/src/builtin/grpc.rs"),
    repo_file!("plugins/core/src/builtin/h2.rs"),
    repo_file!("plugins/core/src/builtin/http.rs"),
    repo_file!("plugins/core/src/builtin/script.rs"),
    repo_file!("plugins/core/src/builtin/tcp.rs"),
];

/// The SDK's version (the connector's).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `wit-bindgen` requirement, as the workspace gives it to the SDK.
const WIT_BINDGEN: &str =
    r#"{ version = "0.63", default-features = false, features = ["macros", "realloc"] }"#;

/// Where the vendored crates go, relative to the project.
pub(super) const SDK_DIR: &str = "vendor/hnc-plugin-sdk";
const CORE_DIR: &str = "vendor/hnc-core";

/// Every vendored file: (path relative to the project, text). The SDK
/// reads the WIT from `../../wit`, which is the project's `wit/`.
pub(super) fn files() -> Vec<(PathBuf, String)> {
    let mut files = vec![
        (PathBuf::from(WIT.0), WIT.1.to_string()),
        (PathBuf::from(SDK_DIR).join("Cargo.toml"), sdk_manifest()),
        (PathBuf::from(CORE_DIR).join("Cargo.toml"), core_manifest()),
    ];
    let under = |dir: &str, prefix: &str, sources: &[(&str, &str)]| {
        sources
            .iter()
            .map(|(path, text)| {
                let relative = path.strip_prefix(prefix).expect("listed under its crate");
                (PathBuf::from(dir).join(relative), (*text).to_string())
            })
            .collect::<Vec<_>>()
    };
    files.extend(under(SDK_DIR, "plugins/sdk/", SDK_SOURCES));
    files.extend(under(CORE_DIR, "plugins/core/", CORE_SOURCES));
    files
}

fn header() -> String {
    format!(
        "# Written by `haproxy-nomad-connector plugin new` (connector {VERSION}): the\n\
         # connector's own crate, vendored so that the project builds anywhere.\n"
    )
}

fn sdk_manifest() -> String {
    format!(
        r#"{header}[package]
name = "hnc-plugin-sdk"
description = "Write haproxy-nomad-connector mapping plugins in Rust"
version = "{VERSION}"
edition = "2024"
rust-version = "1.95"
license = "Apache-2.0"
publish = false

[dependencies]
hnc-core = {{ path = "../hnc-core" }}
wit-bindgen = {WIT_BINDGEN}
"#,
        header = header()
    )
}

fn core_manifest() -> String {
    format!(
        r#"{header}[package]
name = "hnc-core"
description = "The check-mapping data model and the built-in mappings"
version = "{VERSION}"
edition = "2024"
rust-version = "1.95"
license = "Apache-2.0"
publish = false

[features]
serde = ["dep:serde"]

[dependencies]
serde = {{ version = "1", features = ["derive"], optional = true }}
"#,
        header = header()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("host/ lives in the workspace")
            .to_path_buf()
    }

    /// Every `.rs` file under `dir` of the repository, as repository paths.
    fn sources(dir: &str) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let relative = path.strip_prefix(root).unwrap();
                    found.push(relative.display().to_string());
                }
            }
        }
        let mut found = Vec::new();
        walk(&repo(), &repo().join(dir), &mut found);
        found.sort();
        found
    }

    #[test]
    fn every_sdk_and_core_source_is_vendored() {
        let listed = |list: &[(&str, &str)]| {
            let mut paths: Vec<String> = list.iter().map(|(p, _)| (*p).to_string()).collect();
            paths.sort();
            paths
        };
        assert_eq!(listed(SDK_SOURCES), sources("plugins/sdk/src"));
        assert_eq!(listed(CORE_SOURCES), sources("plugins/core/src"));
    }

    #[test]
    fn the_vendored_wit_bindgen_is_the_workspace_one() {
        let workspace: toml::Table =
            toml::from_str(include_str!("../../../../Cargo.toml")).unwrap();
        let wanted = &workspace["workspace"]["dependencies"]["wit-bindgen"];
        let vendored: toml::Table = toml::from_str(&sdk_manifest()).unwrap();
        assert_eq!(&vendored["dependencies"]["wit-bindgen"], wanted);
        assert_eq!(
            workspace["workspace"]["package"]["edition"].as_str(),
            Some("2024")
        );
    }

    #[test]
    fn the_sdk_finds_the_wit_at_the_vendored_place() {
        let (_, lib) = SDK_SOURCES
            .iter()
            .find(|(p, _)| p.ends_with("lib.rs"))
            .unwrap();
        assert!(
            lib.contains(r#"path: "../../wit""#),
            "the SDK's WIT path moved"
        );
        let wit = Path::new(SDK_DIR).join("../../wit").join("mapping.wit");
        let files = files();
        let normalised: PathBuf = wit.components().fold(PathBuf::new(), |mut p, c| {
            match c {
                std::path::Component::ParentDir => {
                    p.pop();
                }
                other => p.push(other),
            }
            p
        });
        assert!(
            files.iter().any(|(p, _)| *p == normalised),
            "{normalised:?}"
        );
    }
}
