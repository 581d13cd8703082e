//! The plugin kit as a site engineer uses it, outside the repository:
//! `plugin new` in a temp dir, `plugin build` (cargo and crates.io only),
//! `plugin check`, `plugin test`, a broken fixture, and an edit that makes
//! the plugin panic (the host logs the panic's message).
//!
//! Prints the cold build and the rebuild-after-an-edit times (figures, not
//! assertions). The cargo target dir is kept under the tests' target dir,
//! so only the first run is a cold build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_connector");

/// Runs the connector in `dir` as a user would: no build-dir override, the
/// given cargo target dir.
fn connector(dir: &Path, target: &Path, args: &[&str]) -> (Output, String) {
    let output = Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_BUILD_BUILD_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("the connector runs");
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, said)
}

/// Every `path = "..."` of every manifest in the project resolves inside it.
fn assert_paths_stay_inside(project: &Path) {
    let root = project.canonicalize().unwrap();
    let mut manifests = vec![project.join("Cargo.toml")];
    for krate in std::fs::read_dir(project.join("vendor")).unwrap() {
        manifests.push(krate.unwrap().path().join("Cargo.toml"));
    }
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let deps = table.get("dependencies").and_then(toml::Value::as_table);
        for (name, spec) in deps.into_iter().flatten() {
            if let Some(path) = spec.get("path").and_then(toml::Value::as_str) {
                let resolved = manifest
                    .parent()
                    .unwrap()
                    .join(path)
                    .canonicalize()
                    .unwrap();
                assert!(
                    resolved.starts_with(&root),
                    "{}: {name} = {path} leaves the project",
                    manifest.display()
                );
            }
        }
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let checkout = checkout.display().to_string();
    for file in walk(project) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !text.contains(&checkout),
            "{} names the checkout",
            file.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_kit_builds_checks_and_tests_a_new_plugin_outside_the_repository() {
    let home = tempfile::tempdir().unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-kit-target");
    let cold = !target.exists();

    let (output, said) = connector(
        home.path(),
        &target,
        &["plugin", "new", "site-http", "--types", "http,mysql"],
    );
    assert!(output.status.success(), "{said}");
    let project = home.path().join("site-http");
    assert_paths_stay_inside(&project);

    // A second `new` into the same place is refused, and changes nothing.
    let before = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
    let (output, said) = connector(home.path(), &target, &["plugin", "new", "site-http"]);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("is not empty"), "{said}");
    assert_eq!(
        std::fs::read_to_string(project.join("src/lib.rs")).unwrap(),
        before
    );

    let started = Instant::now();
    let (output, said) = connector(&project, &target, &["plugin", "build"]);
    let build_time = started.elapsed();
    assert!(output.status.success(), "{said}");
    let component = target.join("plugin").join("site-http.wasm");
    assert!(said.contains(&component.display().to_string()), "{said}");
    println!(
        "figure: plugin build of the scaffold ({}): {:.1} s",
        if cold {
            "cold"
        } else {
            "target dir already warm"
        },
        build_time.as_secs_f64()
    );

    let (output, said) = connector(
        &project,
        &target,
        &["plugin", "check", component.to_str().unwrap()],
    );
    assert!(output.status.success(), "{said}");
    assert!(said.contains("option httpchk"), "{said}");
    assert!(said.contains("check types: http, mysql"), "{said}");

    let (output, said) = connector(&project, &target, &["plugin", "test", "."]);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("3 passed, 0 failed"), "{said}");

    // A fixture that expects other lines fails, with a diff.
    let fixture = project.join("fixtures/http.json");
    let good = std::fs::read_to_string(&fixture).unwrap();
    let broken = good.replacen("\"option httpchk\"", "\"option httpchk OPTIONS /\"", 1);
    assert_ne!(broken, good, "the fixture holds `option httpchk`");
    std::fs::write(&fixture, broken).unwrap();
    let (output, said) = connector(&project, &target, &["plugin", "test"]);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("FAILED  http.json"), "{said}");
    assert!(said.contains("--- expected"), "{said}");
    assert!(said.contains("-option httpchk OPTIONS /"), "{said}");
    assert!(said.contains("+option httpchk\n"), "{said}");
    assert!(said.contains("2 passed, 1 failed"), "{said}");
    std::fs::write(&fixture, good).unwrap();

    // An edit: the plugin panics on one path. The rebuild is timed; the
    // host logs the panic's message (the SDK's hook) and falls back.
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let edited = source.replacen(
        "        let plan = match",
        "        if check.path == \"/boom\" {\n            panic!(\"no boom allowed in {}\", check.name);\n        }\n        let plan = match",
        1,
    );
    assert_ne!(edited, source);
    std::fs::write(&lib, edited).unwrap();
    let started = Instant::now();
    let (output, said) = connector(&project, &target, &["plugin", "build", "."]);
    let rebuild_time = started.elapsed();
    assert!(output.status.success(), "{said}");
    println!(
        "figure: plugin build after an edit of src/lib.rs: {:.1} s",
        rebuild_time.as_secs_f64()
    );
    let boom = project.join("boom.json");
    std::fs::write(
        &boom,
        r#"{"Name": "kaboom", "Type": "http", "Path": "/boom", "Interval": 10000000000}"#,
    )
    .unwrap();
    let (output, said) = connector(
        &project,
        &target,
        &[
            "plugin",
            "check",
            component.to_str().unwrap(),
            "--check",
            boom.to_str().unwrap(),
        ],
    );
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("FALLS BACK"), "{said}");
    assert!(said.contains("no boom allowed in kaboom"), "{said}");
    assert!(said.contains("src/lib.rs"), "{said}");
}
